"""Changing the objects of an existing sync (issue 9, cause 9; DTS's "modify objects"), engine level.

A running two-way sync of ``shop.t1`` is stopped; while it is stopped a user writes to t1 and creates and fills
a new table t2 on A. Re-running schema sync and full data sync with ``[shop.t1, shop.t2]`` creates and copies
only t2 (from a new snapshot; the checkpoint stays), and when both directions resume, every write (while
stopped, during the copy, after it) reaches the other side exactly once. Removing t1 stops syncing it; a
mapping change (or another control schema / existing_table_mode) is refused before anything is written.
"""

from __future__ import annotations

import pytest
from syncing import Sync, sql, table_rows, wait_same
from test_write_window import checkpoint, checksum, conflicts

from airflow_provider_dts.engine.config import TwoWayTask
from airflow_provider_dts.engine.modify import ModifyRefused
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync

T2_ROWS = 300


def two_way(task_name: str, objects: list[str], **forward) -> TwoWayTask:
    return TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": objects,
                **forward,
            },
        }
    )


def progress(server, task: str, role: str = "forward") -> dict:
    rows = sql(
        server,
        "SELECT source_table, status, rows_done, catchup_file, catchup_pos FROM dts_meta.table_progress "
        f"WHERE task_name='{task}' AND direction='{role}' ORDER BY source_table",
    )
    return {r[0]: r[1:] for r in rows}


def assert_same(p, table: str, expected: list[tuple] | None = None) -> None:
    """Row by row (and, when given, the rows the test expects), then CHECKSUM TABLE."""
    wait_same(p.a, p.b, table)
    if expected is not None:
        assert table_rows(p.a, table) == expected
    assert checksum(p.a, "shop", table) == checksum(p.b, "shop", table)


