"""The code's flavour-specific logic run on Oracle MySQL's documented values, without a server.

Oracle MySQL cannot be installed on the machines these tests run on (MariaDB 10.11 only), so every value below
is taken from MySQL's documentation (URL in a comment) or from a public test vector, and fed to the pure
functions that decide by flavour and version. ``docs/mysql-compatibility.md`` maps each test to the code it
covers. A test marked ``xfail(strict=True)`` states what MySQL's documentation requires where the code does not
do it yet (listed under "Known wrong or unverified for MySQL" in that document): it turns into a failure the
day the code is fixed, so the mark must then be removed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pymysql
import pytest
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.event import GtidEvent, QueryEvent, XidEvent
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import TableMapEvent, WriteRowsEvent

from airflow_provider_dts.engine import binlog_patches, rowdecode
from airflow_provider_dts.engine.binlog import (
    COMPRESSED_EVENT_TYPES,
    BinlogReader,
    StreamResync,
    atomic_ctas_statement,
    create_if_not_exists,
    is_create_table,
    normalize_value,
)
from airflow_provider_dts.engine.catalog import is_generated_extra, load_table
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.ddl import parse_ddl
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.precheck import Grants, parse_grant
from airflow_provider_dts.engine.precheck.grants import (
    _source_global_requirements,
    required_grants,
    routine_visibility_gap,
)
from airflow_provider_dts.engine.servers import (
    ConnectionSettings,
    ServerInfo,
    binlog_position,
    parse_version,
    server_info,
)
from airflow_provider_dts.engine.snapshot.position import take_snapshots
from airflow_provider_dts.engine.triggers import TriggerDef, TriggerGuardError, _replace_trigger
from airflow_provider_dts.engine.values import json_text


def _info(flavour: str, version: tuple[int, int, int], **variables: str) -> ServerInfo:
    return ServerInfo(flavour, version, ".".join(map(str, version)), dict(variables), "dts@%")


def _direction(**over: Any) -> SyncDirection:
    d: dict[str, Any] = {"task_name": "t", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    d.update(over)
    return SyncDirection.from_dict(d)


# ----------------------------------------------------------------------------------------- version and flavour


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("8.0.36", (8, 0, 36)),
        ("8.4.3", (8, 4, 3)),
        ("5.7.44-log", (5, 7, 44)),
        ("8.0.36-28", (8, 0, 36)),  # Percona Server for MySQL
        ("9.1.0", (9, 1, 0)),
        ("10.11.6-MariaDB-0+deb12u1-log", (10, 11, 6)),
    ],
)
def test_version_strings_of_both_flavours(text, version):
    assert parse_version(text) == version


@pytest.mark.parametrize(
    ("flavour", "version", "ok"),
    [
        ("mysql", (5, 6, 51), False),
        ("mysql", (5, 7, 8), True),
        ("mysql", (8, 0, 36), True),
        ("mysql", (8, 4, 0), True),
        ("mysql", (9, 1, 0), True),
        ("mariadb", (10, 3, 39), False),
        ("mariadb", (10, 4, 0), True),
        ("mariadb", (11, 4, 2), True),
    ],
)
def test_supported_versions(flavour, version, ok):
    assert _info(flavour, version).supported()[0] is ok


# SHOW BINARY LOG STATUS "is added in MySQL 8.2.0 as a replacement for SHOW MASTER STATUS"
# (https://dev.mysql.com/doc/refman/8.1/en/show-binary-log-status.html); 8.4 no longer supports SHOW MASTER
# STATUS (https://dev.mysql.com/doc/mysql/en/show-master-status.html). MariaDB keeps SHOW MASTER STATUS (alias
# SHOW BINLOG STATUS from 10.5.2, https://mariadb.com/kb/en/show-binlog-status).
@pytest.mark.parametrize(
    ("flavour", "version", "sql"),
    [
        ("mysql", (5, 7, 44), "SHOW MASTER STATUS"),
        ("mysql", (8, 0, 40), "SHOW MASTER STATUS"),
        ("mysql", (8, 1, 0), "SHOW MASTER STATUS"),
        ("mysql", (8, 2, 0), "SHOW BINARY LOG STATUS"),
        ("mysql", (8, 4, 3), "SHOW BINARY LOG STATUS"),
        ("mysql", (9, 1, 0), "SHOW BINARY LOG STATUS"),
        ("mariadb", (11, 4, 2), "SHOW MASTER STATUS"),
    ],
)
def test_binary_log_status_statement_per_version(flavour, version, sql):
    assert _info(flavour, version).binlog_status_sql == sql


class _StatusCursor:
    """Answers every statement with the documented SHOW BINARY LOG STATUS row (the same columns as SHOW MASTER
    STATUS): https://dev.mysql.com/doc/refman/en/show-binary-log-status.html"""

    ROW = ("source-bin.000002", 1307, "test", "manual, mysql", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5")

    def __init__(self, log: list[str]):
        self.log = log

    def execute(self, sql, args=None):
        self.log.append(sql)

    def fetchone(self):
        return self.ROW

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _StatusConn:
    def __init__(self):
        self.log: list[str] = []

    def cursor(self):
        return _StatusCursor(self.log)


def test_binlog_position_reads_file_and_position_of_mysql_84():
    conn = _StatusConn()
    assert binlog_position(conn, _info("mysql", (8, 4, 3))) == ("source-bin.000002", 1307)
    assert conn.log == ["SHOW BINARY LOG STATUS"]


def test_mysql_snapshot_holds_the_global_read_lock_only_while_snapshots_start():
    """MySQL has no binlog_snapshot_% status variables (a MariaDB/Percona extension,
    https://mariadb.com/kb/en/enhancements-for-start-transaction-with-consistent-snapshot/): FLUSH TABLES WITH
    READ LOCK (RELOAD, https://dev.mysql.com/doc/refman/8.0/en/flush.html), every snapshot, the position, UNLOCK."""
    a, b = _StatusConn(), _StatusConn()
    b.log = a.log  # one statement log for both connections, in order
    position, held = take_snapshots([a, b], _info("mysql", (8, 4, 3)))
    assert position == ("source-bin.000002", 1307) and held == [a, b]
    assert a.log == [
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "FLUSH TABLES WITH READ LOCK",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        "SHOW BINARY LOG STATUS",
        "UNLOCK TABLES",
    ]


class _Mysql8VariablesCursor:
    """MySQL 8.0 removed INFORMATION_SCHEMA.GLOBAL_VARIABLES (https://dev.mysql.com/worklog/task/?id=8057): a
    SELECT from it fails with ER_UNKNOWN_TABLE (1109); SHOW GLOBAL VARIABLES still answers."""

    def execute(self, sql, args=None):
        self.sql = sql
        if "information_schema.GLOBAL_VARIABLES" in sql:
            raise pymysql.err.OperationalError(1109, "Unknown table 'GLOBAL_VARIABLES' in information_schema")

    def fetchall(self):
        return [("version", "8.4.3"), ("version_comment", "MySQL Community Server - GPL"), ("gtid_mode", "ON")]

    def fetchone(self):
        return ("8.4.3", "dts@%")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_server_facts_are_read_from_mysql_8():
    info = server_info(SimpleNamespace(cursor=_Mysql8VariablesCursor))
    assert info.flavour == "mysql" and info.version == (8, 4, 3) and info.gtid_enabled


# ----------------------------------------------------------------------------------------- information_schema


# MySQL 8.0 COLUMNS.EXTRA (https://dev.mysql.com/doc/refman/8.0/en/information-schema-columns-table.html):
# DEFAULT_GENERATED for expression defaults, VIRTUAL GENERATED / STORED GENERATED, INVISIBLE (8.0.23+).
@pytest.mark.parametrize(
    ("extra", "generated"),
    [
        ("DEFAULT_GENERATED", False),
        ("DEFAULT_GENERATED on update CURRENT_TIMESTAMP", False),
        ("DEFAULT_GENERATED INVISIBLE", False),
        ("auto_increment INVISIBLE", False),
        ("VIRTUAL GENERATED", True),
        ("STORED GENERATED", True),
        ("STORED GENERATED INVISIBLE", True),
    ],
)
def test_mysql_8_extra_values(extra, generated):
    assert is_generated_extra(extra) is generated


class _GipkCursor:
    """information_schema rows of a table created with sql_generate_invisible_primary_key=ON (MySQL 8.0.30+):
    ``my_row_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT INVISIBLE``, PRIMARY KEY (my_row_id), shown while
    show_gipk_in_create_table_and_information_schema=ON (its default):
    https://dev.mysql.com/doc/refman/8.4/en/create-table-gipks.html"""

    def execute(self, sql, args=None):
        self.sql = sql

    def fetchall(self):
        if "STATISTICS" in self.sql:
            return [("PRIMARY", "my_row_id", None)]
        return [
            ("my_row_id", "bigint", "bigint unsigned", None, "NO", "auto_increment INVISIBLE"),
            ("c1", "varchar", "varchar(50)", "utf8mb4", "YES", ""),
            ("c2", "int", "int", None, "YES", ""),
        ]

    def fetchone(self):
        return (0,)


def test_a_generated_invisible_primary_key_is_the_row_key_and_is_written():
    info = load_table(_GipkCursor(), "shop", "auto_1")
    assert info is not None
    assert info.match_key == ("my_row_id",) and info.chunk_key == ("my_row_id",)
    assert "my_row_id" in info.writable and info.column("my_row_id").invisible
    assert info.row_key_problem() is None


# ----------------------------------------------------------------------------------------- privileges

# SHOW GRANTS of a MySQL administrator (static privileges, then the dynamic ones on a line of their own, comma
# separated without spaces): https://docs.oracle.com/en-us/iaas/mysql-database/doc/default-mysql-privileges.html
MYSQL_ADMIN = [
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, "
    "CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, "
    "CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, CREATE ROLE, DROP ROLE ON *.* TO `User001`@`%` "
    "WITH GRANT OPTION",
    "GRANT APPLICATION_PASSWORD_ADMIN,AUDIT_ADMIN,BACKUP_ADMIN,CONNECTION_ADMIN,FLUSH_OPTIMIZER_COSTS,"
    "FLUSH_STATUS,FLUSH_TABLES,FLUSH_USER_RESOURCES,REPLICATION_APPLIER,ROLE_ADMIN,SET_ANY_DEFINER,SHOW_ROUTINE,"
    "TRANSACTION_GTID_TAG,XA_RECOVER_ADMIN ON *.* TO `User001`@`%`",
]


def test_mysql_administrator_grants_are_parsed():
    g = Grants(MYSQL_ADMIN)
    assert g.has("REPLICATION SLAVE") and g.has("REPLICATION CLIENT") and g.has("SHOW_ROUTINE")
    assert g.has("SET_ANY_DEFINER") and g.has("TRIGGER", "shop") and g.has("LOCK TABLES", "shop")
    # that account has no RELOAD, which FLUSH TABLES WITH READ LOCK needs (https://dev.mysql.com/doc/refman/8.0/en/flush.html;
    # WL#14303 lets FLUSH_TABLES run plain FLUSH TABLES only): the precheck asks for it when data is copied
    assert not g.has("RELOAD")
    assert g.missing(_source_global_requirements(_info("mysql", (8, 4, 3)), _direction())) == ["RELOAD"]
    assert (
        g.missing(_source_global_requirements(_info("mysql", (8, 4, 3)), _direction(initial_full_data_sync=False)))
        == []
    )
    assert routine_visibility_gap(_direction(), _info("mysql", (8, 4, 3)), g) is None


def test_mysql_role_grant_lines_grant_no_object_privilege():
    # SHOW GRANTS lists granted roles as GRANT `role`@`host` TO `user`@`host`:
    # https://dev.mysql.com/doc/refman/8.0/en/show-grants.html
    assert parse_grant("GRANT `app_read`@`%`,`app_write`@`%` TO `dts`@`%`") is None


def test_mysql_reader_grants_per_version():
    """The least-privilege source grants (REPLICATION SLAVE + REPLICATION CLIENT + RELOAD on MySQL; SHOW_ROUTINE
    from 8.0.20, SELECT on mysql.proc before 8.0: https://dev.mysql.com/doc/refman/8.0/en/show-create-procedure.html)."""
    d = _direction()
    g84 = required_grants(d, "source", flavour="mysql", version=(8, 4, 3))
    assert g84[0].startswith("GRANT REPLICATION SLAVE, REPLICATION CLIENT, RELOAD, SHOW_ROUTINE ON *.*")
    g57 = required_grants(d, "source", flavour="mysql", version=(5, 7, 44))
    assert "GRANT SELECT ON `mysql`.`proc` TO 'dts'@'%';" in g57
    mariadb = required_grants(d, "source", flavour="mariadb", version=(10, 11, 6))
    assert mariadb[0].startswith("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.*")
    assert all(
        Grants(required_grants(d, "source", flavour="mysql", version=v)).missing(
            _source_global_requirements(_info("mysql", v), d)
        )
        == []
        for v in ((5, 7, 44), (8, 0, 36), (8, 4, 3))
    )


# ----------------------------------------------------------------------------------------- binlog events and GTIDs


def test_compressed_event_types_of_both_flavours_are_refused():
    # MySQL 8.0.20+: a compressed transaction is one Transaction_payload_event, type 40
    # (https://dev.mysql.com/doc/refman/8.0/en/binary-log-transaction-compression.html); MariaDB:
    # QUERY_COMPRESSED_EVENT 0xA5 and the *_ROWS_COMPRESSED_EVENT(_V1) types 0xA6..0xAB
    assert 40 in COMPRESSED_EVENT_TYPES
    assert set(range(0xA5, 0xAC)) <= COMPRESSED_EVENT_TYPES


def test_mysql_gtid_of_a_gtid_event():
    # "GTID = source_id:transaction_id", e.g. 3E11FA47-71CA-11E1-9E33-C80AA9429562:23
    # (https://dev.mysql.com/doc/en/replication-gtids-concepts.html); the checkpoint keeps it as the library
    # prints it (lower case), in checkpoint.gtid VARCHAR(255)
    ev = object.__new__(GtidEvent)
    ev.sid = bytes.fromhex("3E11FA4771CA11E19E33C80AA9429562")
    ev.gno = 23
    assert ev.gtid == "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
    assert len("3e11fa47-71ca-11e1-9e33-c80aa9429562:" + str(2**63 - 1)) <= 255


# ----------------------------------------------------------------------------------------- DDL as MySQL logs it


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        # MySQL writes DROP TABLE with a trailing comment (https://dev.mysql.com/doc/refman/8.0/en/drop-table.html
        # "DROP TABLE ... /* generated by server */" in the binary log)
        ("DROP TABLE `t1` /* generated by server */", "DROP TABLE"),
        # version-conditional comments of SHOW CREATE TABLE / mysqldump output
        (
            "CREATE TABLE `t2` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB "
            "/*!80016 DEFAULT ENCRYPTION='N' */",
            "CREATE TABLE",
        ),
        ("ALTER TABLE `t1` ADD COLUMN `c` int /*!80023 INVISIBLE */", "ALTER TABLE"),
    ],
)
def test_mysql_ddl_text_is_recognised(statement, kind):
    parsed = parse_ddl(statement)
    assert parsed is not None and parsed.kind == kind


