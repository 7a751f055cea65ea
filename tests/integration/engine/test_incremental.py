"""Incremental sync against the real pair: DML of every kind arrives exactly, state and checkpoint are right."""

from __future__ import annotations

import sys
import time

import pytest
from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows, wait_same
from typesample import create_type_table, insert_type_rows, read_type_rows

from airflow_provider_dts.engine import incremental
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.reader_process import ReaderProcess

# --------------------------------------------------------------------------- tests


def test_dml_of_every_kind_arrives_exactly(clean_pair, task_name):
    pair = clean_pair
    create_both(
        pair,
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), qty INT, UNIQUE KEY (name))",
        "CREATE TABLE shop.lines (o INT, n INT, note TEXT, PRIMARY KEY (o, n))",
    )
    with Sync(make_direction(task_name), pair.a, pair.b) as sync:
        sql(
            pair.a,
            "INSERT INTO shop.items VALUES (1,'apple',5),(2,'pear',7),(3,'plum',9)",
            "INSERT INTO shop.lines VALUES (1,1,'a'),(1,2,'b'),(2,1,'c')",
            "UPDATE shop.items SET qty=qty*2",  # multi-row update
            "UPDATE shop.items SET id=30 WHERE id=3",  # primary key change
            "UPDATE shop.lines SET n=3 WHERE o=1 AND n=2",  # composite key change
            "DELETE FROM shop.items WHERE id=2",
            "DELETE FROM shop.lines WHERE o=2",
        )
        # a multi-statement transaction, and a rolled back one (nothing of it may arrive)
        conn = pair.a.root_connect()
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("INSERT INTO shop.items VALUES (4,'fig',1)")
            cur.execute("UPDATE shop.items SET name='apple2' WHERE id=1")
            cur.execute("INSERT INTO shop.lines VALUES (4,1,'x')")
            cur.execute("DELETE FROM shop.lines WHERE o=1 AND n=1")
            cur.execute("COMMIT")
            cur.execute("START TRANSACTION")
            cur.execute("INSERT INTO shop.items VALUES (5,'never',1)")
            cur.execute("DELETE FROM shop.items")
            cur.execute("ROLLBACK")
        conn.close()
        wait_same(pair.a, pair.b, "items")
        wait_same(pair.a, pair.b, "lines")
        assert table_rows(pair.b, "items") == [(1, "apple2", 10), (4, "fig", 1), (30, "plum", 18)]
        assert table_rows(pair.b, "lines") == [(1, 3, "b"), (4, 1, "x")]
        result = sync.stop()
    assert result.outcome == "stopped" and result.state == State.STOPPED
    assert result.stats["rows_inserted"] == 8
    assert result.stats["rows_deleted"] == 3
    assert result.stats["conflicts"] == 0
    row = state_row(pair.b, task_name, "forward")
    assert row["state"] == State.STOPPED
    # the checkpoint is at the source's current position (everything consumed, nothing more)
    status = sql(pair.a, "SHOW MASTER STATUS")[0]
    assert (row["binlog_file"], row["binlog_pos"]) <= (status[0], status[1])


@pytest.mark.parametrize("reader_mode", ["process", "thread"])
def test_every_type_arrives_exactly(clean_pair, task_name, reader_mode, monkeypatch):
    monkeypatch.setattr(incremental, "READER_MODE", reader_mode)
    pair = clean_pair
    for s in (pair.a, pair.b):
        conn = s.root_connect()
        create_type_table(conn, "shop")
        conn.close()
    with Sync(make_direction(task_name), pair.a, pair.b):
        conn = pair.a.root_connect()
        n = insert_type_rows(conn, "shop")
        conn.close()

        expected = {"n": n}

        def same():
            ca, cb = pair.a.root_connect(), pair.b.root_connect()
            try:
                a, b = read_type_rows(ca, "shop"), read_type_rows(cb, "shop")
            finally:
                ca.close()
                cb.close()
            return (len(a) == expected["n"] and a == b) or None

        try:
            wait_until(same, 30, "every-type rows equal")
        except AssertionError:
            ca, cb = pair.a.root_connect(), pair.b.root_connect()
            a, b = read_type_rows(ca, "shop"), read_type_rows(cb, "shop")
            diffs = [(x, y) for x, y in zip(a, b) if x != y]
            raise AssertionError(f"{len(a)} vs {len(b)} rows; differing rows: {diffs}") from None
        # updates and deletes of such rows match by key and carry every type back exactly
        sql(
            pair.a,
            "SET sql_mode=''",
            "UPDATE shop.every_type SET i = IFNULL(i, 0) + 1, tm = '-00:00:01.5'",
            "DELETE FROM shop.every_type WHERE id = 2",
        )
        expected["n"] = n - 1
        wait_until(same, 30, "every-type rows equal after update/delete")


