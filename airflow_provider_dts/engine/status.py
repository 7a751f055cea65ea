"""A direction's status: the one reader of its state row, the one staleness bound, the one readiness rule.

The state of a direction lives on its destination server (``<control_schema>.sync_state`` joined with
``checkpoint``, ``control.ControlSchema.get_state``). Everything that shows or waits on a direction reads it
here: the Airflow trigger and sensor (``triggers/sync_state.py``, ``sensors/sync_state.py``), the incremental
trigger's progress lines, the "DTS sync" page (``plugins/status.py``), ``cli.py status``, the demo, and
``running.py`` (is a precheck or full copy still working?).

- ``read_status`` (one direction, opens its own connection), ``read_direction`` (one direction on an open
  connection) and ``read_directions`` (every direction whose state lives on a server) return
  ``DirectionStatus``; the age of the row is measured with the server's clock.
- ``read_metrics`` (the per-minute lag and rows/s history the page charts), ``read_copy_progress`` (the full data
  sync per table: rows done / estimated, %, rate, ETA) and ``copy_totals`` (the same for the whole copy).
- ``STALE_AFTER_SECONDS`` (120 s) says when a state row no longer belongs to a working process. A running
  direction refreshes its row every second while rows flow (``incremental.STATS_INTERVAL``), every 30 s when
  idle (``incremental.STATS_IDLE_INTERVAL``: each write is binlogged), and at least at every retry
  while it waits for a lost server (backoff at most ``incremental.BACKOFF_MAX`` = 10 s, plus connect
  timeouts); a precheck or full copy writes it when it starts and when it ends. A ``Synchronizing`` row older
  than the bound therefore means its process is gone (the incremental task is not running): the page flags it
  ``stale``, waiters do not trust it. A ``Prechecking`` / ``Initializing`` row older than the bound no longer
  counts as a run in progress (``running.py``). The bound leaves room for a slow group or a reconnect well
  beyond one refresh interval, so a live direction is never reported gone.
- ``judge`` decides whether a waiter is done (``Synchronizing`` within a lag bound), must keep waiting, or
  must fail at once (a failure state, or stopped while it waits).
- ``stats_line`` renders a run's counters (``incremental.RunResult.stats``) for a log line.

Plain Python and PyMySQL: nothing here imports Airflow. Reads block: call them from a worker thread in async
code.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.servers import ConnectionSettings

DEFAULT_MAX_LAG_SECONDS = 10.0
# A state row not refreshed for this long belongs to a process that is no longer running (module docstring).
STALE_AFTER_SECONDS = 120.0
FAILURE_STATES = (State.FAILED, State.PRECHECK_FAILED, State.INITIALIZE_FAILED)
_NO_CONTROL_SCHEMA = (1049, 1146)  # unknown database, unknown table


@dataclass
class DirectionStatus:
    """What the control schema says about one direction right now."""

    task_name: str
    role: str
    state: str
    message: str | None = None
    lag_seconds: float | None = None
    age_seconds: float | None = None  # seconds since the state row was last written (server clock)
    binlog_file: str | None = None
    binlog_pos: int | None = None
    transactions_applied: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    conflicts: int = 0
    updated_at: str | None = None  # when the state row was last written, ISO, UTC (server clock)
    # the whole state row as read (self-check columns, rates, ...), for the status page; not in to_dict()
    row: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The status fields (JSON-ready; trigger events, XCom, ``cli status --json``), without ``row``."""
        return {
            "task_name": self.task_name,
            "role": self.role,
            "state": self.state,
            "message": self.message,
            "lag_seconds": self.lag_seconds,
            "age_seconds": self.age_seconds,
            "binlog_file": self.binlog_file,
            "binlog_pos": self.binlog_pos,
            "transactions_applied": self.transactions_applied,
            "rows_inserted": self.rows_inserted,
            "rows_updated": self.rows_updated,
            "rows_deleted": self.rows_deleted,
            "conflicts": self.conflicts,
            "updated_at": self.updated_at,
        }

    @property
    def stale(self) -> bool:
        """``Synchronizing``, but not refreshed within ``STALE_AFTER_SECONDS``: its process is gone."""
        return self.state == State.SYNCHRONIZING and is_stale(self.age_seconds)

    def summary(self) -> str:
        lag = "unknown" if self.lag_seconds is None else f"{self.lag_seconds:.1f}s"
        pos = f"{self.binlog_file}:{self.binlog_pos}" if self.binlog_file else "none"
        text = (
            f"{self.task_name}/{self.role}: state={self.state} lag={lag} position={pos} "
            f"transactions={self.transactions_applied} inserted={self.rows_inserted} "
            f"updated={self.rows_updated} deleted={self.rows_deleted} conflicts={self.conflicts}"
        )
        if self.message:
            text += f" message={self.message}"
        return text


