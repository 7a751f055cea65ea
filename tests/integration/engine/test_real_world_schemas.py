"""Schemas nobody on the team wrote: foreign-key cascades, approximate and collated keys, DDL from the other
side while both sides write. Both directions run; every test ends with both servers equal row by row and by
CHECKSUM TABLE, with no conflict logged (issue 9, causes 2, 4 and 7)."""

from __future__ import annotations

import threading
import time

from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql, state_row

from airflow_provider_dts.engine.control import State


def rows(server, db: str, table: str) -> list[tuple]:
    return sql(server, f"SELECT * FROM `{db}`.`{table}` ORDER BY 1, 2")


def checksum(server, db: str, table: str) -> int:
    return sql(server, f"CHECKSUM TABLE `{db}`.`{table}`")[0][1]


def assert_equal_eventually(pair, tables, db="shop", timeout=30.0):
    """Both servers hold the same rows in every table (row by row, then CHECKSUM TABLE)."""

    def same():
        return all(rows(pair.a, db, t) == rows(pair.b, db, t) for t in tables)

    try:
        wait_until(same, timeout, f"{tables} equal on both sides")
    except AssertionError:
        diffs = {
            t: (rows(pair.a, db, t), rows(pair.b, db, t)) for t in tables if rows(pair.a, db, t) != rows(pair.b, db, t)
        }
        raise AssertionError(f"tables differ (A, B): {diffs}") from None
    for t in tables:
        assert checksum(pair.a, db, t) == checksum(pair.b, db, t), t


def conflicts(server, task) -> list[tuple]:
    return sql(
        server,
        f"SELECT direction, conflict_type, dest_table, key_json FROM dts_meta.conflict_log WHERE task_name='{task}'",
    )


def both_synchronizing(pair, task) -> None:
    """Both directions Synchronizing, and no echo: once the sides are equal and nobody writes, neither
    direction applies anything more (a looping row would be applied again and again)."""

    def applied():
        rows = [state_row(server, task, role) for server, role in ((pair.b, "forward"), (pair.a, "reverse"))]
        for row in rows:
            assert row["state"] == State.SYNCHRONIZING, (row["direction"], row["state"], row["message"])
        return [row["transactions_applied"] for row in rows]

    before = wait_until(
        lambda: (lambda a: time.sleep(1.5) or (a == applied() and a))(applied()), 30, "both directions idle"
    )
    time.sleep(2)
    assert applied() == before, "a direction kept applying after the writes stopped (echo)"


def two_way(pair, task, **kw):
    return (
        Sync(make_direction(task, **kw), pair.a, pair.b),
        Sync(make_direction(task, "reverse", **kw), pair.b, pair.a),
    )


# --------------------------------------------------------------------------- foreign keys (cause 2)

FK_SCHEMA = (
    "CREATE TABLE shop.customer (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE, name VARCHAR(40))",
    "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_code VARCHAR(10), note VARCHAR(40), "
    " FOREIGN KEY (customer_code) REFERENCES shop.customer (code) ON DELETE CASCADE ON UPDATE CASCADE)",
    "CREATE TABLE shop.line (id INT PRIMARY KEY, order_id INT NOT NULL, qty INT, "
    " FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE)",
    "CREATE TABLE shop.tag (id INT PRIMARY KEY, order_id INT NULL, "
    " FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE SET NULL)",
    "CREATE TABLE shop.plain (id INT PRIMARY KEY, v INT)",
)
FK_TABLES = ["customer", "orders", "line", "tag", "plain"]


def _fill(server, base: int, customers: int) -> None:
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            for c in range(base, base + customers):
                cur.execute("START TRANSACTION")
                cur.execute(f"INSERT INTO shop.customer VALUES ({c}, 'c{c}', 'n{c}')")
                for o in range(3):
                    oid = c * 10 + o
                    cur.execute(f"INSERT INTO shop.orders VALUES ({oid}, 'c{c}', 'o')")
                    cur.execute(f"INSERT INTO shop.line VALUES ({oid * 10}, {oid}, 1), ({oid * 10 + 1}, {oid}, 2)")
                    cur.execute(f"INSERT INTO shop.tag VALUES ({oid}, {oid})")
                cur.execute(f"INSERT INTO shop.plain VALUES ({c}, 0)")
                cur.execute("COMMIT")
    finally:
        conn.close()