def test_stop_is_honoured_quickly_and_state_shows_lag(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    time.sleep(2.5)  # idle: heartbeats keep the lag small
    row = state_row(pair.b, task_name, "forward")
    assert row["lag_seconds"] is not None and row["lag_seconds"] < 3, row
    t0 = time.monotonic()
    result = sync.stop()
    assert time.monotonic() - t0 < 3.0
    assert result.outcome == "stopped"


def test_max_runtime_then_resume_from_checkpoint(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)")
    d = make_direction(task_name)
    sync = Sync(d, pair.a, pair.b, max_runtime=3).start()
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 1)")
    result = sync.wait_result(15)
    assert result.outcome == "max_runtime" and result.state == State.STOPPED
    # written while nothing runs: picked up from the checkpoint by the next run, once
    sql(pair.a, "INSERT INTO shop.t VALUES (2, 2)", "UPDATE shop.t SET v = v + 10")
    with Sync(d, pair.a, pair.b):
        wait_same(pair.a, pair.b, "t")
    assert table_rows(pair.b, "t") == [(1, 11), (2, 12)]


def test_unselected_tables_and_dml_types_are_filtered(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)", "CREATE TABLE shop.other (id INT PRIMARY KEY)")
    d = make_direction(task_name, objects=["shop.t"], dml_types=["INSERT", "UPDATE"])
    with Sync(d, pair.a, pair.b):
        sql(
            pair.a,
            "INSERT INTO shop.t VALUES (1),(2)",
            "INSERT INTO shop.other VALUES (1)",
            "DELETE FROM shop.t WHERE id=1",
            "INSERT INTO shop.t VALUES (3)",
        )
        wait_until(lambda: table_rows(pair.b, "t") == [(1,), (2,), (3,)], 20, "inserts without the delete")
        time.sleep(1)
        assert table_rows(pair.b, "other") == []


def test_name_mapping_database_and_table(clean_pair, task_name):
    pair = clean_pair
    sql(
        pair.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE shop.users (id INT PRIMARY KEY)",
    )
    sql(
        pair.b,
        "CREATE DATABASE shop_copy",
        "CREATE TABLE shop_copy.orders_v2 (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE shop_copy.users (id INT PRIMARY KEY)",
    )
    d = make_direction(task_name, mapping={"shop": "shop_copy", "shop.orders": "orders_v2"})
    with Sync(d, pair.a, pair.b):
        sql(
            pair.a,
            "INSERT INTO shop.orders VALUES (1, 1)",
            "INSERT INTO shop.users VALUES (7)",
            "UPDATE shop.orders SET v = 5",
        )
        wait_until(lambda: table_rows(pair.b, "orders_v2", "shop_copy") == [(1, 5)], 20, "mapped table")
        wait_until(lambda: table_rows(pair.b, "users", "shop_copy") == [(7,)], 20, "mapped database")


