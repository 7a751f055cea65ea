"""Binlog reader: python-mysql-replication events -> whole source transactions.

``BinlogReader.transactions()`` yields ``Transaction`` objects, one per source transaction, in binlog order,
with positions taken only at transaction boundaries (after XID / COMMIT / a standalone statement). It:

- starts from a file/position (``is_mariadb=False`` + ``resume_stream=True`` on both flavours: see the field
  notes), registers with the direction's own replica ``server_id`` and asks for a heartbeat every second so
  an idle stream wakes up and ``stop`` is honoured;
- keeps only selected tables and the configured DML types, with object name mapping applied;
- never replicates the control schema, and MARKS every transaction that holds a row event on
  ``<control_schema>.checkpoint``: such a transaction was written by the opposite direction's applier and
  is dropped whole (its rows are never decoded);
- detects that the library reconnected by itself in the middle of a transaction (a RotateEvent inside an
  open transaction) and raises ``StreamResync`` so the caller reopens at the last boundary;
- fails loudly on compressed binlog events instead of losing them;
- records which changes the source session wrote with foreign_key_checks=0 (``Transaction.fk_checks_off``,
  from each rows event's flags) so the applier writes them the same way.

Values are normalised so they can be written back exactly (see ``normalize_value``); the library's own
decoding is fixed by ``binlog_patches``, which ``BinlogReader`` installs when it is built (importing this
module changes nothing in the library).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.event import (
    BeginLoadQueryEvent,
    ExecuteLoadQueryEvent,
    FormatDescriptionEvent,
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    RowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from airflow_provider_dts.engine import binlog_patches
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import Position, RowChange, Transaction, format_position
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import Token, tokenize
from airflow_provider_dts.engine.values import CharsetBytes, format_timedelta

log = logging.getLogger(__name__)

# Compressed events are not decoded by the library (it would drop them silently): refuse them.
# MariaDB: QUERY_COMPRESSED_EVENT (0xA5) and the six *_ROWS_COMPRESSED_EVENT types (0xA6-0xAB);
# MySQL: TRANSACTION_PAYLOAD_EVENT (0x28).
COMPRESSED_EVENT_TYPES = {0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0x28}

HEARTBEAT_SECONDS = 1.0

# Rows event flag: the source session wrote these rows with foreign_key_checks=0 (so it did no cascades either).
# The same bit in MySQL and MariaDB (log_event.h); the library reads the flags of every rows event header.
NO_FOREIGN_KEY_CHECKS_F = 0x0002

_TIMESTAMP_TYPES = {FIELD_TYPE.TIMESTAMP, FIELD_TYPE.TIMESTAMP2}
_EPOCH = _dt.datetime(1970, 1, 1)
# Statement-based changes (a session with binlog_format=STATEMENT/MIXED): the binlog holds the statement, not
# its rows. The first word says what kind of statement it is (after comments and opening parentheses).
_FIRST_WORD = re.compile(r"^(?:\s+|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n|\()*([A-Za-z]+)", re.S)
# plain row changes: may pass when provably only about unselected databases
# (``BinlogReader._why_statement_may_touch_selected``)
_STATEMENT_DML = {"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"}
# binlogged only because a stored function they call wrote rows (SELECT f(), DO f(), SET @x=f() are all
# logged as SELECT f()): a function may write any table, so never provably harmless. (Not SET: account
# statements such as SET PASSWORD are logged as themselves.)
_STATEMENT_CALLS = {"SELECT", "DO", "CALL", "WITH", "VALUES"}
CATALOG_TTL = 10.0  # seconds the source's stored functions and triggers are cached for the statement check
_STATEMENT_SAFE_IN_TXN = re.compile(r"^\s*(SAVEPOINT|ROLLBACK\s+TO|RELEASE\s+SAVEPOINT)\b", re.I)


def statement_kind(query: str) -> str | None:
    """``"dml"`` for a statement-logged row change (INSERT/UPDATE/DELETE/REPLACE/LOAD DATA), ``"call"`` for a
    statement that is in the binlog because a stored function it called wrote something, ``None`` for
    anything else (transaction control, DDL, account statements)."""
    m = _FIRST_WORD.match(query)
    word = m.group(1).upper() if m else ""
    if word in _STATEMENT_DML:
        return "dml"
    if word in _STATEMENT_CALLS:
        return "call"
    if word == "CREATE" and is_create_table(query) and any(t.kw("SELECT") for t in _code_tokens(query)):
        return "dml"  # CREATE TABLE ... SELECT logged as a statement: its rows are not in the binlog
    return None


def _code_tokens(query: str) -> list[Token]:
    return [t for t in tokenize(query) if t.kind not in ("space", "comment")]


def is_create_table(query: str) -> bool:
    """A CREATE [OR REPLACE] TABLE statement (not TEMPORARY: a temporary table is never row-logged)."""
    toks = _code_tokens(query)
    words = [t.text.upper() for t in toks[:4]]
    return words[:2] == ["CREATE", "TABLE"] or words[:4] == ["CREATE", "OR", "REPLACE", "TABLE"]


def create_if_not_exists(statement: str) -> str:
    """``CREATE TABLE x ...`` as ``CREATE TABLE IF NOT EXISTS x ...`` (unchanged when it already says so, or is a
    CREATE OR REPLACE, which a replay repeats harmlessly)."""
    toks = _code_tokens(statement)
    if len(toks) < 3 or not (toks[0].kw("CREATE") and toks[1].kw("TABLE")) or toks[2].kw("IF"):
        return statement
    return statement[: toks[1].end] + " IF NOT EXISTS" + statement[toks[1].end :]


def atomic_ctas_statement(query: str) -> str | None:
    """The CREATE TABLE of a MySQL 8.0.21+ row-logged CREATE TABLE ... SELECT (which MySQL writes with a trailing
    ``START TRANSACTION`` clause, then the rows, then Xid: WL#13355), without that clause; else None."""
    toks = _code_tokens(query)
    if (
        len(toks) < 5
        or not toks[0].kw("CREATE")
        or not toks[-2].kw("START")
        or not toks[-1].kw("TRANSACTION")
        or not any(t.kw("TABLE") for t in toks[1:4])
    ):
        return None
    return query[: toks[-2].start].rstrip()


class StreamResync(Exception):
    """The stream must be reopened at the last transaction boundary."""


# --------------------------------------------------------------------------- values


def _fix_json(v: Any) -> Any:
    """The library's own decoding of a MySQL JSON document (bytes keys and strings) as plain JSON data. Only
    reached without the engine's JSON decoder (``binlog_patches`` installs it: JSON then arrives as text)."""
    if isinstance(v, dict):
        return {(_fix_json(k) if isinstance(k, bytes) else k): _fix_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fix_json(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


def normalize_value(value: Any, column: Any, none_source: str | None) -> Any:
    """Turn a decoded binlog value into a Python value PyMySQL writes back exactly."""
    ctype = column.type
    if value is None:
        if none_source in ("out of date range",):
            return "0000-00-00"
        if none_source in ("out of datetime range", "out of datetime2 range"):
            return "0000-00-00 00:00:00"
        if none_source == "empty set":
            return ""
        return None
    if isinstance(value, _dt.timedelta):
        return format_timedelta(value)
    if isinstance(value, (set, frozenset)):
        order = list(column.set_values or [])
        members = sorted(value, key=lambda x: order.index(x) if x in order else len(order))
        if any(isinstance(m, CharsetBytes) for m in members):  # members kept as bytes (``binlog_patches``)
            return CharsetBytes(b",".join(bytes(m) for m in members), members[0].charset)
        return ",".join(members)
    if ctype == FIELD_TYPE.BIT and isinstance(value, str):
        return int(value, 2) if value else 0
    if ctype == FIELD_TYPE.JSON and not isinstance(value, str):
        # MySQL's JSON arrives as the JSON text MySQL prints (``rowdecode.mysql_json_text``, installed by
        # ``binlog_patches``); the library's structures only without it, and only containers are unambiguous
        if isinstance(value, (dict, list)):
            return json.dumps(_fix_json(value), ensure_ascii=False)
        raise SyncFailed(
            f"the JSON column {getattr(column, 'name', '?')!r} was decoded to a {type(value).__name__}, which "
            "cannot be written back exactly (a JSON null, string or DECIMAL/DATE/TIME scalar). Fix: run the "
            "reader with the engine's binlog patches installed (binlog_patches.install(), as BinlogReader does)"
        )
    if ctype in _TIMESTAMP_TYPES and value == _EPOCH:
        return "0000-00-00 00:00:00"
    if ctype == FIELD_TYPE.YEAR and value == 1900:
        return 0
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


_PLAIN_TYPES = (int, str, bytes, decimal.Decimal, _dt.date, _dt.datetime)
_SPECIAL_COLUMN_TYPES = {FIELD_TYPE.BIT, FIELD_TYPE.YEAR, FIELD_TYPE.JSON, FIELD_TYPE.SET} | _TIMESTAMP_TYPES


def _decode_rows(event: RowsEvent) -> list[tuple[dict | None, dict | None]]:
    columns = {c.name: c for c in event.columns}
    special = {n for n, c in columns.items() if c.type in _SPECIAL_COLUMN_TYPES}
    out: list[tuple[dict | None, dict | None]] = []

    def norm(values: dict, sources: dict) -> dict:
        for k, v in values.items():
            if v is None or k in special or not isinstance(v, _PLAIN_TYPES):
                values[k] = normalize_value(v, columns[k], sources.get(k) if v is None else None)
        return values

    if isinstance(event, UpdateRowsEvent):
        for row in event.rows:
            out.append(
                (
                    norm(row["before_values"], row.get("before_none_sources", {})),
                    norm(row["after_values"], row.get("after_none_sources", {})),
                )
            )
    elif isinstance(event, WriteRowsEvent):
        for row in event.rows:
            out.append((None, norm(row["values"], row.get("none_sources", {}))))
    else:
        for row in event.rows:
            out.append((norm(row["values"], row.get("none_sources", {})), None))
    return out


# --------------------------------------------------------------------------- reader


def stream_settings(source: ConnectionSettings, *, skip_flagged: bool = False) -> dict[str, Any]:
    """PyMySQL settings of the dump connection. ``skip_flagged`` (MariaDB): the server does not send events
    written with ``skip_replication=1`` - the opposite applier's transactions (a fast path only: the
    checkpoint mark still drops them when they do arrive)."""
    kw = source.pymysql_kwargs()
    for k in ("init_command", "autocommit", "cursorclass", "database"):
        kw.pop(k, None)
    if skip_flagged:
        kw["init_command"] = "SET @@skip_replication=1"
    kw["passwd"] = kw.pop("password")
    kw["read_timeout"] = 30  # the server sends a heartbeat every second: 30 s of silence means a dead link
    kw["write_timeout"] = 30
    return kw


@dataclass
class _OpenTransaction:
    """A source transaction being read (``BinlogReader.transactions``); becomes a ``Transaction`` at its end."""

    start: Position  # the boundary it began after
    gtid: str | None
    timestamp: float
    events: list[tuple[str, RowsEvent, str, str]] = field(default_factory=list)  # (kind, event, dest db, table)
    marked: bool = False  # holds a row event on <control>.checkpoint: the opposite applier wrote it
    # CREATE TABLE ... SELECT (one transaction on MariaDB and MySQL 8.0.21+): (default schema, its CREATE TABLE)
    ctas: tuple[str, str] | None = None
    heartbeats: list[RowsEvent] = field(default_factory=list)  # row events on <control>.heartbeat
    xa: bool = False


def _schema_name(schema: Any) -> str:
    """The default database of a Query / Execute_load_query event ("" when there is none)."""
    return schema.decode("utf-8", "replace") if isinstance(schema, bytes) else (schema or "")


class BinlogReader:
    """Reads one direction's source binlog as whole transactions.

    ``start`` is where reading starts and, as transactions are yielded, the resume point: always a
    transaction boundary (the position after the last transaction yielded, or the first position of the
    next binlog file after a rotation). After ``StreamResync`` a new reader opens at ``start``.
    """

    def __init__(
        self,
        direction: SyncDirection,
        source: ConnectionSettings,
        start: Position,
        *,
        stop: threading.Event | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        skip_flagged: bool = False,
        expect_server_id: int | None = None,
    ):
        binlog_patches.install()  # the library's fixes; an unsupported library version fails here
        self.direction = direction
        self.skip_flagged = skip_flagged
        self.source = source
        self.start: Position = (str(start[0]), int(start[1]))
        self.stop = stop or threading.Event()
        self.heartbeat = heartbeat
        self.control = direction.control_schema
        self.allowed_kinds = {k.lower() for k in direction.dml_types}
        self._stream: BinLogStreamReader | None = None
        self._table_cache: dict[tuple[str, str], tuple[bool, str, str]] = {}
        self._catalog: tuple[float, list, list] | None = None  # (read at, functions, triggers) of the source
        self.events_seen = 0
        # server_id of the server answering the dump (its artificial Rotate event at every connection): the library
        # reconnects by itself after a lost connection, possibly to another server behind a moved host name. It
        # starts as the server the session's start was checked against (``expect_server_id``): a host name that
        # moved between that check and the dump connection is caught at the first connection too
        self.serving_server_id: int | None = expect_server_id or None

    # ------------------------------------------------------------------ helpers

    def _selected(self, db: str, table: str) -> tuple[bool, str, str]:
        key = (db, table)
        hit = self._table_cache.get(key)
        if hit is None:
            if self.direction.selects_table(db, table):
                ddb, dt = self.direction.map_table(db, table)
                hit = (True, ddb, dt)
            else:
                hit = (False, "", "")
            self._table_cache[key] = hit
        return hit

    def _open(self) -> BinLogStreamReader:
        schemas = list(self.direction.selected_databases) + [self.control]
        return BinLogStreamReader(
            connection_settings=stream_settings(self.source, skip_flagged=self.skip_flagged),
            server_id=self.direction.reader_server_id,
            log_file=self.start[0],
            log_pos=self.start[1],
            resume_stream=True,
            blocking=True,
            slave_heartbeat=self.heartbeat,
            is_mariadb=False,
            enable_logging=False,
            only_schemas=schemas,
            filter_non_implemented_events=False,
            only_events=[
                QueryEvent,
                XidEvent,
                RotateEvent,
                FormatDescriptionEvent,
                GtidEvent,
                MariadbGtidEvent,
                HeartbeatLogEvent,
                TableMapEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                PartialUpdateRowsEvent,
                XAPrepareEvent,
                NotImplementedEvent,
                BeginLoadQueryEvent,
                ExecuteLoadQueryEvent,
            ],
        )

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:
                pass
            self._stream = None

    # ------------------------------------------------------------------ main loop

    def transactions(self) -> Iterator[Transaction | None]:
        """Yield transactions from ``start`` on; yields ``None`` on idle heartbeats (a chance to check stop).

        Raises ``StreamResync`` when the library resumed mid-transaction (reopen at ``self.start``), and
        connection errors as PyMySQL raises them.
        """
        self._stream = stream = self._open()
        current_file = self.start[0]
        open_txn: _OpenTransaction | None = None
        standalone = False  # a GTID announced a single statement (MySQL: or a BEGIN) outside any transaction
        gtid: str | None = None
        try:
            while not self.stop.is_set():
                ev = stream.fetchone()
                if ev is None:  # EOF from a non-blocking stream or a closed connection
                    raise StreamResync("binlog stream ended")
                self.events_seen += 1
                end_pos = ev.packet.log_pos
                if isinstance(ev, RotateEvent):
                    if not ev.packet.log_pos:  # artificial: sent by the server answering, with its server_id
                        sid = int(ev.packet.server_id)
                        if self.serving_server_id is not None and sid != self.serving_server_id:
                            raise StreamResync(
                                f"the binlog stream reconnected to another server (server_id {self.serving_server_id} "
                                f"-> {sid}); the next session checks the source (engine/gtid.py)"
                            )
                        self.serving_server_id = sid
                    if open_txn is not None or standalone:
                        raise StreamResync("the stream was reopened inside a transaction")
                    current_file = ev.next_binlog
                    if current_file != self.start[0]:
                        # the server moved to the next file: the next transaction starts there
                        self.start = (current_file, int(ev.position))
                    continue
                at: Position = (current_file, end_pos)
                if isinstance(ev, HeartbeatLogEvent):
                    if open_txn is None:
                        yield None
                    continue
                if isinstance(ev, FormatDescriptionEvent):
                    continue
                if isinstance(ev, NotImplementedEvent):
                    if ev.event_type in COMPRESSED_EVENT_TYPES:
                        raise SyncFailed(
                            f"the source binlog holds a compressed event (type 0x{ev.event_type:02x}) at "
                            f"{format_position(at)}, which cannot be read. Fix: turn off log_bin_compress "
                            "(MariaDB) / binlog_transaction_compression (MySQL) and re-initialize the direction"
                        )
                    continue
                if isinstance(ev, (MariadbGtidEvent, GtidEvent)):
                    if open_txn is not None:
                        raise StreamResync("a new transaction began before the previous one ended")
                    gtid = ev.gtid
                    if isinstance(ev, MariadbGtidEvent) and not (ev.flags & 0x01):
                        open_txn = _OpenTransaction(self.start, gtid, float(ev.timestamp))
                        standalone = False
                    else:
                        standalone = True  # a single statement (or MySQL: BEGIN) follows
                    continue
                if isinstance(ev, BeginLoadQueryEvent):
                    continue  # the file's bytes of a statement-based LOAD DATA: Execute_load_query decides
                if isinstance(ev, ExecuteLoadQueryEvent):
                    q = binlog_patches.load_query_text(ev)
                    reason = None if q else "the statement of this LOAD DATA is unreadable"
                    q = q or "LOAD DATA ..."
                    self._check_statement(q, ev.schema, at, reason=reason)
                    if open_txn is not None:
                        continue
                    txn = self._standalone(ev, q, at, gtid)
                    standalone, gtid = False, None
                    self.start = txn.end_position
                    yield txn
                    continue
                if isinstance(ev, QueryEvent):
                    q = ev.query.strip() if isinstance(ev.query, str) else ev.query.decode("utf-8", "replace")
                    qu = q.upper()
                    if qu == "BEGIN":
                        if open_txn is None:
                            open_txn = _OpenTransaction(self.start, gtid, float(ev.timestamp))
                        standalone = False
                        continue
                    if qu in ("COMMIT", "ROLLBACK") or qu.startswith("XA COMMIT") or qu.startswith("XA ROLLBACK"):
                        if open_txn is None:
                            continue
                        ctas_ddl = self._ctas_ddl(open_txn, drop=qu == "ROLLBACK")
                        txn = self._finish(open_txn, at, drop=qu == "ROLLBACK")
                        open_txn, standalone, gtid = None, False, None
                        if ctas_ddl is not None:
                            yield ctas_ddl
                        self.start = txn.end_position
                        yield txn
                        continue
                    if open_txn is not None and open_txn.ctas is None and not open_txn.events and is_create_table(q):
                        # MariaDB logs CREATE TABLE ... SELECT as one transaction: this CREATE TABLE (the new
                        # table's definition), then its rows, then COMMIT
                        open_txn.ctas = (_schema_name(ev.schema), q)
                        continue
                    if open_txn is not None:
                        # SAVEPOINT and the like inside a transaction: the rows carry the data. A statement
                        # that changes rows here means statement-based logging, whose changes would be lost.
                        if not _STATEMENT_SAFE_IN_TXN.match(q):
                            self._check_statement(q, ev.schema, at)
                        if qu.startswith("XA "):
                            open_txn.xa = True
                        continue
                    ctas = atomic_ctas_statement(q)
                    if ctas is not None:
                        # MySQL 8.0.21+ logs CREATE TABLE ... SELECT as ONE transaction: this CREATE TABLE (with
                        # MySQL's internal START TRANSACTION clause), the new table's rows, then Xid, no BEGIN
                        open_txn = _OpenTransaction(self.start, gtid, float(ev.timestamp))
                        open_txn.ctas = (_schema_name(ev.schema), ctas)
                        standalone = False
                        continue
                    # a standalone statement: DDL (applied or skipped by ddl.py), or a statement-logged change
                    # of a non-transactional table
                    self._check_statement(q, ev.schema, at)
                    txn = self._standalone(ev, q, at, gtid)
                    standalone, gtid = False, None
                    self.start = txn.end_position
                    yield txn
                    continue
                if isinstance(ev, XAPrepareEvent) and open_txn is not None and open_txn.events:
                    raise SyncFailed(
                        f"an XA transaction on the selected objects was prepared at {format_position(at)}; "
                        "XA transactions are not supported by this sync (their outcome is decided later). "
                        "Fix: do not use XA transactions on the selected objects"
                    )
                if isinstance(ev, (XidEvent, XAPrepareEvent)):
                    if open_txn is None:
                        continue
                    ctas_ddl = self._ctas_ddl(open_txn)
                    txn = self._finish(open_txn, at)
                    open_txn, standalone, gtid = None, False, None
                    if ctas_ddl is not None:
                        yield ctas_ddl
                    self.start = txn.end_position
                    yield txn
                    continue
                if not isinstance(ev, (TableMapEvent, RowsEvent)):
                    continue
                if open_txn is None:
                    if not standalone:
                        raise StreamResync("row event outside a transaction (stream resumed mid-transaction)")
                    open_txn = _OpenTransaction(self.start, gtid, float(ev.timestamp))
                if isinstance(ev, TableMapEvent):
                    if ev.schema == self.control and ev.table == "checkpoint":
                        open_txn.marked = True
                    continue
                if open_txn.marked:
                    continue
                if isinstance(ev, PartialUpdateRowsEvent) and self.direction.selects_table(ev.schema, ev.table):
                    raise SyncFailed(
                        f"the source logs partial JSON updates (binlog_row_value_options=PARTIAL_JSON) for "
                        f"{ev.schema}.{ev.table} at {format_position(at)}; their after images are not "
                        "whole rows. Fix: SET GLOBAL binlog_row_value_options='' on the source, then "
                        "re-initialize the direction"
                    )
                if ev.schema == self.control:
                    if ev.table == "checkpoint":
                        open_txn.marked = True
                    elif ev.table == "heartbeat":
                        open_txn.heartbeats.append(ev)
                    continue
                kind = (
                    "insert"
                    if isinstance(ev, WriteRowsEvent)
                    else ("update" if isinstance(ev, UpdateRowsEvent) else "delete")
                )
                if kind not in self.allowed_kinds:
                    continue
                sel, ddb, dt = self._selected(ev.schema, ev.table)
                if sel:
                    open_txn.events.append((kind, ev, ddb, dt))
        finally:
            self.close()

    def _standalone(
        self, ev: QueryEvent | ExecuteLoadQueryEvent, statement: str, end: Position, gtid: str | None
    ) -> Transaction:
        """A statement logged outside BEGIN ... COMMIT (DDL, a LOAD DATA or other statement-logged change of a
        non-transactional table) as a transaction of its own: ``ddl`` = (default schema, statement)."""
        return Transaction(self.start, end, gtid, float(ev.timestamp), ddl=(_schema_name(ev.schema), statement))

    def _ctas_ddl(self, t: _OpenTransaction, drop: bool = False) -> Transaction | None:
        """The CREATE TABLE of a CREATE TABLE ... SELECT transaction (``t.ctas``), to apply before its rows.

        Both flavours log the statement as ONE transaction (MariaDB 10.11 and MySQL 8.0.21+): the CREATE TABLE, the
        new table's rows, the commit. The DDL must run alone (it commits implicitly) and before the rows, but no
        binlog position lies between them. So it is a standalone statement that does not move the position: it
        starts and ends where the whole transaction starts, carries no GTID, and is made ``CREATE TABLE IF NOT
        EXISTS``; the rows follow as the transaction itself (start to commit, with its GTID). After a crash
        between the two the whole transaction is read again: the CREATE finds the table it made (a note, not an
        error) and the rows are applied once, with the checkpoint, in one destination transaction."""
        if t.ctas is None or t.marked or drop:
            return None
        schema, statement = t.ctas
        return Transaction(t.start, t.start, None, t.timestamp, ddl=(schema, create_if_not_exists(statement)))

    def _check_statement(self, query: str, schema: Any, at: Position, reason: str | None = None) -> None:
        """Fail the direction on a statement-logged change that may touch a selected object (never skip it)."""
        kind = statement_kind(query)
        if kind is None and reason is None:
            return
        why = reason or self._why_statement_may_touch_selected(query, _schema_name(schema), kind)
        if why is None:
            log.info(
                "statement-based change at %s only about unselected databases: %s", format_position(at), query[:200]
            )
            return
        raise SyncFailed(
            f"the source binlog holds a statement-based change at {format_position(at)} (transaction from "
            f"{format_position(self.start)}): {query[:200]!r} - {why}. Its rows are not in the binlog, so they "
            "cannot be synchronized; the direction stops before it (nothing of that transaction is applied). Fix: "
            "use binlog_format=ROW for every session writing the selected objects (SET GLOBAL binlog_format=ROW; "
            "reconnect clients; never SET SESSION binlog_format=STATEMENT/MIXED), make the destination equal for "
            "the rows that statement changed (or re-initialize the direction), then restart it"
        )

    def _why_statement_may_touch_selected(self, query: str, default: str, kind: str | None) -> str | None:
        """None when the statement provably changes only unselected databases, else the reason it may not."""
        if kind == "call":
            return (
                "it is in the binlog because a stored function it calls wrote rows, and a function may write any table"
            )
        selected = {db.lower() for db in self.direction.selected_databases}
        if default and default.lower() in selected:
            return f"its default database {default} is selected"
        toks = tokenize(query)
        names = {ident.lower() for t in toks if (ident := t.ident) is not None}
        hit = sorted(names & selected)
        if hit:
            return f"it names the selected database {hit[0]}"
        for i, t in enumerate(toks[:-1]):
            qualified_or_quoted = t.kind == "backtick" or (i > 0 and toks[i - 1].text == ".")
            if t.ident is not None and toks[i + 1].text == "(" and qualified_or_quoted:
                return f"it calls {t.ident}(), which may be a stored function writing any table"
        try:
            found = self._catalog_reason(names, default, toks)
        except Exception as e:
            return f"its stored functions and triggers could not be checked on the source ({e})"
        return found

    def _catalog_reason(self, names: set[str], default: str, toks: list[Token]) -> str | None:
        """Stored functions the statement may call, triggers on the databases it names (the rows either writes
        are not in the binlog under statement-based logging)."""
        called = {
            ident.lower() for i, t in enumerate(toks[:-1]) if (ident := t.ident) is not None and toks[i + 1].text == "("
        }
        schemas = set(names) | ({default.lower()} if default else set())
        now = time.monotonic()
        if self._catalog is None or now - self._catalog[0] > CATALOG_TTL:
            conn = self.source.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES "
                        "WHERE ROUTINE_TYPE='FUNCTION'"
                    )
                    functions = [(str(db), str(name)) for db, name in cur.fetchall()]
                    cur.execute(
                        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS"
                    )
                    triggers = [(str(db), str(trig), str(table)) for db, trig, table in cur.fetchall()]
            finally:
                conn.close()
            self._catalog = (now, functions, triggers)
        _, functions, triggers = self._catalog
        for db, name in functions:
            if name.lower() in called:
                return f"it calls {name}(), a stored function (in {db}) that may write any table"
        for db, trig, table in triggers:
            if db.lower() in schemas:
                return f"the trigger {db}.{trig} on {table} may write any table"
        return None

    def _finish(self, t: _OpenTransaction, end: Position, drop: bool = False) -> Transaction:
        txn = Transaction(t.start, end, t.gtid, t.timestamp, marked=t.marked)
        if t.marked or drop:
            return txn
        for ev in t.heartbeats:
            for row in ev.rows:
                vals = row.get("after_values") or row.get("values") or {}
                if vals.get("task_name") == self.direction.task_name and vals.get("direction") == self.direction.role:
                    txn.heartbeat_at = vals.get("beat_at")
        changes = txn.changes
        off: list[tuple[int, int]] = []
        for kind, ev, ddb, dt in t.events:
            pk = (
                tuple(ev.primary_key)
                if isinstance(ev.primary_key, (list, tuple))
                else ((ev.primary_key,) if ev.primary_key else ())
            )
            start = len(changes)
            for before, after in _decode_rows(ev):
                changes.append(RowChange(kind, ev.schema, ev.table, ddb, dt, before, after, pk))
            if getattr(ev, "flags", 0) & NO_FOREIGN_KEY_CHECKS_F and len(changes) > start:
                if off and off[-1][1] == start:
                    off[-1] = (off[-1][0], len(changes))
                else:
                    off.append((start, len(changes)))
        txn.fk_checks_off = tuple(off)
        return txn