def test_foreign_key_cascades_end_equal_in_both_directions(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *FK_SCHEMA)
    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        _fill(pair.a, 100, 20)  # customers 100..119 written on A
        _fill(pair.b, 200, 20)  # customers 200..219 written on B
        assert_equal_eventually(pair, FK_TABLES)
        # cascades on A: delete customers (orders, lines go; tags set NULL), rename codes (orders follow)
        sql(
            pair.a,
            "DELETE FROM shop.customer WHERE id BETWEEN 100 AND 104",
            "UPDATE shop.customer SET code=CONCAT(code, 'x') WHERE id BETWEEN 105 AND 109",
            "DELETE FROM shop.orders WHERE id IN (1100, 1101)",  # lines cascade, tags set NULL
            "UPDATE shop.plain SET v=v+1 WHERE id < 200",
        )
        # the same kinds on B, mixed with plain writes in the same transactions
        sql(
            pair.b,
            "START TRANSACTION",
            "DELETE FROM shop.customer WHERE id BETWEEN 200 AND 204",
            "UPDATE shop.plain SET v=v+10 WHERE id >= 200",
            "INSERT INTO shop.plain VALUES (999, 9)",
            "UPDATE shop.customer SET code=CONCAT(code, 'y') WHERE id BETWEEN 205 AND 209",
            "COMMIT",
        )
        # a customer deleted and re-inserted with new orders in one transaction: order must be kept
        sql(
            pair.a,
            "START TRANSACTION",
            "DELETE FROM shop.customer WHERE id=110",
            "INSERT INTO shop.customer VALUES (110, 'c110', 'again')",
            "INSERT INTO shop.orders VALUES (5000, 'c110', 'new')",
            "INSERT INTO shop.line VALUES (50000, 5000, 7)",
            "COMMIT",
        )
        assert_equal_eventually(pair, FK_TABLES)
        assert sql(pair.b, "SELECT COUNT(*) FROM shop.line WHERE order_id BETWEEN 1000 AND 1049")[0][0] == 0
        assert sql(pair.a, "SELECT COUNT(*) FROM shop.orders WHERE customer_code LIKE 'c20%y'")[0][0] == 15
        assert (
            sql(pair.b, "SELECT COUNT(*) FROM shop.tag WHERE order_id IS NULL")[0][0] == 15 + 15 + 3
        )  # customers 100-104, 200-204, 110
        both_synchronizing(pair, task_name)
    assert conflicts(pair.a, task_name) + conflicts(pair.b, task_name) == []


def test_a_child_without_its_parent_fails_with_a_clear_message(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *FK_SCHEMA)
    sql(pair.a, "INSERT INTO shop.customer VALUES (1, 'c1', 'only on A')")  # not synced: B lacks it
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    sql(pair.a, "INSERT INTO shop.orders VALUES (10, 'c1', 'child')")
    result = sync.wait_result(30)
    assert result.state == State.FAILED
    assert "foreign key" in result.message and "`shop`.`orders`" in result.message
    assert "parent row does not exist" in result.message and "Fix:" in result.message
    assert sql(pair.b, "SELECT COUNT(*) FROM shop.orders")[0][0] == 0


# --------------------------------------------------------------------------- approximate and collated keys (cause 4)

KEY_SCHEMA = (
    "CREATE TABLE shop.fkey (k FLOAT PRIMARY KEY, v INT)",
    "CREATE TABLE shop.dkey (k DOUBLE PRIMARY KEY, v INT)",
    "CREATE TABLE shop.deckey (k DECIMAL(20,10) PRIMARY KEY, v INT)",
    "CREATE TABLE shop.tkey (k DATETIME(6) PRIMARY KEY, t TIME(3), v INT)",
    "CREATE TABLE shop.cikey (k VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT)",
    "CREATE TABLE shop.aikey (a INT, k VARCHAR(20) COLLATE utf8mb4_unicode_ci, v INT, PRIMARY KEY (a, k))",
)
KEY_TABLES = ["fkey", "dkey", "deckey", "tkey", "cikey", "aikey"]


