"""Self-check of a running direction: notice by itself that source and destination differ.

Like DTS's incremental verification, two sources of keys feed one confirmation step:

- **recently changed keys**: the apply loop hands every applied group to ``note`` (cheap: a bounded deque,
  sampled when a group is large). Each key is compared after a lag-aware delay.
- **a rolling pass** over every selected table, chunk by chunk, with verify.py's chunked checksum comparison,
  within ``self_check_rows_per_second`` rows read per second (both sides counted). Keys of differing chunks
  become candidates.

Confirmation. In a two-way sync a row may change again on either side while it is checked, so a difference
only counts when it *persists*: the row is read on both sides (images S1, D1; then both servers' binlog
positions P1, Q1 are taken), and read again more than ``lag + margin`` seconds later, after this direction has
applied the source's binlog past P1 and the opposite direction (if there is one) has applied the destination's
binlog past Q1. Only when both reads give the same images and they still differ is the difference confirmed:
every change committed before the first read has then arrived, and nothing touched the row since.

A confirmed difference is recorded at the direction's home (its destination control schema): one row in
``divergence`` (table, key, kind, both row images), ``sync_state.divergences`` / ``last_divergence`` /
``last_divergence_at``, and a warning in the task log. With ``self_check_auto_repair`` (task one only) the row is
repaired with verify.py's mark-protected repair (destination := source).

Rows are matched by the applier's row key (``catalog.load_table`` -> ``TableInfo.match_key``); generated
columns are never compared (``catalog.is_generated_extra``). Key values are exact: a recently changed key comes from
the binlog image (a FLOAT widened to the double the server compares with), and the rolling pass reads FLOAT key
columns through ``verify.exact_expr`` (the same double) instead of the server's 6-digit rendering, which finds no
row. The checker runs in its own thread with its own connections and never raises into the direction: a failure is
logged and retried.
"""

from __future__ import annotations

import collections
import contextvars
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.catalog import read_table
from airflow_provider_dts.engine.config import ROLES, SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, to_json
from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.model import position_le
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, binlog_position, server_info
from airflow_provider_dts.engine.sqltext import qualified, quote_ident
from airflow_provider_dts.engine.values import make_literal
from airflow_provider_dts.engine.verify import (
    RowDiff,
    TableReport,
    Verifier,
    _range_predicate,
    _row_expr,
    column_types,
    exact_expr,
    selected_tables,
    table_columns,
)

log = logging.getLogger(__name__)

MARGIN_SECONDS = 2.0  # added to the lag between the two reads of a candidate
NOTED_MAX = 20_000  # recently changed keys waiting to be turned into candidates (oldest dropped)
NOTE_PER_GROUP = 200  # at most this many changes of one applied group are noted (evenly sampled)
CANDIDATES_MAX = 10_000  # keys being confirmed (new ones are skipped when full)
REPORTED_MAX = 10_000  # open divergences recorded row by row; beyond: counted, "run dts_verify"
CHECKS_PER_ROUND = 200  # candidate checks per loop round
MAX_IMAGE_CHANGES = 5  # a row whose images keep changing is dropped (it is busy, not diverged)
CONFIRM_TIMEOUT = 300.0  # give up waiting for both directions to pass a candidate's positions
PASS_PAUSE_SECONDS = 5.0  # pause between two rolling passes over all tables
CHUNK_MAX = 1000
ROLLING_DIFFS_PER_CHUNK = 100
STATUS_INTERVAL = 5.0  # how often the progress message is recomputed (``status_message``)
ERROR_BACKOFF = 5.0
LOOP_SLEEP = 0.1
SUMMARY_LAST = 5  # divergences listed in a run summary (XCom)


def opposite_role(role: str) -> str:
    return ROLES[1] if role == ROLES[0] else ROLES[0]


