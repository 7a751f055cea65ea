"""Pure tests of SQL literal rendering (the real-server round trips are in tests/integration)."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

import pytest

from airflow_provider_dts.engine.values import (
    ColumnInfo,
    format_timedelta,
    hex_literal,
    json_text,
    key_literal_sql,
    keyset_condition,
    literal_sql,
    quote_string,
    row_literal,
    row_literal_sql,
    sql_literal,
)


def test_none_bool_int_decimal():
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "1" and sql_literal(False) == "0"
    assert sql_literal(18446744073709551615) == "18446744073709551615"
    assert sql_literal(-9223372036854775808) == "-9223372036854775808"
    assert sql_literal(Decimal("1E-30")) == "0.000000000000000000000000000001"
    assert sql_literal(Decimal("-12.50")) == "-12.50"
    assert sql_literal(Decimal("1E+5")) == "100000"


def test_float_repr_round_trips_every_double_and_float():
    for x in (0.1, 1e300, 5e-324, -1.7976931348623157e308, 123456789.12345679):
        assert float(sql_literal(x)) == x
    single = struct.unpack("f", struct.pack("f", 3.4028234663852886e38))[0]
    text = sql_literal(single)
    assert struct.unpack("f", struct.pack("f", float(text)))[0] == single
    with pytest.raises(ValueError, match="cannot be stored"):
        sql_literal(float("nan"))
    with pytest.raises(ValueError, match="cannot be stored"):
        sql_literal(float("inf"))


def test_strings_are_escaped_and_keep_4_byte_characters():
    assert quote_string("a'b\"c\\d\x00e\nf\rg\x1ah") == "'a\\'b\"c\\\\d\\0e\\nf\\rg\\Zh'"
    assert sql_literal("😀𝄞") == "'😀𝄞'"
    assert sql_literal("") == "''"


def test_bytes_as_hex():
    assert sql_literal(b"\x00\xff'\\") == "X'00FF275C'"
    assert sql_literal(b"") == "X''"
    assert hex_literal(bytearray(b"\x01")) == "X'01'"


def test_temporal_values():
    assert sql_literal(dt.date(1000, 1, 1)) == "'1000-01-01'"
    assert sql_literal(dt.datetime(9, 2, 3, 4, 5, 6, 7)) == "'0009-02-03 04:05:06.000007'"
    assert sql_literal(dt.datetime(2024, 2, 29, 23, 59, 59)) == "'2024-02-29 23:59:59'"
    aware = dt.datetime(2024, 1, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert sql_literal(aware) == "'2024-01-01 00:00:00'"
    assert sql_literal(dt.time(23, 59, 59, 999000)) == "'23:59:59.999000'"
    assert sql_literal(dt.timedelta(hours=-838, minutes=-59, seconds=-59)) == "'-838:59:59'"
    assert sql_literal(dt.timedelta(milliseconds=-1)) == "'-00:00:00.001000'"
    assert format_timedelta(dt.timedelta(days=4, hours=4, seconds=15, microseconds=500000)) == "100:00:15.500000"


def test_set_json_bit_kinds():
    assert sql_literal({"z", "x"}) == "'x,z'"
    assert sql_literal(set()) == "''"
    assert sql_literal({b"k": [1, b"v", None]}) == '\'{"k": [1, "v", null]}\''
    assert sql_literal('{"a": 1}', "json") == "'{\"a\": 1}'"
    assert json_text(b"[1,  2]") == "[1,  2]"  # MariaDB JSON text kept verbatim
    assert sql_literal("1010", "bit") == "10"
    assert sql_literal(b"\x03\xff", "bit") == "1023"
    assert sql_literal(b"caf\xe9", "text") == "X'636166E9'"
    with pytest.raises(ValueError, match="not a BIT"):
        sql_literal("12", "bit")
    with pytest.raises(ValueError, match="cannot render"):
        sql_literal(object())


def test_row_literal():
    assert row_literal([1, None, "a"]) == "(1,NULL,'a')"
    assert row_literal(["1", b"\x01"], ["bit", "binary"]) == "(1,X'01')"


def test_column_kinds_and_server_expressions():
    f = ColumnInfo("f", "float")
    assert f.kind == "float" and "+0e0" in literal_sql(f)
    assert ColumnInfo("b", "char", charset="binary").kind == "binary"
    lat = ColumnInfo("na`me", "varchar", charset="latin1")
    # not utf8mb4: the column's own bytes in an introducer literal (no conversion, exact for every byte)
    assert literal_sql(lat) == "IFNULL(CONCAT('_latin1 X''',HEX(`na``me`),''''),'NULL')"
    assert literal_sql(ColumnInfo("g", "point")).startswith("IFNULL(CONCAT('X''',HEX(`g`)")
    assert key_literal_sql(ColumnInfo("e", "enum", charset="utf8mb4")) == "IFNULL(CONCAT(`e`+0),'NULL')"
    assert row_literal_sql([ColumnInfo("a", "int"), ColumnInfo("t", "text", charset="utf8mb4")]) == (
        "CAST(CONCAT('(',IFNULL(CONCAT(`a`),'NULL'),',',QUOTE(`t`),')') AS BINARY)"
    )
    with pytest.raises(ValueError):
        row_literal_sql([])


def test_keyset_condition_expands_composite_keys():
    a, b = ColumnInfo("a", "int"), ColumnInfo("b", "varchar", charset="utf8mb4")
    assert keyset_condition([a], ["5"]) == "(`a` > 5)"
    assert keyset_condition([a, b], ["5", "'x'"]) == "(`a` > 5) OR (`a` = 5 AND `b` > 'x')"
    with pytest.raises(ValueError):
        keyset_condition([a, b], ["5"])


def test_load_data_plan_routes_special_types_through_variables():
    from airflow_provider_dts.engine.values import load_data_plan, tsv_field_sql

    cols = [
        ColumnInfo("id", "int"),
        ColumnInfo("b", "bit"),
        ColumnInfo("g", "geometry"),
        ColumnInfo("t", "varchar", charset="latin1"),
        ColumnInfo("f", "float"),
    ]
    plan = load_data_plan(cols)
    assert plan.targets == "(`id`, @dts_v1, @dts_v2, `t`, `f`)"
    assert plan.set_clause == " SET `b`=CAST(@dts_v1 AS UNSIGNED), `g`=UNHEX(@dts_v2)"
    assert plan.select_sql.startswith("CAST(CONCAT(IFNULL(CONCAT(`id`),'\\\\N'),'\\t',")
    assert plan.select_sql.endswith(",'\\n') AS BINARY)")
    expr, set_expr = tsv_field_sql(ColumnInfo("t", "varchar", "varchar(40)", charset="latin1"), "@x")
    # short text keeps its own bytes (no CONVERT) and escapes the escape character, tab and newline
    assert "CAST(`t` AS BINARY)" in expr and "CONVERT" not in expr and set_expr is None
    # TEXT/BLOB types and long VARCHAR go as hex (linear cost whatever the size), still in their own bytes
    for col in (
        ColumnInfo("t", "text", "text", charset="latin1"),
        ColumnInfo("v", "varchar", "varchar(5000)"),
        ColumnInfo("b", "varbinary", "varbinary(10)"),
    ):
        assert tsv_field_sql(col, "@x") == (f"IFNULL(HEX(`{col.name}`),'\\\\N')", "UNHEX(@x)")
    assert tsv_field_sql(ColumnInfo("j", "json"), "@x")[1] == "CONVERT(UNHEX(@x) USING utf8mb4)"
    stmt = plan.statement("d`b", "t'x", "/tmp/a'b")
    assert stmt.startswith("LOAD DATA LOCAL INFILE '/tmp/a\\'b' INTO TABLE `d``b`.`t'x` CHARACTER SET binary")
    with pytest.raises(ValueError):
        load_data_plan([])


def test_library_decoded_zero_timestamp_and_year_render_as_zero():
    # python-mysql-replication decodes the zero TIMESTAMP as the epoch and YEAR 0000 as 1900
    assert sql_literal(dt.datetime(1970, 1, 1), "timestamp") == "'0000-00-00 00:00:00'"
    assert sql_literal(dt.datetime(1970, 1, 1), "temporal") == "'1970-01-01 00:00:00'"
    assert sql_literal(1900, "year") == "0" and sql_literal(1901, "year") == "1901"
