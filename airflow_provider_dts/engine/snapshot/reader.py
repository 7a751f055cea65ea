"""Reading a table for the copy: keyset chunks in key order (or one stream for a keyless table), each row
rendered as exact text by the source, handed to the writer through a bounded queue.

A chunk is a key range ``(last, end]``: ``end`` is found first (the ``n``-th key after ``last``, an index scan
without rendering), then the source renders every row of the range and concatenates them into ONE value
(``GROUP_CONCAT``), so a 2 MB chunk crosses the wire as one row instead of thousands: the client does almost
no work per row. A concatenation the server could not complete (a warning: cut at ``group_concat_max_len``,
or a row too large to render) falls back to reading that range row by row. A table split into key ranges
(``plan.KeyRange``) is read range by range, each range a work item any pipeline may take.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import pymysql

from airflow_provider_dts.engine.errors import FullSyncError
from airflow_provider_dts.engine.snapshot.plan import KeyRange, TablePlan
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident
from airflow_provider_dts.engine.values import READER_SQL_MODE, key_literal_sql, keyset_condition, row_literal_sql

log = logging.getLogger(__name__)

MAX_CHUNK_ROWS = 20000


@dataclass(frozen=True)
class _Part:
    """One work item: a whole table (``range`` None: from ``plan.last_key`` to its end) or one key range of a
    split table (from ``range.last`` or ``range.lo`` up to ``range.hi``)."""

    plan: TablePlan
    range: KeyRange | None = None

    @property
    def estimated_rows(self) -> int:
        if self.range is None:
            return self.plan.estimated_rows
        return self.plan.estimated_rows // max(1, len(self.plan.ranges or ()))

    @property
    def start(self) -> list[str] | None:
        """Copy the keys after this one (None: from the first key)."""
        if self.range is None:
            return self.plan.last_key
        return self.range.last if self.range.last is not None else self.range.lo

    @property
    def end(self) -> list[str] | None:
        """Up to and including this key (None: to the table's last key)."""
        return None if self.range is None else self.range.hi


def work_items(plan: TablePlan) -> list[_Part]:
    """The parts of ``plan`` still to copy (a split table: its ranges not done yet)."""
    if plan.ranges is None:
        return [_Part(plan)]
    return [_Part(plan, r) for r in plan.ranges if not r.done]


@dataclass
class _Chunk:
    plan: TablePlan
    body: bytes | None  # b"(..),(..)" or None for the end-of-table marker
    rows: int
    last_key: list[str] | None
    whole_table_txn: bool = False  # keyless table: the chunk belongs to one open transaction
    final: bool = False  # the last chunk of its part (a whole table, or one key range)
    as_insert: bool = False  # rendered for INSERT although the table uses LOAD DATA (row too big for a TSV line)
    range: KeyRange | None = None  # the key range of a split table this chunk belongs to


class _Stop(Exception):
    pass


def _reader(
    src, tables: queue.Queue, q: queue.Queue, stop: threading.Event, chunk_bytes: int, max_packet: int, errors: list
) -> None:
    """Take parts (``_Part``) from the shared ``tables`` queue until it is empty; chunks go to this pipeline's
    ``q``."""
    try:
        with src.cursor() as cur:
            # one chunk is one GROUP_CONCAT value: it may be as long as a chunk can be
            cur.execute(f"SET SESSION group_concat_max_len = LEAST(@@max_allowed_packet, {int(max_packet)})")
            while True:
                try:
                    part = tables.get_nowait()
                except queue.Empty:
                    break
                _read_table(cur, part, q, stop, chunk_bytes, max_packet)
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


def keyset_upto(key_columns: list, last_key: list[str]) -> str:
    """``WHERE`` text selecting rows up to and including ``last_key`` (the counterpart of
    ``values.keyset_condition``), expanded so every server's range optimizer can use the index."""
    if len(key_columns) != len(last_key):
        raise ValueError("last key does not match the key columns")
    terms = []
    for i, col in enumerate(key_columns):
        eqs = [f"{quote_ident(k.name)} = {v}" for k, v in zip(key_columns[:i], last_key[:i])]
        op = "<=" if i == len(key_columns) - 1 else "<"
        terms.append("(" + " AND ".join(eqs + [f"{quote_ident(col.name)} {op} {last_key[i]}"]) + ")")
    return " OR ".join(terms)


def _range_where(key: list, after: list[str] | None, upto: list[str] | None) -> str:
    conds = []
    if after is not None:
        conds.append(f"({keyset_condition(key, after)})")
    if upto is not None:
        conds.append(f"({keyset_upto(key, upto)})")
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def _read_table(cur, part: _Part, q: queue.Queue, stop: threading.Event, chunk_bytes: int, max_packet: int) -> None:
    plan = part.plan
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
    key = plan.key
    key_exprs = ", ".join(key_literal_sql(k) for k in key)
    order = ", ".join(quote_ident(k.name) for k in key)
    last_key, upto = part.start, part.end
    limit = max(1, min(1000, chunk_bytes // 200))  # adapted to the real row size after the first chunk
    insert_expr, as_insert = row_literal_sql(plan.columns), False
    while True:
        if stop.is_set():
            raise _Stop()
        # The chunk's last key: the limit-th key of the part after last_key (none: the rest of the part).
        cur.execute(
            f"SELECT {key_exprs} FROM {table}{_range_where(key, last_key, upto)} ORDER BY {order} "
            f"LIMIT 1 OFFSET {limit - 1}"
        )
        found = cur.fetchone()
        end = [as_text(v) for v in found] if found is not None else upto
        final = found is None or end == upto
        where = _range_where(key, last_key, end)
        # One value for the whole chunk. A row the server could not render (NULL) leaves its LOAD DATA line out
        # (counted below); in the INSERT rendering it becomes a NUL byte, which no rendered row contains
        # (QUOTE escapes it, binary goes as hex).
        concat = (
            f"GROUP_CONCAT({row_expr} SEPARATOR '')"
            if not sep
            else f"GROUP_CONCAT(IFNULL({row_expr}, 0x00) SEPARATOR ',')"
        )
        cur.execute(f"SELECT COUNT(*), {concat} FROM {table}{where}")
        count, body = cur.fetchone()
        rows = int(count)
        complete = cur.warning_count == 0 and (rows == 0) == (body is None)
        if complete and body is not None:
            if sep:  # INSERT rendering
                complete = b"\x00" not in body
            else:  # LOAD DATA: one line per row (newlines in values are escaped)
                complete = body.count(b"\n") == rows
        if not complete and rows > 1:
            # Not concatenated whole (longer than group_concat_max_len, or a row the server could not render):
            # a smaller chunk, down to the single row at fault, which is read alone below.
            limit = max(1, rows // 4)
            continue
        if not complete:
            cur.execute(f"SELECT {row_expr} FROM {table}{where}")
            fetched = [r[0] for r in cur.fetchall()]
            if any(v is None for v in fetched):
                if row_expr != insert_expr:
                    # The LOAD DATA rendering of a row did not fit the source's max_allowed_packet (it
                    # hex-encodes binary columns): copy the rest of this part with the INSERT rendering.
                    log.info(
                        "full data sync: %s has rows too large for LOAD DATA; copying the rest with INSERT",
                        plan.label,
                    )
                    row_expr, sep, as_insert = insert_expr, b",", True
                    limit = 1
                    continue
                raise FullSyncError(
                    f"a row of {plan.label} is larger than the source's max_allowed_packet once rendered (the "
                    "server returned NULL for it). Fix: raise max_allowed_packet on the source (and the destination)"
                )
            body, rows = sep.join(fetched), len(fetched)
        body = body or b""
        if len(body) > max_packet:
            if rows <= 1:
                raise FullSyncError(
                    f"a row of {plan.label} is {len(body)} bytes as SQL, more than the destination's "
                    f"max_allowed_packet ({max_packet} usable). Fix: raise max_allowed_packet on the destination"
                )
            limit = max(1, rows // 4)
            continue
        _put(
            q,
            _Chunk(plan, body or None, rows, end if end is not None else last_key, final=final, as_insert=as_insert,
                   range=part.range),
            stop,
        )  # fmt: skip
        if final:
            return
        last_key = end
        if rows:
            per_row = max(1.0, len(body) / rows)
            limit = int(max(1, min(MAX_CHUNK_ROWS, chunk_bytes / per_row, max_packet / per_row / 2)))


def _reader_session(conn):
    """A source session that renders values the way the literals expect (see ``values.READER_SQL_MODE``)."""
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode='{READER_SQL_MODE}', sql_quote_show_create=1")
    return conn
