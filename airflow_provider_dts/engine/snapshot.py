"""Initial full data synchronization: a consistent snapshot of the selected tables, copied exactly.

Snapshot and its binlog position
    MariaDB: ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` then ``SHOW STATUS LIKE 'binlog_snapshot_%'``
    gives the binlog file/position at which the snapshot is consistent, with no global lock at all.
    MySQL: ``FLUSH TABLES WITH READ LOCK`` -> ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` -> binary log
    status -> ``UNLOCK TABLES``. The global read lock is held only for those three statements (the
    shortest possible lock; writes on the source wait for milliseconds, not for the copy). It needs the
    RELOAD privilege.

Positions (the shared contract with incremental sync)
    ``checkpoint.snapshot_file/pos``: the first snapshot's position, written when it is taken. For task two
    it is usually set already: task one records there the start floor taken before it wrote on task two's
    source (``engine.startfloor``); it is kept, so task two replays everything written since.
    ``checkpoint.catchup_file/pos``: the latest snapshot's position (a resumed copy takes a new snapshot).
    ``checkpoint.binlog_file/pos`` = the first snapshot's position, set only once every table is copied:
    that is the moment the direction counts as initialized. Incremental sync replays from there,
    idempotently until it passes the catch-up position.
    Objects added to an initialized direction (``engine.modify``): only the added tables are copied, from a new
    snapshot S; the checkpoint is left as it is and each added table's ``table_progress.catchup_file/pos`` = S
    (its changes in transactions ending at or before S apply idempotently when incremental sync resumes).

Copy
    Tables are copied ``parallel`` at a time (default 2, a two-core budget): each pipeline is a reader
    thread on its own source connection and a writer thread on its own destination connection, joined by a
    bounded queue (memory stays flat: a few chunks of at most ``chunk_bytes``). All readers hold the SAME
    snapshot (MariaDB: snapshots retried until their binlog positions agree; MySQL: all started under the
    one brief read lock). A reader reads its table in key order with keyset pagination (primary key, or a
    NOT NULL unique key; never OFFSET); the source server renders each row as exact text
    (``values.load_data_plan`` / ``values.row_literal_sql``), so Python never converts a value. The writer
    applies a chunk with ``LOAD DATA LOCAL INFILE`` (about twice as fast as INSERT here; warnings are
    checked, so nothing is silently changed) or one multi-row INSERT, together with the table's
    ``table_progress`` row (last key, rows done) and the direction's ``checkpoint`` row (the loop mark: the
    opposite direction's reader drops every transaction that touches it) in ONE transaction. A killed copy
    therefore resumes after the last committed chunk: no row twice, none skipped. A table without a usable
    key is streamed and committed in a single destination transaction (restarted whole).

    ``PrecheckAndIntercept``: a row whose key already exists at the destination is an error (the chunk is
    rolled back). ``Ignore``: such rows are kept as they are (INSERT: ``ON DUPLICATE KEY UPDATE`` of
    nothing; LOAD DATA: duplicate-key warnings accepted, any other warning is an error), so no other
    problem is silenced. Generated columns are never written. Tables in
    ``direction.skip_initial_tables`` are skipped (the opposite direction fills them).

State: ``Initializing`` while running, ``InitializeFailed`` with the message on error (``Stopped`` when
``stop`` was set); on success the state is left for the incremental sync to change.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.config import SyncDirection, format_object_name
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.engine.modify import begin as begin_modification
from airflow_provider_dts.engine.modify import finish as modification_done
from airflow_provider_dts.engine.modify import identities as modify_identities
from airflow_provider_dts.engine.modify import plan_modification, record_initialized
from airflow_provider_dts.engine.schema_sync import TableRef, create_triggers, list_source_objects
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, qualified, quote_ident, server_info
from airflow_provider_dts.engine.startfloor import record_reverse_floor
from airflow_provider_dts.engine.values import (
    READER_SQL_MODE,
    WRITER_SQL_MODE,
    ColumnInfo,
    LoadDataPlan,
    key_literal_sql,
    keyset_condition,
    load_columns,
    load_data_plan,
    row_literal_sql,
)

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024
MAX_CHUNK_ROWS = 20000
QUEUE_CHUNKS = 4
RETRIES = 3  # per chunk, on a destination deadlock or lock wait timeout
METHODS = ("auto", "load_data", "insert")


class _GuardedLoadLocalFile(pymysql.connections.LoadLocalFile):
    """PyMySQL's LOAD DATA LOCAL sender, restricted on our writer connections to the one file we wrote.

    A server answering LOAD DATA LOCAL may ask for ANY client file; on connections marked with
    ``_dts_infile`` only that file is ever sent. Other connections behave exactly as before.
    """

    def send_data(self):
        allowed = getattr(self.connection, "_dts_infile", None)
        if allowed is not None:
            name = self.filename.decode("utf-8", "replace") if isinstance(self.filename, bytes) else self.filename
            if name != allowed:
                self.filename = "/nonexistent/dts-refused-file"  # PyMySQL answers with an empty file + error
        return super().send_data()


if pymysql.connections.LoadLocalFile is not _GuardedLoadLocalFile:
    pymysql.connections.LoadLocalFile = _GuardedLoadLocalFile


class FullSyncError(DtsError):
    """The full data sync cannot continue (the message names the table and the fix)."""


# ----------------------------------------------------------------------------------------- plan


@dataclass
class TablePlan:
    ref: TableRef
    columns: list[ColumnInfo]
    key: list[ColumnInfo] | None
    estimated_rows: int
    status: str | None = None
    rows_done: int = 0
    last_key: list[str] | None = None
    load: LoadDataPlan | None = None  # set when the LOAD DATA method is used

    @property
    def label(self) -> str:
        return self.ref.label

    @property
    def row_sql(self) -> str:
        return self.load.select_sql if self.load is not None else row_literal_sql(self.columns)

    @property
    def separator(self) -> bytes:
        return b"" if self.load is not None else b","


@dataclass
class FullSyncResult:
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    snapshot_file: str | None = None
    snapshot_pos: int | None = None
    catchup_file: str | None = None
    catchup_pos: int | None = None
    resumed: bool = False
    already_initialized: bool = False
    skipped: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    triggers_created: list[str] = field(default_factory=list)
    method: str = ""
    modification: str | None = None  # an initialized sync re-run: what changed (engine/modify.py)

    def summary(self) -> dict[str, Any]:
        return {
            "modification": self.modification,
            "tables": self.tables,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
            "snapshot_position": f"{self.snapshot_file}:{self.snapshot_pos}" if self.snapshot_file else None,
            "catchup_position": f"{self.catchup_file}:{self.catchup_pos}" if self.catchup_file else None,
            "resumed": self.resumed,
            "already_initialized": self.already_initialized,
            "skipped": list(self.skipped),
            "table_rows": dict(self.table_rows),
            "triggers_created": list(self.triggers_created),
            "method": self.method,
        }


def choose_key(conn, db: str, table: str, columns: list[ColumnInfo]) -> list[ColumnInfo] | None:
    """The primary key, else the first unique key whose columns are all NOT NULL (no prefix parts)."""
    by_name = {c.name: c for c in columns}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY INDEX_NAME='PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
            (db, table),
        )
        rows = cur.fetchall()
    indexes: dict[str, list] = {}
    for name, non_unique, col, sub in rows:
        if int(non_unique) == 0:
            indexes.setdefault(_t(name), []).append((_t(col), sub))
    for name, cols in indexes.items():
        if any(sub is not None or col not in by_name for col, sub in cols):
            continue
        key = [by_name[c] for c, _ in cols]
        if name == "PRIMARY" or all(not k.nullable for k in key):
            if any(k.generated or k.kind in ("json", "spatial") for k in key):
                continue
            return key
    return None


def _t(v: Any) -> Any:
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else v


def _source_columns(conn, ref: TableRef) -> list[ColumnInfo]:
    return load_columns(conn, ref.src_db, ref.src_table)


def _check_destination_columns(dst, ref: TableRef, columns: list[ColumnInfo]) -> None:
    dcols = {c.name: c for c in load_columns(dst, ref.dst_db, ref.dst_table)}
    if not dcols:
        raise FullSyncError(
            f"table {format_object_name(ref.dst_db, ref.dst_table)} does not exist at the destination. "
            "Fix: run the initial schema sync first, or create the table"
        )
    missing = [c.name for c in columns if c.name not in dcols]
    generated = [c.name for c in columns if c.name in dcols and dcols[c.name].generated]
    if missing or generated:
        what = []
        if missing:
            what.append(f"missing columns {', '.join(missing)}")
        if generated:
            what.append(f"columns {', '.join(generated)} are generated there")
        raise FullSyncError(
            f"table {format_object_name(ref.dst_db, ref.dst_table)} at the destination differs from the source "
            f"({'; '.join(what)}). Fix: make the destination table's columns match the source"
        )


# ----------------------------------------------------------------------------------------- snapshot


def take_snapshot(conn, info: ServerInfo) -> tuple[str, int]:
    """Open a consistent-snapshot transaction on ``conn``; return the binlog position it is consistent at."""
    return take_snapshots([conn], info)[0]


def _snapshot_position(cur) -> tuple[str | None, int | None]:
    cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
    status = {_t(k).lower(): _t(v) for k, v in cur.fetchall()}
    file, pos = status.get("binlog_snapshot_file"), status.get("binlog_snapshot_position")
    return (str(file), int(pos)) if file else (None, None)


def take_snapshots(conns: list, info: ServerInfo, attempts: int = 20) -> tuple[tuple[str, int], list]:
    """Open the SAME consistent snapshot on each connection (parallel readers); return its position and the
    connections that hold it (at least the first; extra ones are dropped when they cannot be aligned).

    MariaDB: each connection's snapshot reports its binlog position; snapshots at the same position see the
    same transactions, so they are retried until all positions agree (no lock at all). MySQL: all snapshots
    start while one connection holds FLUSH TABLES WITH READ LOCK (released right after).
    """
    if info.has_binlog_snapshot_status:
        use = list(conns)
        for attempt in range(attempts + 1):
            positions = []
            for c in use:
                with c.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    positions.append(_snapshot_position(cur))
            if positions[0][0] is None:
                for c in use:
                    c.cursor().execute("ROLLBACK")
                raise FullSyncError(
                    "the source has no binary log position for the snapshot (binlog off?). "
                    "Fix: start the source with log_bin enabled"
                )
            if all(p == positions[0] for p in positions):
                return (positions[0][0], positions[0][1]), use
            for c in use:
                c.cursor().execute("ROLLBACK")
            if attempt == attempts - 1:
                use = use[:1]  # the source commits too often to align several snapshots: read alone
        raise FullSyncError("could not take a consistent snapshot on the source")  # pragma: no cover
    lock_cur = conns[0].cursor()
    for c in conns:
        c.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        lock_cur.execute("FLUSH TABLES WITH READ LOCK")
    except pymysql.err.MySQLError as e:
        raise FullSyncError(
            f"cannot take the snapshot lock on the source: {e.args[-1]}. Fix: grant the source account RELOAD "
            "(FLUSH TABLES WITH READ LOCK is held only while the snapshot starts)"
        ) from None
    try:
        for c in conns:
            c.cursor().execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        lock_cur.execute(info.binlog_status_sql)
        row = lock_cur.fetchone()
    finally:
        lock_cur.execute("UNLOCK TABLES")
    if not row:
        for c in conns:
            c.cursor().execute("ROLLBACK")
        raise FullSyncError("the binary log is off on the source. Fix: start it with log_bin enabled")
    return (str(_t(row[0])), int(row[1])), list(conns)


# ----------------------------------------------------------------------------------------- pipeline


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


class _Progress:
    """Progress lines (and the optional callback) every ``interval`` seconds; shared by the writers."""

    def __init__(self, logger: logging.Logger, interval: float, callback: Callable[[dict], None] | None):
        self.logger = logger
        self.interval = interval
        self.callback = callback
        self.lock = threading.Lock()
        self.last_report = time.monotonic()
        self.rows_total = 0
        self.started: dict[int, tuple[float, int]] = {}

    def table_start(self, plan: TablePlan) -> None:
        with self.lock:
            self.started[id(plan)] = (time.monotonic(), plan.rows_done)

    def add(self, rows: int) -> None:
        with self.lock:
            self.rows_total += rows

    def report(self, plan: TablePlan, force: bool = False) -> None:
        with self.lock:
            now = time.monotonic()
            if not force and now - self.last_report < self.interval:
                return
            self.last_report = now
            t0, rows0 = self.started.get(id(plan), (now, plan.rows_done))
            rows_total = self.rows_total
        rate = (plan.rows_done - rows0) / max(now - t0, 1e-6)
        est = max(plan.estimated_rows, plan.rows_done)
        eta = (est - plan.rows_done) / rate if rate > 0 else None
        info = {
            "table": plan.label,
            "rows_done": plan.rows_done,
            "rows_estimated": est,
            "rows_per_second": round(rate, 1),
            "eta_seconds": None if eta is None else round(eta, 1),
            "rows_total": rows_total,
        }
        pct = 100.0 * plan.rows_done / est if est else 100.0
        self.logger.info(
            "full data sync: %s: %d of ~%d rows (%.1f%%), %.0f rows/s, ETA %s",
            plan.label,
            plan.rows_done,
            est,
            pct,
            rate,
            "-" if eta is None else f"{eta:.0f}s",
        )
        if self.callback:
            self.callback(info)


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


def _writer_loop(
    writer: _Writer, q: queue.Queue, stop: threading.Event, errors: list, user_stop: threading.Event
) -> None:
    try:
        while True:
            try:
                chunk = q.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set() or user_stop.is_set():
                    return
                continue
            if chunk is None or stop.is_set() or user_stop.is_set():
                return
            writer.write(chunk)
    except BaseException as e:
        errors.append(e)
        stop.set()
    finally:
        writer.rollback()


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
        last_key = [_t(v) for v in rows[-1][1 : 1 + nkey]]
        short = len(rows) < limit  # fewer rows than asked for: this was the table's last chunk
        _put(q, _Chunk(plan, body, len(rows), last_key, final=short, as_insert=as_insert), stop)
        if short:
            return
        per_row = max(1.0, len(body) / len(rows))
        limit = int(max(1, min(MAX_CHUNK_ROWS, chunk_bytes / per_row, max_packet / per_row / 2)))


class _Writer:
    def __init__(
        self,
        dst,
        direction: SyncDirection,
        control: ControlSchema,
        progress: _Progress,
        max_rows_per_second: float | None,
        on_chunk: Callable[[str, int], None] | None,
    ):
        self.dst = dst
        self.direction = direction
        self.control = control
        self.progress = progress
        self.max_rps = max_rows_per_second
        self.on_chunk = on_chunk
        self.dst._dts_infile = ""  # LOAD DATA LOCAL: refuse every file until we name ours
        self.cur = dst.cursor()
        self.cur.execute(
            f"SET SESSION sql_mode='{WRITER_SQL_MODE}', FOREIGN_KEY_CHECKS=0, max_error_count=65535, @dts_applying=1"
        )  # guarded triggers do nothing in this session (engine/triggers.py)
        self.tmpdir: str | None = None
        self.infile: str | None = None
        self.in_txn = False
        self.rate_started = time.monotonic()
        self.rate_rows = 0
        self.current: TablePlan | None = None

    def _insert_prefix(self, plan: TablePlan) -> bytes:
        cols = ", ".join(quote_ident(c.name) for c in plan.columns)
        return f"INSERT INTO {qualified(plan.ref.dst_db, plan.ref.dst_table)} ({cols}) VALUES ".encode()

    def _insert_suffix(self, plan: TablePlan) -> bytes:
        if self.direction.existing_table_mode.value == "Ignore" and plan.key is not None:
            c = quote_ident(plan.columns[0].name)
            return f" ON DUPLICATE KEY UPDATE {c}={c}".encode()
        return b""

    def _mark(self, plan: TablePlan, status: str, rows_done: int, last_key: list[str] | None) -> None:
        t = self.control.table("table_progress")
        self.cur.execute(
            f"UPDATE {t} SET status=%s, rows_done=%s, last_key=%s, dest_db=%s, dest_table=%s, "
            f"started_at=IFNULL(started_at, UTC_TIMESTAMP(6)), "
            f"finished_at=IF(%s='done', UTC_TIMESTAMP(6), NULL), updated_at=UTC_TIMESTAMP(6) "
            f"WHERE task_name=%s AND direction=%s AND source_db=%s AND source_table=%s",
            (
                status,
                rows_done,
                None if last_key is None else json.dumps(last_key),
                plan.ref.dst_db,
                plan.ref.dst_table,
                status,
                self.direction.task_name,
                self.direction.role,
                plan.ref.src_db,
                plan.ref.src_table,
            ),
        )
        # The loop mark: this transaction also changes the direction's checkpoint row.
        self.cur.execute(
            f"UPDATE {self.control.table('checkpoint')} SET updated_at=GREATEST(UTC_TIMESTAMP(6), "
            f"updated_at + INTERVAL 1 MICROSECOND) WHERE task_name=%s AND direction=%s",
            (self.direction.task_name, self.direction.role),
        )

    def write(self, chunk: _Chunk) -> None:
        plan = chunk.plan
        if plan is not self.current:
            self.current = plan
            self.progress.table_start(plan)
        if chunk.whole_table_txn:
            # keyless table: one transaction from its first chunk to its last (restarted whole on error)
            if not self.in_txn:
                self.cur.execute("START TRANSACTION")
                self.in_txn = True
            if chunk.body:
                self._exec_insert(plan, chunk.body, chunk.as_insert)
            plan.rows_done += chunk.rows
            self.progress.add(chunk.rows)
            if not chunk.final:
                return
            plan.status, plan.last_key = "done", None
            self._mark(plan, plan.status, plan.rows_done, None)
            self.cur.execute("COMMIT")
            self.in_txn = False
        else:
            status = "done" if chunk.final else "copying"
            rows_done = plan.rows_done + chunk.rows
            for attempt in range(RETRIES + 1):
                try:
                    self.cur.execute("START TRANSACTION")
                    self.in_txn = True
                    if chunk.body:
                        self._exec_insert(plan, chunk.body, chunk.as_insert)
                    self._mark(plan, status, rows_done, chunk.last_key)
                    self.cur.execute("COMMIT")
                    self.in_txn = False
                    break
                except pymysql.err.OperationalError as e:
                    # A deadlock or lock wait timeout at the destination: the chunk is still in memory.
                    if e.args and e.args[0] in (1205, 1213) and attempt < RETRIES:
                        self.rollback()
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    raise
            plan.rows_done, plan.last_key, plan.status = rows_done, chunk.last_key, status
            self.progress.add(chunk.rows)
        if self.on_chunk:
            self.on_chunk(plan.label, plan.rows_done)
        self.progress.report(plan, force=chunk.final)
        self._throttle(chunk.rows)

    def _load(self, plan: TablePlan, body: bytes) -> None:
        if self.infile is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
            self.tmpdir = tempfile.mkdtemp(prefix="dts-load-", dir=base)
            os.chmod(self.tmpdir, 0o700)
            self.infile = os.path.join(self.tmpdir, "chunk.tsv")
            self.dst._dts_infile = self.infile
        with open(self.infile, "wb") as f:
            f.write(body)
        assert plan.load is not None
        self.cur.execute(plan.load.statement(plan.ref.dst_db, plan.ref.dst_table, self.infile))
        self.cur.execute("SELECT @@warning_count")
        if int(self.cur.fetchone()[0]) == 0:
            return
        self.cur.execute("SHOW WARNINGS")
        warnings = [(int(w[1]), _t(w[2])) for w in self.cur.fetchall()]
        dups = [w for w in warnings if w[0] == 1062]
        others = [w for w in warnings if w[0] != 1062]
        if others:
            raise FullSyncError(
                f"copying {plan.label}: the destination changed values: {others[0][1]} ({len(others)} warning(s)). "
                "Fix: make the destination table's definition match the source"
            )
        if dups and self.direction.existing_table_mode.value != "Ignore":
            raise FullSyncError(
                f"copying {plan.label}: {dups[0][1]}. The destination already holds a row with this key. Fix: "
                "empty the destination table, or use existing_table_mode Ignore to keep destination rows"
            )

    def close(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = self.infile = None

    def _exec_insert(self, plan: TablePlan, body: bytes, as_insert: bool = False) -> None:
        if plan.load is not None and not as_insert:
            self._load(plan, body)
            return
        sql = self._insert_prefix(plan) + body + self._insert_suffix(plan)
        try:
            self.cur.execute(sql)
        except pymysql.err.IntegrityError as e:
            raise FullSyncError(
                f"copying {plan.label}: {e.args[-1]}. The destination already holds a row with this key. Fix: "
                "empty the destination table, or use existing_table_mode Ignore to keep destination rows"
            ) from None
        except pymysql.err.DataError as e:
            raise FullSyncError(
                f"copying {plan.label}: {e.args[-1]}. Fix: make the destination table's definition match the source"
            ) from None

    def _throttle(self, rows: int) -> None:
        if not self.max_rps:
            return
        self.rate_rows += rows
        ahead = self.rate_rows / self.max_rps - (time.monotonic() - self.rate_started)
        if ahead > 0:
            time.sleep(ahead)

    def rollback(self) -> None:
        if self.in_txn:
            try:
                self.cur.execute("ROLLBACK")
            except pymysql.err.MySQLError:
                pass
            self.in_txn = False


# ----------------------------------------------------------------------------------------- entry point


def _reader_session(conn):
    """A source session that renders values the way the literals expect (see ``values.READER_SQL_MODE``)."""
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode='{READER_SQL_MODE}', sql_quote_show_create=1")
    return conn


def _load_progress(dst, control: ControlSchema, direction: SyncDirection) -> dict[tuple[str, str], tuple]:
    with dst.cursor() as cur:
        cur.execute(
            f"SELECT source_db, source_table, status, rows_done, last_key FROM {control.table('table_progress')} "
            f"WHERE task_name=%s AND direction=%s",
            (direction.task_name, direction.role),
        )
        return {(_t(r[0]), _t(r[1])): (_t(r[2]), int(r[3]), _t(r[4])) for r in cur.fetchall()}


def full_data_sync(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
    progress_interval: float = 5.0,
    progress_callback: Callable[[dict], None] | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_rows_per_second: float | None = None,
    on_chunk: Callable[[str, int], None] | None = None,
    stop: threading.Event | None = None,
    method: str = "auto",
    parallel: int = 2,
) -> FullSyncResult:
    """Copy every selected table's rows to the destination from one consistent snapshot (module doc).

    Returns a ``FullSyncResult``; ``already_initialized`` when the direction's checkpoint already has its
    incremental start position: then only tables added to the direction since are copied (``engine.modify``;
    ``modification`` says what changed), and a change that cannot be applied in place raises ``ModifyRefused``
    before anything is written. Raises ``FullSyncError`` (state InitializeFailed).
    ``max_rows_per_second`` limits the load on both servers. ``stop`` ends the copy after the current
    chunk (progress kept; the next run resumes). ``method``: ``load_data`` (LOAD DATA LOCAL INFILE, about
    twice as fast), ``insert`` (multi-row INSERT), or ``auto`` (LOAD DATA when the destination allows
    ``local_infile``, else INSERT). ``parallel``: tables copied at once (one reader and one writer each,
    all readers on the same snapshot); 2 fits a two-core machine.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}: use one of {', '.join(METHODS)}")
    logger = logger or log
    control = ControlSchema(direction.control_schema)
    stop = stop or threading.Event()
    started = time.monotonic()
    result = FullSyncResult()
    task, role = direction.task_name, direction.role
    # An initialized direction re-run: copy only the tables added to it (engine/modify.py); refused changes
    # raise here, before anything is written.
    with source.connect() as src, destination.connect() as dst:
        mod = plan_modification(direction, src, dst, logger=logger)
    record_reverse_floor(direction, source, destination, logger=logger)  # task one: before it writes on B
    with destination.connect() as dst:
        with dst.cursor() as cur:  # literals below use backslash escapes: never NO_BACKSLASH_ESCAPES here
            cur.execute(f"SET SESSION sql_mode='{WRITER_SQL_MODE}'")
        control.ensure(dst)
        cp = control.read_checkpoint(dst, task, role)
        if cp is not None and cp.binlog_file is not None:
            result.already_initialized = True
            result.snapshot_file, result.snapshot_pos = cp.snapshot_file, cp.snapshot_pos
            result.catchup_file, result.catchup_pos = cp.catchup_file, cp.catchup_pos
            result.modification = mod.describe() if mod is not None else None
            if mod is None or not mod.added_tables:
                if mod is not None:
                    with dst.cursor() as cur:
                        cur.execute("START TRANSACTION")
                        modification_done(mod, cur)
                        cur.execute("COMMIT")
                logger.info(
                    "full data sync: %s is already initialized (incremental start %s:%s); %s; nothing to copy",
                    direction.key,
                    cp.binlog_file,
                    cp.binlog_pos,
                    mod.describe() if mod is not None else "no change",
                )
                return result
            begin_modification(mod, dst)
            logger.info(
                "full data sync: %s is already initialized (incremental start %s:%s); %s; copying the added "
                "tables %s from a new snapshot",
                direction.key,
                cp.binlog_file,
                cp.binlog_pos,
                mod.describe(),
                ", ".join(r.label for r in mod.added_tables),
            )
        control.set_state(
            dst,
            task,
            role,
            State.INITIALIZING,
            "full data sync running"
            if mod is None
            else f"copying tables added to the sync: {', '.join(r.label for r in mod.added_tables)}",
        )
        try:
            _run(
                direction,
                source,
                destination,
                dst,
                control,
                cp,
                result,
                logger,
                progress_interval,
                progress_callback,
                chunk_bytes,
                max_rows_per_second,
                on_chunk,
                stop,
                method,
                max(1, int(parallel)),
                mod,
            )
            if direction.sync_triggers:  # after the copy, so copied rows never fire them
                result.triggers_created = create_triggers(
                    direction if mod is None else mod.added_direction(), source, destination, logger=logger
                )
        except BaseException as e:
            message = str(e) if isinstance(e, DtsError) else f"full data sync failed: {type(e).__name__}: {e}"
            stopped = stop.is_set() and isinstance(e, FullSyncError) and "stopped on request" in message
            try:
                with destination.connect() as conn2:
                    conn2.cursor().execute(f"SET SESSION sql_mode='{WRITER_SQL_MODE}'")
                    control.set_state(
                        conn2, task, role, State.STOPPED if stopped else State.INITIALIZE_FAILED, message[:60000]
                    )
            except Exception:
                logger.exception("could not record InitializeFailed for %s", direction.key)
            if isinstance(e, DtsError):
                raise
            if isinstance(e, pymysql.err.MySQLError):
                raise FullSyncError(
                    message + ". Fix: check both servers are reachable, then run the task again; "
                    "it resumes after the last copied chunk"
                ) from e
            raise
    result.seconds = time.monotonic() - started
    return result


