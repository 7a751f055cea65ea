"""DDL flows forward (with name mapping) and never backward; crash replay of a DDL is safe."""

from __future__ import annotations

import json

from syncing import Sync, make_direction, sql, state_row, table_rows, wait_until

from airflow_provider_dts.engine.control import ControlSchema, State


def columns(server, db, table):
    return [
        r[0]
        for r in sql(
            server,
            f"SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{db}' "
            f"AND TABLE_NAME='{table}' ORDER BY ORDINAL_POSITION",
        )
    ]


def tables(server, db):
    return sorted(
        r[0] for r in sql(server, f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}'")
    )


def ddl_log(server, task, role):
    return sql(
        server,
        f"SELECT outcome, applied_statement FROM dts_meta.ddl_log WHERE task_name='{task}' "
        f"AND direction='{role}' ORDER BY id",
    )


def test_ddl_flows_forward_with_mapping(clean_pair, task_name):
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE shop", "CREATE DATABASE other")
    sql(pair.b, "CREATE DATABASE shop_copy", "CREATE DATABASE other")
    d = make_direction(task_name, mapping={"shop": "shop_copy"})
    with Sync(d, pair.a, pair.b) as sync:
        sql(
            pair.a,
            "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10))",
            "INSERT INTO t VALUES (1, 'x')",
            "ALTER TABLE t ADD COLUMN b INT NOT NULL DEFAULT 7",
            "INSERT INTO t VALUES (2, 'y', 8)",
            "CREATE INDEX by_a ON t (a)",
            "CREATE TABLE shop.gone (id INT PRIMARY KEY)",
            "DROP TABLE shop.gone",
            "CREATE TABLE shop.old (id INT PRIMARY KEY)",
            "RENAME TABLE shop.old TO shop.renamed",
            "CREATE VIEW v AS SELECT id, a FROM shop.t",
            "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
            "CREATE PROCEDURE count_t(OUT n INT) SELECT COUNT(*) INTO n FROM shop.t",
            "CREATE TABLE other.ignored (id INT PRIMARY KEY)",  # not selected
            "CREATE USER IF NOT EXISTS 'someone'@'localhost'",  # never synchronized
            db="shop",
        )
        wait_until(lambda: table_rows(pair.b, "t", "shop_copy") == [(1, "x", 7), (2, "y", 8)], 30, "rows after ALTER")
        wait_until(
            lambda: (
                "v" in tables(pair.b, "shop_copy")
                and sql(pair.b, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='shop_copy'")[0][
                    0
                ]
                == 2
            ),
            30,
            "view and routines",
        )
        sql(pair.a, "DROP INDEX by_a ON shop.t", "TRUNCATE TABLE shop.t", "INSERT INTO shop.t VALUES (3, 'z', 9)")
        wait_until(lambda: table_rows(pair.b, "t", "shop_copy") == [(3, "z", 9)], 30, "truncate then insert")
        assert sync.result is None
    assert columns(pair.b, "shop_copy", "t") == ["id", "a", "b"]
    assert tables(pair.b, "shop_copy") == ["renamed", "t", "v"]
    assert tables(pair.b, "other") == []
    assert sql(pair.b, "SELECT shop_copy.twice(21)")[0][0] == 42
    assert sql(pair.b, "SELECT COUNT(*) FROM mysql.user WHERE User='someone'")[0][0] == 0
    assert (
        sql(
            pair.b,
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='shop_copy' AND INDEX_NAME='by_a'",
        )[0][0]
        == 0
    )
    outcomes = [o for o, _ in ddl_log(pair.b, task_name, "forward")]
    assert outcomes.count("applied") == 12


def test_ddl_never_flows_backward(clean_pair, task_name):
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, a INT)")
    rev = make_direction(task_name, "reverse")
    assert rev.exclude_ddl
    with Sync(rev, pair.b, pair.a):
        sql(
            pair.b,
            "ALTER TABLE shop.t ADD COLUMN extra INT DEFAULT 1",
            "CREATE TABLE shop.new_b (id INT PRIMARY KEY)",
            "INSERT INTO shop.t VALUES (1, 2, 3)",
        )
        # DML keeps flowing back, by column name, while the columns differ
        wait_until(lambda: table_rows(pair.a, "t") == [(1, 2)], 30, "row without the new column")
    assert columns(pair.a, "shop", "t") == ["id", "a"]
    assert tables(pair.a, "shop") == ["t"]
    assert {o for o, _ in ddl_log(pair.a, task_name, "reverse")} == {"skipped"}


