"""Writing the copy: each chunk, its ``table_progress`` row and the checkpoint row (the loop mark) in one
destination transaction, by ``LOAD DATA LOCAL`` (answered from memory, only for the name we gave) or multi-row
INSERT.

Several writers may copy key ranges of the same table at once: each chunk's transaction locks the table's
``table_progress`` row (``SELECT .. FOR UPDATE``, after its rows are written, so the lock is held only for the
commit), reads the committed ranges and changes only its own: no writer overwrites another's progress."""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DestinationRowExists, FullSyncError
from airflow_provider_dts.engine.snapshot.plan import KeyRange, TablePlan, parse_ranges, ranges_json
from airflow_provider_dts.engine.snapshot.reader import _Chunk
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident
from airflow_provider_dts.engine.values import WRITER_SQL_MODE

RETRIES = 3  # per chunk, on a destination deadlock or lock wait timeout
IN_MEMORY_NAME = "dts-chunk-in-memory.tsv"  # the name a writer's LOAD DATA LOCAL asks for (no such file)


LOAD_PACKET = 64 * 1024  # bytes per packet of an in-memory LOAD DATA LOCAL body


class _GuardedLoadLocalFile(pymysql.connections.LoadLocalFile):
    """PyMySQL's LOAD DATA LOCAL sender, restricted on our writer connections to the one name we gave.

    A server answering LOAD DATA LOCAL may ask for ANY client file; on connections marked with
    ``_dts_infile`` only that name is ever answered. When the connection also holds ``_dts_body`` (bytes),
    the answer is that body, from memory: no file is written, so a killed copy leaves nothing behind.
    Other connections behave exactly as before.
    """

    filename: str | bytes  # set by PyMySQL's constructor

    def send_data(self):
        conn = self.connection
        allowed = getattr(conn, "_dts_infile", None)
        if allowed is not None:
            name = self.filename.decode("utf-8", "replace") if isinstance(self.filename, bytes) else self.filename
            if name != allowed:
                self.filename = "/nonexistent/dts-refused-file"  # PyMySQL answers with an empty file + error
            elif getattr(conn, "_dts_body", None) is not None:
                return self._send_body(conn._dts_body)
        return super().send_data()

    def _send_body(self, body: bytes) -> None:
        conn = self.connection
        if not conn._sock:
            raise pymysql.err.InterfaceError(0, "")
        try:
            size = min(conn.max_allowed_packet, LOAD_PACKET)
            for i in range(0, len(body), size):
                conn.write_packet(body[i : i + size])
        finally:
            if not conn._closed:
                conn.write_packet(b"")  # the end of the data


