"""Incremental sync of one direction: source binlog -> destination, forever, exactly once, no echo.

``run_direction`` is the entry point (the Airflow trigger runs it in a thread; ``runner`` runs it in a
process). It blocks until ``stop`` is set, ``max_runtime`` passes (both: state Stopped) or the direction
fails (state Failed with a message). Pieces:

- lease: ``GET_LOCK`` on the destination apply connection; a second run of the same direction waits, applying
  nothing, until the lease frees or it is stopped;
- start point: the checkpoint's ``binlog_file/pos``; with no checkpoint and ``initial_full_data_sync`` off,
  the source's current position (recorded first). A purged start file fails with a re-initialize message;
- a reader (``binlog.BinlogReader``, by default in a child process: ``reader_process``, so decoding and
  applying use two cores) feeds whole transactions through a thread into a bounded queue; this thread groups
  consecutive transactions and applies each group in one destination transaction with the checkpoint;
- DDL (forward direction, ``exclude_ddl`` off) goes through ``ddl.apply_ddl``;
- lost connections (either server) are retried with backoff for ``retry_minutes`` (state message says
  "retrying since ..."); past the window the direction fails;
- a heartbeat row is written on the SOURCE control schema every second so lag is right when idle;
- ``sync_state`` gets state, lag, rows/s and counters about once a second.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from airflow_provider_dts.engine import ddl as ddl_mod
from airflow_provider_dts.engine import gtid as gtid_mod
from airflow_provider_dts.engine import reinit
from airflow_provider_dts.engine.apply import Applier
from airflow_provider_dts.engine.binlog import BinlogReader, StreamResync
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.conflicts import ConflictFailure
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import DtsError, ServerError, SyncFailed
from airflow_provider_dts.engine.metrics import MinuteMetrics
from airflow_provider_dts.engine.model import Checkpoint, Position, Transaction, format_position
from airflow_provider_dts.engine.reader_process import ReaderProcess
from airflow_provider_dts.engine.servers import (
    ConnectionSettings,
    binlog_files,
    binlog_position,
    is_connection_error,
    server_info,
)
from airflow_provider_dts.engine.startfloor import record_reverse_floor_on

if TYPE_CHECKING:
    from airflow_provider_dts.engine.selfcheck import SelfCheck

log = logging.getLogger(__name__)

QUEUE_TRANSACTIONS = 512
GROUP_MAX_ROWS = 5000
GROUP_MAX_TRANSACTIONS = 500
# Idle cost (issue 13): every write to the control schema is binlogged on that server (with the full row image),
# so an idle sync writes as little as it can while its lag stays right:
# - sync_state: every STATS_INTERVAL while rows are applied or something a reader shows changes, else every
#   STATS_IDLE_INTERVAL (well inside status.STALE_AFTER_SECONDS); the self-check's progress rides along;
# - the heartbeat row on the source: every HEARTBEAT_INTERVAL only while the source is busy (a transaction of the
#   selected objects within HEARTBEAT_ACTIVE_WINDOW); an idle source's lag comes from the protocol heartbeat
#   events the server sends every second when it has nothing else to send (the reader is caught up then);
# - the checkpoint over transactions with nothing to apply (other databases, the control schema's status rows):
#   every IDLE_CHECKPOINT_INTERVAL at most; over nothing but the opposite direction's own checkpoint writes (the
#   loop mark) every ECHO_CHECKPOINT_INTERVAL, so two idle directions do not keep answering each other's
#   checkpoints (a restart re-reads at most that much binlog; the self-check's confirmation waits on it).
STATS_INTERVAL = 1.0
STATS_IDLE_INTERVAL = 30.0
IDLE_CHECKPOINT_INTERVAL = 5.0
ECHO_CHECKPOINT_INTERVAL = 20.0
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_ACTIVE_WINDOW = 10.0
BACKOFF_MAX = 10.0
RETRY_MINUTE_SECONDS = 60  # length of one minute of the retry window (tests shorten it)
TRANSIENT_CODES = {1205, 1213}  # lock wait timeout, deadlock: retry the group
# MariaDB: the applier flags its writes with skip_replication and the reader asks the server not to send
# flagged events (saves decoding the opposite direction's writes). Off: the checkpoint mark alone drops them.
SKIP_FLAGGED_FAST_PATH = os.environ.get("DTS_SKIP_REPLICATION_FAST_PATH", "1") != "0"
# "process" (default): decode the binlog in a child process (two cores); "thread": in this process.
READER_MODE = os.environ.get("DTS_BINLOG_READER", "process")


@dataclass
class RunResult:
    outcome: str  # "stopped" | "failed" | "max_runtime"
    state: str
    message: str
    stats: dict = field(default_factory=dict)
    # the conflict_log row (status open) the run stopped on under TaskFailed; None unless it ended on a conflict
    conflict_id: int | None = None


class _Stop(Exception):
    def __init__(self, outcome: str):
        self.outcome = outcome


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (StreamResync, ServerError)):
        return True
    if isinstance(exc, DtsError):
        return False
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and exc.args[0] in TRANSIENT_CODES:
        return True
    return is_connection_error(exc)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def run_direction(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    stop: threading.Event,
    max_runtime: float | None = None,
    logger: logging.Logger | None = None,
) -> RunResult:
    """Run one direction until ``stop``, ``max_runtime`` or failure. See the module docstring."""
    return _DirectionRun(direction, source, destination, stop, max_runtime, logger or log).run()


def _idle_interval(group: list[Transaction]) -> float:
    """How long a checkpoint over ``group`` (nothing to apply) may wait: see ECHO_CHECKPOINT_INTERVAL."""
    return ECHO_CHECKPOINT_INTERVAL if all(t.marked for t in group) else IDLE_CHECKPOINT_INTERVAL


class _DirectionRun:
    def __init__(self, direction, source, destination, stop, max_runtime, logger):
        self.d: SyncDirection = direction
        self.source: ConnectionSettings = source
        self.dest: ConnectionSettings = destination
        self.stop: threading.Event = stop
        self.deadline = time.monotonic() + max_runtime if max_runtime else None
        self.log: logging.Logger = logger
        self.control = ControlSchema(direction.control_schema)
        self.cp = Checkpoint()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.lag: float | None = None
        self.applier = Applier(direction, destination, logger=logger)
        self._ctl: pymysql.connections.Connection | None = None
        # the session's threads (_start_threads): reader (thread or child process), heartbeat, self-check
        self._threads_stop: threading.Event | None = None  # set while they run
        self._queue: queue.Queue[Transaction | BaseException] = queue.Queue(maxsize=QUEUE_TRANSACTIONS)
        self._reader: BinlogReader | ReaderProcess | None = None
        self._reader_thread: threading.Thread | None = None
        self._hb_thread: threading.Thread | None = None
        self._selfcheck: SelfCheck | None = None
        self._rows_since = 0
        self._stats_at = time.monotonic()
        # idle cost: what the last sync_state write said and when; when the source was last busy; when the reader
        # last saw the server's protocol heartbeat (caught up) and last queued a transaction (monotonic times)
        self._stats_written: tuple[Any, ...] | None = None
        self._metrics = MinuteMetrics()  # the per-minute history (engine/metrics.py)
        self._metrics_pruned_at = 0.0
        self._self_check_written: str | None = None
        self._stats_written_at = 0.0
        self._source_active_at = time.monotonic()
        self._applying = False  # inside Applier.apply_group (a held-up group is not idle)
        self._caught_up_at = 0.0
        self._queued_at = 0.0
        self._lease = False

    # ------------------------------------------------------------------ helpers

    def _stats(self) -> dict[str, Any]:
        from airflow_provider_dts.engine.selfcheck import summary

        # the self-check's counts and last divergences, read at the home on the control connection, only if it is
        # open (a destination that is down is not waited for a second time)
        try:
            if self._ctl is None or not self._ctl.open:
                raise ConnectionError("no open connection to the destination")
            self_check = summary(self._ctl, self.d, self.dest.describe())
        except Exception as e:
            self_check = {
                "enabled": bool(self.d.self_check),
                "unreadable": f"{type(e).__name__}: {e}; see {self.d.control_schema}.divergence and "
                f"sync_state on {self.dest.describe()}",
            }
        cp = self.cp
        return {
            "transactions_applied": int(cp.transactions_applied or 0),
            "rows_inserted": int(cp.rows_inserted or 0),
            "rows_updated": int(cp.rows_updated or 0),
            "rows_deleted": int(cp.rows_deleted or 0),
            "conflicts": int(cp.conflicts or 0),
            "lag_seconds": self.lag,
            "binlog_file": cp.binlog_file,
            "binlog_pos": int(cp.binlog_pos) if cp.binlog_pos is not None else None,
            "self_check": self_check,
        }

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stop("stopped")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _Stop("max_runtime")

    def _ctl_conn(self) -> pymysql.connections.Connection:
        if self._ctl is None or not self._ctl.open:
            self._ctl = self.dest.connect()
        return self._ctl

    def _set_state(self, state: str, message: str, **cols: Any) -> None:
        """Best effort: the destination may be the server that is down."""
        try:
            self.control.set_state(self._ctl_conn(), self.d.task_name, self.d.role, state, message, **cols)
        except Exception as e:
            self._ctl = None
            self.log.warning("could not record state %s for %s: %s", state, self.d.key, e)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._check_stop()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    # ------------------------------------------------------------------ outer loop: retries

    def run(self) -> RunResult:
        retry_since: _dt.datetime | None = None
        retry_started: float | None = None
        backoff = 1.0
        resync_at, resyncs = None, 0
        gtid_retry_at: Position | None = None
        try:
            while True:
                try:
                    self._check_stop()
                    self._session()
                except _Stop:
                    raise
                except ConflictFailure as e:
                    return self._fail(str(e), conflict_id=e.conflict_id)
                except Exception as e:
                    if isinstance(e, pymysql.err.MySQLError) and e.args and e.args[0] == 1236:
                        if gtid_mod.state_valid(self.cp) and gtid_retry_at != self.cp.position:
                            # the library reconnected by itself to a server without this file (a host name that
                            # moved in a failover): one more session, whose start resumes by GTID or says why not
                            gtid_retry_at = self.cp.position
                            self.log.warning("direction %s: %s; checking the source by GTID", self.d.key, e)
                            continue
                        return self._fail(
                            f"the source cannot send its binlog from {format_position(self.cp.position)}: "
                            f"{e.args[1] if len(e.args) > 1 else e}. The binlog was probably purged. Fix: "
                            f"re-initialize the direction: {reinit.how_to(self.d)}"
                        )
                    if not _retryable(e):
                        if isinstance(e, DtsError):
                            return self._fail(str(e))
                        self.log.exception("direction %s failed", self.d.key)
                        return self._fail(f"{type(e).__name__}: {e}")
                    if self._healthy:
                        retry_since, retry_started, backoff = None, None, 1.0
                    now = time.monotonic()
                    if retry_started is None:
                        retry_started, retry_since = now, _utcnow()
                    window = self.d.retry_minutes * RETRY_MINUTE_SECONDS
                    if now - retry_started > window:
                        return self._fail(
                            f"lost the connection for more than the retry window of {self.d.retry_minutes} "
                            f"minute(s) (since {retry_since:%Y-%m-%d %H:%M:%S} UTC); last error: {e}. Fix: make "
                            "both servers reachable, then restart the direction (it resumes from its checkpoint)"
                        )
                    msg = f"retrying since {retry_since:%Y-%m-%d %H:%M:%S} UTC: {type(e).__name__}: {e}"
                    if isinstance(e, StreamResync):
                        pos = self.cp.position
                        same = resync_at == pos
                        resync_at, resyncs = pos, (resyncs + 1 if same else 1)
                        self.log.info(
                            "direction %s: reopening the binlog stream at %s (%s)", self.d.key, format_position(pos), e
                        )
                        if resyncs > 5:
                            return self._fail(
                                f"the binlog stream cannot be read from {format_position(pos)}: {e} (5 attempts). "
                                f"The position may not be a transaction boundary. Fix: re-initialize the direction: "
                                f"{reinit.how_to(self.d)}"
                            )
                        self._sleep(0.5 * resyncs)
                    else:
                        self.log.warning("direction %s: %s", self.d.key, msg)
                        self._set_state(State.SYNCHRONIZING, msg, retrying_since=retry_since, owner=self.owner)
                        self._sleep(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX)
        except _Stop as s:
            message = "stopped" if s.outcome == "stopped" else "stopped after max_runtime"
            if self._lease_ever:
                self._set_state(
                    State.STOPPED,
                    f"{message} at {format_position(self.cp.position)}",
                    lag_seconds=self.lag,
                    retrying_since=None,
                )
                state = State.STOPPED
            else:
                state = self._current_state() or State.STOPPED
                message = f"{message} while waiting for the lease held by another run"
            return RunResult(s.outcome, state, message, self._stats())
        finally:
            self._teardown()

    _healthy = False
    _lease_ever = False

    def _current_state(self) -> str | None:
        try:
            row = self.control.get_state(self._ctl_conn(), self.d.task_name, self.d.role)
            return row["state"] if row else None
        except Exception:
            return None

    def _fail(self, message: str, conflict_id: int | None = None) -> RunResult:
        self.log.error("direction %s failed: %s", self.d.key, message)
        self._set_state(State.FAILED, message, retrying_since=None, lag_seconds=self.lag)
        return RunResult("failed", State.FAILED, message, self._stats(), conflict_id)

    def _teardown(self) -> None:
        self._stop_threads()
        self.applier.close()  # closing the session frees the lease
        if self._ctl is not None:
            try:
                self._ctl.close()
            except Exception:
                pass
            self._ctl = None

    # ------------------------------------------------------------------ one connected session

    def _session(self) -> None:
        self._healthy = False
        self._stop_threads()
        conn = self.applier.connect()
        ctl = self._ctl_conn()
        self.control.ensure(ctl)
        # lease: wait (applying nothing) while another run holds it
        waited = False
        while not self.applier.try_lease(1.0):
            if not waited:
                self.log.info("direction %s: another run holds the lease; waiting", self.d.key)
                waited = True
            self._check_stop()
        self._lease_ever = True
        if self.d.guard_triggers:  # idempotent: also guards triggers created while the sync was stopped
            from airflow_provider_dts.engine.triggers import guard_triggers

            guard_triggers(self.d, self.source, self.dest, logger=self.log)
        src = self.source.connect()
        try:
            info = server_info(src)
            self.control.ensure(src)
            cp = self.control.read_checkpoint(ctl, self.d.task_name, self.d.role)
            if cp is None or cp.binlog_file is None:
                cp = self._first_start(cp, conn, src, ctl, info)
            cp, resumed = self._reconcile_gtid(cp, conn, src, info)
            start = cp.position
            if start is None:
                raise SyncFailed(
                    f"the checkpoint of direction {self.d.key} in {self.d.control_schema}.checkpoint has a binlog "
                    f"file ({cp.binlog_file}) but no position. Fix: re-initialize the direction: "
                    f"{reinit.how_to(self.d)}"
                )
            names = [f for f, _ in binlog_files(src)]
            if start[0] not in names:
                raise SyncFailed(
                    f"the source binlog {start[0]} (checkpoint {format_position(start)}) has been "
                    f"purged from {self.source.describe()}; changes since then are lost to this direction. "
                    f"Fix: re-initialize the direction: {reinit.how_to(self.d)}; "
                    "and keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days)"
                )
        finally:
            src.close()
        self.cp = cp
        self._set_state(
            State.SYNCHRONIZING,
            resumed or f"synchronizing from {format_position(start)}",
            owner=self.owner,
            retrying_since=None,
            started_at=_utcnow(),
        )
        self._start_threads(start, skip_flagged=info.is_mariadb, expect_server_id=gtid_mod.identity_id(info))
        self._healthy = True
        self._apply_loop()

    def _reconcile_gtid(self, cp: Checkpoint, conn, src, info) -> tuple[Checkpoint, str | None]:
        """The checkpoint fitted to the source it is read from (``gtid.reconcile``): the same server as before, or
        the position on a new server (a failover) found by GTID, written on the apply connection first."""

        progress = self.control.table("table_progress")
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT catchup_file, catchup_pos FROM {progress} WHERE task_name=%s AND direction=%s "
                "AND catchup_file IS NOT NULL",
                (self.d.task_name, self.d.role),
            )
            catchups = [(str(f), int(p)) for f, p in cur.fetchall() if p is not None]
        conn.commit()

        def write(new: Checkpoint, clear_catchups: bool) -> None:
            with conn.cursor() as cur:
                self.control.write_checkpoint(cur, self.d.task_name, self.d.role, new)
                if clear_catchups:  # passed on the old source (gtid.reconcile checked it)
                    cur.execute(
                        f"UPDATE {progress} SET catchup_file=NULL, catchup_pos=NULL "
                        "WHERE task_name=%s AND direction=%s",
                        (self.d.task_name, self.d.role),
                    )
            conn.commit()
            if clear_catchups:
                self.applier._table_catchup = {}  # loaded at connect, before the source was checked

        return gtid_mod.reconcile(
            cp,
            src,
            info,
            source_label=self.source.describe(),
            direction_key=self.d.key,
            reinit_how=reinit.how_to(self.d),
            write=write,
            table_catchups=catchups,
            logger=self.log,
        )

    def _first_start(self, cp: Checkpoint | None, conn, src, ctl, info) -> Checkpoint:
        """The checkpoint of a direction with no incremental start position yet, its start recorded (on the
        apply connection ``conn``) before anything is read: the recorded start floor (task two,
        ``engine.startfloor``), else the source's current position. Only with ``initial_full_data_sync`` off:
        otherwise the full data sync records the start, and starting without it would lose rows."""
        if self.d.initial_full_data_sync:
            raise SyncFailed(
                f"direction {self.d.key} is not initialized: no incremental start position in "
                f"{self.d.control_schema}.checkpoint. Fix: run the full data sync first (it records "
                "the start position), or set initial_full_data_sync off to start at the current position"
            )
        floor = cp.snapshot_position if cp is not None else None
        if floor is not None:
            start, where = floor, "the recorded start floor"
        else:
            record_reverse_floor_on(self.d, src, ctl, logger=self.log)  # task one, before it applies
            start, where = binlog_position(src, info), "the source's current position"
        cp = cp or Checkpoint()
        cp.binlog_file, cp.binlog_pos = start
        with conn.cursor() as cur:
            self.control.write_checkpoint(cur, self.d.task_name, self.d.role, cp)
        conn.commit()
        self.log.info("direction %s: no checkpoint; starting at %s %s", self.d.key, where, format_position(start))
        return cp

    # ------------------------------------------------------------------ threads

    def _start_threads(self, start: Position, skip_flagged: bool = False, expect_server_id: int | None = None) -> None:
        self._threads_stop = stop = threading.Event()
        self._queue = queue.Queue(maxsize=QUEUE_TRANSACTIONS)
        skip_flagged = skip_flagged and SKIP_FLAGGED_FAST_PATH
        reader: BinlogReader | ReaderProcess
        if READER_MODE == "thread":
            reader = BinlogReader(
                self.d, self.source, start, stop=stop, skip_flagged=skip_flagged, expect_server_id=expect_server_id
            )
        else:
            reader = ReaderProcess(
                self.d,
                self.source,
                start,
                skip_flagged=skip_flagged,
                expect_server_id=expect_server_id,
                logger=self.log,
            )
        self._reader = reader
        self._reader_thread = threading.Thread(
            target=self._read, args=(reader, stop), name=f"dts-reader-{self.d.key}", daemon=True
        )
        self._hb_thread = threading.Thread(
            target=self._heartbeat, args=(stop,), name=f"dts-heartbeat-{self.d.key}", daemon=True
        )
        self._reader_thread.start()
        self._hb_thread.start()
        self._selfcheck = None
        if self.d.self_check:  # the self-check thread (engine/selfcheck.py): its own connections
            from airflow_provider_dts.engine.selfcheck import SelfCheck

            self._selfcheck = SelfCheck(
                self.d,
                self.source,
                self.dest,
                position_fn=lambda: self.cp.position,
                lag_fn=lambda: self.lag,
                idle_fn=self._idle,
                logger=self.log,
            )
            self._selfcheck.start()

    def _stop_threads(self) -> None:
        ev = self._threads_stop
        if ev is None:
            return
        ev.set()
        if isinstance(self._reader, ReaderProcess):
            self._reader.close()  # its thread may be waiting for the child's next frame
        try:  # unblock a reader waiting on a full queue
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for t in (self._reader_thread, self._hb_thread):
            if t is not None:
                t.join(timeout=3)
        if self._selfcheck is not None:
            self._selfcheck.stop()
            self._selfcheck = None
        self._threads_stop = None

    def _put(self, item: Transaction | BaseException, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, reader: BinlogReader | ReaderProcess, stop: threading.Event) -> None:
        try:
            for txn in reader.transactions():
                if stop.is_set():
                    return
                if txn is None:  # the server's heartbeat: nothing more to send, the reader is caught up
                    self._caught_up_at = time.monotonic()
                    continue
                if txn.changes or txn.ddl is not None:
                    self._source_active_at = time.monotonic()
                self._queued_at = time.monotonic()
                if not self._put(txn, stop):
                    return
        except BaseException as e:
            if not stop.is_set():
                self._put(e, stop)
        finally:
            reader.close()

    def _heartbeat(self, stop: threading.Event) -> None:
        conn = None
        table = self.control.table("heartbeat")
        while not stop.is_set():
            if time.monotonic() - self._source_active_at > HEARTBEAT_ACTIVE_WINDOW:
                stop.wait(HEARTBEAT_INTERVAL)  # an idle source: no beat (see HEARTBEAT_ACTIVE_WINDOW)
                continue
            try:
                if conn is None:
                    conn = self.source.connect()
                with conn.cursor() as cur:
                    cur.execute(
                        f"INSERT INTO {table} (task_name, direction, beat_at) VALUES (%s, %s, UTC_TIMESTAMP(6)) "
                        "ON DUPLICATE KEY UPDATE beat_at=VALUES(beat_at)",
                        (self.d.task_name, self.d.role),
                    )
            except Exception:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
            stop.wait(HEARTBEAT_INTERVAL)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    # ------------------------------------------------------------------ apply loop

    def _next(self, timeout: float):
        item = self._queue.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        cp = getattr(self, "cp", None)  # (the apply-loop tests build no checkpoint)
        # after a GTID resume: what was applied before the failover only moves the checkpoint
        return item if cp is None else gtid_mod.skip_applied(item, cp)

    def _apply_loop(self) -> None:
        last_cp_write = time.monotonic()
        pending_empty: list[Transaction] = []
        while True:
            self._check_stop()
            self._maybe_stats()
            try:
                first = self._next(0.2)
            except queue.Empty:
                self._note_idle_lag()
                if pending_empty and time.monotonic() - last_cp_write > _idle_interval(pending_empty):
                    self._apply(pending_empty)
                    pending_empty, last_cp_write = [], time.monotonic()
                continue
            if first.ddl is not None:
                if pending_empty:
                    self._apply(pending_empty)
                    pending_empty = []
                self._ddl(first)
                last_cp_write = time.monotonic()
                continue
            group = pending_empty + [first]
            pending_empty = []
            rows = first.row_count
            held: Transaction | None = None
            while rows < GROUP_MAX_ROWS and len(group) < GROUP_MAX_TRANSACTIONS:
                try:
                    t = self._next(0)
                except queue.Empty:
                    break
                except BaseException:
                    # the reader failed after these transactions: they are whole and good, so apply them
                    # (checkpoint included) before reporting, leaving the checkpoint at the failing event
                    self._note_lag(group)
                    self._apply(group)
                    raise
                if t.ddl is not None:
                    held = t
                    break
                group.append(t)
                rows += t.row_count
            self._note_lag(group)
            if rows == 0 and held is None:
                if time.monotonic() - last_cp_write > _idle_interval(group):
                    self._apply(group)
                    last_cp_write = time.monotonic()
                else:
                    pending_empty = group
            else:
                self._apply(group)
                last_cp_write = time.monotonic()
            if held is not None:
                self._ddl(held)
                last_cp_write = time.monotonic()

    def _record_minute(self, rows: int) -> None:
        done = self._metrics.add(_utcnow(), self.lag, rows, int(self.cp.conflicts or 0))
        if done is None:
            return
        try:
            conn = self._ctl_conn()
            self.control.write_metrics_minute(
                conn,
                self.d.task_name,
                self.d.role,
                done.minute,
                lag_max=done.lag_max,
                lag_avg=done.lag_avg,
                rows_applied=done.rows_applied,
                conflicts=done.conflicts,
            )
            if time.monotonic() - self._metrics_pruned_at > 3600:
                self.control.prune_metrics(conn, self.d.task_name, self.d.role)
                self._metrics_pruned_at = time.monotonic()
        except Exception as e:
            self._ctl = None
            self.log.debug("metrics write failed: %s", e)

    def _note_idle_lag(self) -> None:
        """Nothing queued: when the server's heartbeat came after the last queued transaction, everything the
        source committed before that heartbeat is applied, so the lag is at most the time since it."""
        caught_up = self._caught_up_at
        if caught_up > self._queued_at:
            self.lag = max(0.0, time.monotonic() - caught_up)

    def _note_lag(self, group: list[Transaction]) -> None:
        last = group[-1]
        hb = next((t.heartbeat_at for t in reversed(group) if t.heartbeat_at is not None), None)
        now = _utcnow()
        if hb is not None and group[-1].heartbeat_at is not None:
            self.lag = max(0.0, (now - hb).total_seconds())
        else:
            commit = _dt.datetime.fromtimestamp(last.commit_timestamp, _dt.UTC).replace(tzinfo=None)
            self.lag = max(0.0, (now - commit).total_seconds())

    def _idle(self) -> bool:
        """Nothing is being applied and the source has been quiet (the self-check then leaves its progress to the
        stats writes, STATS_IDLE_INTERVAL)."""
        return not self._applying and time.monotonic() - self._source_active_at > HEARTBEAT_ACTIVE_WINDOW

    def _apply(self, group: list[Transaction]) -> None:
        self._applying = True
        try:
            self._apply_group(group)
        finally:
            self._applying = False

    def _apply_group(self, group: list[Transaction]) -> None:
        try:
            stats = self.applier.apply_group(group, self.cp)
        except ConflictFailure as e:
            if e.txn_index > 0:  # apply the transactions before the failing one, then stop before it
                self.applier.apply_group(group[: e.txn_index], self.cp)
            e.conflict_id, new = self.applier.log_conflict_alone(e.conflict)
            if new:  # the same open conflict met again by a restart is not counted twice
                self.cp.conflicts = int(self.cp.conflicts or 0) + 1
            raise
        self._rows_since += stats.inserted + stats.updated + stats.deleted
        selfcheck = getattr(self, "_selfcheck", None)  # (the apply-loop tests build no threads)
        if selfcheck is not None:
            selfcheck.note(group)

    def _ddl(self, txn: Transaction) -> None:
        ddl_mod.apply_ddl(self.applier, txn, self.cp, logger=self.log)

    def _maybe_stats(self) -> None:
        now = time.monotonic()
        elapsed = now - self._stats_at
        if elapsed < STATS_INTERVAL:
            return
        rows = self._rows_since
        rps = rows / elapsed
        self._rows_since, self._stats_at = 0, now
        cp = self.cp
        self._record_minute(rows)
        message = f"synchronizing at {format_position(cp.position)}"
        selfcheck = getattr(self, "_selfcheck", None)  # (the apply-loop tests build no threads)
        self_check = selfcheck.status_message if selfcheck is not None else None
        lag = self.lag
        # what a reader of sync_state must see at once: a lag of 2 s or more (to the second), the conflicts,
        # whether rows flow. The position and the self-check's progress ride along with the next write (a write
        # for a moved position alone would move the other direction's position in turn: they would never rest).
        shown = (None if lag is None else (0 if lag < 2 else round(lag)), cp.conflicts, rows > 0)
        if not rows and shown == self._stats_written and now - self._stats_written_at < STATS_IDLE_INTERVAL:
            return  # idle and nothing new to show: no write (each one is binlogged with the whole row)
        columns: dict[str, Any] = {
            "lag_seconds": lag,
            "rows_per_second": rps,
            "last_source_commit_at": cp.source_commit_at,
            "last_applied_at": _utcnow(),
            "message": message,
        }
        if self_check is not None and self_check != self._self_check_written:
            columns["self_check_message"] = self_check
            columns["self_check_at"] = _utcnow()
        try:
            self.control.update_stats(self._ctl_conn(), self.d.task_name, self.d.role, **columns)
            self._stats_written, self._stats_written_at = shown, now
            if "self_check_message" in columns:
                self._self_check_written = self_check
        except Exception as e:
            self._ctl = None
            self.log.debug("stats update failed: %s", e)
