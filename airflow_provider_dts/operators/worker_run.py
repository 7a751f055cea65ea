"""Running one direction's incremental sync inside the task process (``IncrementalSyncOperator(run_in="worker")``).

The other deployment of the incremental sync (issue 14): instead of deferring to the triggerer, the task keeps
its worker slot (a Celery worker process, a Kubernetes pod of its own with its own CPU and memory requests) and
runs ``engine.incremental.run_direction`` right there, for as long as the direction runs. Everything durable is
the engine's, exactly as in the triggerer mode: the lease (``GET_LOCK`` on the destination), the checkpoint
committed with every group, the state row. Nothing here keeps progress.

``WorkerSync.run()`` starts the engine in a thread and waits for it in the calling (main) thread, logging a
status line every ``progress_interval`` seconds, and returns the same event payload the trigger yields
(``triggers/incremental.py``), so the operator handles both modes with one ``execute_complete``.

Stopping: Airflow's task runner calls the operator's ``on_kill()`` on SIGTERM (the task marked skipped, failed
or success in the UI or by ``cli.py stop``: the supervisor sends SIGTERM, then SIGKILL 5 s later; a pod deletion
sends SIGTERM too, which the supervisor forwards; a Celery warm shutdown waits for running tasks instead) ->
``WorkerSync.stop()`` sets the engine's stop event: the engine records ``Stopped`` with its checkpoint, ends its
reader process and frees the lease, if the transaction being applied commits within those 5 s (otherwise the
SIGKILL ends it and the transaction is applied again on resume). A SIGTERM before the engine thread started is
remembered by the operator and the engine starts stopped. SIGINT (Ctrl-C) does the same. A SIGKILL leaves no
chance to clean up, and needs none: the data and the checkpoint commit together, the server drops the dead
process's sessions (which frees the lease), the reader child exits when its parent's pipe closes, and the next
attempt resumes from the checkpoint, waiting for the lease until the server has let go of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.status import read_status, stats_line
from airflow_provider_dts.triggers.incremental import error_payload, event_payload, result_payload

RUN_IN_TRIGGERER = "triggerer"
RUN_IN_WORKER = "worker"
RUN_IN_CHOICES = (RUN_IN_TRIGGERER, RUN_IN_WORKER)
DEFAULT_WORKER_STOP_TIMEOUT = 60.0


def parse_run_in(value: Any) -> str:
    """``run_in``: "triggerer" (default: a thread of the triggerer) or "worker" (the task process itself)."""
    from airflow_provider_dts.engine.errors import ConfigError

    if value is None or (isinstance(value, str) and value.strip() == ""):
        return RUN_IN_TRIGGERER
    text = str(value).strip().lower()
    if text not in RUN_IN_CHOICES:
        raise ConfigError(
            [
                f"run_in: {value!r} is not one of {', '.join(RUN_IN_CHOICES)}; give 'triggerer' to run the "
                "incremental sync in the triggerer (the default) or 'worker' to run it as a long-running worker task"
            ]
        )
    return text


def _load_engine() -> Callable[..., Any]:
    from airflow_provider_dts.engine.incremental import run_direction

    return run_direction


class WorkerSync:
    """One run of a direction in this process; ``run()`` blocks until the engine returns.

    :param stop_timeout: after a stop request, how long ``run()`` waits for the engine before giving up (the
        supervisor's SIGKILL usually comes first; nothing is lost either way).
    """

    def __init__(
        self,
        direction: SyncDirection,
        source: ConnectionSettings,
        destination: ConnectionSettings,
        *,
        max_runtime: float | None,
        progress_interval: float,
        logger: logging.Logger,
        stop_timeout: float = DEFAULT_WORKER_STOP_TIMEOUT,
        engine: Callable[..., Any] | None = None,
    ) -> None:
        self.direction = direction
        self.source = source
        self.destination = destination
        self.max_runtime = max_runtime
        self.progress_interval = max(0.1, float(progress_interval))
        self.log = logger
        self.stop_timeout = float(stop_timeout)
        self._engine = engine
        self._stop = threading.Event()
        self.stop_reason: str | None = None  # set by stop(): the run ended because it was told to

    def stop(self, reason: str) -> None:
        """Ask the engine to stop cleanly (safe from a signal handler: it only sets an event)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    def run(self) -> dict[str, Any]:
        d = self.direction
        engine = self._engine or _load_engine()
        outcome: dict[str, Any] = {}
        # The wait is on this event, never on Thread.join: on Python 3.11 a join interrupted by an exception from
        # a signal handler (KeyboardInterrupt, Airflow's AirflowTaskTimeout) releases the running thread's state
        # lock and marks it stopped, after which join() and is_alive() no longer wait for it.
        finished = threading.Event()

        def work() -> None:
            try:
                outcome["result"] = engine(
                    d, self.source, self.destination, stop=self._stop, max_runtime=self.max_runtime, logger=self.log
                )
            except BaseException as e:  # reported by run(), in the task's log
                outcome["error"] = e
            finally:
                finished.set()

        thread = threading.Thread(target=work, name=f"dts-incremental-{d.key}", daemon=True)
        self.log.info(
            "running the incremental sync of %s (%s -> %s) in this worker task; max_runtime=%s. Mark this task "
            "skipped to stop it (checkpoint kept); clear it to resume from the checkpoint.",
            d.key,
            d.source_conn_id,
            d.destination_conn_id,
            self.max_runtime,
        )
        started = False
        next_status = time.monotonic() + self.progress_interval
        stop_seen_at: float | None = None
        while not finished.is_set():
            try:
                if not started:  # started inside the try: a SIGINT right before sets the stop flag first
                    started = True
                    thread.start()
                    continue
                if finished.wait(min(1.0, self.progress_interval)):
                    break
                now = time.monotonic()
                if self._stop.is_set():
                    if stop_seen_at is None:
                        stop_seen_at = now
                        self.log.info("%s: stopping the engine (%s)", d.key, self.stop_reason)
                    elif now - stop_seen_at > self.stop_timeout:
                        self.log.warning(
                            "%s: the engine did not stop within %.0fs; leaving (its checkpoint is exact)",
                            d.key,
                            self.stop_timeout,
                        )
                        return event_payload(
                            "stopped",
                            "Stopping",
                            f"{d.key}: the engine did not stop within {self.stop_timeout:.0f}s after "
                            f"{self.stop_reason}",
                            key=d.key,
                        )
                elif now >= next_status:
                    next_status = now + self.progress_interval
                    self._log_progress()
            except KeyboardInterrupt:  # SIGINT: Ctrl-C
                self.stop("SIGINT")
            except BaseException as e:  # e.g. AirflowTaskTimeout (execution_timeout): stop cleanly, then raise it
                self.stop(type(e).__name__)
                self.log.info("%s: %s: stopping the engine before the task ends", d.key, type(e).__name__)
                finished.wait(self.stop_timeout)
                raise
        if "error" in outcome:
            err = outcome["error"]
            self.log.error("incremental sync of %s raised", d.key, exc_info=err)
            return error_payload(d.key, err)
        result = outcome["result"]
        if self.stop_reason is not None:
            self.log.info("%s: %s: %s (%s)", d.key, result.state, result.message, stats_line(result.stats))
        return result_payload(d.key, result)

    def _log_progress(self) -> None:
        d = self.direction
        try:
            status = read_status(self.destination, d.control_schema, d.task_name, d.role)
        except Exception as e:
            self.log.info("%s: status not readable right now: %s", d.key, e)
            return
        self.log.info("%s", status.summary())
