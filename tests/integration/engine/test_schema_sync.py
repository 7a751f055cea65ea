"""Initial schema sync against the real pair: mapping, views, routines, triggers, modes, re-runs."""

from __future__ import annotations

import pytest
from helpers import q

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.schema_sync import SchemaSyncError, TableRef, mark_table, sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync

ODD_DB = "we`ird db ü"
ODD_TABLE = "tä ble`x"

SOURCE_SQL = [
    "SET FOREIGN_KEY_CHECKS=0",
    "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    # a child created (alphabetically) before its parent: FK order must not matter
    """CREATE TABLE shop.a_child (id INT PRIMARY KEY, parent_id INT NOT NULL,
         CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES shop.z_parent (id) ON DELETE CASCADE)
         ENGINE=InnoDB""",
    """CREATE TABLE shop.z_parent (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) NOT NULL DEFAULT 'n''o',
         price DECIMAL(10,2) UNSIGNED, tag CHAR(3) CHARACTER SET latin1, total INT AS (price * 2) STORED,
         UNIQUE KEY uk_name (name), KEY k_price (price)) ENGINE=InnoDB AUTO_INCREMENT=1000 COMMENT='parents'""",
    "CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, amount INT NOT NULL) PARTITION BY HASH (id) PARTITIONS 3",
    "INSERT INTO shop.z_parent (id, name, price, tag) VALUES (1, 'alpha', 9.5, 'abc'), (2, 'beta', 20, 'xyz')",
    "INSERT INTO shop.a_child VALUES (10, 1), (11, 2), (12, 2)",
    "INSERT INTO shop.orders VALUES (1, 100), (2, 250), (3, 75)",
    # a_report depends on b_joined, which sorts after it
    """CREATE SQL SECURITY INVOKER VIEW shop.b_joined AS SELECT z.name, c.id FROM shop.z_parent z
         JOIN shop.a_child c ON c.parent_id = z.id""",
    "CREATE VIEW shop.a_report AS SELECT p.name, COUNT(*) AS children FROM shop.b_joined p GROUP BY p.name",
    "CREATE FUNCTION shop.double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    """CREATE PROCEDURE shop.order_total(OUT t BIGINT) READS SQL DATA
         BEGIN SELECT SUM(amount) INTO t FROM shop.orders; END""",
    "CREATE TRIGGER shop.upper_name BEFORE INSERT ON shop.z_parent FOR EACH ROW SET NEW.name = UPPER(NEW.name)",
    f"CREATE DATABASE `{ODD_DB.replace('`', '``')}`",
    f"CREATE TABLE `{ODD_DB.replace('`', '``')}`.`{ODD_TABLE.replace('`', '``')}` "
    "(`col ü``x` INT PRIMARY KEY, `select` VARCHAR(5))",
    f"INSERT INTO `{ODD_DB.replace('`', '``')}`.`{ODD_TABLE.replace('`', '``')}` VALUES (1, 'a'), (2, NULL)",
]


@pytest.fixture
def shop(clean_pair):
    with clean_pair.a.root_connect() as conn, conn.cursor() as cur:
        for sql in SOURCE_SQL:
            cur.execute(sql)
    return clean_pair


def direction(task_name: str, **kw) -> SyncDirection:
    data = {
        "task_name": task_name,
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
    }
    data.update(kw)
    return SyncDirection.from_dict(data)


def columns(conn, db, table):
    return q(
        conn,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, "
        "COLLATION_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
        (db, table),
    )


def indexes(conn, db, table):
    return q(
        conn,
        "SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (db, table),
    )


def test_database_mapping_copies_every_object_definition(shop, task_name):
    d = direction(task_name, mapping={"shop": "shop_copy"})
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert result.databases_created == ["shop_copy"]
    assert sorted(result.tables_created) == [
        "shop.a_child -> shop_copy.a_child",
        "shop.orders -> shop_copy.orders",
        "shop.z_parent -> shop_copy.z_parent",
    ]
    a, b = shop.a.root_connect(), shop.b.root_connect()
    assert q(
        b,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME='shop_copy'",
    ) == (("utf8mb4", "utf8mb4_unicode_ci"),)
    for t in ("a_child", "z_parent", "orders"):
        assert columns(b, "shop_copy", t) == columns(a, "shop", t)
        assert indexes(b, "shop_copy", t) == indexes(a, "shop", t)
    opts = (
        "SELECT AUTO_INCREMENT, TABLE_COMMENT, CREATE_OPTIONS FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s"
    )
    assert q(b, opts, ("shop_copy", "z_parent")) == q(a, opts, ("shop", "z_parent"))
    assert q(b, opts, ("shop_copy", "z_parent"))[0][0] == 1000
    part = (
        "SELECT PARTITION_METHOD, COUNT(*) FROM information_schema.PARTITIONS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME='orders' GROUP BY 1"
    )
    assert q(b, part, ("shop_copy",)) == (("HASH", 3),)
    fk = (
        "SELECT CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA=%s"
    )
    assert q(b, fk, ("shop_copy",)) == (("fk_parent", "shop_copy", "z_parent"),)
    # no trigger by default (the spec's trigger limit)
    assert q(b, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='shop_copy'") == ((0,),)

    # views, function and procedure give the same results once the rows are there
    full_data_sync(d, shop.a.settings(), shop.b.settings())
    for sql_a, sql_b in (
        ("SELECT * FROM shop.a_report ORDER BY name", "SELECT * FROM shop_copy.a_report ORDER BY name"),
        ("SELECT * FROM shop.b_joined ORDER BY id", "SELECT * FROM shop_copy.b_joined ORDER BY id"),
        ("SELECT shop.double_it(21)", "SELECT shop_copy.double_it(21)"),
    ):
        assert q(a, sql_a) == q(b, sql_b)
    assert q(b, "SELECT * FROM shop_copy.a_report ORDER BY name") == (("alpha", 1), ("beta", 2))
    for conn, db in ((a, "shop"), (b, "shop_copy")):
        q(conn, f"CALL {db}.order_total(@t)")
    assert q(b, "SELECT @t") == ((425,),) == q(a, "SELECT @t")
    view_def = q(
        b,
        "SELECT VIEW_DEFINITION, SECURITY_TYPE, DEFINER FROM information_schema.VIEWS "
        "WHERE TABLE_SCHEMA='shop_copy' AND TABLE_NAME='b_joined'",
    )[0]
    assert "`shop_copy`.`z_parent`" in view_def[0] and "`shop`." not in view_def[0]
    assert view_def[1] == "INVOKER" and view_def[2].startswith("dts_admin@")
    routine = q(
        b,
        "SELECT ROUTINE_DEFINITION, DEFINER FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA='shop_copy' AND ROUTINE_NAME='order_total'",
    )[0]
    assert "shop_copy" in routine[0] and routine[1].startswith("dts_admin@")


def test_rerun_is_idempotent_and_leaves_other_objects(shop, task_name):
    d = direction(task_name)
    first = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert len(first.tables_created) == 3 and len(first.views_created) == 2 and len(first.routines_created) == 2
    second = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert second.tables_created == [] and second.views_created == [] and second.routines_created == []
    assert second.tables_kept == []  # our own tables are not "kept" user tables
    b = shop.b.root_connect()
    assert q(b, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop'") == ((5,),)


def test_rerun_after_interrupted_run_finishes_the_job(shop, task_name):
    """An earlier run died right after creating z_parent (its progress row still says 'creating')."""
    d = direction(task_name)
    b = shop.b.root_connect()
    control = ControlSchema(d.control_schema)
    control.ensure(b)
    q(b, "CREATE DATABASE shop")
    create = q(shop.a.root_connect(), "SHOW CREATE TABLE shop.z_parent")[0][1]
    q(b, create.replace("CREATE TABLE `z_parent`", "CREATE TABLE shop.z_parent"))
    with b.cursor() as cur:
        mark_table(cur, control, d, TableRef("shop", "z_parent", "shop", "z_parent"), "creating")
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert "shop.z_parent" in result.tables_created
    assert q(b, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop'") == ((5,),)
    assert q(
        b,
        f"SELECT status FROM {control.table('table_progress')} WHERE task_name=%s ORDER BY source_table",
        (task_name,),
    ) == (("created",), ("created",), ("created",))


def test_intercept_mode_refuses_existing_table_and_creates_nothing(shop, task_name):
    b = shop.b.root_connect()
    q(b, "CREATE DATABASE shop")
    q(b, "CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT)")
    q(b, "INSERT INTO shop.orders VALUES (7, 'user data')")
    with pytest.raises(SchemaSyncError, match=r"destination tables already exist: shop\.orders.*Ignore"):
        sync_schema(direction(task_name), shop.a.settings(), shop.b.settings())
    assert q(b, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop'") == (("orders",),)
    assert q(b, "SELECT * FROM shop.orders") == ((7, "user data"),)


def test_ignore_mode_keeps_existing_tables_and_creates_the_rest(shop, task_name):
    b = shop.b.root_connect()
    q(b, "CREATE DATABASE shop")
    q(b, "CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, amount INT NOT NULL, note TEXT)")
    result = sync_schema(direction(task_name, existing_table_mode="Ignore"), shop.a.settings(), shop.b.settings())
    assert result.tables_kept == ["shop.orders"]
    assert sorted(result.tables_created) == ["shop.a_child", "shop.z_parent"]
    assert [c[0] for c in columns(b, "shop", "orders")] == ["id", "amount", "note"]  # untouched


def test_single_table_mapping_and_odd_identifiers(shop, task_name):
    d = direction(task_name, objects=["shop.orders", ODD_DB], mapping={"shop.orders": "orders_v2", ODD_DB: "odd `copy"})
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    b = shop.b.root_connect()
    assert q(
        b,
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN "
        "('shop', 'odd `copy') ORDER BY 1, 2",
    ) == (("odd `copy", ODD_TABLE), ("shop", "orders_v2"))
    assert result.views_created == [] and result.routines_created == []
    copied = full_data_sync(d, shop.a.settings(), shop.b.settings())
    assert copied.rows == 5
    assert q(b, "SELECT * FROM `odd ``copy`.`tä ble``x` ORDER BY 1") == ((1, "a"), (2, None))
    assert q(b, "SELECT * FROM shop.orders_v2 ORDER BY id") == ((1, 100), (2, 250), (3, 75))


def test_triggers_only_when_asked_and_on_the_mapped_table(shop, task_name):
    d = direction(task_name, sync_triggers=True, initial_full_data_sync=False, mapping={"shop": "s2"})
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert result.triggers_created == ["trigger s2.upper_name"]
    b = shop.b.root_connect()
    assert q(
        b,
        "SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_NAME='upper_name'",
    ) == (("s2", "z_parent"),)
    q(b, "INSERT INTO s2.z_parent (id, name) VALUES (5, 'lower')")
    assert q(b, "SELECT name FROM s2.z_parent WHERE id=5") == (("LOWER",),)


def test_skip_initial_tables_and_missing_objects(shop, task_name):
    d = direction(task_name, skip_initial_tables=["shop.orders"])
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert result.skipped == ["shop.orders"]
    assert "shop.orders" not in result.tables_created
    with pytest.raises(SchemaSyncError, match=r"do not exist on the source: shop\.nope.*Fix"):
        sync_schema(direction(task_name, objects=["shop.nope"]), shop.a.settings(), shop.b.settings())


def test_routines_and_triggers_written_without_backslash_escapes_keep_their_strings(shop, task_name):
    """A procedure and a trigger created under sql_mode NO_BACKSLASH_ESCAPES, where 'C:\\' is a whole string: the
    names after it are mapped and the strings stay as they are, so both run on B against the mapped tables."""
    with shop.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE shop.log (id BIGINT PRIMARY KEY, note VARCHAR(20))")
        cur.execute("SET SESSION sql_mode='NO_BACKSLASH_ESCAPES'")
        cur.execute(
            "CREATE PROCEDURE shop.path_len() MODIFIES SQL DATA BEGIN DECLARE p VARCHAR(10) DEFAULT 'C:\\'; "
            "INSERT INTO shop.orders VALUES (99, CHAR_LENGTH(p)); END"
        )
        cur.execute(
            "CREATE TRIGGER shop.log_order AFTER INSERT ON shop.orders FOR EACH ROW BEGIN SET @p = 'C:\\'; "
            "INSERT INTO shop.log VALUES (NEW.id, 'shop.log'); END"
        )
    d = direction(task_name, sync_triggers=True, initial_full_data_sync=False, mapping={"shop": "s2"})
    result = sync_schema(d, shop.a.settings(), shop.b.settings())
    assert "trigger s2.log_order" in result.triggers_created
    assert "procedure s2.path_len" in result.routines_created
    b = shop.b.root_connect()
    q(b, "INSERT INTO s2.orders VALUES (50, 1)")
    q(b, "CALL s2.path_len()")
    assert q(b, "SELECT id, amount FROM s2.orders ORDER BY id") == ((50, 1), (99, 3))
    assert q(b, "SELECT id, note FROM s2.log ORDER BY id") == ((50, "shop.log"), (99, "shop.log"))
