"""The engine's row decoder (engine/rowdecode.py) gives exactly the library's values, for every type.

The same binlog range is decoded twice on a real server: by python-mysql-replication's own decoder and by
the engine's per-table plan. Rows (values, their Python types and none-sources) must be identical, and
the fast path must actually have decoded them (no silent fallback to the library).
"""

from __future__ import annotations

import pytest
from helpers import global_variables
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.row_event import DeleteRowsEvent, RowsEvent, UpdateRowsEvent, WriteRowsEvent
from typesample import create_type_table, insert_type_rows, permissive_session

from airflow_provider_dts.engine import binlog_patches, rowdecode
from airflow_provider_dts.engine.binlog import stream_settings
from airflow_provider_dts.engine.model import position_le

EXTRA_TABLE = """CREATE TABLE shop.more (
  id INT PRIMARY KEY,
  d1 DECIMAL(1,0), d55 DECIMAL(5,5), d189 DECIMAL(18,9), d1910 DECIMAL(19,10), d300 DECIMAL(30,0),
  d104 DECIMAL(10,4) UNSIGNED,
  t1 DATETIME(1), t2 DATETIME(2), t3 DATETIME(3), t4 DATETIME(4), t5 DATETIME(5), t0 DATETIME,
  c255 CHAR(255) CHARACTER SET utf8mb4, v100 VARCHAR(100) CHARACTER SET utf8mb4, v20 VARCHAR(20) CHARACTER SET ascii,
  tt TINYTEXT, mt MEDIUMTEXT, lb LONGBLOB, mb MEDIUMBLOB, tb TINYBLOB,
  cp VARCHAR(30) CHARACTER SET cp1251, u16 VARCHAR(10) CHARACTER SET utf16,
  f FLOAT, dd DOUBLE, n1 INT, n2 INT, n3 INT, n4 INT, n5 INT, n6 INT, n7 INT, n8 INT, n9 INT,
  ts0 TIMESTAMP NULL DEFAULT NULL, ts1 TIMESTAMP(1) NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  ts5 TIMESTAMP(5) NULL DEFAULT NULL, tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6),
  y YEAR
) DEFAULT CHARSET=utf8mb4"""

EXTRA_ROWS = [
    "(1, 9, 0.12345, 123456789.123456789, -123456789.0123456789, 123456789012345678901234567890, 999999.9999,"
    " '2020-02-29 23:59:59.9', '1000-01-01 00:00:00.01', '9999-12-31 23:59:59.999', '2001-01-01 01:01:01.0001',"
    " '2002-02-02 02:02:02.00001', '0000-00-00 00:00:00', 'ü' , 'long é', 'ascii', 'tiny', 'medium',"
    " X'00FF00', X'', X'7F', 'Привет', 'hé', 1.5, -2.25e-300, 1, NULL, 3, NULL, 5, NULL, 7, NULL, 9,"
    " '2038-01-19 03:14:07', '1970-01-01 00:00:01.9', '2020-02-29 12:00:00.123', '2001-09-09 01:46:40.00001',"
    " '-838:59:59', '-00:00:00.1', '-01:00:00.01', '12:34:56.7891', '-00:00:01.00001', '838:59:59.000000', 1901)",
    "(2, -9, -0.00001, -0.000000001, 0.0000000001, -1, 0, '2020-01-00 10:00:00.5', NULL, NULL,"
    " '2001-01-01 00:00:00.0000', '2002-02-02 02:02:02.99999', '2021-03-04 05:06:07', REPEAT('x', 255),"
    " REPEAT('é', 100), '', '', REPEAT('m', 70000), REPEAT(X'AB', 70000), NULL, NULL, '', '',"
    " -0.0, 0, NULL, 2, NULL, 4, NULL, 6, NULL, 8, NULL,"
    " '0000-00-00 00:00:00', '1999-12-31 23:59:59.5', '2000-01-01 00:00:00.999', '1980-06-15 08:30:00.99999',"
    " '00:00:00', '00:00:00.9', '-12:00:00.5', '-00:00:00.0001', '123:00:00.99999', '-838:59:58.999999', 0)",
    "(3, 0, 0, 0, 0, 0, 0.0001, '1970-01-01 00:00:00.1', '2038-01-19 03:14:07.99', '2020-00-00 00:00:00.000',"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2155)",
]


@pytest.fixture(autouse=True, scope="module")
def _engine_decoders():
    binlog_patches.install()  # the engine's decoders and value fixes, as a reader has them


def _sql(server, *statements):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            permissive_session(cur)
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def _position(server):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            return row[0], int(row[1])
    finally:
        conn.close()


def _decode(server, start, end_file_pos):
    reader = BinLogStreamReader(
        connection_settings=stream_settings(server.settings()),
        server_id=0x6000_0001,
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=False,
        enable_logging=False,
        only_schemas=["shop"],
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    )
    out = []
    try:
        for ev in reader:
            if not position_le((reader.log_file, reader.log_pos), end_file_pos):
                break
            for row in ev.rows:
                out.append((type(ev).__name__, ev.table, repr(row)))
    finally:
        reader.close()
    return out


