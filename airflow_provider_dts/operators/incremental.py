"""IncrementalSyncOperator: the long-running incremental sync of one direction, deferred to the triggerer.

The task defers at once to ``IncrementalSyncTrigger``, which runs the engine in a worker thread of the
triggerer for as long as the direction runs. The task therefore stays ``deferred`` while the direction is
synchronizing, and costs no worker slot.

With ``run_in="worker"`` (issue 14) the task runs the engine itself instead, as a long-running worker task (a
Celery worker slot, or a Kubernetes pod per direction with its own CPU and memory): ``operators/worker_run.py``.
Same lease, checkpoint and state; stop = SIGTERM from Airflow (the task marked skipped, ``cli.py stop``) ->
``on_kill`` -> the engine records ``Stopped`` and the task fails *retryably* (a state set from outside stays; a
worker shutdown is retried when the task has retries); resume = clear the task (or its retry). A conflict takes
the same path as below: the task defers to ask, and the answer resumes it on a worker, which runs the engine again.

Stop and restart:
- mark the task *skipped* in the UI (or ``cli.py stop``): the trigger is cancelled, the engine stops cleanly
  and records ``Stopped`` with its checkpoint; the grid shows the direction as skipped, not as a green success
  (marking it success or failed stops it the same way);
- *clear* the task: it defers again and the engine resumes from the checkpoint (no re-initialization).

When the engine returns (failure, or ``max_runtime`` for tests and demos) the task resumes in
``execute_complete``: it logs a summary, returns it (XCom ``return_value``) and fails on ``failed`` with
the engine's message. A run the engine ended ``stopped`` by itself (its stop flag set without a cancelled
trigger) ends the task *skipped* (summary in XCom ``sync_summary``); ``max_runtime`` is a planned end and
succeeds.

While deferred the task shows what Airflow lets a deferred task show: its log (a status line with state and
lag every ``progress_interval`` seconds, from the trigger) and the extra link "DTS status" (``DtsStatusLink``):
the status page anchored at the direction (``/dts/#direction-<task_name>-<role>``).

A conflict under the TaskFailed policy (issue 12): the engine stops before the transaction and logs the
conflict ``open``; the event carries its ``conflict_id``. The task then prints the whole conflict in its log
and opens a human-in-the-loop request on its own task instance (Required actions; ``hitl_support``): take
the source row / keep the destination row / skip this change / stop the direction (the default after
``conflict_answer_timeout`` minutes; empty = wait forever). It waits in ``ConflictAnswerTrigger``, which also
resumes it when the conflict is settled elsewhere (the other direction's answer on the same key, ``cli.py
answer``, the destination row made equal by hand). The answer is recorded in the conflict log
(``engine/resolve.py``, with who gave it), and the task defers to the sync trigger again: the engine applies the
answer exactly once and goes on, no clearing. "Stop the direction" fails the task with the conflict.

Airflow keeps one request text per task instance (the first one), so the subject and body name the
direction, never a conflict: the current conflict is in the task log, on the status page and in
``cli.py conflicts``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine import resolve
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.status import read_status, stats_line
from airflow_provider_dts.operators.base import DtsDirectionOperator, parse_direction
from airflow_provider_dts.operators.hitl_support import HumanAnswer, HumanInTheLoopMixin, HumanQuestion
from airflow_provider_dts.operators.worker_run import RUN_IN_WORKER, WorkerSync, parse_run_in
from airflow_provider_dts.triggers.conflict_answer import ConflictAnswerTrigger
from airflow_provider_dts.triggers.incremental import DEFAULT_PROGRESS_INTERVAL, IncrementalSyncTrigger

CLI = "python -m airflow_provider_dts.cli"
LABEL_ANSWERS = {label: answer for answer, label in C.ANSWER_LABELS.items()}
ROLE_LABEL = {"forward": "task one", "reverse": "task two"}


def parse_max_runtime(value: Any) -> float | None:
    """None, "", "None", "null" or 0 mean no limit; otherwise a positive number of seconds."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            [f"max_runtime: {value!r} is not a number of seconds; leave it empty to run until stopped"]
        ) from None
    if not math.isfinite(seconds):
        raise ConfigError(
            [
                f"max_runtime: {value!r} is not a finite number of seconds; give seconds > 0, or leave "
                "it empty to run until stopped"
            ]
        )
    if seconds < 0:
        raise ConfigError([f"max_runtime: {value!r} is negative; give seconds > 0, or leave it empty"])
    return seconds or None