def is_stale(age_seconds: float | None, bound: float | None = STALE_AFTER_SECONDS) -> bool:
    """A state row this old (seconds, server clock) was not written by a working process; None never is."""
    return bound is not None and age_seconds is not None and age_seconds > bound


# --------------------------------------------------------------------------- reading


def _server_now(conn: pymysql.connections.Connection) -> _dt.datetime:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        row = cur.fetchone()
    assert row is not None  # a SELECT without FROM always returns its row
    return row[0]


def _from_row(task_name: str, role: str, row: dict[str, Any], now: _dt.datetime) -> DirectionStatus:
    updated = row.get("updated_at")
    return DirectionStatus(
        task_name=task_name,
        role=role,
        state=row["state"],
        message=row.get("message"),
        lag_seconds=None if row.get("lag_seconds") is None else float(row["lag_seconds"]),
        age_seconds=None if updated is None else max(0.0, (now - updated).total_seconds()),
        binlog_file=row.get("binlog_file"),
        binlog_pos=None if row.get("binlog_pos") is None else int(row["binlog_pos"]),
        transactions_applied=int(row.get("transactions_applied") or 0),
        rows_inserted=int(row.get("rows_inserted") or 0),
        rows_updated=int(row.get("rows_updated") or 0),
        rows_deleted=int(row.get("rows_deleted") or 0),
        conflicts=int(row.get("conflicts") or 0),
        updated_at=None if updated is None else updated.isoformat(),
        row=row,
    )


def read_direction(
    conn: pymysql.connections.Connection, control_schema: str, task_name: str, role: str
) -> DirectionStatus:
    """The direction's status on an open connection to its destination; no control schema or row: NotStarted."""
    control = ControlSchema(control_schema)
    try:
        row = control.get_state(conn, task_name, role)
    except pymysql.err.ProgrammingError as e:
        if e.args and e.args[0] in _NO_CONTROL_SCHEMA:
            return DirectionStatus(task_name, role, State.NOT_STARTED, "the control schema does not exist yet")
        raise
    if row is None:
        return DirectionStatus(task_name, role, State.NOT_STARTED, "no state recorded yet")
    return _from_row(task_name, role, row, _server_now(conn))


def read_status(settings: ConnectionSettings, control_schema: str, task_name: str, role: str) -> DirectionStatus:
    """Read the direction's state on its destination. A missing control schema or row reads as NotStarted.

    Blocking: call it from a worker thread in async code. Raises ``ServerError`` when the server cannot be
    reached.
    """
    conn = settings.connect()
    try:
        return read_direction(conn, control_schema, task_name, role)
    finally:
        conn.close()


def read_directions(conn: pymysql.connections.Connection, control_schema: str) -> list[DirectionStatus]:
    """Every direction whose state lives on this server, ordered by task name and direction.

    A server without the control schema (or without its ``sync_state`` table yet) has none.
    """
    control = ControlSchema(control_schema)
    keys = _control_rows(
        conn, f"SELECT task_name, direction FROM {control.table('sync_state')} ORDER BY task_name, direction"
    )
    if not keys:
        return []
    now = _server_now(conn)
    out = []
    for task_name, role in keys:
        row = control.get_state(conn, task_name, role)
        if row is not None:  # None: deleted between the two reads
            out.append(_from_row(task_name, role, row, now))
    return out


