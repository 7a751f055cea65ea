"""Reading a table for the copy: keyset chunks in key order (or one stream for a keyless table), each row
rendered as exact text by the source, handed to the writer through a bounded queue."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import pymysql

from airflow_provider_dts.engine.errors import FullSyncError
from airflow_provider_dts.engine.snapshot.plan import TablePlan
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident
from airflow_provider_dts.engine.values import READER_SQL_MODE, key_literal_sql, keyset_condition, row_literal_sql

log = logging.getLogger(__name__)

MAX_CHUNK_ROWS = 20000


@dataclass
class _Chunk:
    plan: TablePlan
    body: bytes | None  # b"(..),(..)" or None for the end-of-table marker
    rows: int
    last_key: list[str] | None
    whole_table_txn: bool = False  # keyless table: the chunk belongs to one open transaction
    final: bool = False
    as_insert: bool = False  # rendered for INSERT although the table uses LOAD DATA (row too big for a TSV line)


class _Stop(Exception):
    pass


def _reader(
    src, tables: queue.Queue, q: queue.Queue, stop: threading.Event, chunk_bytes: int, max_packet: int, errors: list
) -> None:
    """Take tables from the shared ``tables`` queue until it is empty; chunks go to this pipeline's ``q``."""
    try:
        with src.cursor() as cur:
            while True:
                try:
                    plan = tables.get_nowait()
                except queue.Empty:
                    break
                _read_table(cur, plan, q, stop, chunk_bytes, max_packet)
    except _Stop:
        pass
    except BaseException as e:
        errors.append(e)
        stop.set()
    finally:
        _put(q, None, stop, force=True)


def _put(q: queue.Queue, item: Any, stop: threading.Event, force: bool = False) -> None:
    while True:
        if stop.is_set() and not force:
            raise _Stop()
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            if stop.is_set() and force:
                return


def _stream_keyless(scur, plan: TablePlan, q: queue.Queue, stop: threading.Event, chunk_bytes: int, sep: bytes) -> None:
    batch: list[bytes] = []
    size = 0
    while True:
        if stop.is_set():
            raise _Stop()
        row = scur.fetchone()
        if row is not None and row[0] is None:
            raise FullSyncError(
                f"a row of {plan.label} is larger than the source's max_allowed_packet once rendered. "
                "Fix: raise max_allowed_packet on the source (and the destination)"
            )
        if row is None or size >= chunk_bytes:
            if batch or row is None:
                _put(q, _Chunk(plan, sep.join(batch), len(batch), None, whole_table_txn=True, final=row is None), stop)
            batch, size = [], 0
            if row is None:
                return
        batch.append(row[0])
        size += len(row[0]) + 1


def _read_table(cur, plan: TablePlan, q: queue.Queue, stop: threading.Event, chunk_bytes: int, max_packet: int) -> None:
    table = qualified(plan.ref.src_db, plan.ref.src_table)
    row_expr = plan.row_sql
    sep = plan.separator
    if plan.key is None:
        # No usable key: stream the whole table (unbuffered cursor: memory stays flat); the writer commits
        # it in one transaction.
        with cur.connection.cursor(pymysql.cursors.SSCursor) as scur:
            scur.execute(f"SELECT {row_expr} FROM {table}")
            _stream_keyless(scur, plan, q, stop, chunk_bytes, sep)
        return
    key_exprs = ", ".join(key_literal_sql(k) for k in plan.key)
    order = ", ".join(quote_ident(k.name) for k in plan.key)
    nkey = len(plan.key)
    last_key = plan.last_key
    limit = max(1, min(1000, chunk_bytes // 200))  # adapted to the real row size after the first chunk
    insert_expr, as_insert = row_literal_sql(plan.columns), False
    while True:
        if stop.is_set():
            raise _Stop()
        where = f" WHERE {keyset_condition(plan.key, last_key)}" if last_key else ""
        cur.execute(f"SELECT {row_expr}, {key_exprs} FROM {table}{where} ORDER BY {order} LIMIT {limit}")
        rows = cur.fetchall()
        if not rows:
            _put(q, _Chunk(plan, None, 0, last_key, final=True), stop)
            return
        if any(r[0] is None for r in rows):
            if row_expr != insert_expr:
                # The LOAD DATA rendering of a row did not fit the source's max_allowed_packet (it hex-encodes
                # binary columns): copy the rest of this table with the INSERT rendering, same key range.
                log.info(
                    "full data sync: %s has rows too large for LOAD DATA; copying the rest with INSERT", plan.label
                )
                row_expr, sep, as_insert = insert_expr, b",", True
                limit = 1
                continue
            raise FullSyncError(
                f"a row of {plan.label} is larger than the source's max_allowed_packet once rendered (the server "
                "returned NULL for it). Fix: raise max_allowed_packet on the source (and the destination)"
            )
        body = sep.join(r[0] for r in rows)
        if len(body) > max_packet:
            if len(rows) == 1:
                raise FullSyncError(
                    f"a row of {plan.label} is {len(body)} bytes as SQL, more than the destination's "
                    f"max_allowed_packet ({max_packet} usable). Fix: raise max_allowed_packet on the destination"
                )
            limit = max(1, len(rows) // 4)
            continue
        last_key = [as_text(v) for v in rows[-1][1 : 1 + nkey]]
        short = len(rows) < limit  # fewer rows than asked for: this was the table's last chunk
        _put(q, _Chunk(plan, body, len(rows), last_key, final=short, as_insert=as_insert), stop)
        if short:
            return
        per_row = max(1.0, len(body) / len(rows))
        limit = int(max(1, min(MAX_CHUNK_ROWS, chunk_bytes / per_row, max_packet / per_row / 2)))


def _reader_session(conn):
    """A source session that renders values the way the literals expect (see ``values.READER_SQL_MODE``)."""
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode='{READER_SQL_MODE}', sql_quote_show_create=1")
    return conn
