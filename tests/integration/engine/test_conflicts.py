"""The spec's conflict cases under each policy, against the real pair."""

from __future__ import annotations

import json

import pytest
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows, wait_until

from airflow_provider_dts.engine.control import ControlSchema, State

POLICIES = ["TaskFailed", "Ignore", "Overwrite"]
TABLE = "CREATE TABLE shop.t (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, v INT, UNIQUE KEY (email))"


def conflict_rows(server, task):
    conn = server.root_connect()
    try:
        return ControlSchema().conflicts(conn, task, "forward")
    finally:
        conn.close()


def in_one_txn(server, *statements):
    sql(server, "START TRANSACTION", *statements, "COMMIT")


@pytest.mark.parametrize("policy", POLICIES)
def test_insert_with_existing_primary_key(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'dest@x', 0)")
    sync = Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.t VALUES (2, 'two@x', 2)")
    in_one_txn(pair.a, "INSERT INTO shop.t VALUES (3, 'three@x', 3)", "INSERT INTO shop.t VALUES (1, 'src@x', 1)")
    sql(pair.a, "INSERT INTO shop.t VALUES (4, 'four@x', 4)")
    if policy == "TaskFailed":
        result = sync.wait_result(30)
        assert result.outcome == "failed" and result.state == State.FAILED
        for part in ("shop.t", '"id": 1', "src@x", "dest@x", "restart"):
            assert part in result.message, (part, result.message)
        # the transaction before is applied, nothing of the conflicting one, nothing after
        assert table_rows(pair.b, "t") == [(1, "dest@x", 0), (2, "two@x", 2)]
        assert state_row(pair.b, task_name, "forward")["state"] == State.FAILED
        (c,) = conflict_rows(pair.b, task_name)
        assert (c["conflict_type"], c["decision"], c["policy"]) == ("insert_duplicate", "TaskFailed", "TaskFailed")
        assert json.loads(c["source_image"])["email"] == "src@x"
        assert json.loads(c["dest_image"])["email"] == "dest@x"
        # the user fixes the row and restarts: the direction continues exactly from there
        sql(pair.b, "DELETE FROM shop.t WHERE id = 1")
        with Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b):
            wait_until(lambda: table_rows(pair.b, "t") == table_rows(pair.a, "t"), 20, "convergence after fix")
        return
    wait_until(lambda: len(table_rows(pair.b, "t")) == 4, 20, "rows 1-4 at the destination")
    sync.stop()
    expected_1 = (1, "dest@x", 0) if policy == "Ignore" else (1, "src@x", 1)
    assert table_rows(pair.b, "t") == [expected_1, (2, "two@x", 2), (3, "three@x", 3), (4, "four@x", 4)]
    (c,) = conflict_rows(pair.b, task_name)
    assert c["conflict_type"] == "insert_duplicate"
    assert c["decision"] == ("Ignored" if policy == "Ignore" else "Overwritten")
    assert json.loads(c["key_json"]) == {"id": 1}
    assert sync.result.stats["conflicts"] == 1


@pytest.mark.parametrize("policy", POLICIES)
def test_insert_with_existing_unique_key(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.b, "INSERT INTO shop.t VALUES (5, 'same@x', 0)")
    sync = Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.t VALUES (6, 'same@x', 1)", "INSERT INTO shop.t VALUES (7, 'seven@x', 7)")
    if policy == "TaskFailed":
        result = sync.wait_result(30)
        assert result.outcome == "failed" and "same@x" in result.message
        assert table_rows(pair.b, "t") == [(5, "same@x", 0)]
        return
    wait_until(lambda: (7, "seven@x", 7) in table_rows(pair.b, "t"), 20, "row 7")
    sync.stop()
    if policy == "Ignore":
        assert table_rows(pair.b, "t") == [(5, "same@x", 0), (7, "seven@x", 7)]
    else:
        assert table_rows(pair.b, "t") == [(6, "same@x", 1), (7, "seven@x", 7)]
    (c,) = conflict_rows(pair.b, task_name)
    assert c["conflict_type"] == "insert_duplicate"


@pytest.mark.parametrize("policy", POLICIES)
def test_update_of_missing_row_becomes_insert(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.a, "INSERT INTO shop.t VALUES (3, 'three@x', 3)")  # before the sync starts: only at the source
    with Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b):
        sql(pair.a, "UPDATE shop.t SET v = 30 WHERE id = 3")
        wait_until(lambda: table_rows(pair.b, "t") == [(3, "three@x", 30)], 20, "update converted to insert")
    (c,) = conflict_rows(pair.b, task_name)
    assert (c["conflict_type"], c["decision"]) == ("update_missing", "UpdateToInsert")