def summary(conn, direction: SyncDirection, where: str) -> dict[str, Any]:
    """The self-check's result for a run summary (the incremental task's XCom), read from the direction's home
    (``conn``: its destination, described by ``where``): how many divergences were confirmed, how many are open, and
    the last ``SUMMARY_LAST`` as (table, key, kind). No row images: they can hold personal data; ``images`` says
    where they are."""
    control = ControlSchema(direction.control_schema)
    who = (direction.task_name, direction.role)
    out: dict[str, Any] = {
        "enabled": bool(direction.self_check),
        "divergences": 0,
        "open": 0,
        "last": [],
        "images": f"{control.table('divergence')} on {where} (task_name={direction.task_name!r}, "
        f"direction={direction.role!r}): source_image, dest_image",
    }
    with conn.cursor() as cur:
        try:
            cur.execute(
                f"SELECT divergences FROM {control.table('sync_state')} WHERE task_name=%s AND direction=%s", who
            )
            row = cur.fetchone()
            cur.execute(
                f"SELECT COUNT(*) FROM {control.table('divergence')} WHERE task_name=%s AND direction=%s "
                "AND resolved_at IS NULL",
                who,
            )
            out["open"] = int(cur.fetchone()[0])
            cur.execute(
                f"SELECT source_db, source_table, key_json, kind, detected_at, repaired_at, resolved_at "
                f"FROM {control.table('divergence')} WHERE task_name=%s AND direction=%s "
                f"ORDER BY id DESC LIMIT {SUMMARY_LAST}",
                who,
            )
            last = cur.fetchall()
        except pymysql.err.ProgrammingError as e:  # no control schema (yet): nothing was ever recorded
            if e.args and e.args[0] in (1146, 1049, 1054):
                return out
            raise
    out["divergences"] = int(row[0] or 0) if row else 0
    out["last"] = [
        {
            "table": f"{db}.{table}",
            "key": json.loads(key),
            "kind": kind,
            "detected_at": detected.isoformat(sep=" ") if detected else None,
            "now": "repaired" if repaired else ("equal again" if resolved else "open"),
        }
        for db, table, key, kind, detected, repaired, resolved in last
    ]
    return out


@dataclass
class _Table:
    source: tuple[str, str]
    dest: tuple[str, str]
    key: tuple[str, ...]
    columns: tuple[str, ...]
    key_exprs: tuple[str, ...] = ()  # how to select each key column so that ``col <=> value`` finds the row


@dataclass
class _Candidate:
    table: _Table
    key: tuple
    found_by: str
    due: float
    created: float = field(default_factory=time.monotonic)
    images: tuple | None = None  # (source row, destination row) of the first read
    first_at: float = 0.0
    # (source binlog position, destination binlog position or None) after that read
    positions: tuple[tuple[str, int], tuple[str, int] | None] | None = None
    changes: int = 0
    waits_for_opposite: bool = False  # same images, but the opposite direction has not applied far enough


@dataclass
class Divergence:
    source: tuple[str, str]
    dest: tuple[str, str]
    kind: str  # "missing" (at the destination), "extra" (at the destination), "different"
    key: dict[str, Any]
    columns: tuple[str, ...]
    source_image: dict[str, Any] | None
    dest_image: dict[str, Any] | None
    found_by: str

    def message(self) -> str:
        what = {
            "missing": "missing at the destination",
            "extra": "only at the destination",
            "different": "different in " + ", ".join(self.columns),
        }[self.kind]
        return (
            f"{'.'.join(self.source)} -> {'.'.join(self.dest)} key {to_json(self.key)}: row {what} "
            f"(source {to_json(self.source_image)}, destination {to_json(self.dest_image)})"
        )


