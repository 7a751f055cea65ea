"""Reading a direction's state from the control schema, and a trigger that waits for ``Synchronizing``.

The state of a direction lives on its destination server (``<control_schema>.sync_state`` joined with
``checkpoint``). ``read_status`` reads it with plain PyMySQL (call it from a thread inside async code);
``judge`` decides whether a waiter is done, must keep waiting, or must fail at once.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import pymysql
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.triggers.inline import cancel_on_sigterm, running_inline

DEFAULT_MAX_LAG_SECONDS = 10.0
# A Synchronizing row not refreshed for this long belongs to an engine that is no longer running.
DEFAULT_MAX_STATE_AGE_SECONDS = 120.0
FAILURE_STATES = (State.FAILED, State.PRECHECK_FAILED, State.INITIALIZE_FAILED)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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


def read_status(settings: ConnectionSettings, control_schema: str, task_name: str, role: str) -> DirectionStatus:
    """Read the direction's state on its destination. A missing control schema or row reads as NotStarted.

    Blocking: call it from a worker thread in async code. Raises ``ServerError`` when the server cannot be
    reached.
    """
    control = ControlSchema(control_schema)
    conn = settings.connect()
    try:
        try:
            row = control.get_state(conn, task_name, role)
        except pymysql.err.ProgrammingError as e:  # 1146: table (or schema) does not exist yet
            if e.args and e.args[0] in (1049, 1146):
                return DirectionStatus(task_name, role, State.NOT_STARTED, "the control schema does not exist yet")
            raise
        if row is None:
            return DirectionStatus(task_name, role, State.NOT_STARTED, "no state recorded yet")
        with conn.cursor() as cur:
            cur.execute("SELECT UTC_TIMESTAMP(6)")
            now = cur.fetchone()[0]
    finally:
        conn.close()
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
    )


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
    max_state_age_seconds: float | None = DEFAULT_MAX_STATE_AGE_SECONDS,
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
    if (
        inline
        and verdict == "wait"
        and max_state_age_seconds is not None
        and status.age_seconds is not None
        and status.age_seconds > max_state_age_seconds
    ):
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
    if (
        max_state_age_seconds is not None
        and status.age_seconds is not None
        and status.age_seconds > max_state_age_seconds
    ):
        return "wait", (
            f"state is {State.SYNCHRONIZING} but was last refreshed {status.age_seconds:.0f}s ago "
            "(is the incremental sync task running?)"
        )
    if status.lag_seconds is None:
        return "wait", "lag not measured yet"
    if status.lag_seconds > max_lag_seconds:
        return "wait", f"lag {status.lag_seconds:.1f}s is above the bound of {max_lag_seconds:g}s"
    return "done", f"{State.SYNCHRONIZING} with lag {status.lag_seconds:.1f}s <= {max_lag_seconds:g}s"


class SyncStateTrigger(BaseTrigger):
    """Polls a direction's state until it is Synchronizing within the lag bound, or has failed.

    Yields one event: ``{"status": "success" | "failed", "reason", "direction_status"}``. Holds no secret:
    the destination connection is looked up by id when the trigger runs.
    """

    def __init__(
        self,
        *,
        task_name: str,
        role: str,
        destination_conn_id: str,
        control_schema: str = DEFAULT_CONTROL_SCHEMA,
        max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS,
        max_state_age_seconds: float | None = DEFAULT_MAX_STATE_AGE_SECONDS,
        poke_interval: float = 5.0,
        failures_since: str | None = None,
    ) -> None:
        super().__init__()
        self.task_name = task_name
        self.role = role
        self.destination_conn_id = destination_conn_id
        self.control_schema = control_schema
        self.max_lag_seconds = float(max_lag_seconds)
        self.max_state_age_seconds = None if max_state_age_seconds is None else float(max_state_age_seconds)
        self.poke_interval = float(poke_interval)
        self.failures_since = failures_since

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "task_name": self.task_name,
                "role": self.role,
                "destination_conn_id": self.destination_conn_id,
                "control_schema": self.control_schema,
                "max_lag_seconds": self.max_lag_seconds,
                "max_state_age_seconds": self.max_state_age_seconds,
                "poke_interval": self.poke_interval,
                "failures_since": self.failures_since,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # the event is yielded outside cancel_on_sigterm: the SIGTERM routing ends with the wait
        async with cancel_on_sigterm(self.log):
            event = await self._wait(running_inline())
        yield event

    async def _wait(self, inline: bool) -> TriggerEvent:
        from airflow_provider_dts.hooks.dts import DtsMySqlHook

        last_reason = None
        while True:
            try:
                settings = await DtsMySqlHook.aget_settings(self.destination_conn_id)
                status = await asyncio.to_thread(read_status, settings, self.control_schema, self.task_name, self.role)
            except (ServerError, pymysql.err.Error) as e:
                reason = f"cannot read the state from {self.destination_conn_id}: {e}"
                if reason != last_reason:
                    self.log.warning("%s; retrying in %.0fs", reason, self.poke_interval)
                    last_reason = reason
                await asyncio.sleep(self.poke_interval)
                continue
            verdict, reason = judge(
                status, self.max_lag_seconds, self.max_state_age_seconds, self.failures_since, inline=inline
            )
            if verdict == "done":
                return TriggerEvent({"status": "success", "reason": reason, "direction_status": status.to_dict()})
            if verdict == "fail":
                return TriggerEvent({"status": "failed", "reason": reason, "direction_status": status.to_dict()})
            if reason != last_reason:
                self.log.info("%s/%s: %s", self.task_name, self.role, reason)
                last_reason = reason
            await asyncio.sleep(self.poke_interval)
