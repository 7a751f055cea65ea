"""Issue 9 through the two-way DAG under a real scheduler and triggerer: a schema nobody on the team wrote
(three-level foreign-key cascades, a FLOAT key, a case-insensitive key, a table whose columns change while
both sides write, an audit trigger living on both servers), with user writes on the destination before task
two exists. Both servers end equal row by
row and by CHECKSUM TABLE; nothing written on either side after the trigger is lost."""

from __future__ import annotations

import json
import time

import pytest
from dag_helpers import both, diagnostics, wait_until

from airflow_provider_dts.demo import DAG_ID, sql

pytestmark = pytest.mark.e2e

ZOO = (
    "CREATE DATABASE zoo",
    "CREATE TABLE zoo.customer (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE, name VARCHAR(40))",
    "CREATE TABLE zoo.orders (id INT PRIMARY KEY, customer_code VARCHAR(10), note VARCHAR(40), "
    " FOREIGN KEY (customer_code) REFERENCES zoo.customer (code) ON DELETE CASCADE ON UPDATE CASCADE)",
    "CREATE TABLE zoo.line (id INT PRIMARY KEY, order_id INT NOT NULL, qty INT, "
    " FOREIGN KEY (order_id) REFERENCES zoo.orders (id) ON DELETE CASCADE)",
    "CREATE TABLE zoo.tag (id INT PRIMARY KEY, order_id INT NULL, "
    " FOREIGN KEY (order_id) REFERENCES zoo.orders (id) ON DELETE SET NULL)",
    "CREATE TABLE zoo.fkey (k FLOAT PRIMARY KEY, v INT)",
    "CREATE TABLE zoo.cikey (k VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT)",
    "CREATE TABLE zoo.evolving (id INT PRIMARY KEY, d VARCHAR(20), v INT)",
    "CREATE TABLE zoo.audit (k VARCHAR(40) PRIMARY KEY, note VARCHAR(60))",
)
# an audit trigger that lives on both servers (created at the destination by sync_triggers, guarded on both by
# guard_triggers): it must fire once, where the user wrote
TRIGGER = (
    "CREATE TRIGGER zoo.customer_audit AFTER INSERT ON zoo.customer FOR EACH ROW "
    "INSERT INTO zoo.audit VALUES (CONCAT(@@server_id, '-', NEW.id), CONCAT('new customer ', NEW.code))"
)


def load_zoo(server) -> None:
    sql(server, *ZOO)
    for c in range(1, 21):
        sql(
            server,
            f"INSERT INTO zoo.customer VALUES ({c}, 'c{c}', 'n{c}')",
            *(f"INSERT INTO zoo.orders VALUES ({c * 10 + o}, 'c{c}', 'o')" for o in range(3)),
            *(
                f"INSERT INTO zoo.line VALUES ({(c * 10 + o) * 10 + n}, {c * 10 + o}, {n})"
                for o in range(3)
                for n in range(2)
            ),
            *(f"INSERT INTO zoo.tag VALUES ({c * 10 + o}, {c * 10 + o})" for o in range(3)),
        )
    sql(
        server,
        "INSERT INTO zoo.fkey VALUES (1e-38, 1), (0.1, 2), (3.3999999e38, 3), (-2.5e-7, 4), (123.456, 5)",
        "INSERT INTO zoo.cikey VALUES ('Straße', 1), ('ÉCOLE', 2), ('abc ', 3), ('Q', 4)",
        "INSERT INTO zoo.evolving VALUES " + ",".join(f"({i}, 'd{i}', {i})" for i in range(1, 51)),
        TRIGGER,
    )


def zoo_tables(server) -> list[str]:
    return sorted(r[0] for r in sql(server, "SHOW TABLES FROM zoo"))


def zoo_differences(pair) -> dict[str, str]:
    out = {}
    for t in zoo_tables(pair.a):
        q = f"SELECT * FROM zoo.`{t}` ORDER BY 1"
        a, b = sql(pair.a, q), sql(pair.b, q)
        if a != b:
            out[t] = f"rows differ: A {a[:5]}... ({len(a)}) B {b[:5]}... ({len(b)})"
        elif sql(pair.a, f"CHECKSUM TABLE zoo.`{t}`")[0][1] != sql(pair.b, f"CHECKSUM TABLE zoo.`{t}`")[0][1]:
            out[t] = "checksums differ"
    if zoo_tables(pair.a) != zoo_tables(pair.b):
        out["tables"] = f"A {zoo_tables(pair.a)} B {zoo_tables(pair.b)}"
    return out