# MySQL 8.0.21+ logs a row-based CREATE TABLE ... SELECT as ONE transaction (WL#13355,
# https://dev.mysql.com/doc/refman/8.0/en/replication-features-create-select.html): Gtid, a Query event with the
# CREATE TABLE and MySQL's internal START TRANSACTION clause, the table map and rows, Xid - no BEGIN. The reader
# runs on such an event sequence (the library's event classes, built without a server).


def _event(cls: type, pos: int, **attrs: Any) -> Any:
    ev = object.__new__(cls)
    ev.packet = SimpleNamespace(log_pos=pos)
    ev.timestamp = 1_700_000_000
    for k, v in attrs.items():
        setattr(ev, k, v)
    return ev


def _ctas_events(table: str, rows: int, at: int = 0) -> list[Any]:
    """The events of one such transaction, ``at`` bytes further into the binlog file."""
    gtid = _event(GtidEvent, at + 200, sid=bytes.fromhex("3E11FA4771CA11E19E33C80AA9429562"), gno=7)
    create = f"CREATE TABLE `{table}` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) START TRANSACTION"
    events = [gtid, _event(QueryEvent, at + 300, query=create, schema=b"shop")]
    if rows:
        events.append(_event(TableMapEvent, at + 350, schema="shop", table=table))
        write = _event(WriteRowsEvent, at + 400, schema="shop", table=table, primary_key="id", flags=0)
        write.columns = [SimpleNamespace(name="id", type=FIELD_TYPE.LONG)]
        write._RowsEvent__rows = [{"values": {"id": i}, "none_sources": {}} for i in range(rows)]
        events.append(write)
    events.append(_event(XidEvent, at + 450))
    return events