def _run(
    direction,
    source,
    destination,
    dst,
    control,
    cp,
    result,
    logger,
    progress_interval,
    progress_callback,
    chunk_bytes,
    max_rows_per_second,
    on_chunk,
    stop,
    method,
    parallel,
    mod=None,
) -> None:
    """Copy the tables (all selected ones; with ``mod``, only the tables added to an initialized direction:
    its checkpoint is kept and each table's snapshot position becomes its catch-up position)."""
    task, role = direction.task_name, direction.role
    if method == "auto":
        with dst.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            method = "load_data" if str(cur.fetchone()[0]).upper() in ("1", "ON") else "insert"
    result.method = method
    with source.connect() as src:
        _reader_session(src)
        info = server_info(src)
        objs = list_source_objects(src, direction)
        result.skipped = list(objs.skipped)
        progress_rows = _load_progress(dst, control, direction)
        plans: list[TablePlan] = []
        for ref in objs.tables if mod is None else mod.added_tables:
            columns = [c for c in _source_columns(src, ref) if not c.generated]
            _check_destination_columns(dst, ref, columns)
            key = choose_key(src, ref.src_db, ref.src_table, columns)
            with src.cursor() as cur:
                cur.execute(
                    "SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                    "AND TABLE_NAME=%s",
                    (ref.src_db, ref.src_table),
                )
                est = int(cur.fetchone()[0])
            status, rows_done, last_key = progress_rows.get((ref.src_db, ref.src_table), (None, 0, None))
            plan = TablePlan(ref, columns, key, est, status)
            if method == "load_data":
                plan.load = load_data_plan(columns)
            if status == "copying" and key is not None and last_key:
                plan.rows_done, plan.last_key = rows_done, json.loads(last_key)
                result.resumed = True
            elif status == "done":
                plan.rows_done = rows_done
                result.resumed = True
            if key is None and status != "done":
                logger.warning(
                    "full data sync: %s has no primary or NOT NULL unique key: copied in one "
                    "transaction (restarted whole if interrupted)",
                    ref.label,
                )
            plans.append(plan)
        with dst.cursor() as dcur:
            for plan in plans:
                dcur.execute(
                    f"INSERT INTO {control.table('table_progress')} (task_name, direction, source_db, source_table, "
                    f"dest_db, dest_table, status, rows_estimated, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,"
                    f"UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE rows_estimated=VALUES(rows_estimated), "
                    f"status=IF(status IN ('copying','done'), status, 'pending'), updated_at=VALUES(updated_at)",
                    (
                        task,
                        role,
                        plan.ref.src_db,
                        plan.ref.src_table,
                        plan.ref.dst_db,
                        plan.ref.dst_table,
                        "pending",
                        plan.estimated_rows,
                    ),
                )
                if plan.status not in ("copying", "done"):
                    plan.status = "pending"
        for plan in plans:
            if plan.status == "copying" and plan.key is None:
                plan.status, plan.rows_done = "pending", 0

        # The snapshot(s) and the position, recorded before any row is copied.
        todo = sorted((p for p in plans if p.status != "done"), key=lambda p: -p.estimated_rows)
        n_pipes = max(1, min(parallel, len(todo)))
        src_conns = [src] + [_reader_session(source.connect()) for _ in range(n_pipes - 1)]
        try:
            (file, pos), readers = take_snapshots(src_conns, info)
            for extra in src_conns[len(readers) :]:
                extra.close()
            src_conns = src_conns[: len(readers)]
            logger.info(
                "full data sync: snapshot of %s taken at binlog %s:%d (%s; %d reader(s))",
                source.describe(),
                file,
                pos,
                "no lock" if info.has_binlog_snapshot_status else "read lock held only while it started",
                len(src_conns),
            )
            if mod is not None:
                _mark_catchup(dst, control, direction, todo, file, pos)
            else:  # (an added table's copy keeps the checkpoint as it is)
                new_cp = cp or Checkpoint()
                if new_cp.snapshot_file is None:
                    new_cp.snapshot_file, new_cp.snapshot_pos = file, pos
                new_cp.catchup_file, new_cp.catchup_pos = file, pos
                new_cp.binlog_file = new_cp.binlog_pos = None
                with dst.cursor() as dcur:
                    dcur.execute("START TRANSACTION")
                    control.write_checkpoint(dcur, task, role, new_cp)
                    dcur.execute("COMMIT")
                result.snapshot_file, result.snapshot_pos = new_cp.snapshot_file, new_cp.snapshot_pos
            result.catchup_file, result.catchup_pos = file, pos

            with dst.cursor() as dcur:
                dcur.execute("SELECT @@max_allowed_packet")
                max_packet = int(dcur.fetchone()[0]) - 64 * 1024
            chunk_bytes = max(1024, min(chunk_bytes, max_packet // 2))
            for p in plans:
                if p.status == "done":
                    logger.info("full data sync: %s already copied (%d rows)", p.label, p.rows_done)
            _copy(
                direction,
                destination,
                control,
                todo,
                src_conns,
                logger,
                progress_interval,
                progress_callback,
                chunk_bytes,
                max_packet,
                max_rows_per_second,
                on_chunk,
                stop,
            )
            for c in src_conns:
                with c.cursor() as scur:
                    scur.execute("COMMIT")  # end the snapshot transactions
        finally:
            for c in src_conns[1:]:
                c.close()

        if mod is not None:  # every added table copied: the new settings are the running ones
            with dst.cursor() as dcur:
                dcur.execute("START TRANSACTION")
                modification_done(mod, dcur)
                control.set_state(
                    dcur,
                    task,
                    role,
                    State.INITIALIZING,
                    f"added tables copied ({sum(p.rows_done for p in plans)} rows in {len(plans)} "
                    f"tables, snapshot {file}:{pos}); incremental sync resumes at {cp.binlog_file}:"
                    f"{cp.binlog_pos}",
                )
                dcur.execute("COMMIT")
            result.tables = len(plans)
            result.rows = sum(p.rows_done for p in plans)
            result.table_rows = {p.label: p.rows_done for p in plans}
            logger.info(
                "full data sync: %d added table(s), %d rows copied at %s:%s; incremental sync resumes at "
                "%s:%s (the added tables apply idempotently up to %s:%s)",
                result.tables,
                result.rows,
                file,
                pos,
                cp.binlog_file,
                cp.binlog_pos,
                file,
                pos,
            )
            return

        # Every table copied: the direction is initialized (incremental starts at the first snapshot).
        ids = modify_identities(src, dst)
        with dst.cursor() as dcur:
            dcur.execute("START TRANSACTION")
            final = control.read_checkpoint(dst, task, role) or new_cp
            final.binlog_file, final.binlog_pos = final.snapshot_file, final.snapshot_pos
            control.write_checkpoint(dcur, task, role, final)
            record_initialized(dcur, control, direction, ids)  # the baseline of later modifications
            control.set_state(
                dcur,
                task,
                role,
                State.INITIALIZING,
                f"full data sync complete: {sum(p.rows_done for p in plans)} rows in {len(plans)} "
                f"tables; incremental sync starts at {final.binlog_file}:{final.binlog_pos}",
            )
            dcur.execute("COMMIT")
        result.tables = len(plans)
        result.rows = sum(p.rows_done for p in plans)
        result.table_rows = {p.label: p.rows_done for p in plans}
        logger.info(
            "full data sync: %d tables, %d rows copied; incremental sync starts at %s:%s (catch-up %s:%s)",
            result.tables,
            result.rows,
            result.snapshot_file,
            result.snapshot_pos,
            file,
            pos,
        )


def _mark_catchup(
    dst, control: ControlSchema, direction: SyncDirection, todo: list[TablePlan], file: str, pos: int
) -> None:
    """Added tables: their snapshot position is their catch-up position (changes in transactions ending at or
    before it apply idempotently: the copy holds them). Committed before any row is copied."""
    with dst.cursor() as dcur:
        dcur.execute("START TRANSACTION")
        for p in todo:
            dcur.execute(
                f"UPDATE {control.table('table_progress')} SET catchup_file=%s, catchup_pos=%s, "
                f"updated_at=UTC_TIMESTAMP(6) WHERE task_name=%s AND direction=%s AND source_db=%s AND source_table=%s",
                (file, pos, direction.task_name, direction.role, p.ref.src_db, p.ref.src_table),
            )
        dcur.execute("COMMIT")


def _copy(
    direction,
    destination,
    control,
    todo,
    src_conns,
    logger,
    progress_interval,
    progress_callback,
    chunk_bytes,
    max_packet,
    max_rows_per_second,
    on_chunk,
    stop,
) -> None:
    """Run one reader + writer pipeline per source connection; tables are shared out largest first."""
    progress = _Progress(logger, progress_interval, progress_callback)
    tables: queue.Queue = queue.Queue()
    for plan in todo:
        tables.put(plan)
    abort = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []
    writers: list[_Writer] = []
    dst_conns = []
    rate = max_rows_per_second / len(src_conns) if max_rows_per_second else None
    try:
        for i, src in enumerate(src_conns):
            dconn = destination.connect(local_infile=True)
            dst_conns.append(dconn)
            writer = _Writer(dconn, direction, control, progress, rate, on_chunk)
            writers.append(writer)
            q: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            threads.append(
                threading.Thread(
                    target=_reader,
                    args=(src, tables, q, abort, chunk_bytes, max_packet, errors),
                    name=f"dts-copy-read-{i}",
                    daemon=True,
                )
            )
            threads.append(
                threading.Thread(
                    target=_writer_loop, args=(writer, q, abort, errors, stop), name=f"dts-copy-write-{i}", daemon=True
                )
            )
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            if stop.is_set():
                abort.set()
            for t in threads:
                t.join(timeout=0.2)
    finally:
        if errors or stop.is_set():
            abort.set()
        for t in threads:
            t.join(timeout=30)
        for w in writers:
            w.close()
        for c in dst_conns:
            try:
                c.close()
            except Exception:
                pass
    if errors:
        e = errors[0]
        if isinstance(e, DtsError):
            raise e
        if isinstance(e, pymysql.err.MySQLError):
            raise FullSyncError(
                f"the copy failed: {type(e).__name__}: {e}. Fix: check both servers, then run the "
                "task again; it resumes after the last copied chunk"
            ) from e
        raise e
    if stop.is_set():
        raise FullSyncError(
            "full data sync stopped on request; progress is kept and the next run resumes after the last copied chunk"
        )