def test_awkward_schema_through_the_two_way_dag(clean_pair, airflow, task_name):
    pair, af = clean_pair, airflow
    load_zoo(pair.a)
    af.wait_dag(timeout=120)
    af.cli("dags", "unpause", DAG_ID)
    af.cli(
        "dags",
        "trigger",
        DAG_ID,
        "--conf",
        json.dumps(
            {
                "objects": ["zoo"],
                "task_name": task_name,
                "max_lag_seconds": 30,
                "sync_triggers": True,
                "guard_triggers": True,
            }
        ),
    )

    # a user writes on the destination as soon as task one has created the tables there, then again right
    # after the full data sync: long before task two's incremental sync exists
    wait_until(
        lambda: af.task_states().get("task_one_schema_sync") == "success",
        240,
        "task one's schema sync",
        af,
        pair,
        task_name,
    )
    sql(
        pair.b,
        "INSERT INTO zoo.evolving VALUES (1001, 'early on B', 1)",
        "INSERT INTO zoo.customer VALUES (900, 'c900', 'early on B')",
    )
    wait_until(
        lambda: af.task_states().get("task_one_full_data_sync") == "success",
        240,
        "task one's full data sync",
        af,
        pair,
        task_name,
    )
    early_before_task_two = af.task_states().get("task_two_incremental") in (None, "none", "scheduled", "queued")
    sql(
        pair.b,
        "UPDATE zoo.evolving SET v=77 WHERE id=5",
        "INSERT INTO zoo.cikey VALUES ('fromB-early', 9)",
        "INSERT INTO zoo.orders VALUES (9000, 'c900', 'early child on B')",
    )
    wait_until(
        lambda: both(pair, task_name, "Synchronizing"), 420, "both directions Synchronizing", af, pair, task_name
    )
    assert early_before_task_two, "the early writes were not made before task two started"
    wait_until(
        lambda: sql(pair.a, "SELECT v FROM zoo.evolving WHERE id=5")[0][0] == 77,
        60,
        "the destination's early update at the source",
        af,
        pair,
        task_name,
    )

    # cascades on both sides, batched updates of approximate and collated keys
    sql(
        pair.a,
        "DELETE FROM zoo.customer WHERE id BETWEEN 1 AND 3",
        "UPDATE zoo.customer SET code=CONCAT(code, 'x') WHERE id BETWEEN 4 AND 6",
        "UPDATE zoo.fkey SET v=v+100",
    )
    sql(pair.b, "DELETE FROM zoo.customer WHERE id=10", "UPDATE zoo.cikey SET v=v+1000")
    # the audit trigger, on both servers: one row per user insert, wherever it was made
    sql(pair.a, "INSERT INTO zoo.customer VALUES (960, 'c960', 'on A')")
    sql(pair.b, "INSERT INTO zoo.customer VALUES (950, 'c950', 'on B')")
    # DDL on the source while both sides write, then both write the new columns
    sql(pair.a, "ALTER TABLE zoo.evolving RENAME COLUMN d TO d2", "ALTER TABLE zoo.evolving ADD COLUMN f0 INT FIRST")
    wait_until(
        lambda: [r[0] for r in sql(pair.b, "SHOW COLUMNS FROM zoo.evolving")] == ["f0", "id", "d2", "v"],
        60,
        "the DDL at the destination",
        af,
        pair,
        task_name,
    )
    sql(pair.b, "UPDATE zoo.evolving SET d2='b', f0=2 WHERE id > 25")
    sql(pair.a, "UPDATE zoo.evolving SET d2='a', f0=1 WHERE id <= 25")

    deadline = time.monotonic() + 90
    while zoo_differences(pair) and time.monotonic() < deadline:
        time.sleep(1)
    assert not zoo_differences(pair), f"{zoo_differences(pair)}\n{diagnostics(af, pair, task_name)}"
    # the early writes on B reached A
    assert sql(pair.a, "SELECT d2, v FROM zoo.evolving WHERE id IN (5, 1001) ORDER BY id") == [("a", 77), ("b", 1)]
    assert sql(pair.a, "SELECT COUNT(*) FROM zoo.orders WHERE customer_code='c900'")[0][0] == 1
    assert sql(pair.a, "SELECT v FROM zoo.cikey WHERE k='FROMB-EARLY'")[0][0] == 1009
    # the cascades happened on both sides
    assert sql(pair.b, "SELECT COUNT(*) FROM zoo.line WHERE order_id < 40")[0][0] == 0
    assert sql(pair.a, "SELECT COUNT(*) FROM zoo.orders WHERE customer_code='c10'")[0][0] == 0
    assert sql(pair.a, "SELECT COUNT(*) FROM zoo.orders WHERE customer_code LIKE 'c_x'")[0][0] == 9
    # each user insert fired the trigger once, on the server where it was made (customer 900, written on B early,
    # fired it there only if B's copy of the trigger existed by then); never on the server that received the row
    audit = {r[0] for r in sql(pair.b, "SELECT k FROM zoo.audit")}
    a_id, b_id = pair.a.server_id, pair.b.server_id
    assert {f"{a_id}-960", f"{b_id}-950"} <= audit <= {f"{a_id}-960", f"{b_id}-950", f"{b_id}-900"}, audit
    assert sql(pair.b, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='zoo'")[0][0] == 1
    assert both(pair, task_name, "Synchronizing")
    conflicts = (
        sql(pair.b, f"SELECT COUNT(*) FROM dts_meta.conflict_log WHERE task_name='{task_name}'")[0][0]
        + sql(pair.a, f"SELECT COUNT(*) FROM dts_meta.conflict_log WHERE task_name='{task_name}'")[0][0]
    )
    assert conflicts == 0
