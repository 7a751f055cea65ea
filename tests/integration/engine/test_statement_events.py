"""Statement-based changes are never skipped (issue 9, cause 8).

With the sync running, a session that sets binlog_format=STATEMENT and calls a stored function that inserts
(``SELECT f()``, ``DO f()``) or runs ``LOAD DATA`` (Begin_load_query + Execute_load_query events) writes rows
that are not in the binlog as rows. The direction must stop (Failed) with a message naming the position and
the fix, its checkpoint must not pass the statement, and the destination must be unchanged by it. A
statement-based write only about an unselected database does not stop the sync. Both reader modes.
"""

from __future__ import annotations

import pytest
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows, wait_same

from airflow_provider_dts.engine import incremental
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.model import position_le

FUNCTION = (
    "CREATE FUNCTION shop.f(x INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA "
    "BEGIN INSERT INTO shop.t VALUES (x, 'by f'); RETURN x; END"
)


@pytest.fixture(params=["process", "thread"])
def reader_mode(request, monkeypatch):
    monkeypatch.setattr(incremental, "READER_MODE", request.param)
    return request.param


def checkpoint(server, task: str):
    conn = server.root_connect()
    try:
        cp = ControlSchema().read_checkpoint(conn, task, "forward")
        return cp.binlog_file, int(cp.binlog_pos)
    finally:
        conn.close()


def master_position(server) -> tuple[str, int]:
    row = sql(server, "SHOW MASTER STATUS")[0]
    return row[0], int(row[1])


def run_statement_and_expect_failure(pair, task_name, *statements, connect_kw=None):
    """Start the sync, write one row-based row (arrives), then ``statements`` in a STATEMENT-format session."""
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'row based')")
    wait_same(pair.a, pair.b, "t")
    before = master_position(pair.a)
    conn = pair.a.root_connect(**(connect_kw or {}))
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION binlog_format='STATEMENT'")
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()
    assert len(table_rows(pair.a, "t")) > 1  # the statement really wrote rows on the source
    result = sync.wait_result(30)
    assert result.outcome == "failed", result
    msg = result.message
    assert "statement-based" in msg and "binlog_format=ROW" in msg, msg
    assert f"transaction from {before[0]}:{before[1]}" in msg, msg  # the position
    # not skipped: the checkpoint is not past the statement, the destination holds none of its rows
    cp = checkpoint(pair.b, task_name)
    assert cp[0] == before[0] and cp[1] <= before[1], (cp, before)
    assert table_rows(pair.b, "t") == [(1, "row based")]
    row = state_row(pair.b, task_name, "forward")
    assert row["state"] == State.FAILED and "statement-based" in (row["message"] or "")
    return msg


@pytest.mark.parametrize("call", ["SELECT shop.f(2)", "DO shop.f(2)", "SET @x = shop.f(2)"])
def test_stored_function_calls_logged_as_statements_fail_the_direction(clean_pair, task_name, reader_mode, call):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    sql(pair.a, FUNCTION)  # before the sync starts: only the source has it
    msg = run_statement_and_expect_failure(pair, task_name, call)
    assert "stored function" in msg


def test_load_data_logged_as_statement_fails_the_direction(clean_pair, task_name, reader_mode, tmp_path):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    data = tmp_path / "rows.tsv"
    data.write_text("10\tloaded\n11\tloaded\n")
    msg = run_statement_and_expect_failure(
        pair, task_name, f"LOAD DATA LOCAL INFILE '{data}' INTO TABLE shop.t", connect_kw={"local_infile": True}
    )
    assert "LOAD DATA" in msg and "shop" in msg


def test_statement_based_writes_to_unselected_databases_do_not_stop_the_sync(
    clean_pair, task_name, reader_mode, tmp_path
):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    sql(
        pair.a,
        "CREATE DATABASE other",
        "CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE other.m (id INT PRIMARY KEY) ENGINE=MyISAM",
    )
    data = tmp_path / "rows.tsv"
    data.write_text("10\tloaded\n11\tloaded\n")
    with Sync(make_direction(task_name), pair.a, pair.b) as sync:
        conn = pair.a.root_connect(local_infile=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION binlog_format='STATEMENT'")
                cur.execute("INSERT INTO other.t VALUES (1, 'stmt')")
                cur.execute("UPDATE other.t SET v = CONCAT(v, '!') WHERE id = 1")
                cur.execute(f"LOAD DATA LOCAL INFILE '{data}' INTO TABLE other.t")
                cur.execute("INSERT INTO other.m VALUES (1)")  # non-transactional: a standalone statement
                cur.execute("USE other")
                cur.execute("DELETE FROM t WHERE id = 10")
        finally:
            conn.close()
        assert sql(pair.a, "SELECT COUNT(*) FROM other.t")[0][0] == 2
        after_statements = master_position(pair.a)
        sql(pair.a, "INSERT INTO shop.t VALUES (1, 'after')")  # row based, after them: still arrives
        wait_same(pair.a, pair.b, "t")
        assert table_rows(pair.b, "t") == [(1, "after")]
        assert sync.result is None, sync.result
        assert position_le(after_statements, checkpoint(pair.b, task_name))  # the checkpoint went past them
        assert state_row(pair.b, task_name, "forward")["state"] == State.SYNCHRONIZING
        assert sql(pair.b, "SHOW DATABASES LIKE 'other'") == []  # nothing of them reached the destination


@pytest.mark.parametrize("via", ["trigger", "function"])
def test_statement_based_write_to_an_unselected_table_that_writes_selected_ones_fails(clean_pair, task_name, via):
    """Not provably harmless: a trigger on the unselected table, or a stored function the statement calls,
    writes the selected table (those rows are not in the binlog either)."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    sql(
        pair.a,
        "CREATE DATABASE other",
        "CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TRIGGER other.tr AFTER INSERT ON other.t FOR EACH ROW INSERT INTO shop.t VALUES (NEW.id, 'by trigger')"
        if via == "trigger"
        else "CREATE FUNCTION other.g(x INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA "
        "BEGIN INSERT INTO shop.t VALUES (x, 'by g'); RETURN x; END",
    )
    statement = "INSERT INTO other.t VALUES (7, 'x')" if via == "trigger" else "INSERT INTO t VALUES (g(7), 'x')"
    msg = run_statement_and_expect_failure(pair, task_name, "USE other", statement)
    assert ("trigger other.tr" if via == "trigger" else "stored function") in msg