def _read(events: list[Any], **direction: Any) -> tuple[list[Any], BaseException | None]:
    """Transactions the reader yields for ``events`` (then the exception that ended it)."""
    reader = BinlogReader(_direction(**direction), ConnectionSettings(), ("binlog.000001", 4))
    stream = iter(events)
    reader._open = lambda: SimpleNamespace(fetchone=lambda: next(stream, None), close=lambda: None)  # type: ignore[method-assign]
    got: list[Any] = []
    try:
        for txn in reader.transactions():
            got.append(txn)
    except Exception as e:  # StreamResync at the end of the events, or what the reader raised
        return got, e
    return got, None


def test_mysql_atomic_create_table_select_is_its_create_table_then_its_rows():
    got, err = _read(_ctas_events("copy", rows=3) + _ctas_events("later", rows=0, at=1000))
    assert isinstance(err, StreamResync) and "stream ended" in str(err)  # the end of the events, no resync before
    start, after_first, after_second = ("binlog.000001", 4), ("binlog.000001", 450), ("binlog.000001", 1450)
    gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"
    assert [(t.start_position, t.end_position, t.gtid, t.ddl, len(t.changes)) for t in got] == [
        # the CREATE TABLE first, standalone, not moving the position (its rows are not applied yet)
        (start, start, None, ("shop", _ctas_create("copy", if_not_exists=True)), 0),
        (start, after_first, gtid, None, 3),  # then the rows, to the commit
        (after_first, after_first, None, ("shop", _ctas_create("later", if_not_exists=True)), 0),
        (after_first, after_second, gtid, None, 0),
    ]
    assert [c.after for c in got[1].changes] == [{"id": 0}, {"id": 1}, {"id": 2}]


