"""Pure tests of the definition rewriting of the schema sync (the real-server tests are in integration/)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.schema_sync import (
    SchemaSyncError,
    TableRef,
    _charset_sql,
    drop_definer,
    mapper_for,
    rewrite_create_routine,
    rewrite_create_table,
    rewrite_create_trigger,
    rewrite_create_view,
)
from airflow_provider_dts.engine.sqltext import rewrite_names

D = SyncDirection.from_dict(
    {
        "task_name": "t",
        "source_conn_id": "a",
        "destination_conn_id": "b",
        "objects": ["shop", "we`ird db"],
        "mapping": {"shop": "shop2", "shop.orders": "orders_v2", "we`ird db": "odd `copy"},
    }
)


def m(db, table):
    return D.map_table(db, table)


def test_mapping_of_databases_and_tables_with_odd_names():
    assert m("shop", "orders") == ("shop2", "orders_v2")
    assert m("shop", "items") == ("shop2", "items")
    assert m("we`ird db", "t") == ("odd `copy", "t")  # not the quoted form config stores
    assert m("other", "t") == ("other", "t")


def test_create_table_gets_the_mapped_name_and_references():
    sql = (
        "CREATE TABLE `items` (\n  `id` int NOT NULL,\n  `o` bigint,\n"
        "  `note` varchar(20) DEFAULT 'REFERENCES `orders`',\n"
        "  CONSTRAINT `fk` FOREIGN KEY (`o`) REFERENCES `orders` (`id`),\n"
        "  CONSTRAINT `fk2` FOREIGN KEY (`o`) REFERENCES `we``ird db`.`t` (`id`)\n) ENGINE=InnoDB"
    )
    out = rewrite_create_table(sql, TableRef("shop", "items", "shop2", "items"), m)
    assert out.startswith("CREATE TABLE `shop2`.`items` (")
    assert "REFERENCES `orders_v2` (`id`)" in out
    assert "REFERENCES `odd ``copy`.`t` (`id`)" in out
    assert "DEFAULT 'REFERENCES `orders`'" in out  # strings untouched


def test_view_routine_trigger_rewrites_drop_definer_and_map_names():
    view = (
        "CREATE ALGORITHM=UNDEFINED DEFINER=`ro``ot`@`%` SQL SECURITY DEFINER VIEW `shop`.`v` AS select "
        "`shop`.`orders`.`id` AS `id`,'shop.orders' AS `s` from `shop`.`orders` /* shop.orders */"
    )
    out = rewrite_create_view(view, TableRef("shop", "v", "shop2", "v"), {"shop"}, m)
    assert out == (
        "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `shop2`.`v` AS select "
        "`shop2`.`orders_v2`.`id` AS `id`,'shop.orders' AS `s` from `shop2`.`orders_v2` /* shop.orders */"
    )
    proc = (
        "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(OUT n INT)\nBEGIN SELECT COUNT(*) INTO n FROM shop.items; END"
    )
    assert rewrite_create_routine(proc, "PROCEDURE", "shop2", {"shop"}, m) == (
        "CREATE PROCEDURE `shop2`.`p`(OUT n INT)\nBEGIN SELECT COUNT(*) INTO n FROM `shop2`.`items`; END"
    )
    trig = "CREATE DEFINER=`root`@`localhost` TRIGGER shop.trg BEFORE INSERT ON orders FOR EACH ROW SET NEW.x = 1.5"
    assert rewrite_create_trigger(trig, "shop", "shop2", {"shop"}, m) == (
        "CREATE TRIGGER `shop2`.`trg` BEFORE INSERT ON `shop2`.`orders_v2` FOR EACH ROW SET NEW.x = 1.5"
    )
    assert (
        drop_definer("CREATE DEFINER='a'@'b' FUNCTION f() RETURNS INT RETURN 1")
        == "CREATE FUNCTION f() RETURNS INT RETURN 1"
    )
    assert rewrite_names("SELECT 1.5, x.y FROM t", mapper_for({"shop"}, m)) == "SELECT 1.5, x.y FROM t"


def test_charset_names_are_checked():
    assert (
        _charset_sql("utf8mb4", "utf8mb4_bin")
        == "SET SESSION character_set_client=utf8mb4, collation_connection=utf8mb4_bin"
    )
    with pytest.raises(SchemaSyncError):
        _charset_sql("utf8mb4; DROP DATABASE x", "utf8mb4_bin")
