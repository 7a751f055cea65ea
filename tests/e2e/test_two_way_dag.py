"""End to end: the real pair, a real Airflow (``airflow standalone``: scheduler, dag-processor, triggerer,
api-server; SQLite; LocalExecutor), the dts_two_way_sync DAG triggered with the CLI.

Both directions reach Synchronizing; concurrent writes on both sides (disjoint keys) and a DDL on the source
converge row for row; nothing echoes (the binlogs stop growing once writes stop); "Mark success" stops a
direction with its checkpoint and "Clear" resumes it without re-initializing; Airflow stops cleanly and the
engines record Stopped.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from dag_helpers import both, wait_until

from airflow_provider_dts.demo import (
    DAG_ID,
    compare_shop,
    direction_status,
    load_sample_shop,
    sql,
    user_binlog_events,
    write_orders,
)

pytestmark = pytest.mark.e2e


def test_two_way_sync_dag_end_to_end(clean_pair, airflow, task_name):
    pair, af = clean_pair, airflow
    load_sample_shop(pair.a, customers=100, orders=300)

    af.wait_dag(timeout=120)
    assert not af.import_errors(), af.import_errors()
    af.cli("dags", "unpause", DAG_ID)
    af.cli("dags", "trigger", DAG_ID, "--conf", json.dumps({"objects": ["shop"], "task_name": task_name}))

    # steps 5-15: task one initializes and synchronizes, then task two
    wait_until(
        lambda: both(pair, task_name, "Synchronizing"), 420, "both directions Synchronizing", af, pair, task_name
    )
    states = af.task_states()
    assert states["task_one_incremental"] == "deferred" and states["task_two_incremental"] == "deferred", states
    assert states["wait_task_one_synchronizing"] == "success" and states["task_two_full_data_sync"] == "success"
    initial = compare_shop(pair.a, pair.b)
    assert all(v["equal"] for v in initial.values()), initial
    assert initial["orders"]["rows_b"] == 300

    # concurrent writes on both sides with disjoint keys, and a DDL on the source in the middle
    written: dict[str, dict] = {}
    writers = [
        threading.Thread(target=lambda: written.__setitem__("A", write_orders(pair.a, 10_000, 150, seed=1))),
        threading.Thread(target=lambda: written.__setitem__("B", write_orders(pair.b, 20_000, 150, seed=2))),
    ]
    for t in writers:
        t.start()
    time.sleep(0.5)
    sql(pair.a, "ALTER TABLE shop.customers ADD COLUMN loyalty_points INT NOT NULL DEFAULT 0")
    sql(pair.a, "UPDATE shop.customers SET loyalty_points = id * 10 WHERE id <= 20")
    sql(pair.b, "UPDATE shop.customers SET city = 'Reykjavik' WHERE id BETWEEN 50 AND 60")
    for t in writers:
        t.join()
    assert written["A"]["inserted"] == 150 and written["B"]["inserted"] == 150

    def converged():
        v = compare_shop(pair.a, pair.b)
        return v if all(x["equal"] for x in v.values()) else None

    verdict = wait_until(converged, 90, "both sides equal", af, pair, task_name)
    expected_orders = 300 + 300 - written["A"]["deleted"] - written["B"]["deleted"]
    assert verdict["orders"]["rows_a"] == verdict["orders"]["rows_b"] == expected_orders
    cols = sql(
        pair.b,
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='shop' "
        "AND TABLE_NAME='customers' AND COLUMN_NAME='loyalty_points'",
    )
    assert cols[0][0] == 1, "the DDL on the source did not reach the destination"
    assert sql(pair.a, "SELECT COUNT(*) FROM shop.orders WHERE qty = -999")[0][0] == 0  # rolled back

    # no echo: once writes stop, neither binlog keeps growing with row events on shop
    time.sleep(3)
    before = (user_binlog_events(pair.a), user_binlog_events(pair.b))
    time.sleep(6)
    after = (user_binlog_events(pair.a), user_binlog_events(pair.b))
    assert before == after, f"binlogs kept growing after writes stopped (echo): {before} -> {after}"

    # "Mark success" on task two's incremental task stops it cleanly, checkpoint kept
    fwd_before = direction_status(pair, task_name)["forward"]
    af.set_task_state("task_two_incremental", "success")
    wait_until(
        lambda: direction_status(pair, task_name)["reverse"].state == "Stopped",
        60,
        "task two Stopped after mark success",
        af,
        pair,
        task_name,
    )
    rev_stopped = direction_status(pair, task_name)["reverse"]
    assert rev_stopped.binlog_file is not None
    sql(
        pair.b,
        "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
        "VALUES (30001, 1, 'while stopped', 1, 1.00, UTC_TIMESTAMP(6))",
    )
    time.sleep(3)
    assert sql(pair.a, "SELECT COUNT(*) FROM shop.orders WHERE id = 30001")[0][0] == 0

    # "Clear" resumes it from its checkpoint: nothing re-initialized, the row written meanwhile arrives once
    af.clear_task("task_two_incremental")
    wait_until(
        lambda: sql(pair.a, "SELECT COUNT(*) FROM shop.orders WHERE id = 30001")[0][0] == 1,
        120,
        "the row written while stopped",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    wait_until(
        lambda: both(pair, task_name, "Synchronizing"),
        60,
        "both Synchronizing again",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    assert converged(), compare_shop(pair.a, pair.b)
    fwd_after = direction_status(pair, task_name)["forward"]
    assert fwd_after.transactions_applied >= fwd_before.transactions_applied  # task one never re-initialized
    assert af.task_states()["task_two_full_data_sync"] == "success"

    # stopping Airflow stops both engines cleanly (state Stopped, checkpoints kept)
    af.stop()
    assert not af.running()
    final = direction_status(pair, task_name)
    assert {r: s.state for r, s in final.items()} == {"forward": "Stopped", "reverse": "Stopped"}, final

    # written on both sides while Airflow is down; a restarted Airflow (the triggerer re-creates the triggers
    # from their serialized arguments) resumes both directions from their checkpoints
    sql(
        pair.a,
        "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
        "VALUES (40001, 1, 'while down A', 1, 1.00, UTC_TIMESTAMP(6))",
    )
    sql(
        pair.b,
        "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
        "VALUES (40002, 2, 'while down B', 2, 2.00, UTC_TIMESTAMP(6))",
    )
    af.start()
    af.wait_ready(timeout=240)
    wait_until(
        lambda: converged() and sql(pair.b, "SELECT COUNT(*) FROM shop.orders WHERE id IN (40001, 40002)")[0][0] == 2,
        180,
        "rows written while Airflow was down",
        af,
        pair,
        task_name,
    )
    wait_until(
        lambda: both(pair, task_name, "Synchronizing"), 60, "both Synchronizing after the restart", af, pair, task_name
    )
    states = af.task_states()
    assert states["task_one_incremental"] == "deferred" and states["task_two_incremental"] == "deferred", states
    assert len(af.run_ids()) == 1  # the same run carried on: nothing re-initialized

    # both incremental tasks marked success end the run; triggering the DAG again with the same task_name resumes
    # from the checkpoints, and adds an object (DTS's "modify objects", issue 9 cause 9): a database created on A
    # while the sync is stopped, with rows and writes, is created and copied at B; shop is not copied again
    for tid in ("task_one_incremental", "task_two_incremental"):
        af.set_task_state(tid, "success")
    wait_until(lambda: both(pair, task_name, "Stopped"), 60, "both Stopped", af, pair, task_name)
    sql(
        pair.a,
        "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
        "VALUES (50001, 1, 'between runs', 1, 1.00, UTC_TIMESTAMP(6))",
    )
    sql(
        pair.a,
        "CREATE DATABASE crm",
        "CREATE TABLE crm.accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance INT NOT NULL)",
        "INSERT INTO crm.accounts VALUES (1, 'ann', 10), (2, 'bob', 20), (3, 'cy', 30)",
        "UPDATE crm.accounts SET balance = 11 WHERE id = 1",
        "DELETE FROM crm.accounts WHERE id = 3",
    )
    shop_progress_before = shop_progress(pair, task_name)
    assert ("forward", "orders", "shop", "orders", "done", 300) in [r[:6] for r in shop_progress_before]
    conflicts_before = conflict_count(pair, task_name)
    wait_until(
        lambda: (
            af.cli(
                "dags",
                "trigger",
                DAG_ID,
                "--conf",
                json.dumps({"objects": ["shop", "crm"], "task_name": task_name}),
                check=False,
            ).returncode
            == 0
            and len(af.run_ids()) == 2
        ),
        60,
        "a second run",
        af,
        pair,
        task_name,
    )
    wait_until(
        lambda: (
            both(pair, task_name, "Synchronizing")
            and af.task_states(run_id=af.run_ids()[-1]).get("task_two_incremental") == "deferred"
        ),
        240,
        "both Synchronizing in the second run",
        af,
        pair,
        task_name,
    )
    wait_until(
        lambda: sql(pair.b, "SELECT COUNT(*) FROM shop.orders WHERE id = 50001")[0][0] == 1,
        60,
        "the row written between runs",
        af,
        pair,
        task_name,
    )
    assert converged(), compare_shop(pair.a, pair.b)
    assert shop_progress(pair, task_name) == shop_progress_before, "the second run copied shop again"
    # the added database: created and copied at B with the rows written while stopped
    assert accounts(pair.b) == [(1, "ann", 11), (2, "bob", 20)]
    crm_progress = [
        tuple(r)
        for server in (pair.b, pair.a)
        for r in sql(
            server,
            "SELECT direction, source_table, status, rows_done FROM dts_meta.table_progress "
            f"WHERE task_name = '{task_name}' AND source_db = 'crm'",
        )
    ]
    assert crm_progress == [("forward", "accounts", "done", 2)], crm_progress  # copied A -> B only, once
    # writes to it afterwards flow both ways, once
    sql(pair.a, "INSERT INTO crm.accounts VALUES (4, 'dee', 40)", "UPDATE crm.accounts SET balance = 12 WHERE id = 1")
    sql(pair.b, "INSERT INTO crm.accounts VALUES (5, 'eve', 50)", "UPDATE crm.accounts SET balance = 21 WHERE id = 2")
    expected = [(1, "ann", 12), (2, "bob", 21), (4, "dee", 40), (5, "eve", 50)]
    wait_until(
        lambda: accounts(pair.a) == accounts(pair.b) == expected,
        60,
        "crm.accounts equal on both sides",
        af,
        pair,
        task_name,
    )
    assert sql(pair.a, "CHECKSUM TABLE crm.accounts") == sql(pair.b, "CHECKSUM TABLE crm.accounts")
    assert conflict_count(pair, task_name) == conflicts_before
    time.sleep(2)
    crm_events = (user_binlog_events(pair.a, "crm"), user_binlog_events(pair.b, "crm"))
    time.sleep(4)
    assert (user_binlog_events(pair.a, "crm"), user_binlog_events(pair.b, "crm")) == crm_events, "crm echoes"
    assert accounts(pair.a) == accounts(pair.b) == expected

    af.stop()
    assert not af.running()
    final = direction_status(pair, task_name)
    assert {r: s.state for r, s in final.items()} == {"forward": "Stopped", "reverse": "Stopped"}, (
        f"{final}\n{af.log_tail(5)}"
    )

    # security: neither server's password is anywhere the run left things (task logs, XCom and rendered
    # templates in the metadata DB, the standalone log, the control schema on both servers)
    assert_secrets_absent([pair.a.password, pair.b.password], af.home, pair, task_name)


def accounts(server) -> list[tuple]:
    return [tuple(r) for r in sql(server, "SELECT id, owner, balance FROM crm.accounts ORDER BY id")]


def shop_progress(pair, task_name: str) -> list[tuple]:
    """Both directions' copy progress of the shop tables (forward's on B, reverse's on A): a copy again changes it."""
    cols = (
        "direction, source_table, dest_db, dest_table, status, rows_done, rows_estimated, last_key, started_at, "
        "finished_at, catchup_file, catchup_pos"
    )
    return [
        tuple(r)
        for server in (pair.b, pair.a)
        for r in sql(
            server,
            f"SELECT {cols} FROM dts_meta.table_progress WHERE task_name = '{task_name}' AND source_db = 'shop' "
            "ORDER BY direction, source_table",
        )
    ]


def conflict_count(pair, task_name: str) -> int:
    return sum(
        sql(server, f"SELECT COUNT(*) FROM dts_meta.conflict_log WHERE task_name = '{task_name}'")[0][0]
        for server in (pair.a, pair.b)
    )


def assert_secrets_absent(secrets: list[str], home, pair, task_name: str) -> None:
    import sqlite3
    from pathlib import Path

    secrets = [x for x in secrets if x]
    assert secrets
    checked, db_text = 0, ""
    for path in Path(home).rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".db":  # SQLite may split long text over pages: read it back as SQL text
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                text = "\n".join(db.iterdump())
            db_text += text
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        checked += 1
        for secret in secrets:
            assert secret not in text, f"a server password appears in {path}"
    assert checked > 10, f"only {checked} files under {home}: the run left fewer artifacts than expected"
    # the dump really holds the run's XCom and rendered templates (they name the task)
    assert task_name in db_text and "rendered_task_instance_fields" in db_text and "xcom" in db_text
    for server in (pair.a, pair.b):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='dts_meta'")
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT * FROM dts_meta.`{table}`")
                dump = repr(cur.fetchall())
                for secret in secrets:
                    assert secret not in dump, f"a server password appears in dts_meta.{table}"
