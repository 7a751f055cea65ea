"""SyncHealthTrigger: watches a sync's directions from the triggerer, emits metrics, reports alert changes.

Every ``poll_seconds`` it reads each direction's status (``engine.status.read_status``, in a worker thread,
so the event loop never blocks), emits the metrics through Airflow's stats of the triggerer process (StatsD,
Datadog or OpenTelemetry, as ``[metrics]`` configures it) and judges the alert conditions:

- ``failed``: the direction is ``Failed`` / ``PrecheckFailed`` / ``InitializeFailed`` (a conflict waiting for
  an answer under TaskFailed is a ``Failed`` direction too);
- ``lag``: ``Synchronizing`` with a lag above ``alert_lag_seconds`` for at least ``alert_lag_for_seconds``;
- ``stale``: ``Synchronizing``, but the state row is older than ``status.STALE_AFTER_SECONDS`` (its process is gone);
- ``unreachable``: the status cannot be read for at least ``alert_lag_for_seconds``;
- ``divergence``: the self-check confirmed a new divergence (``sync_state.divergences`` grew); the episode
  ends silently once no new one was confirmed for ``alert_lag_for_seconds``.

It yields one event when a condition starts or clears (an *episode*), or when the watch is over:

    {"changes": [{"direction", "condition", "event": "started" | "cleared", "message", "subject"}, ...],
     "seen": {...}, "statuses": {"<task>/<role>": DirectionStatus.to_dict() | None}, "ended": None | reason}

``seen`` (baselines, active episodes, since-when times) goes back into the next trigger, so a condition is
reported once per episode and the counters are never counted twice. The watch is over when every task in
``watch_tasks`` of the DAG run has finished (read through the triggerer's Task SDK comms), or, without
``watch_tasks``, when every direction seen running since the watch began is ``Stopped``.

Metrics (each also under a name with ``.<task_name>.<role>`` appended, for plain StatsD that drops tags):
gauges ``dts.lag_seconds``, ``dts.rows_per_second``, ``dts.state`` (1 for the current state, 0 for the others,
tag ``state``; named ``dts.state.<task>.<role>.<State>``), ``dts.alerts`` (active alert episodes); counters
``dts.conflicts``, ``dts.divergences`` (the increase since the last poll). Tags: ``task_name``, ``direction``.

Only reads: a trigger that runs twice only reads twice. ``serialize()`` holds plain values (connection ids,
never secrets).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dts.engine.control import State
from airflow_provider_dts.engine.status import FAILURE_STATES, DirectionStatus, read_status
from airflow_provider_dts.triggers.settle import SETTLE_SECONDS, hold_until_settled

DEFAULT_POLL_SECONDS = 30.0
DEFAULT_ALERT_LAG_SECONDS = 60.0
DEFAULT_ALERT_LAG_FOR_SECONDS = 120.0
END_CHECK_SECONDS = 5.0  # how often the end of the watch (the run's tasks) is checked between two polls
ROLE_LABEL = {"forward": "task one", "reverse": "task two"}
# task instance states after which a task will not run again by itself
FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
CONDITIONS = ("failed", "lag", "stale", "unreachable", "divergence")
SILENT_CLEAR = frozenset({"divergence"})  # an episode that ends without a notification


def stats():
    """Airflow's stats of the triggerer process (``airflow.observability.stats``: the triggerer initializes it
    from ``[metrics]`` before it forks its trigger runner, which inherits it)."""
    from airflow.observability import stats as triggerer_stats

    return triggerer_stats


def metric_name(base: str, task_name: str, role: str, *suffix: str) -> str:
    """``base.<task>.<role>[.suffix]`` for StatsD without tags (a dot inside a name becomes ``__``)."""
    parts = [base, task_name.replace(".", "__"), role, *suffix]
    return ".".join(p.replace(" ", "_") for p in parts)


def direction_key(d: dict[str, Any]) -> str:
    return f"{d['task_name']}/{d['role']}"


def watched_direction(task_name: str, role: str, conn_id: str, control_schema: str) -> dict[str, str]:
    """One watched direction: its state lives on ``conn_id`` (the direction's destination)."""
    return {"task_name": task_name, "role": role, "conn_id": conn_id, "control_schema": control_schema}


class SyncHealthTrigger(BaseTrigger):
    """Polls the directions' status; yields an event when an alert episode starts or clears, or the watch ends.

    :param directions: ``watched_direction(...)`` dicts.
    :param poll_seconds: seconds between polls.
    :param alert_lag_seconds: the lag bound of the ``lag`` condition.
    :param alert_lag_for_seconds: how long the lag (or an unreadable status) must last before it alerts.
    :param seen: the state of the previous trigger of this watch (its last event's ``seen``); empty at first.
    :param dag_id: with ``run_id`` and ``watch_tasks``: the watch ends when those tasks of that run finished.
    :param settle_seconds: the event is never yielded earlier than this after the trigger started
        (``triggers/settle.py``).
    """

    def __init__(
        self,
        *,
        directions: list[dict[str, Any]],
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        alert_lag_seconds: float = DEFAULT_ALERT_LAG_SECONDS,
        alert_lag_for_seconds: float = DEFAULT_ALERT_LAG_FOR_SECONDS,
        seen: dict[str, Any] | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        watch_tasks: list[str] | None = None,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        super().__init__()
        self.directions = [dict(d) for d in directions]
        self.poll_seconds = float(poll_seconds)
        self.alert_lag_seconds = float(alert_lag_seconds)
        self.alert_lag_for_seconds = float(alert_lag_for_seconds)
        self.seen: dict[str, Any] = dict(seen or {})
        self.dag_id = dag_id
        self.run_id = run_id
        self.watch_tasks = list(watch_tasks or [])
        self.settle_seconds = float(settle_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "directions": self.directions,
                "poll_seconds": self.poll_seconds,
                "alert_lag_seconds": self.alert_lag_seconds,
                "alert_lag_for_seconds": self.alert_lag_for_seconds,
                "seen": self.seen,
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "watch_tasks": self.watch_tasks,
                "settle_seconds": self.settle_seconds,
            },
        )

    # ------------------------------------------------------------------ run

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        seen = {k: dict(v) for k, v in self.seen.items()}
        statuses: dict[str, dict[str, Any] | None] = {}
        next_poll = 0.0
        while True:
            changes: list[dict[str, Any]] = []
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_seconds
                for d in self.directions:
                    key = direction_key(d)
                    status, error = await self._read(d)
                    mine = seen.setdefault(key, new_seen())
                    statuses[key] = None if status is None else status.to_dict()
                    changes += self.judge(d, status, error, mine, time.time())
                    if status is not None:
                        try:
                            self.emit_metrics(d, status, mine)
                        except Exception:  # a metrics backend problem never stops the watch
                            self.log.warning("%s: metrics not emitted", key, exc_info=True)
            ended = await self._ended(seen)  # checked more often than the status: a refused run ends soon
            if changes or ended:
                await hold_until_settled(started, self.settle_seconds)
                yield TriggerEvent({"changes": changes, "seen": seen, "statuses": statuses, "ended": ended})
                return
            await asyncio.sleep(min(self.poll_seconds, END_CHECK_SECONDS))

    async def _read(self, d: dict[str, Any]) -> tuple[DirectionStatus | None, str | None]:
        from airflow_provider_dts.hooks.dts import DtsMySqlHook

        try:
            settings = await DtsMySqlHook.aget_settings(d["conn_id"])
            status = await asyncio.to_thread(read_status, settings, d["control_schema"], d["task_name"], d["role"])
        except Exception as e:  # a server down, a connection missing: a condition of its own
            return None, f"{type(e).__name__}: {e}"
        return status, None

    # ------------------------------------------------------------------ conditions

    def judge(
        self,
        d: dict[str, Any],
        status: DirectionStatus | None,
        error: str | None,
        mine: dict[str, Any],
        now: float,
    ) -> list[dict[str, Any]]:
        """The episodes that start or clear at this poll; updates ``mine`` (this direction's ``seen``)."""
        holds: dict[str, str | None] = dict.fromkeys(CONDITIONS)  # condition -> message while it holds
        if status is None:
            mine["unreadable_since"] = mine.get("unreadable_since") or now
            if now - mine["unreadable_since"] >= self.alert_lag_for_seconds:
                holds["unreachable"] = (
                    f"its status on {d['conn_id']} has not been readable for "
                    f"{now - mine['unreadable_since']:.0f}s: {error}"
                )
            elif "unreachable" not in mine["alerts"]:  # not readable for long yet: keep the other episodes
                return []
            for c in CONDITIONS:  # nothing else can be judged without a status
                if c != "unreachable" and c in mine["alerts"]:
                    holds[c] = mine["alerts"][c]
        else:
            mine["unreadable_since"] = None
            self._judge_status(status, mine, now, holds)
        changes = []
        for condition, message in holds.items():
            active = mine["alerts"].get(condition)
            if message is not None and active is None:
                mine["alerts"][condition] = message
                changes.append(self._change(d, condition, "started", message, status))
            elif message is None and active is not None:
                del mine["alerts"][condition]
                if condition not in SILENT_CLEAR:
                    changes.append(self._change(d, condition, "cleared", _cleared(condition, status), status))
        return changes

    def _judge_status(
        self, status: DirectionStatus, mine: dict[str, Any], now: float, holds: dict[str, str | None]
    ) -> None:
        mine["state"] = status.state
        if status.state not in (State.STOPPED, State.NOT_STARTED):
            mine["active"] = True
        if status.state in FAILURE_STATES:
            holds["failed"] = f"{status.state}: {status.message or 'no message'}"
        synchronizing = status.state == State.SYNCHRONIZING
        if synchronizing and status.stale:
            holds["stale"] = (
                f"Synchronizing, but its state was last written {status.age_seconds:.0f}s ago: no process runs it "
                "(is its incremental task running?)"
            )
        lag = status.lag_seconds
        if synchronizing and not status.stale and lag is not None and lag > self.alert_lag_seconds:
            mine["lag_since"] = mine.get("lag_since") or now
            if now - mine["lag_since"] >= self.alert_lag_for_seconds:
                holds["lag"] = f"lag {lag:.1f}s, above {self.alert_lag_seconds:g}s for {now - mine['lag_since']:.0f}s"
        else:
            mine["lag_since"] = None
        divergences = int(status.row.get("divergences") or 0)
        before = mine.get("divergences")
        if before is not None and divergences > before:
            mine["divergence_at"] = now
            last = status.row.get("last_divergence")
            holds["divergence"] = f"{divergences - before} new divergence(s), {divergences} in all" + (
                f"; last: {last}" if last else ""
            )
        elif mine["alerts"].get("divergence") and now - (mine.get("divergence_at") or 0) < self.alert_lag_for_seconds:
            holds["divergence"] = mine["alerts"]["divergence"]

    def _change(
        self, d: dict[str, Any], condition: str, event: str, message: str, status: DirectionStatus | None
    ) -> dict[str, Any]:
        key = direction_key(d)
        label = ROLE_LABEL.get(d["role"], d["role"])
        what = {
            "failed": "failed",
            "lag": "lagging",
            "stale": "not running",
            "unreachable": "unreachable",
            "divergence": "divergence",
        }[condition]
        verb = "" if event == "started" else " (cleared)"
        return {
            "direction": key,
            "task_name": d["task_name"],
            "role": d["role"],
            "condition": condition,
            "event": event,
            "subject": f"DTS {key} ({label}): {what}{verb}",
            "message": f"{key} ({label}, state on {d['conn_id']}): {message}",
            "state": None if status is None else status.state,
            "lag_seconds": None if status is None else status.lag_seconds,
        }

    # ------------------------------------------------------------------ metrics

    def emit_metrics(self, d: dict[str, Any], status: DirectionStatus, mine: dict[str, Any]) -> None:
        """Gauges and counters of one direction; updates the counters' baselines in ``mine``."""
        s = stats()
        task, role = d["task_name"], d["role"]
        tags = {"task_name": task, "direction": role}

        def gauge(name: str, value: float, **extra: str) -> None:
            s.gauge(name, value, tags={**tags, **extra})
            s.gauge(metric_name(name, task, role, *extra.values()), value)

        def count(name: str, key: str, now_value: int) -> None:
            before = mine.get(key)
            mine[key] = now_value
            if before is not None and now_value > before:
                s.incr(name, now_value - before, tags=tags)
                s.incr(metric_name(name, task, role), now_value - before)

        if status.lag_seconds is not None:
            gauge("dts.lag_seconds", float(status.lag_seconds))
        gauge("dts.rows_per_second", float(status.row.get("rows_per_second") or 0.0))
        for state in State.ALL:
            gauge("dts.state", 1 if state == status.state else 0, state=state)
        gauge("dts.alerts", len(mine["alerts"]))
        count("dts.conflicts", "conflicts", status.conflicts)
        count("dts.divergences", "divergences", int(status.row.get("divergences") or 0))

    # ------------------------------------------------------------------ end of the watch

    async def _ended(self, seen: dict[str, Any]) -> str | None:
        if self.watch_tasks and self.dag_id and self.run_id:
            try:
                states = await asyncio.to_thread(self._task_states)
            except Exception as e:  # no Task SDK comms here (a test, an old Airflow): judge by the directions
                self.log.info("cannot read the task states of %s %s (%s)", self.dag_id, self.run_id, e)
            else:
                if all(states.get(t) in FINISHED_TI_STATES for t in self.watch_tasks):
                    return "every task of the run finished: " + ", ".join(
                        f"{t} {states.get(t)}" for t in self.watch_tasks
                    )
                return None
        mine = [seen.get(direction_key(d)) or {} for d in self.directions]
        if mine and all(m.get("active") and m.get("state") == State.STOPPED for m in mine):
            return "every direction was stopped"
        return None

    def _task_states(self) -> dict[str, Any]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        assert self.dag_id and self.run_id
        found = RuntimeTaskInstance.get_task_states(
            dag_id=self.dag_id, task_ids=self.watch_tasks, run_ids=[self.run_id]
        )
        return dict(found.get(self.run_id) or {})


def new_seen() -> dict[str, Any]:
    return {"active": False, "state": None, "alerts": {}, "lag_since": None, "unreadable_since": None}


def _cleared(condition: str, status: DirectionStatus | None) -> str:
    if status is None:
        return "its status is readable again"
    lag = "unknown" if status.lag_seconds is None else f"{status.lag_seconds:.1f}s"
    return f"{condition} no longer holds: state {status.state}, lag {lag}"