class SelfCheck:
    """The self-check of one running direction. ``note`` from the apply thread; ``start`` / ``stop`` the checker."""

    def __init__(
        self,
        direction: SyncDirection,
        source: ConnectionSettings,
        destination: ConnectionSettings,
        *,
        position_fn: Callable[[], tuple[str, int] | None],
        lag_fn: Callable[[], float | None],
        idle_fn: Callable[[], bool] | None = None,
        logger: logging.Logger | None = None,
        margin: float | None = None,
        pass_pause: float | None = None,
    ):
        self.d = direction
        self.source = source
        self.dest = destination
        self.position_fn = position_fn
        self.lag_fn = lag_fn
        self.idle_fn = idle_fn  # True while the direction is idle: its stats writes carry status_message
        self.log = logger or log
        self.margin = MARGIN_SECONDS if margin is None else margin
        self.pass_pause = PASS_PAUSE_SECONDS if pass_pause is None else pass_pause
        self.rps = direction.self_check_rows_per_second
        self.auto_repair = direction.self_check_auto_repair and direction.role == ROLES[0]
        self.control = ControlSchema(direction.control_schema)
        self.noted: collections.deque = collections.deque(maxlen=NOTED_MAX)
        self.noted_dropped = 0
        self.candidates: dict[tuple, _Candidate] = {}
        self.reported: dict[tuple, str] = {}  # (source table, key) -> images hash of the open divergence
        self.tables: dict[tuple[str, str], _Table | None] = {}
        self.unchecked: set[tuple[str, str]] = set()  # selected tables the rolling pass cannot compare
        self.stats: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._src: pymysql.connections.Connection | None = None
        self._dst: pymysql.connections.Connection | None = None
        self._src_info: ServerInfo | None = None
        self._dst_info: ServerInfo | None = None
        self._pass: list[tuple[str, str]] = []
        self._pass_index = 0
        self._pass_lo: tuple | None = None
        self._pass_done_at: float | None = None
        self._passes = 0
        self._budget_at = 0.0
        self._status_at = 0.0
        # The progress message. While the direction is busy (``idle_fn`` False, or no ``idle_fn``) the self-check
        # writes it every STATUS_INTERVAL when it changed; while idle the direction's stats writes carry it (one
        # binlogged write instead of two, incremental.STATS_IDLE_INTERVAL), and the self-check writes it itself
        # only when what it found changed (a divergence, keys waiting for the other direction, unchecked tables).
        self.status_message: str | None = None
        self._status_written: tuple[Any, ...] | None = None
        self.verifier = Verifier(
            direction,
            source,
            destination,
            chunk_size=max(1, min(CHUNK_MAX, self.rps // 2)),
            rechecks=0,
            progress=lambda _m: None,
        )

    # ------------------------------------------------------------------ apply-thread side (must stay cheap)

    def note(self, txns: Sequence[Any]) -> None:
        """Remember the keys an applied group changed (sampled to ``NOTE_PER_GROUP`` per group)."""
        total = 0
        for t in txns:
            total += len(t.changes)
        if not total:
            return
        stride = max(1, total // NOTE_PER_GROUP)
        now = time.monotonic()
        i = 0
        append = self.noted.append
        for t in txns:
            for c in t.changes:
                if i % stride == 0:
                    if len(self.noted) == NOTED_MAX:
                        self.noted_dropped += 1
                    append((now, c.source_db, c.source_table, c.after if c.after is not None else c.before))
                    if (
                        c.kind == "update"
                        and c.before
                        and c.after
                        and c.primary_key
                        and any(c.before.get(k) != c.after.get(k) for k in c.primary_key)
                    ):
                        append((now, c.source_db, c.source_table, c.before))  # the old key must be gone too
                i += 1

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        self._stop.clear()
        # run in a copy of the caller's context: Airflow routes a trigger's log records to its task log by
        # context variables, and a plain thread would start without them (warnings would miss the task log)
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(
            target=ctx.run, args=(self._run,), name=f"dts-selfcheck-{self.d.key}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self._connect()
                self.round()
                failing = False
                self._stop.wait(LOOP_SLEEP)
            except Exception as e:
                # once per streak: a server that is down is reported by the direction itself
                (self.log.debug if failing else self.log.warning)(
                    "direction %s: self-check paused (retrying every %.0f s): %s: %s",
                    self.d.key,
                    ERROR_BACKOFF,
                    type(e).__name__,
                    e,
                )
                failing = True
                self._close()
                self.tables.clear()
                self._stop.wait(ERROR_BACKOFF)
        self._close()

    def _connect(self) -> None:
        if self._src is None or not self._src.open:
            self._src = self.source.connect()
            self._src_info = server_info(self._src)
        if self._dst is None or not self._dst.open:
            self._dst = self.dest.connect()
            self._dst_info = server_info(self._dst)
            self.control.ensure(self._dst)

    def _src_conn(self) -> pymysql.connections.Connection:  # connected by _connect at every round
        if self._src is None:
            raise RuntimeError("self-check: not connected to the source")
        return self._src

    def _dst_conn(self) -> pymysql.connections.Connection:
        if self._dst is None:
            raise RuntimeError("self-check: not connected to the destination")
        return self._dst

    def _close(self) -> None:
        for c in (self._src, self._dst):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        self._src = self._dst = None

    # ------------------------------------------------------------------ one round (also called by tests)

    def round(self) -> None:
        self._take_noted()
        self._check_due()
        self._rolling_step()
        now = time.monotonic()
        if now - self._status_at >= STATUS_INTERVAL:
            self._status_at = now
            message = self._status_text()
            changed = message != self.status_message
            self.status_message = message
            found = self._findings()
            idle = self.idle_fn is not None and self.idle_fn()
            if found != self._status_written or (changed and not idle):
                self._write_status()
                self._status_written = found

    def _lag(self) -> float:
        lag = self.lag_fn()
        return float(lag) if lag is not None else 0.0

    def _table(self, sdb: str, stable: str) -> _Table | None:
        if (sdb, stable) in self.tables:
            return self.tables[(sdb, stable)]
        ddb, dtable = self.d.map_table(sdb, stable)
        info = read_table(self._dst_conn(), ddb, dtable)
        meta = None
        if info is not None and info.match_key:
            src_cols = table_columns(self._src_conn(), sdb, stable)  # generated columns left out
            dst_cols = column_types(info)
            columns = tuple(c for c in src_cols if c in dst_cols)
            if all(k in src_cols for k in info.match_key) and columns:
                meta = _Table(
                    (sdb, stable),
                    (ddb, dtable),
                    tuple(info.match_key),
                    columns,
                    tuple(exact_expr(k, src_cols[k]) for k in info.match_key),
                )
        self.tables[(sdb, stable)] = meta
        return meta

    def _add(self, table: _Table, key: tuple, found_by: str, due: float) -> None:
        ck = (table.source, key)
        if ck in self.candidates:
            return
        if len(self.candidates) >= CANDIDATES_MAX:
            self.stats["skipped"] += 1
            return
        self.candidates[ck] = _Candidate(table, key, found_by, due)

    def _take_noted(self) -> None:
        delay = self._lag() + self.margin
        while self.noted:
            at, sdb, stable, image = self.noted.popleft()
            table = self._table(sdb, stable)
            if table is None or image is None:
                continue
            try:
                key = tuple(image[c] for c in table.key)
                hash(key)
            except (KeyError, TypeError):
                continue
            self._add(table, key, "recent", at + delay)

    # ------------------------------------------------------------------ confirmation

    def _read(self, conn, db: str, table: str, t: _Table, key: tuple) -> tuple | None:
        # the applier's literals: a key kept as the column's bytes (values.CharsetBytes, e.g. big5 A2CE) is
        # ``_big5 X'..'``; as a plain parameter it became a utf8mb4 string that fails (1267) or finds no row
        lit = make_literal(conn)
        where = " AND ".join(f"{quote_ident(c)} <=> {lit(v)}" for c, v in zip(t.key, key))
        cols = ", ".join(quote_ident(c) for c in t.columns)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {cols} FROM {qualified(db, table)} WHERE {where} LIMIT 2")
            rows = cur.fetchall()
        return tuple(rows[0]) if rows else None

    def _dest_position(self) -> tuple[str, int] | None:
        """The destination's binlog position; None when its binary log is off or may not be read by this account
        (a one-way destination: then no direction reads it)."""
        try:
            return binlog_position(self._dst_conn(), _known(self._dst_info))
        except ServerError:
            return None
        except pymysql.err.OperationalError as e:
            if e.args and e.args[0] in (1227, 1045):  # access denied (needs BINLOG MONITOR / REPLICATION CLIENT)
                return None
            raise

    def _opposite_position(self) -> tuple[str, int] | None:
        """How far the opposite direction has applied the destination's binlog (its checkpoint, at its home: our
        source). None when there is no opposite direction (one-way). Not started yet (only a start floor or a
        snapshot position): that position, so writes made at the destination since then count as in flight."""
        with self._src_conn().cursor() as cur:
            try:
                cur.execute(
                    f"SELECT binlog_file, binlog_pos, snapshot_file, snapshot_pos FROM "
                    f"{self.control.table('checkpoint')} WHERE task_name=%s AND direction=%s",
                    (self.d.task_name, opposite_role(self.d.role)),
                )
            except pymysql.err.ProgrammingError:
                return None
            row = cur.fetchone()
        if row is None:
            return None
        if row[0] is not None:
            return str(row[0]), int(row[1])
        if row[2] is not None:
            return str(row[2]), int(row[3])
        return ("", 0)  # a row without any position: nothing of the destination's binlog is applied yet

    def _check_due(self) -> None:
        """Check the candidates that are due, within the load budget (a check reads one row on each side)."""
        now = time.monotonic()
        if now < self._budget_at:
            return
        due = [c for c in self.candidates.values() if c.due <= now]
        due.sort(key=lambda c: c.due)
        for c in due[:CHECKS_PER_ROUND]:
            if self._stop.is_set() or time.monotonic() < self._budget_at:
                return
            self._check(c)
            self._budget_at = max(self._budget_at, time.monotonic()) + 2.0 / self.rps

    def _check(self, c: _Candidate) -> None:
        t = c.table
        ck = (t.source, c.key)
        if c.images is not None:  # how far both directions have applied, taken BEFORE this read
            ours, theirs = self.position_fn(), self._opposite_position()
        s_row = self._read(self._src_conn(), *t.source, t, c.key)
        d_row = self._read(self._dst_conn(), *t.dest, t, c.key)
        self.stats["checked"] += 1
        now = time.monotonic()
        if s_row == d_row:
            if c.images is not None:  # it differed at an earlier read: a change was in flight
                self.stats["dismissed"] += 1
            del self.candidates[ck]
            if ck in self.reported:
                self._resolve(t, c.key)
            return
        images = (s_row, d_row)
        if c.images != images:
            if c.images is not None:
                c.changes += 1
                if c.changes > MAX_IMAGE_CHANGES:  # busy row: its next change brings it back
                    self.stats["dismissed"] += 1
                    del self.candidates[ck]
                    return
            c.images, c.first_at = images, now
            c.positions = (binlog_position(self._src_conn(), _known(self._src_info)), self._dest_position())
            c.due = now + self._lag() + self.margin
            return
        # same images as before: had everything that was in flight at the first read arrived before this read?
        lag = self._lag()
        if c.positions is None:  # set with c.images, which equal this read's images
            raise RuntimeError("self-check: a candidate's first read has no positions")
        src_pos, dst_pos = c.positions
        opposite_done = theirs is None or dst_pos is None or position_le(dst_pos, theirs)
        c.waits_for_opposite = not opposite_done
        arrived = (
            now - c.first_at > lag + self.margin and ours is not None and position_le(src_pos, ours) and opposite_done
        )
        if not arrived:
            if now - c.created > CONFIRM_TIMEOUT:
                self.stats["unconfirmable"] += 1
                del self.candidates[ck]
            else:
                c.due = now + max(1.0, lag + self.margin - (now - c.first_at))
            return
        del self.candidates[ck]
        self._confirmed(c, s_row, d_row)

    def _confirmed(self, c: _Candidate, s_row: tuple | None, d_row: tuple | None) -> None:
        t = c.table
        cols: tuple[str, ...]
        if s_row is None:
            kind, cols = "extra", ()
        elif d_row is None:
            kind, cols = "missing", ()
        else:
            kind, cols = "different", tuple(n for n, a, b in zip(t.columns, s_row, d_row) if a != b)
        div = Divergence(
            t.source,
            t.dest,
            kind,
            dict(zip(t.key, c.key)),
            cols,
            None if s_row is None else dict(zip(t.columns, s_row)),
            None if d_row is None else dict(zip(t.columns, d_row)),
            c.found_by,
        )
        ck = (t.source, c.key)
        digest = hashlib.md5(
            (to_json(div.source_image) or "").encode() + b"|" + (to_json(div.dest_image) or "").encode()
        ).hexdigest()
        if ck not in self.reported and len(self.reported) >= REPORTED_MAX:
            self.stats["over_limit"] += 1  # a mass divergence: the table holds the first REPORTED_MAX rows
        elif self.reported.get(ck) != digest:
            self.reported[ck] = digest
            self._record(div, t, c.key)
        else:
            self._touch(t, c.key)
        if self.auto_repair:
            self._repair(div, t, c.key)

    # ------------------------------------------------------------------ recording (at the direction's home)

    def _key_hash(self, t: _Table, key: tuple) -> str:
        return hashlib.md5(f"{t.source[0]}\x00{t.source[1]}\x00{to_json(list(key))}".encode()).hexdigest()

    def _record(self, div: Divergence, t: _Table, key: tuple) -> None:
        self.stats["confirmed"] += 1
        msg = div.message()
        self.log.warning("direction %s: self-check found a divergence: %s", self.d.key, msg)
        with self._dst_conn().cursor() as cur:
            cur.execute("START TRANSACTION")
            try:
                cur.execute(
                    f"UPDATE {self.control.table('divergence')} SET resolved_at=UTC_TIMESTAMP(6) "
                    "WHERE task_name=%s AND direction=%s AND key_hash=%s AND resolved_at IS NULL",
                    (self.d.task_name, self.d.role, self._key_hash(t, key)),
                )
                cur.execute(
                    f"INSERT INTO {self.control.table('divergence')} (task_name, direction, source_db, source_table, "
                    "dest_db, dest_table, kind, key_json, key_hash, columns_json, source_image, dest_image, found_by, "
                    "detected_at, last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                    (
                        self.d.task_name,
                        self.d.role,
                        *div.source,
                        *div.dest,
                        div.kind,
                        to_json(div.key),
                        self._key_hash(t, key),
                        to_json(list(div.columns)),
                        to_json(div.source_image),
                        to_json(div.dest_image),
                        div.found_by,
                    ),
                )
                cur.execute(
                    f"UPDATE {self.control.table('sync_state')} SET divergences=divergences+1, last_divergence=%s, "
                    "last_divergence_at=UTC_TIMESTAMP(6) WHERE task_name=%s AND direction=%s",
                    (msg[:60000], self.d.task_name, self.d.role),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _touch(self, t: _Table, key: tuple) -> None:
        with self._dst_conn().cursor() as cur:
            cur.execute(
                f"UPDATE {self.control.table('divergence')} SET last_seen_at=UTC_TIMESTAMP(6) "
                "WHERE task_name=%s AND direction=%s AND key_hash=%s AND resolved_at IS NULL",
                (self.d.task_name, self.d.role, self._key_hash(t, key)),
            )

    def _resolve(self, t: _Table, key: tuple, repaired: bool = False) -> None:
        self.reported.pop((t.source, key), None)
        extra = ", repaired_at=UTC_TIMESTAMP(6)" if repaired else ""
        with self._dst_conn().cursor() as cur:
            cur.execute(
                f"UPDATE {self.control.table('divergence')} SET resolved_at=UTC_TIMESTAMP(6){extra} "
                "WHERE task_name=%s AND direction=%s AND key_hash=%s AND resolved_at IS NULL",
                (self.d.task_name, self.d.role, self._key_hash(t, key)),
            )
        if not repaired:
            self.log.info(
                "direction %s: self-check: %s.%s key %s is equal again", self.d.key, *t.source, to_json(list(key))
            )

    def _repair(self, div: Divergence, t: _Table, key: tuple) -> None:
        report = TableReport(
            source=div.source, destination=div.dest, key_columns=t.key, diffs=[RowDiff(div.kind, key, div.columns)]
        )
        self.verifier.repair_table(self._src_conn(), self._dst_conn(), report, "to_destination")
        self.stats["repaired"] += 1
        self._resolve(t, key, repaired=True)
        self.log.warning(
            "direction %s: self-check repaired %s.%s key %s (destination := source)",
            self.d.key,
            *div.dest,
            to_json(div.key),
        )

    def _findings(self) -> tuple[Any, ...]:
        """What the self-check found, as opposed to its progress (passes, checks)."""
        waiting = sum(1 for c in self.candidates.values() if c.waits_for_opposite)
        return (self.stats["confirmed"], self.stats["repaired"], len(self.reported), waiting, len(self.unchecked))

    def _write_status(self) -> None:
        msg = self.status_message or self._status_text()
        with self._dst_conn().cursor() as cur:  # not updated_at: that one says the apply loop is alive
            cur.execute(
                f"UPDATE {self.control.table('sync_state')} SET self_check_message=%s, self_check_at=UTC_TIMESTAMP(6) "
                "WHERE task_name=%s AND direction=%s",
                (msg, self.d.task_name, self.d.role),
            )

    def _status_text(self) -> str:
        open_count = len(self.reported)
        msg = (
            f"self-check: {self._passes} rolling pass(es) done, {self.stats['checked']} row check(s), "
            f"{len(self.candidates)} key(s) pending, {self.stats['confirmed']} divergence(s) found"
            + (f", {self.stats['repaired']} repaired" if self.auto_repair else "")
            + (f", {open_count} open" if open_count else "")
            + f"; {self.stats['dismissed']} difference(s) in flight dismissed"
        )
        if self.stats["over_limit"]:
            msg += (
                f"; more than {REPORTED_MAX} rows differ: only the first {REPORTED_MAX} are recorded "
                "one by one; run dts_verify for the full list"
            )
        waiting = sum(1 for c in self.candidates.values() if c.waits_for_opposite)
        if waiting:
            msg += (
                f"; {waiting} differing row(s) wait until {opposite_role(self.d.role)} direction applies the "
                "destination's binlog (is it running?) before they can be confirmed"
            )
        if self.unchecked:
            names = ", ".join(".".join(t) for t in sorted(self.unchecked)[:5])
            msg += (
                f"; {len(self.unchecked)} table(s) not compared (no primary key or NOT NULL unique key, or "
                f"missing at the destination): {names}"
            )
        if self.noted_dropped or self.stats["skipped"]:
            msg += f"; under load {self.noted_dropped + self.stats['skipped']} changed key(s) were not re-checked"
        return msg

    # ------------------------------------------------------------------ rolling pass

    def _rolling_step(self) -> None:
        now = time.monotonic()
        if now < self._budget_at:
            return
        if self._pass_index >= len(self._pass):
            if self._pass_done_at is not None and now - self._pass_done_at < self.pass_pause:
                return
            if self._pass:
                self._passes += 1
            self._pass = selected_tables(self._src_conn(), self.d)
            self._pass_index, self._pass_lo = 0, None
            self.tables.clear()  # re-read definitions once per pass (DDL)
            for src_t, key in list(self.reported):
                t = self._table(*src_t)
                if t is not None:
                    self._add(t, key, "rolling", now)
            if not self._pass:
                self._pass_done_at = now
                return
        sdb, stable = self._pass[self._pass_index]
        t = self._table(sdb, stable)
        if t is None:  # no usable key (or not at the destination): rows cannot be matched
            self.unchecked.add((sdb, stable))
            self._next_table(now)
            return
        self.unchecked.discard((sdb, stable))
        v = self.verifier
        lo = self._pass_lo
        hi = v._next_boundary(self._src_conn(), sdb, stable, t.key, lo)
        equal, n_src, n_dst = v._chunk_equal(
            self._src_conn(), self._dst_conn(), t.source, t.dest, t.key, t.columns, lo, hi
        )
        read = n_src + n_dst
        if not equal:
            diffs = self._differing_keys(t, lo, hi)
            read += n_src + n_dst
            for key in diffs[:ROLLING_DIFFS_PER_CHUNK]:
                self._add(t, key, "rolling", now)
            self.stats["rolling_candidates"] += len(diffs)
        self._budget_at = max(self._budget_at, now) + read / self.rps
        if hi is None:
            self._next_table(now)
        else:
            self._pass_lo = hi

    def _differing_keys(self, t: _Table, lo: tuple | None, hi: tuple | None) -> list[tuple]:
        """Keys of the chunk's rows that are missing, extra or different, read exactly (``_Table.key_exprs``)."""
        where, args = _range_predicate(t.key, lo, hi)
        sel = ", ".join(t.key_exprs or tuple(quote_ident(c) for c in t.key))
        n = len(t.key)
        rows = []
        for conn, (db, table) in ((self._src_conn(), t.source), (self._dst_conn(), t.dest)):
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT {sel}, MD5({_row_expr(t.columns)}) FROM {qualified(db, table)} WHERE {where}", args
                )
                rows.append({tuple(r[:n]): r[n] for r in cur.fetchall()})
        a, b = rows
        return [k for k in list(a) + [k for k in b if k not in a] if a.get(k) != b.get(k)]

    def _next_table(self, now: float) -> None:
        self._pass_index += 1
        self._pass_lo = None
        if self._pass_index >= len(self._pass):
            self._pass_done_at = now


def _known(info: ServerInfo | None) -> ServerInfo:
    """A server's facts, read by ``SelfCheck._connect`` with its connection."""
    if info is None:
        raise RuntimeError("self-check: not connected")
    return info
