"""MariaDB system-versioned tables (``WITH SYSTEM VERSIONING``, TABLE_TYPE ``SYSTEM VERSIONED``) cannot be
synchronized: MariaDB logs the history row an UPDATE keeps as an inserted row of the table (old values,
``row_end`` set), which the destination would apply as a second current row (an "insert duplicate" conflict
stopped the direction when they were treated as base tables). The precheck, the schema sync and the full data
sync refuse them with the fix; the database's other tables, listed one by one, still sync
(docs/mysql-compatibility.md, issue 15)."""

from __future__ import annotations

import pytest
from syncing import make_direction, sql

from airflow_provider_dts.engine.precheck import FAIL, PASS, run_precheck
from airflow_provider_dts.engine.schema_sync import SchemaSyncError, sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync


def tables(server) -> list[tuple]:
    return sql(
        server,
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop' ORDER BY 1",
    )


def test_system_versioned_table_is_refused_with_its_fix(clean_pair, task_name):
    pair = clean_pair
    sql(
        pair.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.prices (id INT PRIMARY KEY, price DECIMAL(10,2)) WITH SYSTEM VERSIONING",
        "CREATE TABLE shop.plain (id INT PRIMARY KEY, v INT)",
        "INSERT INTO shop.prices VALUES (1, 1.50), (2, 2.50)",
        "UPDATE shop.prices SET price = 1.75 WHERE id = 1",
        "INSERT INTO shop.plain VALUES (1, 10)",
    )
    sql(pair.b, "CREATE DATABASE shop")
    d = make_direction(task_name, initial_schema_sync=True, initial_full_data_sync=True)

    report = run_precheck(d, pair.a.settings(), pair.b.settings())
    r = report.result("primary_keys")
    assert r.status == FAIL and not report.passed
    assert "system-versioned" in r.reason and "`shop`.`prices`" in r.reason and "plain" not in r.reason
    assert "ALTER TABLE <table> DROP SYSTEM VERSIONING" in r.fix and "objects" in r.fix

    with pytest.raises(SchemaSyncError) as e:
        sync_schema(d, pair.a.settings(), pair.b.settings())
    assert "system-versioned" in str(e.value) and "prices" in str(e.value)
    assert "Fix: remove them from the task's objects" in str(e.value) and "DROP SYSTEM VERSIONING" in str(e.value)
    assert tables(pair.b) == []  # refused before anything was created

    # initial_schema_sync off, the table made at the destination by hand: the copy refuses it too
    sql(pair.b, "CREATE TABLE shop.prices (id INT PRIMARY KEY, price DECIMAL(10,2)) WITH SYSTEM VERSIONING")
    copy_only = make_direction(task_name, objects=["shop.prices"], initial_full_data_sync=True)
    with pytest.raises(SchemaSyncError, match="system-versioned"):
        full_data_sync(copy_only, pair.a.settings(), pair.b.settings())
    assert sql(pair.b, "SELECT COUNT(*) FROM shop.prices FOR SYSTEM_TIME ALL") == [(0,)]

    # the other tables of the database, listed one by one, pass and sync
    sql(pair.b, "DROP TABLE shop.prices")
    others = make_direction(task_name, objects=["shop.plain"], initial_schema_sync=True, initial_full_data_sync=True)
    assert run_precheck(others, pair.a.settings(), pair.b.settings()).result("primary_keys").status == PASS
    sync_schema(others, pair.a.settings(), pair.b.settings())
    full_data_sync(others, pair.a.settings(), pair.b.settings())
    assert tables(pair.b) == [("plain", "BASE TABLE")]
    assert sql(pair.b, "SELECT * FROM shop.plain") == [(1, 10)]

    # the fix the message gives: without versioning the table passes the precheck
    sql(pair.a, "ALTER TABLE shop.prices DROP SYSTEM VERSIONING")
    assert run_precheck(d, pair.a.settings(), pair.b.settings()).result("primary_keys").status == PASS
