"""SyncHealthOperator: the health watcher of a two-way sync (metrics and alerts), deferred to the triggerer.

It watches both directions of ``task_name`` (task one's state on ``destination_conn_id``, task two's on
``source_conn_id``) in ``SyncHealthTrigger`` (``triggers/health.py``), which emits the metrics every poll and
resumes this task only when an alert episode starts or clears. The task then calls every notifier in
``notifiers`` once per change and defers again with what the trigger has seen (one alert per episode, never
one per poll). It ends (success) when the watch is over: every other task of its DAG run finished (the
two-way DAG: both incremental tasks stopped, skipped or failed), or, alone in its DAG, when both directions
it saw running are ``Stopped``.

Notifiers are called the way Airflow calls a callback notifier: ``notifier(context)``, with the task's context
plus ``dts_alert`` (the change: ``subject``, ``message``, ``direction``, ``condition``, ``event`` started |
cleared, ``state``, ``lag_seconds``) and ``message`` (its text), so a notifier's templated fields can use
``{{ dts_alert.subject }}`` / ``{{ message }}``. Each call gets a fresh copy of the notifier (Airflow renders a
notifier's templates in place). A notifier that raises is logged and does not stop the watch.

Under ``airflow dags test`` (tasks run one at a time, a trigger inline until its event) a watcher would keep
the sync's own tasks from running: the task skips itself there.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA
from airflow_provider_dts.triggers.health import (
    DEFAULT_ALERT_LAG_FOR_SECONDS,
    DEFAULT_ALERT_LAG_SECONDS,
    DEFAULT_POLL_SECONDS,
    SyncHealthTrigger,
    watched_direction,
)


def _seconds(name: str, value: Any, minimum: float = 0.0) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise AirflowFailException(f"{name}: {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < minimum:
        raise AirflowFailException(f"{name}: {value!r} is not a number of seconds >= {minimum:g}")
    return seconds


class SyncHealthOperator(BaseOperator):
    """Watches a two-way sync: metrics through Airflow's stats, alerts through ``notifiers``; deferrable only.

    :param task_name: the sync's task_name.
    :param source_conn_id: task one's source (task two's state lives there).
    :param destination_conn_id: task one's destination (task one's state lives there).
    :param control_schema: the control schema (default ``dts_meta``).
    :param poll_seconds: seconds between two reads of the status (and metrics).
    :param alert_lag_seconds: alert when a direction's lag stays above this ...
    :param alert_lag_for_seconds: ... for at least this many seconds.
    :param notifiers: ``airflow.sdk.bases.notifier.BaseNotifier`` instances (or callables taking the context)
        called once per alert change.
    :param watch_tasks: task ids of this DAG run whose end ends the watch; default: every other task of the DAG.
    """

    template_fields: Sequence[str] = (
        "task_name",
        "source_conn_id",
        "destination_conn_id",
        "control_schema",
        "alert_lag_seconds",
        "alert_lag_for_seconds",
    )
    ui_color = "#fef3c7"

    def __init__(
        self,
        *,
        task_name: str,
        source_conn_id: str = "dts_source",
        destination_conn_id: str = "dts_destination",
        control_schema: str = DEFAULT_CONTROL_SCHEMA,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        alert_lag_seconds: float | str = DEFAULT_ALERT_LAG_SECONDS,
        alert_lag_for_seconds: float | str = DEFAULT_ALERT_LAG_FOR_SECONDS,
        notifiers: Sequence[BaseNotifier | Any] | None = None,
        watch_tasks: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task_name = task_name
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.control_schema = control_schema
        self.poll_seconds = poll_seconds
        self.alert_lag_seconds = alert_lag_seconds
        self.alert_lag_for_seconds = alert_lag_for_seconds
        self.notifiers = list(notifiers or [])
        self.watch_tasks = None if watch_tasks is None else list(watch_tasks)

    # ------------------------------------------------------------------ defer

    def trigger(self, context: Any, seen: dict[str, Any] | None = None) -> SyncHealthTrigger:
        ti = context.get("ti") if hasattr(context, "get") else None
        watch = self.watch_tasks
        if watch is None:
            dag = getattr(self, "dag", None) if self.has_dag() else None
            watch = [t for t in (dag.task_ids if dag is not None else []) if t != self.task_id]
        return SyncHealthTrigger(
            directions=[
                watched_direction(self.task_name, "forward", self.destination_conn_id, self.control_schema),
                watched_direction(self.task_name, "reverse", self.source_conn_id, self.control_schema),
            ],
            poll_seconds=_seconds("poll_seconds", self.poll_seconds, 1.0),
            alert_lag_seconds=_seconds("alert_lag_seconds", self.alert_lag_seconds),
            alert_lag_for_seconds=_seconds("alert_lag_for_seconds", self.alert_lag_for_seconds),
            seen=seen,
            dag_id=getattr(ti, "dag_id", None),
            run_id=getattr(ti, "run_id", None),
            watch_tasks=watch if ti is not None else [],
        )

    def execute(self, context: Any) -> None:
        from airflow_provider_dts.triggers.inline import running_inline

        if running_inline():
            raise AirflowSkipException(
                "the health watcher runs beside the sync under a scheduler and triggerer; under `airflow dags "
                "test` tasks run one at a time, so it would keep the sync's own tasks waiting: skipped"
            )
        trigger = self.trigger(context)
        self.log.info(
            "watching %s (task one's state on %s, task two's on %s) every %.0fs; alert on Failed, lag above "
            "%gs for %gs, a stale state, an unreadable status, a new divergence; %d notifier(s)",
            self.task_name,
            self.destination_conn_id,
            self.source_conn_id,
            trigger.poll_seconds,
            trigger.alert_lag_seconds,
            trigger.alert_lag_for_seconds,
            len(self.notifiers),
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise AirflowFailException("the health trigger ended without an event")
        for change in event.get("changes") or []:
            log = self.log.warning if change.get("event") == "started" else self.log.info
            log("%s: %s", change.get("subject"), change.get("message"))
            self.notify(context, change)
        if event.get("ended"):
            self.log.info("the watch is over: %s", event["ended"])
            return {"ended": event["ended"], "statuses": event.get("statuses") or {}}
        self.defer(trigger=self.trigger(context, seen=event.get("seen")), method_name="execute_complete")

    def notify(self, context: Any, change: dict[str, Any]) -> None:
        """Call every notifier once for ``change`` (a fresh copy each: Airflow renders templates in place)."""
        from airflow.sdk.observability import stats as worker_stats

        worker_stats.incr(
            "dts.alerts_sent",
            tags={"task_name": change.get("task_name"), "direction": change.get("role"), "event": change.get("event")},
        )
        alert_context = {**dict(context or {}), "dts_alert": change, "message": change.get("message")}
        for notifier in self.notifiers:
            try:
                copy.copy(notifier)(alert_context)
            except Exception:
                self.log.exception("notifier %r failed on %s", notifier, change.get("subject"))