def test_rows_keyed_on_float_decimal_temporal_and_collated_strings(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *KEY_SCHEMA)
    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        sql(
            pair.a,
            "INSERT INTO shop.fkey VALUES (1e-38, 1), (0.1, 2), (3.3999999e38, 3), (-2.5e-7, 4), (123.456, 5)",
            "INSERT INTO shop.dkey VALUES (0.1, 1), (1e-300, 2), (2.2250738585072014e-308, 3), "
            "(-1.7976931348623157e308, 4)",
            "INSERT INTO shop.deckey VALUES (1.5, 1), (0.0000000001, 2), (-9999999999.9999999999, 3)",
            "INSERT INTO shop.tkey VALUES ('2020-01-01 00:00:00.000001', '-838:59:59.999', 1), "
            " ('2020-01-01 00:00:00.5', '00:00:00.001', 2), ('1000-01-01 00:00:00', '12:00:00', 3)",
            "INSERT INTO shop.cikey VALUES ('Straße', 1), ('ÉCOLE', 2), ('abc ', 3), ('Q', 4)",
            "INSERT INTO shop.aikey VALUES (1, 'Résumé', 1), (1, 'naïve', 2), (2, 'X', 3)",
        )
        sql(pair.b, "INSERT INTO shop.fkey VALUES (7.0e-20, 7)", "INSERT INTO shop.cikey VALUES ('fromB', 9)")
        assert_equal_eventually(pair, KEY_TABLES)
        # batched updates over every row (the path that compared key texts), on both sides
        for t in KEY_TABLES:
            sql(pair.a, f"UPDATE shop.{t} SET v=v+100")
        # B updates the same rows only once A's updates are there: the same row updated on both sides at once
        # is a conflict (the spec's case), not what this test is about
        assert_equal_eventually(pair, KEY_TABLES)
        for t in KEY_TABLES:
            sql(pair.b, f"UPDATE shop.{t} SET v=v+1000")
        assert_equal_eventually(pair, KEY_TABLES)
        # key changes, and a key re-used in another letter case inside one transaction
        sql(
            pair.a,
            "UPDATE shop.fkey SET k=k*2 WHERE v < 1000 + 103",
            "START TRANSACTION",
            "DELETE FROM shop.cikey WHERE k='école'",
            "INSERT INTO shop.cikey VALUES ('Ecole', 5)",
            "UPDATE shop.cikey SET k='q' WHERE k='Q'",
            "COMMIT",
        )
        assert_equal_eventually(pair, KEY_TABLES)
        # batched deletes of every row (the other path that compared key texts)
        for t in ("fkey", "dkey", "deckey", "tkey"):
            sql(pair.b, f"DELETE FROM shop.{t}")
        sql(pair.a, "DELETE FROM shop.cikey", "DELETE FROM shop.aikey")
        assert_equal_eventually(pair, KEY_TABLES)
        assert all(rows(pair.a, "shop", t) == [] for t in KEY_TABLES)
        both_synchronizing(pair, task_name)
    assert conflicts(pair.a, task_name) + conflicts(pair.b, task_name) == []


# --------------------------------------------------------------------------- DDL from the other side (cause 7)