def test_create_table_select_of_an_unselected_table_keeps_only_its_statement():
    got, err = _read(_ctas_events("other", rows=2), objects=["shop.copy"])
    assert isinstance(err, StreamResync) and "stream ended" in str(err)
    assert [(t.ddl is not None, len(t.changes)) for t in got] == [(True, 0), (False, 0)]  # ddl.py skips the DDL


def _ctas_create(table: str, if_not_exists: bool = False) -> str:
    clause = " IF NOT EXISTS" if if_not_exists else ""
    return f"CREATE TABLE{clause} `{table}` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n)"


@pytest.mark.parametrize(
    ("query", "create"),
    [
        (
            "CREATE TABLE `t2` (\n  `a` int DEFAULT NULL\n) START TRANSACTION",
            "CREATE TABLE `t2` (\n  `a` int DEFAULT NULL\n)",
        ),
        ("create table s.t (a int) /* c */ start transaction", "create table s.t (a int) /* c */"),
        ("CREATE TABLE t (a int)", None),
        ("CREATE TABLE t (a int) COMMENT 'START TRANSACTION'", None),
        ("START TRANSACTION", None),
        ("CREATE VIEW v AS SELECT 1", None),
    ],
)
def test_atomic_ctas_statement_is_recognised_only_by_its_trailing_clause(query, create):
    assert atomic_ctas_statement(query) == create


@pytest.mark.parametrize(
    ("statement", "idempotent"),
    [
        (
            "CREATE TABLE `shop`.`t` (\n  `id` int(11) NOT NULL\n)",
            "CREATE TABLE IF NOT EXISTS `shop`.`t` (\n  `id` int(11) NOT NULL\n)",
        ),
        ("create table if not exists t (a int)", "create table if not exists t (a int)"),
        ("CREATE OR REPLACE TABLE t (a int)", "CREATE OR REPLACE TABLE t (a int)"),
    ],
)
def test_the_ddl_of_a_create_table_select_is_made_idempotent(statement, idempotent):
    assert is_create_table(statement)
    assert create_if_not_exists(statement) == idempotent
    assert not is_create_table("CREATE TEMPORARY TABLE t (a int)") and not is_create_table("CREATE VIEW v AS SELECT 1")


# ----------------------------------------------------------------------------------------- MySQL binary JSON

# MySQL's binary JSON format (json_binary.h: https://dev.mysql.com/doc/dev/mysql-server/latest/json__binary_8h.html)
# is what a JSON column holds in a MySQL row event (MariaDB logs JSON as text). The encoder below writes it as
# documented; the reader turns it into the JSON text MySQL prints (rowdecode.mysql_json_text, through the fast
# row decoder and through the library's read_binary_json as binlog_patches replaces it), which the applier
# writes as a str literal (values.json_text keeps a str). A result is compared as the text, as a JSON document,
# or as SQL NULL.

_SQL_NULL = object()
_JSON_COLUMN = SimpleNamespace(type=FIELD_TYPE.JSON, set_values=None, name="doc")


class _Opaque:
    """A JSON opaque scalar: a MySQL field type and its binary value (JSON_OBJECT('d', CAST(.. AS DECIMAL)))."""

    def __init__(self, field_type: int, payload: bytes):
        self.field_type, self.payload = field_type, payload


def _b64_lines(raw: bytes) -> str:
    """MySQL's base64_encode text (a newline after every 76 characters) as it appears in a JSON string."""
    encoded = base64.b64encode(raw).decode()
    return "\\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _encode(value: Any, large: bool = False) -> tuple[int, bytes]:
    """(type byte, value bytes) of one JSON value in MySQL's binary format (``large``: 32-bit offsets)."""
    if value is None or isinstance(value, bool):
        return 0x04, bytes([{None: 0, True: 1, False: 2}[value]])
    if isinstance(value, int):
        if -(2**15) <= value < 2**15:
            return 0x05, struct.pack("<h", value)
        if -(2**31) <= value < 2**31:
            return 0x07, struct.pack("<i", value)
        return (0x09, struct.pack("<q", value)) if value < 2**63 else (0x0A, struct.pack("<Q", value))
    if isinstance(value, float):
        return 0x0B, struct.pack("<d", value)
    if isinstance(value, str):
        raw = value.encode()
        return 0x0C, _varlen(len(raw)) + raw
    if isinstance(value, _Opaque):
        return 0x0F, bytes([value.field_type]) + _varlen(len(value.payload)) + value.payload
    if isinstance(value, dict):
        items = sorted(((k.encode(), v) for k, v in value.items()), key=lambda kv: (len(kv[0]), kv[0]))
        return (0x01 if large else 0x00), _container([k for k, _ in items], [v for _, v in items], large)
    if isinstance(value, list):
        return (0x03 if large else 0x02), _container(None, value, large)
    raise TypeError(value)


