"""The orchestration of the full data sync: ``full_data_sync`` plans the tables, takes the snapshot(s), records
the positions, runs one reader + writer pipeline per snapshot connection and marks the direction initialized
(or, for tables added to an initialized direction, records their catch-up positions)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import DtsError, FullSyncError
from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.engine.modify import Modification, plan_modification, record_initialized
from airflow_provider_dts.engine.modify import begin as begin_modification
from airflow_provider_dts.engine.modify import finish as modification_done
from airflow_provider_dts.engine.modify import identities as modify_identities
from airflow_provider_dts.engine.schema_sync import create_triggers, list_source_objects
from airflow_provider_dts.engine.servers import ConnectionSettings, server_info
from airflow_provider_dts.engine.snapshot.plan import (
    FullSyncResult,
    TablePlan,
    plan_tables,
    record_plans,
    split_table,
)
from airflow_provider_dts.engine.snapshot.position import take_snapshots
from airflow_provider_dts.engine.snapshot.reader import _Part, _reader, _reader_session, work_items
from airflow_provider_dts.engine.snapshot.writer import _Progress, _Writer, _writer_loop
from airflow_provider_dts.engine.startfloor import record_reverse_floor
from airflow_provider_dts.engine.values import WRITER_SQL_MODE

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024
QUEUE_CHUNKS = 4
DEFAULT_SPLIT_ROWS = 100_000  # a table with at least this many rows (estimated) is split into key ranges
RANGES_PER_PIPELINE = 4  # ranges a split table gets per pipeline (the pipelines finish close together)
METHODS = ("auto", "load_data", "insert")


@dataclass(frozen=True)
class CopySettings:
    """How the copy runs: ``full_data_sync``'s keyword arguments (``method`` is resolved from ``auto`` and
    ``chunk_bytes`` bounded by the destination's max_allowed_packet before the pipelines start)."""

    logger: logging.Logger
    progress_interval: float
    progress_callback: Callable[[dict], None] | None
    chunk_bytes: int
    max_rows_per_second: float | None
    on_chunk: Callable[[str, int], None] | None
    stop: threading.Event
    method: str
    parallel: int
    split_rows: int = DEFAULT_SPLIT_ROWS


