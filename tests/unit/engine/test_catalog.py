"""catalog.is_generated_extra on the EXTRA values MySQL 5.7 / 8.x and MariaDB actually report."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.catalog import is_generated_extra


@pytest.mark.parametrize(
    "extra",
    [
        "VIRTUAL GENERATED",
        "STORED GENERATED",
        "PERSISTENT GENERATED",
        "virtual generated",
        b"STORED GENERATED",
        "VIRTUAL GENERATED INVISIBLE",
    ],
)
def test_generated_columns(extra):
    assert is_generated_extra(extra)


@pytest.mark.parametrize(
    "extra",
    [
        # MySQL 8: expression defaults are ordinary columns that must be written and verified
        "DEFAULT_GENERATED",
        "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
        "default_generated",
        # MariaDB / MySQL: other writable columns
        "on update current_timestamp()",
        "on update CURRENT_TIMESTAMP",
        "auto_increment",
        "INVISIBLE",
        "",
        None,
    ],
)
def test_writable_columns(extra):
    assert not is_generated_extra(extra)


class _Cursor:
    """Answers information_schema queries with MySQL 8.0's rows for
    ``CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    d DATETIME DEFAULT (NOW()), g INT AS (id * 2) STORED, v INT AS (id + 1) VIRTUAL)``."""

    COLUMNS = [
        ("id", "", "NO", "int"),
        ("ts", "DEFAULT_GENERATED on update CURRENT_TIMESTAMP", "YES", "timestamp"),
        ("d", "DEFAULT_GENERATED", "YES", "datetime"),
        ("g", "STORED GENERATED", "YES", "int"),
        ("v", "VIRTUAL GENERATED", "YES", "int"),
    ]

    def execute(self, sql, args=None):
        self.sql = sql

    def fetchone(self):
        return (0,)  # no foreign keys

    def fetchall(self):
        if "STATISTICS" in self.sql:
            return [("PRIMARY", "id", None)]  # INDEX_NAME, COLUMN_NAME, SUB_PART
        # COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, IS_NULLABLE, EXTRA
        return [(n, t, t, None, nl, e) for n, e, nl, t in self.COLUMNS]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Conn:
    def cursor(self):
        return _Cursor()


def test_applier_writes_mysql8_expression_default_columns():
    from airflow_provider_dts.engine.catalog import load_table

    info = load_table(_Cursor(), "shop", "t")
    assert info.writable == {"id", "ts", "d"}


def test_verifier_compares_mysql8_expression_default_columns():
    from airflow_provider_dts.engine.verify import table_columns

    assert list(table_columns(_Conn(), "shop", "t")) == ["id", "ts", "d"]


class _FunctionalKeyCursor(_Cursor):
    """MySQL 8 reports a functional key part with COLUMN_NAME NULL: ``UNIQUE KEY uq ((lower(email)))``."""

    def fetchall(self):
        if "STATISTICS" in self.sql:
            return [("PRIMARY", "id", None), ("uq", None, None)]
        return super().fetchall()


def test_a_functional_unique_key_keeps_the_applier_off_the_primary_key_only_paths():
    from airflow_provider_dts.engine.catalog import load_table

    plain = load_table(_Cursor(), "shop", "t")
    assert plain.only_primary_unique
    info = load_table(_FunctionalKeyCursor(), "shop", "t")
    # the expression's values are in no column: rows are not reordered or upserted by primary key alone
    assert not info.only_primary_unique
    assert info.match_key == ("id",) and info.unique_keys == [("id",)]