def test_rows_apply_by_column_name_when_columns_differ(clean_pair, task_name):
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, a INT, b VARCHAR(5), c INT)")
    sql(
        pair.b,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (b VARCHAR(5), id INT PRIMARY KEY, a INT, "
        "only_here INT DEFAULT 42, full_b VARCHAR(9) AS (CONCAT(b, '!')) STORED)",
    )
    with Sync(make_direction(task_name, exclude_ddl=True), pair.a, pair.b):
        sql(pair.a, "INSERT INTO shop.t VALUES (1, 10, 'x', 100)", "UPDATE shop.t SET b = 'y', c = 5")
        wait_until(lambda: table_rows(pair.b, "t") == [("y", 1, 10, 42, "y!")], 30, "mapped by column name")


def test_crash_between_ddl_and_checkpoint_replays_safely(clean_pair, task_name):
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    d = make_direction(task_name)
    Sync(d, pair.a, pair.b, max_runtime=2).start().wait_result(15)
    # the DDL ran at the destination, then the process died before the checkpoint moved past it
    sql(pair.a, "ALTER TABLE shop.t ADD COLUMN c INT", "INSERT INTO shop.t VALUES (1, 5)")
    sql(pair.b, "ALTER TABLE shop.t ADD COLUMN c INT")
    events = sql(pair.a, "SHOW MASTER STATUS")
    cp_row = state_row(pair.b, task_name, "forward")
    binlog_events = sql(pair.a, f"SHOW BINLOG EVENTS IN '{cp_row['binlog_file']}' FROM {cp_row['binlog_pos']}")
    alter_end = next(e[4] for e in binlog_events if e[2] == "Query" and "ADD COLUMN c" in (e[5] or ""))
    conn = pair.b.root_connect()
    control = ControlSchema()
    cp = control.read_checkpoint(conn, task_name, "forward")
    cp.ddl_pending = json.dumps({"position": [cp.binlog_file, alter_end], "statement": "ALTER ..."})
    with conn.cursor() as cur:
        control.write_checkpoint(cur, task_name, "forward", cp)
    conn.close()
    assert events
    with Sync(d, pair.a, pair.b) as sync:
        wait_until(lambda: table_rows(pair.b, "t") == [(1, 5)], 30, "row after replayed DDL")
        assert sync.result is None
    assert [o for o, _ in ddl_log(pair.b, task_name, "forward")] == ["replayed"]
    conn = pair.b.root_connect()
    assert ControlSchema().read_checkpoint(conn, task_name, "forward").ddl_pending is None
    conn.close()


def test_failing_ddl_fails_the_direction_with_the_statement(clean_pair, task_name):
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    sql(pair.b, "ALTER TABLE shop.t ADD COLUMN c INT")  # the destination already differs
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    sql(pair.a, "ALTER TABLE shop.t ADD COLUMN c INT")
    result = sync.wait_result(30)
    assert result.outcome == "failed" and result.state == State.FAILED
    assert "ADD COLUMN c" in result.message and "1060" in result.message
    assert state_row(pair.b, task_name, "forward")["state"] == State.FAILED
    # the checkpoint stayed before the DDL: after fixing the schema, a restart applies it and continues
    sql(pair.b, "ALTER TABLE shop.t DROP COLUMN c")
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 2)")
    with Sync(make_direction(task_name), pair.a, pair.b):
        wait_until(lambda: table_rows(pair.b, "t") == [(1, 2)], 30, "row after the fixed DDL")
    assert columns(pair.b, "shop", "t") == ["id", "c"]


def test_destination_table_changed_behind_the_applier(clean_pair, task_name):
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, a INT, b INT)")
    with Sync(make_direction(task_name, exclude_ddl=True), pair.a, pair.b) as sync:
        sql(pair.a, "INSERT INTO shop.t VALUES (1, 1, 1)")
        wait_until(lambda: table_rows(pair.b, "t") == [(1, 1, 1)], 20, "first row")
        sql(pair.b, "ALTER TABLE shop.t DROP COLUMN b")  # by hand, at the destination only
        sql(pair.a, "INSERT INTO shop.t VALUES (2, 2, 2)")
        wait_until(lambda: table_rows(pair.b, "t") == [(1, 1), (2, 2)], 20, "row applied by column name")
        assert sync.result is None
