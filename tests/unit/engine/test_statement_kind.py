"""Which binlog Query statements are statement-logged row changes (issue 9, cause 8): pure text rules."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.binlog import statement_kind


@pytest.mark.parametrize(
    "query, kind",
    [
        ("INSERT INTO t VALUES (1)", "dml"),
        ("  /* app */ update t set a=1", "dml"),
        ("-- c\nDELETE FROM t", "dml"),
        ("REPLACE INTO t VALUES (1)", "dml"),
        ("LOAD DATA LOCAL INFILE '/x' IGNORE INTO TABLE `shop`.`t`", "dml"),
        ("SELECT `shop`.`f`(2)", "call"),  # how MariaDB logs SELECT f(), DO f() and SET @x = f()
        ("(SELECT f(1))", "call"),
        ("DO f(1)", "call"),
        ("CALL p()", "call"),
        ("BEGIN", None),
        ("SAVEPOINT a", None),
        ("CREATE TABLE t (a INT)", None),
        ("ALTER TABLE t ADD b INT", None),
        ("SET PASSWORD FOR `u`@`h`=PASSWORD('x')", None),  # account statements are logged as themselves
        ("GRANT SELECT ON *.* TO u", None),
        ("FLUSH PRIVILEGES", None),
        ("", None),
    ],
)
def test_statement_kind(query, kind):
    assert statement_kind(query) == kind
