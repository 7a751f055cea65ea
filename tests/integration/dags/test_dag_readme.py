"""The README matches the code: every DAG param and precheck item is documented, and the MariaDB GRANT
statements, run exactly as written on fresh servers, give an account that passes the privilege checks of
both directions and runs the whole two-way sync (and a verification during live sync)."""

from __future__ import annotations

import importlib.util
import re
import secrets
from pathlib import Path

import pytest

from airflow_provider_dts.engine.config import PRECHECK_ITEMS, SyncDirection
from airflow_provider_dts.engine.precheck import PASS, run_checks

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_every_dag_param_and_precheck_item_is_documented():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_readme", ROOT / "dags" / "dts_two_way_sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in module.PARAMS:
        assert f"| `{name}` |" in README, f"DAG param {name} is not in the README's params table"
    for item in PRECHECK_ITEMS:
        assert f"| `{item}` |" in README, f"precheck item {item} is not in the README's precheck table"


def sql_block(title_fragment: str) -> list[str]:
    """The statements of the first ```sql block after the line containing ``title_fragment``."""
    start = README.index(title_fragment)
    block = README[README.index("```sql", start) + len("```sql") :]
    block = block[: block.index("```")]
    text = "\n".join(line.split("--")[0] for line in block.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture
def fresh_pair(make_server):
    return make_server(server_id=21), make_server(server_id=22)


def test_mariadb_grants_as_written_pass_the_privilege_checks(fresh_pair):
    statements = sql_block("On MariaDB 10.5 to 11.2:")
    assert any(s.startswith("CREATE USER") for s in statements)
    password = "pw-" + secrets.token_hex(8)
    a, b = fresh_pair
    for server in (a, b):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE shop")
            cur.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20))")
            for stmt in statements:
                cur.execute(stmt.replace("change-me", password))
    as_dts = [s.settings(user="dts", password=password) for s in (a, b)]
    forward = SyncDirection.from_dict(
        {
            "task_name": "readme",
            "source_conn_id": "a",
            "destination_conn_id": "b",
            "objects": ["shop"],
            "existing_table_mode": "Ignore",
        }
    )
    reverse = SyncDirection.from_dict(
        {
            "task_name": "readme",
            "role": "reverse",
            "source_conn_id": "b",
            "destination_conn_id": "a",
            "objects": ["shop"],
            "exclude_ddl": True,
            "existing_table_mode": "Ignore",
        }
    )
    for direction, (src, dst) in ((forward, as_dts), (reverse, as_dts[::-1])):
        results = {r.name: r for r in run_checks(direction, src, dst)}
        for item in ("source_connectivity", "destination_connectivity", "source_privileges", "destination_privileges"):
            r = results[item]
            assert r.status == PASS, f"{direction.key} {item}: {r.status} {r.reason} Fix: {r.fix}"


def test_status_query_runs_on_the_control_schema(pair, task_name):
    from airflow_provider_dts.engine.control import ControlSchema, State

    with pair.b.settings().connect() as conn:
        ControlSchema("dts_meta").ensure(conn)
        ControlSchema("dts_meta").set_state(conn, task_name, "forward", State.SYNCHRONIZING, "ok", lag_seconds=0.5)
    query = sql_block("The control schema, on each direction's destination")
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        for stmt in query:
            cur.execute(stmt)
            cur.fetchall()
        cur.execute(query[0])
        rows = [r for r in cur.fetchall() if r[0] == task_name]
    assert rows and rows[0][2] == State.SYNCHRONIZING
    assert re.search(r"dts_meta\.sync_state", query[0])


def test_readme_grants_run_the_whole_two_way_sync_and_verification_under_live_sync(make_server, task_name):
    """Accounts made with exactly the README's MariaDB statements: precheck, schema and full sync, both
    directions at once under writes on both sides, and a verification run during live sync that reports
    no drift (the in-flight rows are re-checked, not reported)."""
    import threading
    import time

    from airflow_provider_dts.engine.config import TwoWayTask
    from airflow_provider_dts.engine.incremental import run_direction
    from airflow_provider_dts.engine.precheck import run_precheck
    from airflow_provider_dts.engine.schema_sync import sync_schema
    from airflow_provider_dts.engine.snapshot import full_data_sync
    from airflow_provider_dts.engine.verify import Verifier

    statements = sql_block("On MariaDB 10.5 to 11.2:")
    password = "pw-" + secrets.token_hex(8)
    a, b = make_server(server_id=31), make_server(server_id=32)
    for server in (a, b):
        with server.root_connect() as conn, conn.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt.replace("change-me", password))
    with a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20), qty INT)")
        cur.executemany(
            "INSERT INTO shop.orders VALUES (%s, %s, %s)", [(i, f"item {i}", i % 7) for i in range(1, 3001)]
        )
    sa, sb = a.settings(user="dts", password=password), b.settings(user="dts", password=password)
    task = TwoWayTask.from_dict(
        {"name": task_name, "forward": {"source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}}
    )
    for d, src, dst in ((task.forward, sa, sb), (task.reverse, sb, sa)):
        if d.role == "forward":
            assert run_precheck(d, src, dst).passed
            sync_schema(d, src, dst)
        full_data_sync(d, src, dst)
        report = run_precheck(d, src, dst)
        assert report.passed, [r.line() for r in report.failed]

    def sql(server, stmt, args=None):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute(stmt, args)
            return cur.fetchall()

    stop, writing = threading.Event(), threading.Event()
    results = {}
    runs = [
        threading.Thread(
            target=lambda d=d, s=s, t=t: results.setdefault(d.role, run_direction(d, s, t, stop=stop)), daemon=True
        )
        for d, s, t in ((task.forward, sa, sb), (task.reverse, sb, sa))
    ]
    writes = {"A": 0, "B": 0}

    def writer(server, side, base):
        with server.root_connect() as conn, conn.cursor() as cur:
            i = 0
            while not writing.is_set():
                i += 1
                cur.execute("INSERT INTO shop.orders VALUES (%s, %s, %s)", (base + i, f"{side} {i}", i))
                cur.execute("UPDATE shop.orders SET qty = qty + 1 WHERE id = %s", (base + max(1, i // 2),))
                writes[side] += 1
                time.sleep(0.05)

    for t in runs:
        t.start()
    writers = [
        threading.Thread(target=writer, args=(a, "A", 100_000), daemon=True),
        threading.Thread(target=writer, args=(b, "B", 200_000), daemon=True),
    ]
    try:
        for t in writers:
            t.start()
        time.sleep(2)
        before = dict(writes)
        live = Verifier(task.forward, sa, sb, chunk_size=500, recheck_delay=1.0, rechecks=3).run()
        assert live.equal, live.summary()
        assert live.tables[0].chunks >= 6
        # the writes really went on during the verification, on both sides
        assert writes["A"] > before["A"] and writes["B"] > before["B"], (before, writes)
    finally:
        writing.set()
        for t in writers:
            t.join(10)
        deadline = time.monotonic() + 60
        rows = "SELECT * FROM shop.orders ORDER BY id"
        while sql(a, rows) != sql(b, rows) and time.monotonic() < deadline:
            time.sleep(0.3)
        stop.set()
        for t in runs:
            t.join(30)
    assert sql(a, rows) == sql(b, rows)
    assert len(sql(a, rows)) == 3000 + writes["A"] + writes["B"]
    assert {r: res.outcome for r, res in results.items()} == {"forward": "stopped", "reverse": "stopped"}