def parse_answer_timeout(value: Any) -> timedelta | None:
    """Minutes to wait for an answer to a conflict: None, "", "None", "null" or 0 wait forever."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            [f"conflict_answer_timeout: {value!r} is not a number of minutes; leave it empty to wait forever"]
        ) from None
    if not math.isfinite(minutes) or minutes < 0:
        raise ConfigError(
            [f"conflict_answer_timeout: {value!r} is not minutes >= 0; give minutes, or leave it empty to wait forever"]
        )
    return timedelta(minutes=minutes) if minutes else None


def conflict_question(direction: SyncDirection, timeout: timedelta | None) -> HumanQuestion:
    """The request of one direction. The same text for every conflict of the direction (Airflow keeps the first
    request text of a task instance): where to see the current conflict, and what each choice does."""
    task, role = direction.task_name, direction.role
    src, dst = direction.source_conn_id, direction.destination_conn_id
    after = f"after {timeout.total_seconds() / 60:g} minutes" if timeout else "never (no timeout set)"
    body = f"""A row change from **{src}** could not be applied on **{dst}**: the destination row of its key differs
(policy TaskFailed). {ROLE_LABEL.get(role, role)} of sync `{task}` is stopped before that transaction and waits for
this answer.

**The current conflict** (table, key, source row, destination row, the other direction's state):
- the status page: [/dts/#open-{task}-{role}](/dts/#open-{task}-{role})
- `{CLI} conflicts --task-name {task}`
- the log of this task (each conflict is printed there in full).

**Choices** (applied exactly once, with the checkpoint; the direction then goes on by itself):
- **{C.ANSWER_LABELS[C.ANSWER_TAKE_SOURCE]}**: the destination row becomes the source row.
- **{C.ANSWER_LABELS[C.ANSWER_KEEP_DESTINATION]}**: the destination row stays; this change of that row is not applied.
- **{C.ANSWER_LABELS[C.ANSWER_SKIP]}**: this change of that row is not applied (the rest of its transaction is).
- **{C.ANSWER_LABELS[C.ANSWER_STOP]}**: the task fails, the conflict stays open; clear the task to be asked again.

When both directions stopped on the same key, one answer settles both: the other direction gets the mirrored
answer (take the source row here = keep the destination row there; keep the destination row or skip this change
here = take the source row there), so both servers end with the same row.
Answered elsewhere (`{CLI} answer`, the other direction) or made equal by hand, this request closes by itself.
Default: {C.ANSWER_LABELS[C.ANSWER_STOP]}, {after}.
"""
    return HumanQuestion(
        subject=f"DTS conflict: {task} {ROLE_LABEL.get(role, role)} ({src} -> {dst})",
        body=body,
        options=list(C.ANSWER_LABELS.values()),
        defaults=[C.ANSWER_LABELS[C.ANSWER_STOP]],
        params={"note": ""},
        response_timeout=timeout,
    )


def status_anchor(task_name: str, role: str) -> str:
    """The id of a direction's section on the status page (``plugins/status.py``)."""
    return f"direction-{task_name}-{role}"  # plugins/status._direction_card


def status_url(task_name: str | None = None, role: str | None = None) -> str:
    """The status page (served by the API server at ``/dts/``), anchored at a direction when given."""
    from urllib.parse import quote

    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    url = f"{base}/dts/"
    if task_name and role:
        url += "#" + quote(status_anchor(task_name, role), safe="")
    return url


class DtsStatusLink(BaseOperatorLink):
    """Extra link "DTS status" of an incremental task: the status page at its direction."""

    name = "DTS status"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            d = parse_direction(operator.direction)  # rendered: the task's own direction
        except Exception:
            return status_url()
        return status_url(d.task_name, d.role)


class IncrementalSyncOperator(HumanInTheLoopMixin, DtsDirectionOperator):
    """Incremental (binlog) sync of one direction; deferrable only.

    :param direction: the direction's settings (dict, JSON string e.g. rendered from XCom, or ``SyncDirection``).
    :param max_runtime: stop cleanly after this many seconds (tests, demos); empty/None runs until stopped.
    :param progress_interval: seconds between status lines in the task log.
    :param conflict_answer_timeout: minutes to wait for an answer to a conflict before "Stop the direction";
        empty/None waits forever.
    :param run_in: where the engine runs: ``"triggerer"`` (default: a thread of the triggerer, the task stays
        deferred and holds no worker slot) or ``"worker"`` (the task process itself, a long-running worker task:
        a Celery worker slot or a Kubernetes pod of its own; ``operators/worker_run.py``). Templated.
    """

    template_fields: Sequence[str] = ("direction", "max_runtime", "conflict_answer_timeout", "run_in")
    ui_color = "#dbeafe"
    operator_extra_links = (DtsStatusLink(),)

    def __init__(
        self,
        *,
        direction: Any,
        max_runtime: float | str | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        conflict_answer_timeout: float | str | None = None,
        run_in: str | None = "triggerer",
        **kwargs: Any,
    ) -> None:
        super().__init__(direction=direction, **kwargs)
        self.max_runtime = max_runtime
        self.progress_interval = progress_interval
        self.conflict_answer_timeout = conflict_answer_timeout
        self.run_in = run_in
        self._worker_sync: WorkerSync | None = None
        self._kill_reason: str | None = None  # a SIGTERM before the engine ran: honoured when it starts

    def execute(self, context: Any) -> Any:
        # parsed and looked up now, so bad input or a missing connection fails here, not later in the triggerer
        direction, _, _ = self.resolve()
        try:
            max_runtime = parse_max_runtime(self.max_runtime)
            parse_answer_timeout(self.conflict_answer_timeout)
            parse_run_in(self.run_in)
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        return self._start_sync(context, direction, max_runtime)

    def _start_sync(self, context: Any, direction: SyncDirection, max_runtime: float | None) -> Any:
        """Run the direction where ``run_in`` says: defer to the triggerer, or run it in this worker task."""
        try:
            run_in = parse_run_in(self.run_in)
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        if run_in == RUN_IN_WORKER:
            return self._run_in_worker(context, direction, max_runtime)
        self._defer_sync(direction, max_runtime)
        return None

    def _run_in_worker(self, context: Any, direction: SyncDirection, max_runtime: float | None) -> Any:
        """The engine in this process until it returns; then the same handling as after the trigger's event.
        A run stopped by a signal (``on_kill``: the task marked skipped/failed/success, ``cli.py stop``, a worker
        or pod shutdown) fails the task *retryably*: when the state was changed from outside, Airflow keeps that
        state; after a worker shutdown the task's retries restart the direction on another worker."""
        _, source, destination = self.resolve()
        run = WorkerSync(
            direction,
            source,
            destination,
            max_runtime=max_runtime,
            progress_interval=float(self.progress_interval),
            logger=self.log,  # type: ignore[arg-type]  # Airflow's task logger has the logging.Logger methods
        )
        self._worker_sync = run
        if self._kill_reason is not None:  # SIGTERM came while connections were looked up / an answer recorded
            run.stop(self._kill_reason)
        try:
            event = run.run()
        finally:
            self._worker_sync = None
        if run.stop_reason is not None and event.get("status") == "stopped":
            line = (
                f"{event.get('direction')}: {event.get('status')} -> state {event.get('state')}: {event.get('message')}"
            )
            self.log.info("%s", line)
            self.log.info("%s", stats_line(event.get("stats")))
            raise AirflowException(
                f"incremental sync stopped by {run.stop_reason} (the task was marked skipped/failed/success, "
                f"`{CLI} stop`, or the worker shut down): {line}. The checkpoint is kept: the task's retries, or "
                "clearing this task, resume it from there"
            )
        return self.execute_complete(context, event)

    def on_kill(self) -> None:
        """SIGTERM in the task process (worker mode): stop the engine cleanly; ``_run_in_worker`` then returns.
        Before the engine runs (connections being looked up, an answer being recorded) it is remembered, and the
        engine starts stopped."""
        if self._kill_reason is None:
            self._kill_reason = "SIGTERM"
        run = self._worker_sync
        if run is not None:
            run.stop("SIGTERM")

    def _defer_sync(self, direction: SyncDirection, max_runtime: float | None) -> None:
        self.log.info(
            "deferring the incremental sync of %s (%s -> %s) to the triggerer; max_runtime=%s. Mark this task "
            "skipped to stop it (checkpoint kept); clear it to resume from the checkpoint.",
            direction.key,
            direction.source_conn_id,
            direction.destination_conn_id,
            max_runtime,
        )
        self.defer(
            trigger=IncrementalSyncTrigger(
                direction=direction.to_json(), max_runtime=max_runtime, progress_interval=float(self.progress_interval)
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise AirflowFailException("the incremental sync trigger ended without an event")
        summary = {
            "direction": event.get("direction"),
            "outcome": event.get("status"),
            "state": event.get("state"),
            "message": event.get("message"),
            **(event.get("stats") or {}),
        }
        line = f"{summary['direction']}: {summary['outcome']} -> state {summary['state']}: {summary['message']}"
        self.log.info("%s", line)
        self.log.info("%s", stats_line(event.get("stats")))
        if event.get("conflict_id") is not None:
            resumed = self._ask_about_conflict(context, int(event["conflict_id"]))
            if resumed is not None:  # worker mode, answered meanwhile: the restarted run's summary
                return resumed
        if event.get("status") in ("failed", "stopped"):
            ti = context.get("ti") if hasattr(context, "get") else None
            if ti is not None:
                try:
                    ti.xcom_push(key="sync_summary", value=summary)
                except Exception:  # pragma: no cover - XCom trouble must not hide the real failure
                    self.log.warning("could not push the summary to XCom", exc_info=True)
            if event.get("status") == "stopped":  # a stopped direction is not a green success
                raise AirflowSkipException(f"incremental sync stopped: {line}; clear this task to resume it")
            raise AirflowFailException(f"incremental sync failed: {line}")
        return summary

    # ------------------------------------------------------------------ conflicts (issue 12)

    def _conflict_row(
        self, direction: SyncDirection, destination: ConnectionSettings, conflict_id: int
    ) -> dict[str, Any]:
        with destination.connect() as conn:
            row = resolve.conflict(conn, ControlSchema(direction.control_schema), conflict_id)
        if row is None:
            raise AirflowFailException(
                f"{direction.key}: conflict {conflict_id} is not in {direction.control_schema}.conflict_log on "
                f"{destination.describe()}; clear this task to restart the direction"
            )
        return row

    def _log_conflict(self, direction: SyncDirection, source: ConnectionSettings, row: dict[str, Any]) -> None:
        """The whole conflict and the other direction's state, in the task log (the request text cannot hold it)."""
        other = resolve.OTHER_ROLE[direction.role]
        try:
            other_state = read_status(source, direction.control_schema, direction.task_name, other).summary()
        except Exception as e:
            other_state = f"{direction.task_name}/{other}: not readable right now ({e})"
        self.log.warning(
            "%s\n  the other direction (%s): %s\n  answer in Required actions (this task), or: %s answer "
            "--task-name %s --direction %s --choice take_source|keep_destination|skip|stop",
            resolve.describe(row),
            ROLE_LABEL.get(other, other),
            other_state,
            CLI,
            direction.task_name,
            direction.role,
        )

    def _ask_about_conflict(self, context: Any, conflict_id: int) -> dict[str, Any] | None:
        """Ask about the open conflict (defers, or fails on a recorded stop). Returns None when this is not a
        task instance that can hold a request (no ``task_instance`` in the context): the task then fails with
        the engine's message, and the conflict can be answered with the CLI before the task is cleared. In the
        worker mode, a conflict answered meanwhile restarts the engine here: the restarted run's summary."""
        if not (hasattr(context, "get") and context.get("task_instance") is not None):
            self.log.warning("no task instance to hold a request for conflict %s: failing instead", conflict_id)
            return None
        direction, source, destination = self.resolve()
        try:
            timeout = parse_answer_timeout(self.conflict_answer_timeout)
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        with destination.connect() as conn:
            resolve.reopen(conn, ControlSchema(direction.control_schema), conflict_id)  # a stop recorded before
        row = self._conflict_row(direction, destination, conflict_id)
        self._log_conflict(direction, source, row)
        if resolve.is_answered(row):  # answered meanwhile (the other direction, the CLI): no need to ask
            return self._conflict_answered_elsewhere(context, direction, row)
        self.ask_human(
            context,
            conflict_question(direction, timeout),
            method_name="conflict_answered",
            kwargs={"conflict_id": conflict_id},
            trigger_class=ConflictAnswerTrigger,
            trigger_kwargs={"direction": direction.to_json(), "conflict_id": conflict_id},
        )

    def _conflict_answered_elsewhere(self, context: Any, direction: SyncDirection, row: dict[str, Any]) -> Any:
        self.log.info(
            "%s: conflict %s was answered %r by %s at %s",
            direction.key,
            row["id"],
            row.get("answer"),
            row.get("answered_by"),
            row.get("answered_at"),
        )
        return self._after_answer(context, direction, row)

    def _after_answer(self, context: Any, direction: SyncDirection, row: dict[str, Any]) -> Any:
        if row.get("answer") == C.ANSWER_STOP:
            raise AirflowFailException(
                f"{direction.key}: stopped on a conflict, as answered by {row.get('answered_by')}. "
                f"{resolve.describe(row)}\nThe conflict stays open: clear this task to be asked again "
                f"(or `{CLI} answer --task-name {direction.task_name} --direction {direction.role} --choice ...` "
                "first, then clear it)"
            )
        try:
            max_runtime = parse_max_runtime(self.max_runtime)
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        self.log.info("%s: restarting the direction; the engine applies the answer once and goes on", direction.key)
        return self._start_sync(context, direction, max_runtime)

    def conflict_answered(self, context: Any, answer: HumanAnswer, conflict_id: int) -> Any:
        """The request was answered (a person, the timeout's default, or the trigger for an answer given
        elsewhere): record it unless the conflict already has one, then restart (or fail on stop)."""
        direction, source, destination = self.resolve()
        row = self._conflict_row(direction, destination, conflict_id)
        if resolve.is_answered(row):
            self.log.info("%s: the request resumed with %r (%s)", direction.key, answer.option, answer.params_input)
            return self._conflict_answered_elsewhere(context, direction, row)
        if answer.responded_by is not None:
            who = str(answer.responded_by.get("name") or answer.responded_by.get("id"))
            if answer.responded_by.get("id") not in (None, who):
                who += f" (id {answer.responded_by.get('id')})"
        elif answer.timed_out:
            who = "timeout (the request's default)"
        else:
            who = "unknown"
        choice = LABEL_ANSWERS.get(answer.option)
        if choice is None:
            raise AirflowFailException(
                f"{direction.key}: unexpected answer {answer.option!r} to conflict {conflict_id}"
            )
        note = str(answer.params_input.get("note") or "") or None
        self.log.info(
            "%s: %s answered %r to conflict %s (note: %s)", direction.key, who, answer.option, conflict_id, note
        )
        recorded = resolve.record_answer(direction, source, destination, conflict_id, choice, who, note)
        self.log.info("%s", recorded.describe())
        return self._after_answer(context, direction, recorded.conflict)
