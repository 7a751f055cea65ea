"""The applier's renderer (values.make_literal) renders exactly what PyMySQL's own literal() renders."""

import datetime as dt
import decimal

import pymysql
import pytest

from airflow_provider_dts.engine.values import make_literal

VALUES = [
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    True,
    False,
    None,
    "",
    "plain",
    "it's",
    'q"uote',
    "back\\slash",
    "nul\0byte",
    "new\nline\r\x1a",
    "😀 中文",
    b"",
    b"\x00\xff'",
    bytearray(b"ab"),
    decimal.Decimal("0"),
    decimal.Decimal("-0.00"),
    decimal.Decimal("1E+2"),
    decimal.Decimal("1.5E-7"),
    decimal.Decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
    dt.datetime(2026, 1, 2, 3, 4, 5),
    dt.datetime(2026, 1, 2, 3, 4, 5, 6),
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(999, 1, 1, 0, 0, 0, 120000),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.date(2026, 2, 28),
    dt.date(1, 1, 1),
    dt.date(999, 9, 9),
    dt.timedelta(hours=-1, microseconds=5),
    1.5,
    -2.25e-300,
    float("1e300"),
    "0000-00-00",
]


@pytest.mark.parametrize("no_backslash_escapes", [False, True])
def test_fast_literals_equal_pymysql(no_backslash_escapes):
    conn = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")
    conn.server_status = (
        pymysql.constants.SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES if no_backslash_escapes else 0
    )
    lit = make_literal(conn)
    for v in VALUES:
        assert lit(v) == conn.literal(v), v
