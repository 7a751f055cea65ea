"""No write window before task two (issue 9, cause 1).

Task one (A -> B) writes on B long before task two (B -> A) starts. Writes users make on B in between must
reach A: task two replays B's binlog from the position taken before task one wrote anything there (its
start floor), dropping everything task one wrote (loop mark) and never applying task one's DDL.
"""

from __future__ import annotations

import pytest
from helpers import wait_until
from syncing import Sync, sql, table_rows, wait_same

from airflow_provider_dts.engine.config import TwoWayTask
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.engine.startfloor import record_reverse_floor


def two_way(task_name: str, **reverse) -> TwoWayTask:
    return TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {"source_conn_id": "dts_source", "destination_conn_id": "dts_destination", "objects": ["shop"]},
            "reverse": reverse,
        }
    )


def checksum(server, db: str, table: str):
    return sql(server, f"CHECKSUM TABLE `{db}`.`{table}`")[0][1]


def assert_equal(pair, db: str, table: str, expected: list[tuple]) -> None:
    """Row by row on both sides (and the rows the test expects), then CHECKSUM TABLE."""
    wait_same(pair.a, pair.b, table, db)
    assert table_rows(pair.a, table, db) == expected
    assert checksum(pair.a, db, table) == checksum(pair.b, db, table)


def checkpoint(server, task: str, role: str):
    with server.root_connect() as conn:
        if not ControlSchema().exists(conn):
            return None
        return ControlSchema().read_checkpoint(conn, task, role)


def conflicts(server, task: str, role: str) -> list:
    with server.root_connect() as conn:
        return ControlSchema().conflicts(conn, task, role)


def make_source(pair) -> None:
    sql(
        pair.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO shop.t VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d')",
        "CREATE TABLE shop.nokey (n INT, s VARCHAR(10))",
        "INSERT INTO shop.nokey VALUES (1,'x'),(1,'x')",
        "CREATE VIEW shop.tv AS SELECT id, v FROM shop.t",
        "CREATE PROCEDURE shop.p() SELECT COUNT(*) FROM shop.t",
        "CREATE FUNCTION shop.f(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
    )


def run_task_one_initial(pair, task: TwoWayTask):
    """Task one's schema sync and full data sync (engine level), as the DAG runs them."""
    a, b = pair.a.settings(name="src"), pair.b.settings(name="dst")
    created = sync_schema(task.forward, a, b)
    assert created.tables_created and created.views_created and created.routines_created
    copied = full_data_sync(task.forward, a, b)
    assert copied.rows == 6


def run_task_two_initial(pair, task: TwoWayTask):
    b, a = pair.b.settings(name="src"), pair.a.settings(name="dst")
    sync_schema(task.reverse, b, a)
    return full_data_sync(task.reverse, b, a)