def _container(keys: list[bytes] | None, values: list[Any], large: bool) -> bytes:
    n = len(values)
    off, osize = ("<I", 4) if large else ("<H", 2)
    inline = (0x04, 0x05, 0x06, 0x07, 0x08) if large else (0x04, 0x05, 0x06)
    header = 2 * osize + ((osize + 2) * n if keys is not None else 0) + (osize + 1) * n
    tail = bytearray()
    key_entries = bytearray()
    for k in keys or []:
        key_entries += struct.pack(off, header + len(tail)) + struct.pack("<H", len(k))
        tail += k
    value_entries = bytearray()
    for v in values:
        t, raw = _encode(v, large)
        if t in inline:  # literals and small integers are stored in the entry itself
            value_entries += bytes([t]) + raw.ljust(osize, b"\0")
        else:
            value_entries += bytes([t]) + struct.pack(off, header + len(tail))
            tail += raw
    size = struct.pack(off, n) + struct.pack(off, header + len(tail))
    return size + bytes(key_entries) + bytes(value_entries) + bytes(tail)


class _Packet:
    """The two reads ``BinLogPacketWrapper.read_binary_json`` makes, over one row's bytes."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def read_uint_by_size(self, size: int) -> int:
        return int.from_bytes(self.read(size), "little")


@pytest.fixture(scope="module", autouse=True)
def _engine_patches():
    binlog_patches.install()  # what every BinlogReader does first


def _reader_text(raw: bytes) -> Any:
    """What the reader hands the applier for a JSON column holding ``raw`` (type byte + value): the fast row
    decoder and the library's (patched) reader must give the same, then ``normalize_value``."""
    cell = len(raw).to_bytes(4, "little") + raw + b"\xff"  # a 4-byte length (LONGBLOB-like), then the next column
    fast, end = rowdecode._json(4)(cell, 0)
    assert end == len(cell) - 1
    packet = _Packet(cell)
    slow = BinLogPacketWrapper.read_binary_json(packet, 4, False)
    assert packet.pos == len(cell) - 1
    assert fast == slow
    return normalize_value(fast, _JSON_COLUMN, None)


def _as_text(value: Any, large: bool = False) -> Any:
    jtype, data = _encode(value, large)
    return _reader_text(bytes([jtype]) + data)


def _as_written(value: Any, large: bool = False) -> Any:
    """The JSON document written for ``value`` stored in a MySQL JSON column (or _SQL_NULL): what the reader
    delivers, read as JSON text by ``json_text`` (the applier's literal)."""
    decoded = _as_text(value, large)
    return _SQL_NULL if decoded is None else json.loads(json_text(decoded))


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
@pytest.mark.parametrize(
    "document",
    [
        {"a": 1, "b": [True, False, None, "x"]},
        {"miam": "\U0001f354", "ünï": "çødé"},  # python-mysql-replication test_json_unicode
        {"my_key": "super_long_string" * 100},  # test_json_long_string: a length over one varlen byte
        {"foo": 1.2, "big": 2**62, "neg": -(2**40), "u64": 2**64 - 1, "i32": -(2**20)},  # test_json_types
        [1, [2, [3, {"d": {}}]], []],
        {},
        {"esc": 'quote " backslash \\ tab \t nl \n ctl \x01 slash /'},
    ],
)
def test_mysql_binary_json_documents_are_written_back_equal(document, large):
    assert _as_written(document, large) == document


def test_json_text_is_the_text_mysql_prints():
    """Keys in MySQL's stored order (length, then bytes), ", " and ": " separators (Json_wrapper::to_string),
    strings escaped as MySQL's double_quote, a whole double keeps ".0" - the same text the copy reads."""
    doc = {"bb": [1, "x\ny", 2.0, -5], "a": {"c": None, "": True}, "z": 70000}
    assert _as_text(doc) == '{"a": {"": true, "c": null}, "z": 70000, "bb": [1, "x\\ny", 2.0, -5]}'
    assert _as_text(doc, large=True) == _as_text(doc)
    assert _as_text({"c": "\x01\x1f\x7f"}) == '{"c": "\\u0001\\u001f\x7f"}'
    for d in (1e300, 1.5e-07, -0.1, 123456.789):
        assert json.loads(_as_text([d])) == [d]
    assert _as_text([1e300, 1.5e-07]) == "[1e300, 0.00000015]"  # my_gcvt: 'f' for decpt -14..15
    assert _as_text([1e15, 1e16, 1e-15, 1e-16, 1e-5, 1234567890123456.7, -2.5e-300, 100.0]) == (
        "[1e15, 1e16, 0.000000000000001, 1e-16, 0.00001, 1234567890123456.8, -2.5e-300, 100.0]"
    )


def test_a_json_null_document_stays_json_null():
    assert _as_text(None) == "null"
    assert _as_written(None) is None  # the JSON null literal, not _SQL_NULL
    # MySQL reads an empty JSON value (a NOT NULL column forced to NULL by lax SQL) as the JSON null
    assert _reader_text(b"") == "null"


@pytest.mark.parametrize("document", ["abc", "123", "", "ünï \U0001f354"])
def test_a_json_string_document_stays_a_string(document):
    text = _as_text(document)
    assert isinstance(text, str) and text == json.dumps(document, ensure_ascii=False)
    assert _as_written(document) == document


def _packed_datetime(v: dt.datetime) -> bytes:
    """MySQL's packed longlong DATETIME (TIME_to_longlong_datetime_packed), as JSON stores it: 8 bytes LE."""
    ymd = ((v.year * 13 + v.month) << 5) | v.day
    hms = (v.hour << 12) | (v.minute << 6) | v.second
    return struct.pack("<q", (((ymd << 17) | hms) << 24) + v.microsecond)


