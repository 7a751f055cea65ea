"""CREATE TABLE ... SELECT under a running direction. MariaDB 10.11 logs it as ONE transaction (BEGIN GTID, the
CREATE TABLE, the rows, COMMIT), as MySQL 8.0.21+ does (with a START TRANSACTION clause instead of BEGIN: that
form is tested on its event sequence in tests/unit/engine/test_mysql_flavour.py, no MySQL server here)."""

from __future__ import annotations

from syncing import Sync, make_direction, sql, table_rows, wait_until


def binlog_events(server, since: tuple[str, int]) -> list[tuple[str, str]]:
    """(event type, info) of the source's binlog from ``since`` (the events the reader receives)."""
    return [(r[2], r[5]) for r in sql(server, f"SHOW BINLOG EVENTS IN '{since[0]}' FROM {since[1]}")]


def test_create_table_select_arrives_with_its_rows_and_unselected_ones_are_ignored(clean_pair, task_name):
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE shop", "CREATE DATABASE other")
    sql(pair.b, "CREATE DATABASE shop_copy", "CREATE DATABASE other")
    sql(pair.a, "CREATE TABLE shop.src (id INT PRIMARY KEY, v VARCHAR(10))")
    sql(pair.b, "CREATE TABLE shop_copy.src (id INT PRIMARY KEY, v VARCHAR(10))")
    d = make_direction(task_name, mapping={"shop": "shop_copy"})
    with Sync(d, pair.a, pair.b) as sync:
        sql(pair.a, "INSERT INTO shop.src VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        wait_until(lambda: len(table_rows(pair.b, "src", "shop_copy")) == 3, 30, "the source rows")
        file, pos = sql(pair.a, "SHOW MASTER STATUS")[0][:2]
        sql(
            pair.a,
            "CREATE TABLE shop.copy (PRIMARY KEY (id)) SELECT id, v FROM shop.src",
            "CREATE TABLE shop.empty (id INT PRIMARY KEY) SELECT id FROM shop.src WHERE id > 100",
            "CREATE TABLE other.unselected (id INT PRIMARY KEY) SELECT id FROM shop.src",
            "INSERT INTO shop.copy VALUES (4, 'd')",
        )
        wait_until(
            lambda: table_rows(pair.b, "copy", "shop_copy") == [(1, "a"), (2, "b"), (3, "c"), (4, "d")],
            30,
            "the table made by CREATE TABLE ... SELECT, with its rows and a later insert",
        )
        wait_until(lambda: table_rows(pair.b, "empty", "shop_copy") == [], 30, "the empty CREATE TABLE ... SELECT")
        assert sync.result is None
    # what the reader met: the CREATE TABLE (the definition, not the SELECT) inside the transaction of its rows
    events = binlog_events(pair.a, (file, pos))
    create = next(
        i for i, (kind, info) in enumerate(events) if kind == "Query" and "CREATE TABLE `shop`.`copy`" in info
    )
    assert events[create - 1][0] == "Gtid" and events[create - 1][1].startswith("BEGIN GTID")
    assert "SELECT" not in events[create][1].upper()
    assert [kind for kind, _ in events[create + 1 : create + 5]] == [
        "Annotate_rows",
        "Table_map",
        "Write_rows_v1",
        "Xid",
    ]
    assert sql(pair.b, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='other'")[0][0] == 0
    assert sql(pair.a, "CHECKSUM TABLE shop.copy")[0][1] == sql(pair.b, "CHECKSUM TABLE shop_copy.copy")[0][1]
    log = sql(
        pair.b,
        f"SELECT outcome, applied_statement FROM dts_meta.ddl_log WHERE task_name='{task_name}' ORDER BY id",
    )
    assert [(o, s.split("(")[0].strip()) for o, s in log if s] == [
        ("applied", "CREATE TABLE IF NOT EXISTS `shop_copy`.`copy`"),
        ("applied", "CREATE TABLE IF NOT EXISTS `shop_copy`.`empty`"),
    ]


def test_a_crash_between_the_create_and_its_rows_replays_both_once(clean_pair, task_name):
    """The CREATE TABLE of a CREATE TABLE ... SELECT is applied before its rows without moving the checkpoint:
    stopped right after it, the next run reads the whole transaction again and ends with each row once."""
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE shop")
    sql(pair.b, "CREATE DATABASE shop")
    sql(pair.a, "CREATE TABLE shop.src (id INT PRIMARY KEY)")
    sql(pair.b, "CREATE TABLE shop.src (id INT PRIMARY KEY)")
    d = make_direction(task_name)
    with Sync(d, pair.a, pair.b):
        sql(pair.a, "INSERT INTO shop.src VALUES (1), (2)")
        wait_until(lambda: len(table_rows(pair.b, "src")) == 2, 30, "the source rows")
    # the state a crash right after the CREATE leaves: the table exists at B, the checkpoint is before the
    # transaction (a stopped direction resumes at its checkpoint, so running it again replays the transaction)
    sql(pair.a, "CREATE TABLE shop.copy (PRIMARY KEY (id)) SELECT id FROM shop.src")
    sql(pair.b, "CREATE TABLE shop.copy (id INT NOT NULL, PRIMARY KEY (id))")
    with Sync(d, pair.a, pair.b) as sync:
        wait_until(lambda: table_rows(pair.b, "copy") == [(1,), (2,)], 30, "the rows of the replayed transaction")
        sql(pair.a, "INSERT INTO shop.copy VALUES (3)")
        wait_until(lambda: table_rows(pair.b, "copy") == [(1,), (2,), (3,)], 30, "a later row")
        assert sync.result is None


def test_a_statement_logged_create_table_select_stops_the_direction(clean_pair, task_name):
    """CREATE TABLE ... SELECT written by a session with binlog_format=STATEMENT is in the binlog as the statement:
    re-running it at the destination would copy the destination's rows (here B's extra row 99), not the source's."""
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.src (id INT PRIMARY KEY, v INT)")
    sql(pair.b, "INSERT INTO shop.src VALUES (99, 99)")
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.src VALUES (1, 1)")
    wait_until(lambda: (1, 1) in table_rows(pair.b, "src"), 30, "src")
    sql(pair.a, "SET SESSION binlog_format=STATEMENT", "CREATE TABLE shop.st SELECT id, v FROM shop.src")
    result = sync.wait_result(30)
    assert result.state == "Failed" and "statement-based change" in result.message, result
    assert "CREATE TABLE shop.st SELECT" in result.message
    assert sql(pair.b, "SHOW TABLES FROM shop LIKE 'st'") == []