def test_writes_on_b_before_task_two_starts_reach_a(clean_pair, task_name):
    p = clean_pair
    make_source(p)
    task = two_way(task_name)
    run_task_one_initial(p, task)
    floor = checkpoint(p.a, task_name, "reverse")  # task two's start floor (checked at the end)

    with Sync(task.forward, p.a, p.b):
        # task one is live: what it applies on B is loop-marked and must not come back
        sql(p.a, "INSERT INTO shop.t VALUES (10,'from a')", "UPDATE shop.t SET v='a2' WHERE id=1")
        wait_same(p.a, p.b, "t")
        # a user writes on B while task two does not exist yet
        sql(
            p.b,
            "INSERT INTO shop.t VALUES (20,'from b'),(21,'from b')",
            "UPDATE shop.t SET v='b2' WHERE id=2",
            "DELETE FROM shop.t WHERE id=3",
            "INSERT INTO shop.nokey VALUES (2,'y')",
        )
        result = run_task_two_initial(p, task)
        assert result.rows == 0 and result.tables == 0  # task one covers every table: nothing copied back
        started = checkpoint(p.a, task_name, "reverse")

        with Sync(task.reverse, p.b, p.a):
            expected = [(1, "a2"), (2, "b2"), (4, "d"), (10, "from a"), (20, "from b"), (21, "from b")]
            assert_equal(p, "shop", "t", expected)
            assert_equal(p, "shop", "nokey", [(1, "x"), (1, "x"), (2, "y")])
            # both directions live: later writes on either side still arrive, once
            sql(p.b, "INSERT INTO shop.t VALUES (30,'later b')")
            sql(p.a, "INSERT INTO shop.t VALUES (31,'later a')")
            assert_equal(p, "shop", "t", expected + [(30, "later b"), (31, "later a")])
            wait_until(
                lambda: (c := checkpoint(p.a, task_name, "reverse")).transactions_applied >= 2 and c,
                what="task two applied the user's transactions",
            )
    # no echo: task two applied exactly the user's rows on B, task one exactly the rows written on A
    rev = checkpoint(p.a, task_name, "reverse")
    fwd = checkpoint(p.b, task_name, "forward")
    assert (rev.rows_inserted, rev.rows_updated, rev.rows_deleted) == (4, 1, 1), rev
    assert (fwd.rows_inserted, fwd.rows_updated, fwd.rows_deleted) == (2, 1, 0), fwd
    assert conflicts(p.a, task_name, "reverse") == [] and conflicts(p.b, task_name, "forward") == []
    # task one's DDL on B (tables, view, routines, control schema) was skipped by task two, not applied
    assert sql(p.a, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='shop'")[0][0] == 2
    # the floor was recorded before task one wrote on B, and task two started exactly there
    assert floor is not None and floor.snapshot_file and floor.binlog_file is None
    assert (result.snapshot_file, result.snapshot_pos) == (floor.snapshot_file, floor.snapshot_pos)
    assert (started.binlog_file, started.binlog_pos) == (floor.snapshot_file, floor.snapshot_pos)


def test_task_two_copies_its_own_table_and_replays_covered_ones(clean_pair, task_name):
    p = clean_pair
    make_source(p)
    sql(
        p.b,
        "CREATE DATABASE bonly",
        "CREATE TABLE bonly.u (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO bonly.u VALUES (1,'u1'),(2,'u2'),(3,'u3')",
    )
    task = two_way(task_name, objects=["shop", "bonly"])
    assert "bonly" not in str(task.reverse.skip_initial_tables)
    run_task_one_initial(p, task)
    # before task two exists: writes on B to a covered table and to task two's own table
    sql(
        p.b,
        "INSERT INTO shop.t VALUES (20,'from b')",
        "DELETE FROM shop.t WHERE id=4",
        "INSERT INTO bonly.u VALUES (4,'u4')",
        "UPDATE bonly.u SET v='u2b' WHERE id=2",
        "DELETE FROM bonly.u WHERE id=3",
    )
    result = run_task_two_initial(p, task)
    assert result.table_rows == {"bonly.u": 3}, result.summary()
    with Sync(task.forward, p.a, p.b), Sync(task.reverse, p.b, p.a):
        sql(p.b, "INSERT INTO bonly.u VALUES (5,'u5')", "UPDATE shop.t SET v='b1' WHERE id=1")
        assert_equal(p, "bonly", "u", [(1, "u1"), (2, "u2b"), (4, "u4"), (5, "u5")])
        assert_equal(p, "shop", "t", [(1, "b1"), (2, "b"), (3, "c"), (20, "from b")])
    assert conflicts(p.a, task_name, "reverse") == [] and conflicts(p.b, task_name, "forward") == []
    # task two's own copy came from a later snapshot; it replays from the floor (idempotently up to catch-up)
    assert (result.catchup_file, result.catchup_pos) != (result.snapshot_file, result.snapshot_pos)


def test_the_floor_is_recorded_once_and_never_moved(clean_pair, task_name):
    p = clean_pair
    make_source(p)
    task = two_way(task_name)
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    first = record_reverse_floor(task.forward, a, b)
    assert first is not None
    sql(p.b, "CREATE DATABASE other", "CREATE TABLE other.x (i INT)", "INSERT INTO other.x VALUES (1)")
    assert record_reverse_floor(task.forward, a, b) is None  # idempotent: the first floor stands
    assert record_reverse_floor(task.reverse, b, a) is None  # only task one records it
    sync_schema(task.forward, a, b)
    full_data_sync(task.forward, a, b)
    cp = checkpoint(p.a, task_name, "reverse")
    assert (cp.snapshot_file, cp.snapshot_pos, cp.binlog_file) == (first[0], first[1], None)


@pytest.mark.parametrize("schema_sync", [True, False], ids=["full-sync-off", "schema-and-full-sync-off"])
def test_floor_without_full_data_sync_starts_task_two_there(clean_pair, task_name, schema_sync):
    """Task one without a full data sync: the floor is taken by its schema sync, or (both off) by its
    incremental sync before it applies anything; task two without a full data sync starts at the floor."""
    p = clean_pair
    sql(p.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    if not schema_sync:
        sql(p.b, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    task = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "initial_schema_sync": schema_sync,
                "initial_full_data_sync": False,
            },
            "reverse": {"initial_schema_sync": False, "initial_full_data_sync": False},
        }
    )
    if schema_sync:
        sync_schema(task.forward, p.a.settings(name="src"), p.b.settings(name="dst"))
    with Sync(task.forward, p.a, p.b):
        sql(p.a, "INSERT INTO shop.t VALUES (1,'from a'),(2,'from a')")
        wait_same(p.a, p.b, "t")
        sql(
            p.b,
            "INSERT INTO shop.t VALUES (20,'from b')",
            "UPDATE shop.t SET v='b' WHERE id=1",
            "DELETE FROM shop.t WHERE id=2",
        )
        with Sync(task.reverse, p.b, p.a):
            assert_equal(p, "shop", "t", [(1, "b"), (20, "from b")])
    rev = checkpoint(p.a, task_name, "reverse")
    assert (rev.rows_inserted, rev.rows_updated, rev.rows_deleted) == (1, 1, 1), rev
    assert conflicts(p.a, task_name, "reverse") == [] and conflicts(p.b, task_name, "forward") == []


def test_a_destination_account_that_cannot_read_the_binlog_position_is_refused_clearly(clean_pair, task_name):
    """Without the floor task two would silently miss writes: task one must not start writing on B."""
    p = clean_pair
    make_source(p)
    sql(
        p.b,
        "DROP USER IF EXISTS 'ww_writer'@'%'",
        "CREATE USER 'ww_writer'@'%' IDENTIFIED BY 'Ww-secret-9'",
        "GRANT ALL ON *.* TO 'ww_writer'@'%'",
        "REVOKE BINLOG MONITOR, SUPER ON *.* FROM 'ww_writer'@'%'",
    )
    task = two_way(task_name)
    b = p.b.settings(user="ww_writer", password="Ww-secret-9", name="dst")
    with pytest.raises(DtsError) as e:
        sync_schema(task.forward, p.a.settings(name="src"), b)
    msg = str(e.value)
    assert "binary log position" in msg and "BINLOG MONITOR" in msg and "Ww-secret-9" not in msg
    assert sql(p.b, "SHOW DATABASES LIKE 'shop'") == []  # nothing written on B
    sql(p.b, "DROP USER 'ww_writer'@'%'")