def _control_rows(conn: pymysql.connections.Connection, sql: str, args: tuple | None = None) -> list[tuple]:
    """The rows of a query on the control schema; none when the schema or the table does not exist (yet)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    except pymysql.err.ProgrammingError as e:
        if e.args and e.args[0] in _NO_CONTROL_SCHEMA:
            return []
        raise


def _percent_eta(done: int, est: int, finished: bool, rate: float | None) -> tuple[float | None, float | None]:
    """A copy's percent (100 once finished, below 100 while copying even when the estimate was too low, None
    without an estimate) and seconds left at ``rate`` (None when finished or unknown)."""
    if finished:
        percent: float | None = 100.0
    elif est > 0:
        percent = min(99.9, 100.0 * done / est)
    else:
        percent = None
    eta = (est - done) / rate if not finished and rate and est > done else None
    return percent, eta


def read_metrics(
    conn: pymysql.connections.Connection, control_schema: str, task_name: str, role: str, minutes: int = 60
) -> list[dict[str, Any]]:
    """The direction's per-minute history (engine/metrics.py) of the last ``minutes`` minutes, oldest first:
    ``minute`` (naive UTC), ``lag_max``, ``lag_avg``, ``rows_per_second`` (the minute's average) and
    ``conflicts``. Empty for a control schema older than the history (migration 6)."""
    control = ControlSchema(control_schema)
    rows = _control_rows(
        conn,
        f"SELECT minute, lag_max, lag_avg, rows_applied, conflicts FROM {control.table('metrics')} "
        "WHERE task_name=%s AND direction=%s AND minute >= UTC_TIMESTAMP() - INTERVAL %s MINUTE "
        "ORDER BY minute",
        (task_name, role, int(minutes)),
    )
    return [
        {
            "minute": minute,
            "lag_max": lag_max,
            "lag_avg": lag_avg,
            "rows_per_second": int(rows_applied) / 60.0,
            "conflicts": int(conflicts),
        }
        for minute, lag_max, lag_avg, rows_applied, conflicts in rows
    ]


def read_copy_progress(
    conn: pymysql.connections.Connection, control_schema: str, task_name: str, role: str
) -> list[dict[str, Any]]:
    """The direction's full data sync per table (``<control>.table_progress``, written with every copied chunk),
    ordered by source name: ``source_db``, ``source_table``, ``dest_db``, ``dest_table``, ``status`` (pending,
    copying, done), ``rows_done``, ``rows_estimated`` (the source's estimate when the copy was planned),
    ``started_at``, ``finished_at``, ``updated_at`` (naive UTC), and derived from them: ``percent`` (None without
    an estimate, 100 when done, below 100 while copying even when the estimate was too low), ``rows_per_second``
    (rows done over the table's copy time so far) and ``eta_seconds`` (rows left at that rate; None when done or
    unknown). Empty without the table (no copy yet)."""
    control = ControlSchema(control_schema)
    rows = _control_rows(
        conn,
        f"SELECT source_db, source_table, dest_db, dest_table, status, rows_done, rows_estimated, "
        f"started_at, finished_at, updated_at FROM {control.table('table_progress')} "
        "WHERE task_name=%s AND direction=%s ORDER BY source_db, source_table",
        (task_name, role),
    )
    out = []
    for src_db, src_table, dst_db, dst_table, status, done, est, started, finished, updated in rows:
        done, est = int(done or 0), int(est or 0)
        end = finished or updated
        seconds = None if started is None or end is None else (end - started).total_seconds()
        rate = done / seconds if seconds and seconds > 0 and done else None
        percent, eta = _percent_eta(done, est, status == "done", rate)
        out.append(
            {
                "source_db": src_db,
                "source_table": src_table,
                "dest_db": dst_db,
                "dest_table": dst_table,
                "status": status,
                "rows_done": done,
                "rows_estimated": est,
                "started_at": started,
                "finished_at": finished,
                "updated_at": updated,
                "percent": percent,
                "rows_per_second": rate,
                "eta_seconds": eta,
            }
        )
    return out


def copy_totals(tables: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The whole copy from ``read_copy_progress``'s tables: ``tables``, ``tables_done``, ``rows_done``,
    ``rows_estimated``, ``percent``, ``rows_per_second`` (rows done over the copy's time so far: first start to
    last update) and ``eta_seconds`` (rows left at that rate). None without tables."""
    if not tables:
        return None
    done = sum(t["rows_done"] for t in tables)
    # a copied table counts what it really had; one still copying its estimate (at least what is done)
    est = sum(t["rows_done"] if t["status"] == "done" else max(t["rows_estimated"], t["rows_done"]) for t in tables)
    finished = all(t["status"] == "done" for t in tables)
    starts = [t["started_at"] for t in tables if t["started_at"] is not None]
    ends = [t["finished_at"] or t["updated_at"] for t in tables if t["started_at"] is not None]
    seconds = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    rate = done / seconds if seconds > 0 and done else None
    percent, eta = _percent_eta(done, est, finished, rate)
    return {
        "tables": len(tables),
        "tables_done": sum(1 for t in tables if t["status"] == "done"),
        "rows_done": done,
        "rows_estimated": est,
        "percent": percent,
        "rows_per_second": rate,
        "eta_seconds": eta,
        "finished": finished,
    }


# --------------------------------------------------------------------------- readiness


def _naive_utc(value: _dt.datetime | str | None) -> _dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    return value


def judge(
    status: DirectionStatus,
    max_lag_seconds: float,
    max_state_age_seconds: float | None = STALE_AFTER_SECONDS,
    failures_since: _dt.datetime | str | None = None,
    inline: bool = False,
) -> tuple[str, str]:
    """Return ("done" | "wait" | "fail", reason).

    With ``failures_since`` (UTC), a failure state recorded before that moment is a leftover of an earlier
    run that the direction's restart will overwrite: wait instead of failing.

    With ``inline`` (the waiter runs inside ``airflow dags test``, which runs one task at a time, so no
    incremental task of this DAG runs while it waits), a state row not written for ``max_state_age_seconds``
    will not change by itself: fail instead of waiting up to the sensor's timeout.
    """
    verdict, reason = _judge(status, max_lag_seconds, max_state_age_seconds, failures_since)
    if inline and verdict == "wait" and is_stale(status.age_seconds, max_state_age_seconds):
        return "fail", (
            f"direction {status.task_name}/{status.role} is {status.state} and its state was last "
            f"written {status.age_seconds:.0f}s ago ({reason}). Under `airflow dags test` tasks run one "
            "at a time, so its incremental sync task does not run while this task waits. Fix: run the "
            "DAG under a scheduler and triggerer (`airflow standalone`, or trigger it in your Airflow)"
        )
    return verdict, reason


def _judge(
    status: DirectionStatus,
    max_lag_seconds: float,
    max_state_age_seconds: float | None,
    failures_since: _dt.datetime | str | None,
) -> tuple[str, str]:
    if status.state in FAILURE_STATES:
        since, at = _naive_utc(failures_since), _naive_utc(status.updated_at)
        if since is not None and at is not None and at < since:
            return "wait", (
                f"state {status.state} was recorded at {at:%Y-%m-%d %H:%M:%S} UTC, before this wait "
                "began; waiting for the direction to be restarted"
            )
        return "fail", f"direction {status.task_name}/{status.role} is {status.state}: {status.message or 'no message'}"
    if status.state == State.STOPPED:
        since, at = _naive_utc(failures_since), _naive_utc(status.updated_at)
        if since is not None and at is not None and at >= since:
            # stopped while we wait (stop request, max_runtime): it will not become Synchronizing by itself
            return "fail", (
                f"direction {status.task_name}/{status.role} stopped at {at:%Y-%m-%d %H:%M:%S} UTC, after "
                f"this wait began ({status.message or 'no message'}), so it will not become "
                f"{State.SYNCHRONIZING} by itself. Fix: restart it (clear its incremental task), then "
                "clear this task"
            )
    if status.state != State.SYNCHRONIZING:
        return "wait", f"state is {status.state}, waiting for {State.SYNCHRONIZING}"
    if is_stale(status.age_seconds, max_state_age_seconds):
        return "wait", (
            f"state is {State.SYNCHRONIZING} but was last refreshed {status.age_seconds:.0f}s ago "
            "(is the incremental sync task running?)"
        )
    if status.lag_seconds is None:
        return "wait", "lag not measured yet"
    if status.lag_seconds > max_lag_seconds:
        return "wait", f"lag {status.lag_seconds:.1f}s is above the bound of {max_lag_seconds:g}s"
    return "done", f"{State.SYNCHRONIZING} with lag {status.lag_seconds:.1f}s <= {max_lag_seconds:g}s"


# --------------------------------------------------------------------------- log lines


def stats_line(stats: dict[str, Any] | None) -> str:
    """One log line of a run's counters (``incremental.RunResult.stats``; missing ones count as 0)."""
    s = stats or {}
    lag = s.get("lag_seconds")
    return (
        f"transactions={s.get('transactions_applied', 0)} inserted={s.get('rows_inserted', 0)} "
        f"updated={s.get('rows_updated', 0)} deleted={s.get('rows_deleted', 0)} "
        f"conflicts={s.get('conflicts', 0)} lag={'unknown' if lag is None else f'{lag:.1f}s'} "
        f"position={s.get('binlog_file')}:{s.get('binlog_pos')}"
    )