@dataclass(frozen=True)
class CopyJob:
    """What one run copies: the direction and its servers, the checkpoint read at the start (None on a first
    run), the modification of an initialized direction (only its added tables are copied), and the result
    being filled in."""

    direction: SyncDirection
    source: ConnectionSettings
    destination: ConnectionSettings
    control: ControlSchema
    checkpoint: Checkpoint | None
    result: FullSyncResult
    modification: Modification | None = None


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
    split_rows: int = DEFAULT_SPLIT_ROWS,
) -> FullSyncResult:
    """Copy every selected table's rows to the destination from one consistent snapshot (package doc).

    Returns a ``FullSyncResult``; ``already_initialized`` when the direction's checkpoint already has its
    incremental start position: then only tables added to the direction since are copied (``engine.modify``;
    ``modification`` says what changed), and a change that cannot be applied in place raises ``ModifyRefused``
    before anything is written. Raises ``FullSyncError`` (state InitializeFailed).
    ``max_rows_per_second`` limits the load on both servers. ``stop`` ends the copy after the current
    chunk (progress kept; the next run resumes). ``method``: ``load_data`` (LOAD DATA LOCAL INFILE, about
    twice as fast), ``insert`` (multi-row INSERT), or ``auto`` (LOAD DATA when the destination allows
    ``local_infile``, else INSERT). ``parallel``: pipelines copying at once (one reader and one writer each,
    all readers on the same snapshot); 2 fits a two-core machine. A table of at least ``split_rows``
    (estimated) rows with a key is split into key ranges that the pipelines copy at the same time.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}: use one of {', '.join(METHODS)}")
    logger = logger or log
    control = ControlSchema(direction.control_schema)
    stop = stop or threading.Event()
    settings = CopySettings(
        logger,
        progress_interval,
        progress_callback,
        chunk_bytes,
        max_rows_per_second,
        on_chunk,
        stop,
        method,
        max(1, int(parallel)),
        max(1, int(split_rows)),
    )
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
        job = CopyJob(direction, source, destination, control, cp, result, mod)
        try:
            _run(job, dst, settings)
            trigger_direction = direction if mod is None else mod.added_direction()
            if direction.sync_triggers and trigger_direction is not None:  # after the copy: copied rows never fire them
                result.triggers_created = create_triggers(trigger_direction, source, destination, logger=logger)
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


def _run(job: CopyJob, dst, settings: CopySettings) -> None:
    """Copy the tables (all selected ones; with ``job.modification``, only the tables added to an initialized
    direction: its checkpoint is kept and each table's snapshot position becomes its catch-up position)."""
    direction, control, result, mod = job.direction, job.control, job.result, job.modification
    logger = settings.logger
    method = settings.method
    if method == "auto":
        with dst.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            method = "load_data" if str(cur.fetchone()[0]).upper() in ("1", "ON") else "insert"
    result.method = method
    with job.source.connect() as src:
        _reader_session(src)
        info = server_info(src)
        objs = list_source_objects(src, direction)
        result.skipped = list(objs.skipped)
        refs = objs.tables if mod is None else mod.added_tables
        plans, resumed = plan_tables(src, dst, control, direction, list(refs), method, logger)
        result.resumed = result.resumed or resumed
        record_plans(dst, control, direction, plans)

        # Large tables are split into key ranges (before the snapshot: any boundaries cover every key).
        todo = [p for p in plans if p.status != "done"]
        for p in todo:
            if p.status == "pending" and settings.parallel > 1 and p.estimated_rows >= settings.split_rows:
                parts = min(settings.parallel * RANGES_PER_PIPELINE, max(2, p.estimated_rows // settings.split_rows))
                p.ranges = split_table(src, p, parts)
                if p.ranges:
                    logger.info(
                        "full data sync: %s (~%d rows) split into %d key ranges",
                        p.label,
                        p.estimated_rows,
                        len(p.ranges),
                    )
        # Work items largest first (a split table's ranges in key order).
        items = sorted((w for p in todo for w in work_items(p)), key=lambda w: -w.estimated_rows)

        # The snapshot(s) and the position, recorded before any row is copied.
        n_pipes = max(1, min(settings.parallel, len(items)))
        src_conns = [src] + [_reader_session(job.source.connect()) for _ in range(n_pipes - 1)]
        try:
            (file, pos), readers = take_snapshots(src_conns, info)
            for extra in src_conns[len(readers) :]:
                extra.close()
            src_conns = src_conns[: len(readers)]
            logger.info(
                "full data sync: snapshot of %s taken at binlog %s:%d (%s; %d reader(s))",
                job.source.describe(),
                file,
                pos,
                "no lock" if info.has_binlog_snapshot_status else "read lock held only while it started",
                len(src_conns),
            )
            if mod is not None:
                _mark_catchup(dst, control, direction, todo, file, pos)
                new_cp = None
            else:  # (an added table's copy keeps the checkpoint as it is)
                new_cp = _record_snapshot(job, dst, file, pos)
            result.catchup_file, result.catchup_pos = file, pos

            with dst.cursor() as dcur:
                dcur.execute("SELECT @@max_allowed_packet")
                max_packet = int(dcur.fetchone()[0]) - 64 * 1024
            copy = replace(settings, chunk_bytes=max(1024, min(settings.chunk_bytes, max_packet // 2)))
            for p in plans:
                if p.status == "done":
                    logger.info("full data sync: %s already copied (%d rows)", p.label, p.rows_done)
            _copy(job, copy, items, src_conns, max_packet)
            for c in src_conns:
                with c.cursor() as scur:
                    scur.execute("COMMIT")  # end the snapshot transactions
        finally:
            for c in src_conns[1:]:
                c.close()

        if mod is not None:  # every added table copied: the new settings are the running ones
            _finish_added(job, dst, mod, plans, file, pos, logger)
            return
        assert new_cp is not None
        _finish_initialized(job, src, dst, plans, new_cp, file, pos, logger)


def _record_snapshot(job: CopyJob, dst, file: str, pos: int) -> Checkpoint:
    """A first copy (or a resumed one): the snapshot position becomes the catch-up position (and the snapshot
    position when none is recorded yet); the direction is not initialized until every table is copied."""
    task, role = job.direction.task_name, job.direction.role
    new_cp = job.checkpoint or Checkpoint()
    if new_cp.snapshot_file is None:
        new_cp.snapshot_file, new_cp.snapshot_pos = file, pos
    new_cp.catchup_file, new_cp.catchup_pos = file, pos
    new_cp.binlog_file = new_cp.binlog_pos = None
    with dst.cursor() as dcur:
        dcur.execute("START TRANSACTION")
        job.control.write_checkpoint(dcur, task, role, new_cp)
        dcur.execute("COMMIT")
    job.result.snapshot_file, job.result.snapshot_pos = new_cp.snapshot_file, new_cp.snapshot_pos
    return new_cp


def _finish_added(
    job: CopyJob,
    dst,
    mod: Modification,
    plans: list[TablePlan],
    file: str,
    pos: int,
    logger: logging.Logger,
) -> None:
    """Every added table copied: the modification is complete; incremental sync resumes at its checkpoint."""
    task, role, result, cp = job.direction.task_name, job.direction.role, job.result, job.checkpoint
    assert cp is not None  # a modification only exists for an initialized direction
    with dst.cursor() as dcur:
        dcur.execute("START TRANSACTION")
        modification_done(mod, dcur)
        job.control.set_state(
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


def _finish_initialized(
    job: CopyJob,
    src,
    dst,
    plans: list[TablePlan],
    new_cp: Checkpoint,
    file: str,
    pos: int,
    logger: logging.Logger,
) -> None:
    """Every table copied: the direction is initialized (incremental starts at the first snapshot)."""
    direction, control, result = job.direction, job.control, job.result
    task, role = direction.task_name, direction.role
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


def _copy(job: CopyJob, settings: CopySettings, items: list[_Part], src_conns: list, max_packet: int) -> None:
    """Run one reader + writer pipeline per source connection; work items (tables, key ranges of split
    tables) are shared out in the order given (largest first)."""
    stop = settings.stop
    progress = _Progress(settings.logger, settings.progress_interval, settings.progress_callback)
    tables: queue.Queue = queue.Queue()
    for item in items:
        tables.put(item)
    abort = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []
    writers: list[_Writer] = []
    dst_conns = []
    rate = settings.max_rows_per_second / len(src_conns) if settings.max_rows_per_second else None
    try:
        for i, src in enumerate(src_conns):
            dconn = job.destination.connect(local_infile=True)
            dst_conns.append(dconn)
            writer = _Writer(dconn, job.direction, job.control, progress, rate, settings.on_chunk)
            writers.append(writer)
            q: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            threads.append(
                threading.Thread(
                    target=_reader,
                    args=(src, tables, q, abort, settings.chunk_bytes, max_packet, errors),
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