@pytest.mark.parametrize("policy", POLICIES)
def test_update_of_missing_row_whose_insert_conflicts(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.a, "INSERT INTO shop.t VALUES (7, 'u@x', 7)")
    sql(pair.b, "INSERT INTO shop.t VALUES (8, 'u@x', 8)")
    sync = Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b).start()
    sql(pair.a, "UPDATE shop.t SET v = 70 WHERE id = 7", "INSERT INTO shop.t VALUES (9, 'nine@x', 9)")
    if policy == "TaskFailed":
        result = sync.wait_result(30)
        assert result.outcome == "failed" and "u@x" in result.message
        assert table_rows(pair.b, "t") == [(8, "u@x", 8)]
        (c,) = conflict_rows(pair.b, task_name)
        assert c["conflict_type"] == "update_insert_duplicate" and c["decision"] == "TaskFailed"
        return
    wait_until(lambda: (9, "nine@x", 9) in table_rows(pair.b, "t"), 20, "row 9")
    sync.stop()
    if policy == "Ignore":
        assert table_rows(pair.b, "t") == [(8, "u@x", 8), (9, "nine@x", 9)]
    else:
        assert table_rows(pair.b, "t") == [(7, "u@x", 70), (9, "nine@x", 9)]
    types = [(c["conflict_type"], c["decision"]) for c in conflict_rows(pair.b, task_name)]
    assert types == [
        ("update_missing", "UpdateToInsert"),
        ("update_insert_duplicate", "Ignored" if policy == "Ignore" else "Overwritten"),
    ]


@pytest.mark.parametrize("policy", POLICIES)
def test_update_onto_an_existing_unique_value(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'one@x', 1)")
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'one@x', 1), (2, 'taken@x', 2)")
    sync = Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b).start()
    sql(pair.a, "UPDATE shop.t SET email = 'taken@x' WHERE id = 1", "INSERT INTO shop.t VALUES (9, 'nine@x', 9)")
    if policy == "TaskFailed":
        result = sync.wait_result(30)
        assert result.outcome == "failed" and "taken@x" in result.message
        assert table_rows(pair.b, "t") == [(1, "one@x", 1), (2, "taken@x", 2)]
        return
    wait_until(lambda: (9, "nine@x", 9) in table_rows(pair.b, "t"), 20, "row 9")
    sync.stop()
    if policy == "Ignore":
        assert table_rows(pair.b, "t") == [(1, "one@x", 1), (2, "taken@x", 2), (9, "nine@x", 9)]
    else:
        assert table_rows(pair.b, "t") == [(1, "taken@x", 1), (9, "nine@x", 9)]
    (c,) = conflict_rows(pair.b, task_name)
    assert c["conflict_type"] == "update_duplicate"


@pytest.mark.parametrize("policy", POLICIES)
def test_delete_of_missing_row_is_ignored_whatever_the_policy(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, TABLE)
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'one@x', 1), (2, 'two@x', 2)")
    sql(pair.b, "INSERT INTO shop.t VALUES (2, 'two@x', 2)")
    with Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b) as sync:
        sql(pair.a, "DELETE FROM shop.t", "INSERT INTO shop.t VALUES (3, 'three@x', 3)")
        wait_until(lambda: table_rows(pair.b, "t") == [(3, "three@x", 3)], 20, "delete applied, missing ignored")
        assert sync.result is None  # still running
    (c,) = conflict_rows(pair.b, task_name)
    # issue 12: a row already gone is not a conflict: a no-op, logged as such, not counted
    assert (c["conflict_type"], c["decision"], c["status"]) == ("delete_missing", "AlreadyEqual", "logged")
    assert sync.result is not None and sync.result.stats["conflicts"] == 0
    assert json.loads(c["key_json"]) == {"id": 1}


def test_catch_up_window_applies_idempotently_without_conflicts(clean_pair, task_name):
    """Between the incremental start and the latest snapshot position changes may already be present."""
    pair = clean_pair
    create_both(pair, TABLE)
    start = sql(pair.a, "SHOW MASTER STATUS")[0]
    sql(
        pair.a,
        "INSERT INTO shop.t VALUES (1, 'one@x', 1), (2, 'two@x', 2)",
        "UPDATE shop.t SET v = 20 WHERE id = 2",
        "DELETE FROM shop.t WHERE id = 1",
    )
    catchup = sql(pair.a, "SHOW MASTER STATUS")[0]
    # a snapshot taken at `catchup` already holds row 2 (and a row that the source deletes before it)
    sql(pair.b, "INSERT INTO shop.t VALUES (2, 'two@x', 20)")
    conn = pair.b.root_connect()
    control = ControlSchema()
    control.ensure(conn)
    from airflow_provider_dts.engine.model import Checkpoint

    with conn.cursor() as cur:
        control.write_checkpoint(
            cur,
            task_name,
            "forward",
            Checkpoint(binlog_file=start[0], binlog_pos=start[1], catchup_file=catchup[0], catchup_pos=catchup[1]),
        )
    conn.close()
    with Sync(make_direction(task_name, initial_full_data_sync=True), pair.a, pair.b):
        sql(pair.a, "INSERT INTO shop.t VALUES (3, 'three@x', 3)")
        wait_until(lambda: table_rows(pair.b, "t") == [(2, "two@x", 20), (3, "three@x", 3)], 20, "caught up")
    assert conflict_rows(pair.b, task_name) == []