def user_objects(server) -> list[tuple]:
    """Every user schema and table with its row count: what a refused change must leave alone."""
    tables = sql(
        server,
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN "
        "('mysql','information_schema','performance_schema','sys','dts_meta') ORDER BY 1, 2",
    )
    schemas = sql(server, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
    return [tuple(s) for s in schemas] + [
        (db, t, sql(server, f"SELECT COUNT(*) FROM `{db}`.`{t}`")[0][0]) for db, t in tables
    ]


def start_sync_of_t1(p, task_name: str) -> TwoWayTask:
    """shop.t1 synchronized both ways (both directions initialized and run), then stopped."""
    sql(
        p.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t1 (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO shop.t1 VALUES (1,'a'),(2,'b'),(3,'c')",
    )
    task = two_way(task_name, ["shop.t1"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    sync_schema(task.forward, a, b)
    assert full_data_sync(task.forward, a, b).table_rows == {"shop.t1": 3}
    sync_schema(task.reverse, b, a)
    full_data_sync(task.reverse, b, a)
    with Sync(task.forward, p.a, p.b), Sync(task.reverse, p.b, p.a):
        sql(p.a, "INSERT INTO shop.t1 VALUES (4,'from a')")
        sql(p.b, "INSERT INTO shop.t1 VALUES (5,'from b')")
        assert_same(p, "t1", [(1, "a"), (2, "b"), (3, "c"), (4, "from a"), (5, "from b")])
    return task


def test_added_table_is_created_and_copied_and_every_write_arrives_once(clean_pair, task_name):
    p = clean_pair
    start_sync_of_t1(p, task_name)
    fwd_before, rev_before = checkpoint(p.b, task_name, "forward"), checkpoint(p.a, task_name, "reverse")
    t1_progress = progress(p.b, task_name)["t1"]

    # while stopped: writes to t1, and a new table t2 with rows (its CREATE TABLE is in the binlog after P)
    sql(
        p.a,
        "INSERT INTO shop.t1 VALUES (6,'stopped')",
        "UPDATE shop.t1 SET v='a2' WHERE id=1",
        "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))",
        f"INSERT INTO shop.t2 SELECT seq, CONCAT('r', seq) FROM shop.seq_1_to_{T2_ROWS}",
        "UPDATE shop.t2 SET v='early' WHERE id=1",
        "DELETE FROM shop.t2 WHERE id=2",
    )

    task = two_way(task_name, ["shop.t1", "shop.t2"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    created = sync_schema(task.forward, a, b)
    assert created.tables_created == ["shop.t2"] and created.databases_created == []
    assert "objects added: shop.t2" in created.modification[0]

    during = []

    def write_during_copy(label, rows_done):  # after a chunk committed: the snapshot S is taken already
        if not during:
            during.append(rows_done)
            sql(
                p.a,
                "INSERT INTO shop.t2 VALUES (1000,'during')",
                "UPDATE shop.t2 SET v='during' WHERE id=3",
                f"DELETE FROM shop.t2 WHERE id={T2_ROWS}",
                "INSERT INTO shop.t1 VALUES (7,'during')",
            )

    copied = full_data_sync(task.forward, a, b, chunk_bytes=1024, on_chunk=write_during_copy)
    assert during and during[0] < T2_ROWS - 1  # the writes happened in the middle of the copy
    assert copied.table_rows == {"shop.t2": T2_ROWS - 1}  # only t2, as it was at the snapshot
    assert progress(p.b, task_name)["t1"] == t1_progress  # t1 not copied again (rows_done unchanged)
    t2 = progress(p.b, task_name)["t2"]
    assert t2[:2] == ("done", T2_ROWS - 1) and t2[2] is not None
    fwd_after = checkpoint(p.b, task_name, "forward")
    assert (fwd_after.binlog_file, fwd_after.binlog_pos) == (fwd_before.binlog_file, fwd_before.binlog_pos)

    # task two gets t2 too: task one covers it, so nothing is created or copied back
    rev_schema = sync_schema(task.reverse, b, a)
    rev_full = full_data_sync(task.reverse, b, a)
    assert rev_schema.tables_created == [] and rev_full.rows == 0 and rev_full.tables == 0
    assert "t2" not in progress(p.a, task_name, "reverse")

    with Sync(task.forward, p.a, p.b), Sync(task.reverse, p.b, p.a):
        expected_t2 = [(1, "early"), (3, "during")] + [(i, f"r{i}") for i in range(4, T2_ROWS)] + [(1000, "during")]
        assert_same(p, "t2", expected_t2)
        assert_same(
            p, "t1", [(1, "a2"), (2, "b"), (3, "c"), (4, "from a"), (5, "from b"), (6, "stopped"), (7, "during")]
        )
        # after the copy, both ways, both tables
        sql(
            p.a,
            "INSERT INTO shop.t2 VALUES (2000,'after a')",
            "UPDATE shop.t2 SET v='x' WHERE id=4",
            "DELETE FROM shop.t1 WHERE id=2",
        )
        sql(
            p.b,
            "INSERT INTO shop.t2 VALUES (3000,'after b')",
            "DELETE FROM shop.t2 WHERE id=5",
            "UPDATE shop.t1 SET v='b2' WHERE id=3",
        )
        expected_t2 = (
            [(1, "early"), (3, "during"), (4, "x")]
            + [(i, f"r{i}") for i in range(6, T2_ROWS)]
            + [(1000, "during"), (2000, "after a"), (3000, "after b")]
        )
        assert_same(p, "t2", expected_t2)
        assert_same(p, "t1", [(1, "a2"), (3, "b2"), (4, "from a"), (5, "from b"), (6, "stopped"), (7, "during")])

    assert conflicts(p.b, task_name, "forward") == [] and conflicts(p.a, task_name, "reverse") == []
    # exactly once and no echo: task two applied only the three writes made on B after the restart
    rev = checkpoint(p.a, task_name, "reverse")
    assert (
        rev.rows_inserted - rev_before.rows_inserted,
        rev.rows_updated - rev_before.rows_updated,
        rev.rows_deleted - rev_before.rows_deleted,
    ) == (1, 1, 1), rev

    # a third run with the same objects: nothing is created or copied
    again = full_data_sync(task.forward, a, b)
    assert again.already_initialized and again.rows == 0 and again.modification.startswith("no change")


def test_removed_table_is_no_longer_synchronized_and_left_alone(clean_pair, task_name):
    p = clean_pair
    start_sync_of_t1(p, task_name)
    sql(p.a, "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop.t2 VALUES (1,'x')")
    task = two_way(task_name, ["shop.t1", "shop.t2"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    sync_schema(task.forward, a, b)
    full_data_sync(task.forward, a, b)

    only_t2 = two_way(task_name, ["shop.t2"])
    result = sync_schema(only_t2.forward, a, b)
    assert result.tables_created == [] and "no longer synchronized" in result.modification[0]
    assert "shop.t1" in result.modification[0]
    full = full_data_sync(only_t2.forward, a, b)
    assert full.rows == 0 and "no longer synchronized" in full.modification
    with Sync(only_t2.forward, p.a, p.b):
        sql(p.a, "INSERT INTO shop.t1 VALUES (10,'not synced')", "INSERT INTO shop.t2 VALUES (2,'synced')")
        assert_same(p, "t2", [(1, "x"), (2, "synced")])
    assert table_rows(p.b, "t1") == [(1, "a"), (2, "b"), (3, "c"), (4, "from a"), (5, "from b")]  # left alone
    # the stored settings are the new ones: adding t1 back copies it again from scratch (it clashes with the
    # rows left at the destination, which PrecheckAndIntercept never overwrites)
    with pytest.raises(Exception, match="already exist"):
        sync_schema(task.forward, a, b)


@pytest.mark.parametrize("change", ["mapping", "control_schema", "existing_table_mode"])
def test_a_change_that_cannot_be_applied_in_place_is_refused_before_anything_is_written(clean_pair, task_name, change):
    p = clean_pair
    start_sync_of_t1(p, task_name)
    sql(p.a, "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop.t2 VALUES (1,'x')")
    kw = (
        {"mapping": {"shop.t1": "t1_copy"}}
        if change == "mapping"
        else ({"existing_table_mode": "Ignore"} if change == "existing_table_mode" else {})
    )
    data = {
        "name": task_name,
        "forward": {
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop.t1", "shop.t2"],
            **kw,
        },
    }
    if change == "control_schema":
        data["control_schema"] = "dts_other"
    task = TwoWayTask.from_dict(data)
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    before_a, before_b = user_objects(p.a), user_objects(p.b)
    expected = {
        "mapping": "the mapping of shop.t1 -> shop.t1 before, shop.t1_copy now",
        "control_schema": "already initialized with the control schema 'dts_meta'",
        "existing_table_mode": "existing_table_mode PrecheckAndIntercept before, Ignore now",
    }[change]
    for step in (sync_schema, full_data_sync):
        with pytest.raises(ModifyRefused) as e:
            step(task.forward, a, b)
        assert expected in str(e.value)
        assert "new task_name" in str(e.value)  # says what to do
    assert user_objects(p.a) == before_a and user_objects(p.b) == before_b
    assert sql(p.b, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='dts_other'")[0][0] == 0
    assert "t2" not in progress(p.b, task_name)


def test_an_interrupted_copy_of_an_added_table_blocks_the_incremental_sync_until_it_is_resumed(clean_pair, task_name):
    import threading

    p = clean_pair
    start_sync_of_t1(p, task_name)
    sql(
        p.a,
        "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))",
        f"INSERT INTO shop.t2 SELECT seq, CONCAT('r', seq) FROM shop.seq_1_to_{T2_ROWS}",
    )
    task = two_way(task_name, ["shop.t1", "shop.t2"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    sync_schema(task.forward, a, b)
    stop = threading.Event()
    with pytest.raises(Exception, match="stopped on request"):
        full_data_sync(task.forward, a, b, chunk_bytes=1024, stop=stop, on_chunk=lambda label, n: stop.set())
    status, done = progress(p.b, task_name)["t2"][:2]
    assert status == "copying" and 0 < done < T2_ROWS
    sql(p.a, "UPDATE shop.t2 SET v='meanwhile' WHERE id=1", f"DELETE FROM shop.t2 WHERE id={T2_ROWS}")

    result = Sync(task.forward, p.a, p.b).start(wait=False).wait_result()
    assert result.state == "Failed" and "shop.t2 was added to the sync and its copy is not finished" in result.message
    assert "run the full data sync again" in result.message

    resumed = full_data_sync(task.forward, a, b, chunk_bytes=1024)
    assert resumed.resumed and progress(p.b, task_name)["t2"][:2] == ("done", T2_ROWS - 1)
    with Sync(task.forward, p.a, p.b):
        sql(p.a, "INSERT INTO shop.t2 VALUES (5000,'after')")
        assert_same(p, "t2", [(1, "meanwhile")] + [(i, f"r{i}") for i in range(2, T2_ROWS)] + [(5000, "after")])
    assert conflicts(p.b, task_name, "forward") == []


def test_a_connection_that_now_reaches_another_server_is_refused(clean_pair, make_server, task_name):
    p = clean_pair
    task = start_sync_of_t1(p, task_name)
    other = make_server(server_id=7)
    sql(other, "CREATE DATABASE shop", "CREATE TABLE shop.t1 (id INT PRIMARY KEY, v VARCHAR(20))")
    before_b = user_objects(p.b)
    with pytest.raises(ModifyRefused, match="the source connection 'dts_source' now reaches another server"):
        sync_schema(task.forward, other.settings(name="src"), p.b.settings(name="dst"))
    assert user_objects(p.b) == before_b
    # a renamed connection that still reaches the same server is fine (applied in place)
    renamed = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source_renamed",
                "destination_conn_id": "dts_destination",
                "objects": ["shop.t1"],
            },
        }
    )
    result = sync_schema(renamed.forward, p.a.settings(name="src"), p.b.settings(name="dst"))
    assert (
        result.tables_created == []
        and "source_conn_id: 'dts_source' -> 'dts_source_renamed' (same server)" in result.modification[0]
    )


def test_a_sync_initialized_before_settings_were_stored_takes_its_copied_tables_as_the_baseline(clean_pair, task_name):
    p = clean_pair
    start_sync_of_t1(p, task_name)
    sql(p.b, f"UPDATE dts_meta.sync_state SET synced_config=NULL WHERE task_name='{task_name}'")  # older version
    t1_progress = progress(p.b, task_name)["t1"]
    sql(p.a, "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop.t2 VALUES (1,'x')")
    task = two_way(task_name, ["shop.t1", "shop.t2"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    assert sync_schema(task.forward, a, b).tables_created == ["shop.t2"]
    assert full_data_sync(task.forward, a, b).table_rows == {"shop.t2": 1}
    assert progress(p.b, task_name)["t1"] == t1_progress
    with Sync(task.forward, p.a, p.b):
        sql(p.a, "INSERT INTO shop.t2 VALUES (2,'y')", "INSERT INTO shop.t1 VALUES (9,'z')")
        assert_same(p, "t2", [(1, "x"), (2, "y")])
        assert_same(p, "t1")
    # from now on the settings are stored
    assert (
        "shop.t2"
        in sql(
            p.b, f"SELECT synced_config FROM dts_meta.sync_state WHERE task_name='{task_name}' AND direction='forward'"
        )[0][0]
    )


def test_tables_are_not_added_while_the_direction_runs(clean_pair, task_name):
    p = clean_pair
    task = start_sync_of_t1(p, task_name)
    sql(p.a, "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop.t2 VALUES (1,'x')")
    more = two_way(task_name, ["shop.t1", "shop.t2"])
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    with Sync(task.forward, p.a, p.b):
        for step in (sync_schema, full_data_sync):
            with pytest.raises(ModifyRefused, match=r"incremental sync is running now.*Fix: stop the sync first"):
                step(more.forward, a, b)
    assert sql(p.b, "SHOW TABLES FROM shop") == [("t1",)]