def test_not_initialized_direction_fails_with_a_clear_message(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    d = make_direction(task_name, initial_full_data_sync=True)
    result = Sync(d, pair.a, pair.b).start(wait=False).wait_result(20)
    assert result.outcome == "failed" and result.state == State.FAILED
    assert "not initialized" in result.message and "full data sync" in result.message
    assert state_row(pair.b, task_name, "forward")["state"] == State.FAILED


@pytest.mark.own_servers  # purges A's binary logs: never on someone else's server
def test_purged_binlog_fails_and_says_reinitialize(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    d = make_direction(task_name)
    Sync(d, pair.a, pair.b, max_runtime=2).start().wait_result(15)
    sql(pair.a, "FLUSH BINARY LOGS", "INSERT INTO shop.t VALUES (1)", "FLUSH BINARY LOGS")
    last = sql(pair.a, "SHOW MASTER STATUS")[0][0]
    start_file = state_row(pair.b, task_name, "forward")["binlog_file"]

    def purged():  # the server keeps a file while a (closing) dump thread still reads it
        sql(pair.a, f"PURGE BINARY LOGS TO '{last}'")
        return start_file not in [r[0] for r in sql(pair.a, "SHOW BINARY LOGS")]

    wait_until(purged, 20, "binlog purge")
    result = Sync(d, pair.a, pair.b).start(wait=False).wait_result(20)
    assert result.outcome == "failed"
    assert "purged" in result.message and "re-initialize" in result.message
    assert f"airflow_provider_dts.cli reinitialize --task-name {task_name} --direction task_one" in result.message
    assert table_rows(pair.b, "t") == []


def test_missing_destination_table_fails_clearly(clean_pair, task_name):
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    sql(pair.b, "CREATE DATABASE shop")
    sync = Sync(make_direction(task_name, exclude_ddl=True), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.t VALUES (1)")
    result = sync.wait_result(20)
    assert result.outcome == "failed"
    assert "shop.t does not exist at the destination" in result.message


@pytest.mark.parametrize("rows", [3000])
def test_large_transaction_and_many_small_ones(clean_pair, task_name, rows, monkeypatch):
    monkeypatch.setattr(ReaderProcess, "part_rows", 250)  # the 3000-row transaction crosses in 12 pieces
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(50))")
    with Sync(make_direction(task_name), pair.a, pair.b):
        values = ",".join(f"({i}, 'v{i}')" for i in range(rows))
        sql(pair.a, f"INSERT INTO shop.t VALUES {values}")
        conn = pair.a.root_connect()
        with conn.cursor() as cur:
            for i in range(0, rows, 7):
                cur.execute(f"UPDATE shop.t SET v = 'u{i}' WHERE id = {i}")
            cur.execute("DELETE FROM shop.t WHERE id % 5 = 0")
        conn.close()
        wait_same(pair.a, pair.b, "t", timeout=60)


def test_statement_based_changes_fail_loudly(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    sql(
        pair.a,
        "INSERT INTO shop.t VALUES (1)",
        "SET SESSION binlog_format='STATEMENT'",
        "INSERT INTO shop.t VALUES (2)",
    )
    result = sync.wait_result(30)
    assert result.outcome == "failed"
    assert "statement-based" in result.message and "binlog_format=ROW" in result.message
    assert table_rows(pair.b, "t") == [(1,)]


def test_compressed_binlog_events_fail_loudly(clean_pair, make_server, task_name):
    pair = clean_pair
    src = make_server("--log-bin-compress=ON", "--log-bin-compress-min-len=10", server_id=11)
    for s in (src, pair.b):
        sql(s, "CREATE DATABASE IF NOT EXISTS shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v TEXT)")
    # compressed events cannot even be attributed to a table: the first one (here possibly the run's own
    # control-schema rows on the source) fails the direction
    sync = Sync(make_direction(task_name), src, pair.b).start(wait=False)
    sql(src, "INSERT INTO shop.t VALUES (1, REPEAT('compress me ', 50))")
    result = sync.wait_result(30)
    assert result.outcome == "failed"
    assert "compressed" in result.message and "log_bin_compress" in result.message
    assert table_rows(pair.b, "t") == []


def test_a_start_position_inside_a_transaction_fails_instead_of_losing_rows(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    start = sql(pair.a, "SHOW MASTER STATUS")[0]
    sql(pair.a, "INSERT INTO shop.t VALUES (1), (2)")
    events = sql(pair.a, f"SHOW BINLOG EVENTS IN '{start[0]}' FROM {start[1]}")
    table_map = next(e for e in events if e[2] == "Table_map")  # inside the insert's transaction
    conn = pair.b.root_connect()
    control = ControlSchema()
    control.ensure(conn)
    from airflow_provider_dts.engine.model import Checkpoint

    with conn.cursor() as cur:
        control.write_checkpoint(cur, task_name, "forward", Checkpoint(binlog_file=start[0], binlog_pos=table_map[1]))
    conn.close()
    result = Sync(make_direction(task_name), pair.a, pair.b).start(wait=False).wait_result(40)
    assert result.outcome == "failed"
    assert "not be a transaction boundary" in result.message and "re-initialize" in result.message
    assert table_rows(pair.b, "t") == []


@pytest.mark.parametrize(
    "command, says",
    [
        (
            [sys.executable, "-c", "import sys; sys.stderr.write('ModuleNotFoundError: no dts here\\n'); sys.exit(1)"],
            ["could not start (exit code 1)", "ModuleNotFoundError: no dts here"],
        ),
        (["/nonexistent/python3"], ["cannot start the binlog reader process", "/nonexistent/python3"]),
    ],
    ids=["exits-at-start", "no-interpreter"],
)
def test_a_reader_process_that_cannot_start_fails_clearly_instead_of_retrying(
    clean_pair, task_name, monkeypatch, command, says
):
    pair = clean_pair
    monkeypatch.setattr(ReaderProcess, "command", lambda self: command)
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    result = Sync(make_direction(task_name), pair.a, pair.b).start(wait=False).wait_result(30)
    assert result.outcome == "failed"
    for text in says + ["DTS_BINLOG_READER=thread"]:
        assert text in result.message
    assert state_row(pair.b, task_name, "forward")["state"] == State.FAILED