def _packed_time(v: dt.timedelta) -> bytes:
    """MySQL's packed longlong TIME (TIME_to_longlong_time_packed): negative values are negated."""
    us = abs(v) // dt.timedelta(microseconds=1)
    secs, frac = divmod(us, 1_000_000)
    hms = ((secs // 3600) << 12) | (((secs // 60) % 60) << 6) | (secs % 60)
    packed = (hms << 24) + frac
    return struct.pack("<q", -packed if v < dt.timedelta(0) else packed)


# DATETIME 2023-11-13 17:35:00 packed as MySQL does (python-mysql-replication test_util_bytes.py)
_PYMYSQLREPL_DATETIME = bytes([0, 0, 0, 0xC0, 0x18, 0x9B, 0xB1, 0x19])


def test_the_packed_temporal_encoder_matches_python_mysql_replications_vector():
    assert _packed_datetime(dt.datetime(2023, 11, 13, 17, 35)) == _PYMYSQLREPL_DATETIME


@pytest.mark.parametrize(
    ("opaque", "text"),
    [
        # DECIMAL(4,2) 99.99: precision, scale, then the binary decimal (go-mysql's decimal vector [227, 99])
        (_Opaque(FIELD_TYPE.NEWDECIMAL, bytes([4, 2, 227, 99])), "99.99"),
        (_Opaque(FIELD_TYPE.NEWDECIMAL, bytes([4, 2, 117, 200])), "-10.55"),
        # DECIMAL(30,25): more digits than a double holds, printed exactly (go-mysql vector)
        (
            _Opaque(
                FIELD_TYPE.NEWDECIMAL, bytes([30, 25, 128, 0, 0, 0, 188, 97, 78, 53, 183, 191, 135, 0, 135, 253, 217])
            ),
            "0.0123456789012345678912345",
        ),
        (_Opaque(FIELD_TYPE.DATETIME, _PYMYSQLREPL_DATETIME), '"2023-11-13 17:35:00.000000"'),
        (
            _Opaque(FIELD_TYPE.DATETIME, _packed_datetime(dt.datetime(9999, 12, 31, 23, 59, 59, 999999))),
            '"9999-12-31 23:59:59.999999"',
        ),
        (
            _Opaque(FIELD_TYPE.TIMESTAMP, _packed_datetime(dt.datetime(2038, 1, 19, 3, 14, 7, 120000))),
            '"2038-01-19 03:14:07.120000"',
        ),
        (_Opaque(FIELD_TYPE.DATE, _packed_datetime(dt.datetime(2024, 2, 29))), '"2024-02-29"'),
        (
            _Opaque(FIELD_TYPE.TIME, _packed_time(dt.timedelta(hours=17, minutes=35, microseconds=5))),
            '"17:35:00.000005"',
        ),
        (
            _Opaque(FIELD_TYPE.TIME, _packed_time(-dt.timedelta(hours=838, minutes=59, seconds=59))),
            '"-838:59:59.000000"',
        ),
        (_Opaque(FIELD_TYPE.TIME, _packed_time(dt.timedelta(hours=100, seconds=1))), '"100:00:01.000000"'),
        # CAST(.. AS BINARY) is a VAR_STRING opaque: JSON_ARRAY(CAST('ab' AS BINARY)) -> ["base64:type253:YWI="]
        (_Opaque(FIELD_TYPE.VAR_STRING, b"ab"), '"base64:type253:YWI="'),
        (_Opaque(FIELD_TYPE.VAR_STRING, bytes([0xCA, 0xFE])), '"base64:type253:yv4="'),
        # anything else: MySQL's base64 text (CAST(x'cafe' AS JSON) -> "base64:type15:yv4=")
        (_Opaque(FIELD_TYPE.VARCHAR, bytes([0xCA, 0xFE])), '"base64:type15:yv4="'),
        # base64_encode breaks lines every 76 characters; the JSON string escapes the newline
        (_Opaque(FIELD_TYPE.BLOB, bytes(range(60))), '"base64:type252:' + _b64_lines(bytes(range(60))) + '"'),
    ],
    ids=[
        "decimal",
        "negative-decimal",
        "long-decimal",
        "datetime",
        "datetime-max",
        "timestamp",
        "date",
        "time",
        "negative-time",
        "time-over-a-day",
        "var-string",
        "var-string-not-utf8",
        "binary",
        "long-binary",
    ],
)
def test_json_opaque_scalars_inside_a_document(opaque, text):
    assert _as_text({"v": opaque}) == '{"v": ' + text + "}"
    assert _as_text([opaque], large=True) == "[" + text + "]"
    assert _as_text(opaque) == text  # a document that is only the scalar


def test_corrupt_binary_json_fails_with_a_clear_error():
    jtype, data = _encode({"a": [1, 2, 3]})
    with pytest.raises(rowdecode.JsonDecodeError, match=r"truncated or corrupt|larger than its value"):
        rowdecode.mysql_json_text(bytes([jtype]) + data[:-3])
    with pytest.raises(rowdecode.JsonDecodeError, match="unknown value type 0x0d"):
        rowdecode.mysql_json_text(b"\x0d\x00")
    with pytest.raises(rowdecode.JsonDecodeError, match="truncated or corrupt"):  # a string that is not UTF-8
        rowdecode.mysql_json_text(bytes([0x0C, 2, 0xC3, 0x28]))
    # an array whose one value points back at the array's own header: an error, not a RecursionError
    with pytest.raises(rowdecode.JsonDecodeError, match="value offset"):
        rowdecode.mysql_json_text(bytes([0x02]) + struct.pack("<HH", 1, 7) + bytes([0x02]) + struct.pack("<H", 0))


def test_the_librarys_json_structures_are_refused_where_ambiguous():
    """Without the engine's decoder the library gives bytes / Decimal / None for scalars: never written."""
    with pytest.raises(SyncFailed, match="JSON column 'doc' was decoded to a bytes"):
        normalize_value(b"abc", _JSON_COLUMN, None)
    with pytest.raises(SyncFailed, match=r"binlog_patches\.install"):
        normalize_value(Decimal("1.5"), _JSON_COLUMN, None)
    assert normalize_value({b"k": [1, b"x"]}, _JSON_COLUMN, None) == '{"k": [1, "x"]}'


# ----------------------------------------------------------------------------------------- temporal and DECIMAL
# The engine's fast row decoder (engine/rowdecode.py) on MySQL's documented binary formats. Temporal values are
# encoded as MySQL's my_time.cc does (my_datetime_packed_to_binary, my_time_packed_to_binary,
# my_timestamp_to_binary: https://dev.mysql.com/doc/dev/mysql-server/latest/my__time_8h.html), with C's
# truncating division and remainder for negative TIME values.


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _c_mod(a: int, b: int) -> int:
    return a - b * _c_div(a, b)


def _frac_bytes(frac: int, fsp: int) -> bytes:
    if fsp in (1, 2):
        return struct.pack(">b", _c_div(frac, 10000))
    if fsp in (3, 4):
        return struct.pack(">h", _c_div(frac, 100))
    if fsp in (5, 6):
        return frac.to_bytes(3, "big", signed=True)
    return b""


def _datetime2(v: dt.datetime, fsp: int) -> bytes:
    ymd = ((v.year * 13 + v.month) << 5) | v.day
    hms = (v.hour << 12) | (v.minute << 6) | v.second
    return (((ymd << 17) | hms) + 0x8000000000).to_bytes(5, "big") + _frac_bytes(v.microsecond, fsp)


def _time2(v: dt.timedelta, fsp: int) -> bytes:
    neg = v < dt.timedelta(0)
    total_us = abs(v) // dt.timedelta(microseconds=1)
    secs, us = divmod(total_us, 1_000_000)
    hms = ((secs // 3600) << 12) | (((secs // 60) % 60) << 6) | (secs % 60)
    packed = (hms << 24) + us
    nr = -packed if neg else packed
    if fsp >= 5:
        return (nr + 0x800000000000).to_bytes(6, "big")
    int_part = nr >> 24  # MY_PACKED_TIME_GET_INT_PART: an arithmetic shift
    frac = _c_mod(nr, 1 << 24)  # MY_PACKED_TIME_GET_FRAC_PART: C's remainder
    return (int_part + 0x800000).to_bytes(3, "big") + _frac_bytes(frac, fsp)


@pytest.mark.parametrize("fsp", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1000, 1, 1),
        dt.datetime(2023, 9, 24, 18, 54, 12, 120000),
        dt.datetime(9999, 12, 31, 23, 59, 59, 900000),
    ],
)
def test_datetime2(value, fsp):
    value = value.replace(microsecond=value.microsecond // 10 ** (6 - fsp) * 10 ** (6 - fsp))
    data = _datetime2(value, fsp) + b"\xff"
    assert rowdecode._datetime2(fsp)(data, 0) == (value, len(data) - 1)


@pytest.mark.parametrize("fsp", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(hours=838, minutes=59, seconds=59),  # TIME's range, python-mysql-replication test_time
        -dt.timedelta(hours=838, minutes=59, seconds=59),
        dt.timedelta(0),
        -dt.timedelta(microseconds=500000),  # negative with a fraction only: MySQL borrows in the int part
        -dt.timedelta(hours=1, microseconds=10000),
        dt.timedelta(hours=25, minutes=3, seconds=4, microseconds=560000),
    ],
)
def test_time2(value, fsp):
    step = 10 ** (6 - fsp)
    sign = -1 if value < dt.timedelta(0) else 1
    us = abs(value) // dt.timedelta(microseconds=1) // step * step
    value = sign * dt.timedelta(microseconds=us)
    data = _time2(value, fsp)
    assert data and len(data) == rowdecode.time2_size(fsp)
    assert rowdecode.unpack_time2(data + b"\xff", 0, fsp) == (value, len(data))


@pytest.mark.parametrize("fsp", [0, 3, 6])
def test_timestamp2_is_utc_seconds(fsp):
    # TIMESTAMP2: big-endian seconds since the epoch, then the fraction as DATETIME2's; decoded as naive UTC
    value = dt.datetime(2038, 1, 19, 3, 14, 7, 123000 if fsp else 0)
    seconds = int((value - dt.datetime(1970, 1, 1)).total_seconds())
    data = seconds.to_bytes(4, "big") + _frac_bytes(value.microsecond, fsp)
    assert rowdecode._timestamp2(fsp)(data, 0) == (value, len(data))


def test_date_and_zero_dates():
    # DATE: 3 bytes little-endian, day | month << 5 | year << 9; zero dates go to the library
    raw = (2024 << 9) | (2 << 5) | 29
    assert rowdecode._date(raw.to_bytes(3, "little"), 0) == (dt.date(2024, 2, 29), 3)
    value, _ = rowdecode._date(b"\0\0\0", 0)
    assert value is rowdecode._SLOW


# go-mysql's TestDecodeDecimal vectors, taken from MySQL's own decimal test table (row bytes, precision, scale,
# value, bytes used): https://github.com/go-mysql-org/go-mysql/blob/master/replication/row_event_test.go
@pytest.mark.parametrize(
    ("data", "precision", "scale", "value", "used"),
    [
        ([117, 200, 127, 255], 4, 2, "-10.55", 2),
        ([127, 255, 244, 127, 245], 5, 0, "-11", 3),
        ([127, 245, 253, 217, 127, 255], 7, 3, "-10.550", 4),
        ([118, 196, 101, 54, 0, 254, 121, 96, 127, 255], 15, 14, "-9.99999999999999", 8),
        (
            [127, 255, 245, 223, 55, 170, 127, 255, 255, 255, 255, 255, 255, 255, 255, 4, 0],
            30,
            25,
            "-10.5500000000000000000000000",
            15,
        ),
        ([128, 0, 188, 97, 78, 1, 96, 11, 128, 0], 15, 14, "0.01234567890123", 8),
        (
            [128, 0, 0, 0, 188, 97, 78, 53, 183, 191, 135, 0, 135, 253, 217, 30, 0],
            30,
            25,
            "0.0123456789012345678912345",
            15,
        ),
        ([128, 0, 0, 0, 0, 0, 4, 210, 29, 205, 139, 148, 0, 195, 80, 137, 59], 30, 5, "1234500009876.50000", 15),
        (
            [127, 255, 255, 255, 255, 255, 243, 235, 111, 183, 93, 255, 139, 69, 47, 30, 0],
            30,
            25,
            "-0.0000000123450000987650000",
            15,
        ),
        (
            [129, 134, 159, 59, 154, 201, 255, 59, 154, 201, 255, 0, 152, 150, 127, 30, 0],
            30,
            25,
            "99999.9999999999999999999999999",
            15,
        ),
        ([127, 248, 99, 120, 99], 5, 0, "-1948", 3),
    ],
)
def test_newdecimal_on_mysql_test_vectors(data, precision, scale, value, used):
    assert rowdecode._newdecimal(precision, scale)(bytes(data), 0) == (Decimal(value), used)


# ----------------------------------------------------------------------------------------- guarded triggers


class _TriggerCursor:
    """Records statements; fails the first CREATE TRIGGER with ``fail`` (an error code) when given."""

    def __init__(self, log: list[str], fail: int | None):
        self.log, self.fail = log, fail

    def execute(self, sql, args=None):
        self.log.append(sql)
        if self.fail and sql.startswith("CREATE ") and "IF @dts_applying" in sql:
            raise pymysql.err.OperationalError(self.fail, "simulated")

    def fetchone(self):
        return ("dts@%",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _TriggerConn:
    def __init__(self, fail: int | None = None):
        self.log: list[str] = []
        self.fail = fail

    def cursor(self):
        return _TriggerCursor(self.log, self.fail)


_TRIGGER = TriggerDef(
    "shop",
    "items_ai",
    "items",
    "AFTER",
    "INSERT",
    1,
    "SET @n = @n + 1",
    "STRICT_TRANS_TABLES",
    "app@%",
    "utf8mb4",
    "utf8mb4_0900_ai_ci",
)
_GUARDED = "IF @dts_applying IS NULL THEN SET @n = @n + 1; END IF"


def test_mysql_trigger_is_replaced_by_drop_and_create_under_a_write_lock():
    """MySQL has no CREATE OR REPLACE TRIGGER (https://dev.mysql.com/doc/refman/8.4/en/create-trigger.html);
    DROP and CREATE run while the session holds LOCK TABLES ... WRITE, which needs the LOCK TABLES privilege
    (https://dev.mysql.com/doc/refman/8.4/en/lock-tables.html)."""
    conn = _TriggerConn()
    _replace_trigger(conn, _TRIGGER, _GUARDED, "", mariadb=False)
    stmts = [s for s in conn.log if not s.startswith("SET ")]
    assert stmts == [
        "LOCK TABLES `shop`.`items` WRITE",
        "DROP TRIGGER `shop`.`items_ai`",
        f"CREATE DEFINER=`app`@`%` TRIGGER `shop`.`items_ai` AFTER INSERT ON `shop`.`items` FOR EACH ROW {_GUARDED}",
        "UNLOCK TABLES",
    ]
    mariadb = _TriggerConn()
    _replace_trigger(mariadb, _TRIGGER, _GUARDED, "", mariadb=True)
    assert [s for s in mariadb.log if not s.startswith("SET ")] == [
        f"CREATE OR REPLACE DEFINER=`app`@`%` TRIGGER `shop`.`items_ai` AFTER INSERT ON `shop`.`items` FOR EACH ROW "
        f"{_GUARDED}"
    ]


def test_a_failed_create_on_mysql_puts_the_original_trigger_back_and_unlocks():
    conn = _TriggerConn(fail=1227)  # ER_SPECIFIC_ACCESS_DENIED_ERROR: a definer the account may not name
    with pytest.raises(TriggerGuardError, match="SET_USER_ID / SET_ANY_DEFINER"):
        _replace_trigger(conn, _TRIGGER, _GUARDED, "", mariadb=False)
    stmts = [s for s in conn.log if not s.startswith(("SET ", "SELECT "))]
    assert stmts[-2:] == [
        "CREATE DEFINER=`app`@`%` TRIGGER `shop`.`items_ai` AFTER INSERT ON `shop`.`items` FOR EACH ROW "
        "SET @n = @n + 1",
        "UNLOCK TABLES",
    ]


# ----------------------------------------------------------------------------------------- authentication


def test_caching_sha2_full_authentication_over_plain_tcp_can_encrypt_the_password():
    """MySQL 8.0+ accounts default to caching_sha2_password; without TLS the first login (empty server cache)
    sends the password RSA-encrypted with the server's public key, which PyMySQL can only do with the
    ``cryptography`` package (https://pymysql.readthedocs.io/en/latest/user/installation.html). The engine
    sends the password as UTF-8 bytes (servers.ConnectionSettings)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from pymysql import _auth

    from airflow_provider_dts.engine.servers import ConnectionSettings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    password = ConnectionSettings(password="pässwörd-密码").pymysql_kwargs()["password"]
    assert password == "pässwörd-密码".encode()
    salt = bytes(range(1, 21))
    sealed = _auth.sha2_rsa_encrypt(password, salt, pem)
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    plain = key.decrypt(sealed, oaep)
    assert bytes(b ^ salt[i % len(salt)] for i, b in enumerate(plain)) == password + b"\0"


def test_lease_names_fit_get_lock():
    """MySQL 5.7+ refuses GET_LOCK names longer than 64 characters
    (https://dev.mysql.com/doc/refman/8.0/en/locking-functions.html)."""
    from airflow_provider_dts.engine.apply import lease_name

    long = _direction(task_name="t" * 64, control_schema="c" * 64)
    assert len(lease_name(long)) <= 64 and len(lease_name(_direction())) <= 64
    assert lease_name(long) != lease_name(_direction(task_name="t" * 63 + "u", control_schema="c" * 64))