def test_reverse_direction_writes_with_the_destination_table_as_it_is_now(clean_pair, task_name):
    """Task two caches the source's table; DDL that task one brings there must not leave columns out."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, d VARCHAR(20), v INT)")
    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        sql(pair.b, "INSERT INTO shop.t VALUES (1, 'b1', 1)")  # the reverse applier reads A's table now
        assert_equal_eventually(pair, ["t"])
        sql(
            pair.a,
            "ALTER TABLE shop.t RENAME COLUMN d TO d2",
            "ALTER TABLE shop.t ADD COLUMN f0 INT FIRST",
            "ALTER TABLE shop.t ADD COLUMN z VARCHAR(10) DEFAULT 'zz'",
        )
        wait_until(
            lambda: [r[0] for r in sql(pair.b, "SHOW COLUMNS FROM shop.t")] == ["f0", "id", "d2", "v", "z"],
            what="DDL at B",
        )
        sql(
            pair.b,
            "INSERT INTO shop.t (f0, id, d2, v, z) VALUES (7, 2, 'b2', 2, 'b'), (8, 3, 'b3', 3, NULL)",
            "UPDATE shop.t SET d2='b1x', f0=9 WHERE id=1",
        )
        sql(pair.a, "INSERT INTO shop.t (f0, id, d2, v) VALUES (6, 4, 'a4', 4)")
        assert_equal_eventually(pair, ["t"])
        assert rows(pair.a, "shop", "t") == [
            (6, 4, "a4", 4, "zz"),
            (7, 2, "b2", 2, "b"),
            (8, 3, "b3", 3, None),
            (9, 1, "b1x", 1, "zz"),
        ]
        both_synchronizing(pair, task_name)


def test_ddl_storm_while_both_sides_write(clean_pair, task_name):
    """Columns added, dropped, renamed, retyped; an index; tables created, renamed, truncated, dropped - on A
    while writers on both sides keep inserting and updating their own rows. Same schema and rows at the end."""
    pair = clean_pair
    create_both(
        pair,
        "CREATE TABLE shop.s (id INT PRIMARY KEY, side CHAR(1), n INT, d VARCHAR(20), x INT)",
        "CREATE TABLE shop.gone (id INT PRIMARY KEY)",
        "CREATE TABLE shop.old_name (id INT PRIMARY KEY, v INT)",
    )
    stop = threading.Event()
    errors: list[str] = []

    def writer(server, side: str, base: int):
        conn = server.root_connect(database="shop")
        i = 0
        try:
            while not stop.is_set():
                i += 1
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"INSERT INTO s (id, side, n) VALUES ({base + i}, '{side}', {i})")
                        cur.execute(f"UPDATE s SET n=n+1 WHERE id={base + max(1, i - 5)}")
                    conn.commit()
                except Exception as e:
                    errors.append(f"{side}: {e}")
                time.sleep(0.01)
        finally:
            conn.close()

    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        threads = [
            threading.Thread(target=writer, args=(pair.a, "a", 0)),
            threading.Thread(target=writer, args=(pair.b, "b", 1_000_000)),
        ]
        for t in threads:
            t.start()
        try:
            for stmt in (
                "ALTER TABLE shop.s ADD COLUMN c1 INT DEFAULT 5",
                "ALTER TABLE shop.s DROP COLUMN x",
                "ALTER TABLE shop.s MODIFY n BIGINT",
                "ALTER TABLE shop.s ADD INDEX (side, n)",
                "ALTER TABLE shop.s ADD COLUMN c0 VARCHAR(5) DEFAULT 'f' FIRST",
                "ALTER TABLE shop.s RENAME COLUMN d TO d2",
                "CREATE TABLE shop.born (id INT PRIMARY KEY, v INT)",
                "INSERT INTO shop.born VALUES (1, 1)",
                "RENAME TABLE shop.old_name TO shop.new_name",
                "TRUNCATE TABLE shop.new_name",
                "DROP TABLE shop.gone",
                "ALTER TABLE shop.s MODIFY c1 VARCHAR(10)",
                "ALTER TABLE shop.s ADD COLUMN c9 INT",
            ):
                sql(pair.a, stmt)
                time.sleep(0.4)
        finally:
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join()
        tables = lambda s: sorted(r[0] for r in sql(s, "SHOW TABLES FROM shop"))  # noqa: E731
        wait_until(lambda: tables(pair.a) == tables(pair.b), what="same tables")
        assert tables(pair.a) == ["born", "new_name", "s"]
        for t in tables(pair.a):

            def create(s, t=t):
                return sql(s, f"SHOW CREATE TABLE shop.{t}")[0][1]

            wait_until(lambda create=create: create(pair.a) == create(pair.b), what=f"same definition of {t}")
        assert_equal_eventually(pair, ["s", "born", "new_name"])
        assert sql(pair.a, "SELECT COUNT(*) FROM shop.s WHERE side='b'")[0][0] > 10
        # both sides now write the columns the storm created, each into its own rows
        sql(pair.a, "UPDATE shop.s SET c0='A', c1='a1', d2='from a', c9=1 WHERE side='a'")
        sql(
            pair.b,
            "UPDATE shop.s SET c0='B', c1='b1', d2='from b', c9=2 WHERE side='b'",
            "INSERT INTO shop.s (c0, id, side, n, d2, c1, c9) VALUES ('B', 2000000, 'b', 1, 'new b', 'b2', 3)",
        )
        assert_equal_eventually(pair, ["s", "born", "new_name"])
        assert (
            sql(pair.a, "SELECT COUNT(*) FROM shop.s WHERE c0='B' AND d2 LIKE '%b' AND c1 LIKE 'b%' AND c9 > 1")[0][0]
            > 10
        )
        both_synchronizing(pair, task_name)