def _decode_by_the_library(server, start, end_file_pos):
    """The same range decoded by python-mysql-replication's own row decoder."""
    rowdecode.uninstall()
    try:
        return _decode(server, start, end_file_pos)
    finally:
        rowdecode.install()


def _count_whole_row_fallbacks(monkeypatch) -> list:
    """A list that gets an entry each time the engine's decoder hands a whole row image to the library."""
    fallbacks: list = []
    original = rowdecode._original_read_column_data
    monkeypatch.setattr(
        rowdecode, "_original_read_column_data", lambda *a, **k: fallbacks.append(1) or original(*a, **k)
    )
    return fallbacks


@pytest.fixture
def written_range(clean_pair):
    server = clean_pair.a
    conn = server.root_connect()
    try:
        create_type_table(conn, "shop")
        start = _position(server)
        insert_type_rows(conn, "shop")
    finally:
        conn.close()
    _sql(server, EXTRA_TABLE.replace("shop.more", "shop.more"))
    _sql(
        server,
        "INSERT INTO shop.more VALUES " + ",".join(EXTRA_ROWS),
        "UPDATE shop.every_type SET vc = CONCAT(IFNULL(vc, ''), 'u'), dec_money = -dec_money",
        "UPDATE shop.more SET d189 = -d189, t3 = '2000-01-01 00:00:00.5', mt = 'short', tm4 = '-00:00:00.5'",
        "DELETE FROM shop.every_type WHERE id % 2 = 0",
        "DELETE FROM shop.more WHERE id = 2",
    )
    return server, start, _position(server)


def test_engine_decoder_gives_the_library_values_for_every_type(written_range, monkeypatch):
    server, start, end = written_range
    expected = _decode_by_the_library(server, start, end)
    fallbacks = _count_whole_row_fallbacks(monkeypatch)
    by_library = set()  # column types whose values the plan handed to the library's reader
    read_value = RowsEvent._RowsEvent__read_values_name
    monkeypatch.setattr(
        RowsEvent,
        "_RowsEvent__read_values_name",
        lambda self, column, *a: by_library.add(column.type) or read_value(self, column, *a),
    )
    got = _decode(server, start, end)
    assert len(expected) > 20
    assert {t for _, t, _ in expected} == {"every_type", "more"}
    assert got == expected
    assert fallbacks == []  # every row went through the engine's plan
    # only the types the plan leaves to the library, and zero/invalid dates (MariaDB's JSON is a LONGTEXT)
    assert {FIELD_TYPE.BIT, FIELD_TYPE.ENUM, FIELD_TYPE.SET, FIELD_TYPE.GEOMETRY} <= by_library
    assert by_library <= {
        FIELD_TYPE.BIT,
        FIELD_TYPE.ENUM,
        FIELD_TYPE.SET,
        FIELD_TYPE.JSON,
        FIELD_TYPE.GEOMETRY,
        FIELD_TYPE.DATE,
        FIELD_TYPE.DATETIME2,
    }


def test_rows_with_some_columns_absent_go_to_the_library(clean_pair, monkeypatch):
    """A MINIMAL row image (not what the precheck allows, but possible per session) is decoded by the
    library itself, with the same result."""
    server = clean_pair.a
    _sql(server, "CREATE DATABASE shop", EXTRA_TABLE, "INSERT INTO shop.more VALUES " + ",".join(EXTRA_ROWS))
    start = _position(server)
    _sql(
        server,
        "SET SESSION binlog_row_image='MINIMAL'",
        "UPDATE shop.more SET d189 = 1.5, v100 = 'minimal' WHERE id IN (1, 3)",
        "DELETE FROM shop.more WHERE id = 2",
    )
    end = _position(server)
    expected = _decode_by_the_library(server, start, end)
    fallbacks = _count_whole_row_fallbacks(monkeypatch)
    got = _decode(server, start, end)
    assert [kind for kind, _, _ in got] == ["UpdateRowsEvent", "UpdateRowsEvent", "DeleteRowsEvent"]
    assert got == expected
    assert len(fallbacks) == 5  # two before and two after images of the updates, one delete image


def test_table_maps_without_column_names_go_to_the_library(clean_pair):
    """binlog_row_metadata=MINIMAL (the precheck refuses it, but a server may change): no names in the table
    map, so every row of such a table is the library's (which looks the names up), event after event."""
    server = clean_pair.a
    _sql(server, "CREATE DATABASE shop", "CREATE TABLE shop.small (id INT PRIMARY KEY, v VARCHAR(20), n INT)")
    with global_variables(server, binlog_row_metadata="MINIMAL"):
        _sql(server, "FLUSH BINARY LOGS")  # new sessions and a new log: table maps without names
        start = _position(server)
        for i in range(3):
            _sql(server, f"INSERT INTO shop.small VALUES ({i}, 'v{i}', NULL)")
        _sql(server, "UPDATE shop.small SET n = 10")
        end = _position(server)
    expected = _decode_by_the_library(server, start, end)
    got = _decode(server, start, end)
    assert len(got) == 6 and got == expected