if pymysql.connections.LoadLocalFile is not _GuardedLoadLocalFile:
    pymysql.connections.LoadLocalFile = _GuardedLoadLocalFile


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
        with self.lock:  # the first writer of a table starts its clock (several may copy its key ranges)
            self.started.setdefault(id(plan), (time.monotonic(), plan.rows_done))

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
        self._touch_checkpoint()

    def _touch_checkpoint(self) -> None:
        # The loop mark: this transaction also changes the direction's checkpoint row.
        self.cur.execute(
            f"UPDATE {self.control.table('checkpoint')} SET updated_at=GREATEST(UTC_TIMESTAMP(6), "
            f"updated_at + INTERVAL 1 MICROSECOND) WHERE task_name=%s AND direction=%s",
            (self.direction.task_name, self.direction.role),
        )

    def _mark_range(self, plan: TablePlan, rng: KeyRange, chunk: _Chunk) -> tuple[str, int]:
        """Record ``chunk`` of key range ``rng`` in the table's progress row, keeping the other ranges as
        committed (the row stays locked until this transaction commits); returns (status, rows_done)."""
        t = self.control.table("table_progress")
        where = "task_name=%s AND direction=%s AND source_db=%s AND source_table=%s"
        args = (self.direction.task_name, self.direction.role, plan.ref.src_db, plan.ref.src_table)
        self.cur.execute(f"SELECT rows_done, last_key FROM {t} WHERE {where} FOR UPDATE", args)
        row = self.cur.fetchone()
        if row is None:
            raise FullSyncError(
                f"the copy progress row of {plan.label} disappeared from {t} during the copy. Fix: make sure no "
                "reinitialization runs at the same time, then run the task again"
            )
        assert plan.ranges is not None
        stored = parse_ranges(as_text(row[1]))
        layout = [(r.lo, r.hi) for r in plan.ranges]
        if stored is None:  # the table's first chunk: its ranges as planned
            stored = list(plan.ranges)
        elif [(r.lo, r.hi) for r in stored] != layout:
            raise FullSyncError(
                f"the copy progress of {plan.label} in {t} was changed during the copy (other key ranges). "
                "Fix: make sure a single full data sync of this direction runs at a time, then run it again"
            )
        stored[rng.index] = KeyRange(rng.index, rng.lo, rng.hi, chunk.last_key, chunk.final)
        status = "done" if all(r.done for r in stored) else "copying"
        rows_done = int(row[0]) + chunk.rows
        self.cur.execute(
            f"UPDATE {t} SET status=%s, rows_done=%s, last_key=%s, dest_db=%s, dest_table=%s, "
            f"started_at=IFNULL(started_at, UTC_TIMESTAMP(6)), "
            f"finished_at=IF(%s='done', UTC_TIMESTAMP(6), NULL), updated_at=UTC_TIMESTAMP(6) WHERE {where}",
            (status, rows_done, json.dumps(ranges_json(stored)), plan.ref.dst_db, plan.ref.dst_table, status, *args),
        )
        self._touch_checkpoint()
        return status, rows_done

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
                self._exec_insert(plan, chunk.body, chunk.as_insert, chunk.rows)
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
                        self._exec_insert(plan, chunk.body, chunk.as_insert, chunk.rows)
                    if chunk.range is None:
                        self._mark(plan, status, rows_done, chunk.last_key)
                    else:
                        status, rows_done = self._mark_range(plan, chunk.range, chunk)
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
            with plan.lock:
                if chunk.range is None:
                    plan.rows_done, plan.last_key, plan.status = rows_done, chunk.last_key, status
                else:  # other writers may commit ranges of this table in between: count, never overwrite
                    plan.rows_done += chunk.rows
                    if status == "done":
                        plan.status = status
            self.progress.add(chunk.rows)
        if self.on_chunk:
            self.on_chunk(plan.label, plan.rows_done)
        self.progress.report(plan, force=chunk.final)
        self._throttle(chunk.rows)

    def _load(self, plan: TablePlan, body: bytes, rows: int) -> None:
        assert plan.load is not None
        # The body is answered from memory (_GuardedLoadLocalFile) under a name no file has.
        self.dst._dts_infile, self.dst._dts_body = IN_MEMORY_NAME, body
        try:
            self.cur.execute(plan.load.statement(plan.ref.dst_db, plan.ref.dst_table, IN_MEMORY_NAME))
        finally:
            self.dst._dts_infile, self.dst._dts_body = "", None
        loaded = self.cur.rowcount
        dups: list[tuple[int, str]] = []
        if self.cur.warning_count:
            self.cur.execute("SHOW WARNINGS")
            warnings = [(int(w[1]), as_text(w[2])) for w in self.cur.fetchall()]
            dups = [w for w in warnings if w[0] == 1062]
            others = [w for w in warnings if w[0] != 1062]
            if others:
                raise FullSyncError(
                    f"copying {plan.label}: the destination changed values: {others[0][1]} ({len(others)} "
                    "warning(s)). Fix: make the destination table's definition match the source"
                )
            if dups and self.direction.existing_table_mode.value != "Ignore":
                raise DestinationRowExists(
                    f"copying {plan.label}: {dups[0][1]}. The destination already holds a row with this key. Fix: "
                    "empty the destination table, or use existing_table_mode Ignore to keep destination rows"
                )
        # The server's own count ("Records: 3  Deleted: 0  Skipped: 1  Warnings: 1"): exact even when more
        # duplicates were skipped than SHOW WARNINGS lists.
        info = re.search(r"Records: (\d+)\s+Deleted: \d+\s+Skipped: (\d+)", as_text(self.cur._result.message or b""))
        if info is not None:
            self._check_count(plan, rows, int(info.group(1)))
            self._check_count(plan, rows, loaded + int(info.group(2)))
        else:
            self._check_count(plan, rows, loaded + len(dups))

    def _check_count(self, plan: TablePlan, sent: int, written: int) -> None:
        """Every row of the chunk reached the destination (inserted, or kept there in Ignore mode)."""
        if written != sent:
            raise FullSyncError(
                f"copying {plan.label}: the destination took {written} of the chunk's {sent} rows (nothing of the "
                "chunk is kept). Fix: make the destination table's definition match the source, then run the task "
                "again; it resumes after the last copied chunk"
            )

    def close(self) -> None:
        self.dst._dts_body = None

    def _exec_insert(self, plan: TablePlan, body: bytes, as_insert: bool, rows: int) -> None:
        if plan.load is not None and not as_insert:
            self._load(plan, body, rows)
            return
        suffix = self._insert_suffix(plan)
        sql = self._insert_prefix(plan) + body + suffix
        try:
            self.cur.execute(sql)
        except pymysql.err.IntegrityError as e:
            raise DestinationRowExists(
                f"copying {plan.label}: {e.args[-1]}. The destination already holds a row with this key. Fix: "
                "empty the destination table, or use existing_table_mode Ignore to keep destination rows"
            ) from None
        except pymysql.err.DataError as e:
            raise FullSyncError(
                f"copying {plan.label}: {e.args[-1]}. Fix: make the destination table's definition match the source"
            ) from None
        if not suffix:  # (Ignore mode: a kept destination row counts 0, an inserted one 1)
            self._check_count(plan, rows, self.cur.rowcount)

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
