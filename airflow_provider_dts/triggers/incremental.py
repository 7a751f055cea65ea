"""IncrementalSyncTrigger: runs one direction's incremental sync (``engine.incremental.run_direction``).

The engine is blocking, so it runs in a dedicated worker thread; the triggerer's event loop only waits on
a future and, every ``progress_interval`` seconds, logs the direction's status read (in a short-lived
thread) from the control schema. The trigger yields exactly one event, and only when the engine returns:
a failure, or the optional ``max_runtime``:

    {"status": "failed" | "max_runtime" | "stopped", "state": ..., "message": ..., "stats": {...},
     "direction": "<task>/<role>"[, "conflict_id": <conflict_log.id>]}

``conflict_id`` is there when the run stopped on an open conflict (policy TaskFailed, issue 12): the
operator then asks a person (``operators/incremental.py``).

When the trigger is cancelled (the task is marked success or failed in the UI, cleared, or the triggerer
shuts down) it sets the engine's stop event, waits (bounded) until the engine has recorded ``Stopped`` with
its checkpoint, and re-raises the cancellation. Nothing about progress is kept in the trigger: re-created
from ``serialize()`` on any triggerer, the engine resumes from the checkpoint in the control schema. The
engine's lease on the destination makes a trigger that runs twice wait instead of applying twice.

``serialize()`` holds only the direction's settings (connection *ids*, never secrets) and ``max_runtime``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.status import read_status, stats_line
from airflow_provider_dts.triggers.settle import SETTLE_SECONDS, hold_until_settled

DEFAULT_PROGRESS_INTERVAL = 30.0
DEFAULT_STOP_TIMEOUT = 60.0


def _load_engine() -> Callable[..., Any]:
    from airflow_provider_dts.engine.incremental import run_direction

    return run_direction


def event_payload(
    status: str,
    state: str,
    message: str,
    *,
    key: str,
    stats: dict | None = None,
    conflict_id: int | None = None,
) -> dict[str, Any]:
    """The event ``IncrementalSyncTrigger`` yields (and the worker mode returns, ``operators/worker_run.py``), for
    one ``execute_complete``; ``conflict_id`` when the run ended on an open conflict (TaskFailed): the task asks."""
    payload: dict[str, Any] = {
        "status": status,
        "state": state,
        "message": message,
        "stats": dict(stats or {}),
        "direction": key,
    }
    if conflict_id is not None:
        payload["conflict_id"] = int(conflict_id)
    return payload


def result_payload(key: str, result: Any) -> dict[str, Any]:
    """``event_payload`` of what the engine returned (``engine.incremental.RunResult``)."""
    return event_payload(
        result.outcome, result.state, result.message, key=key, stats=result.stats, conflict_id=result.conflict_id
    )


def error_payload(key: str, err: BaseException) -> dict[str, Any]:
    """``event_payload`` of an exception the engine raised."""
    return event_payload("failed", "Failed", f"{key}: {type(err).__name__}: {err}", key=key)


class IncrementalSyncTrigger(BaseTrigger):
    """Keeps one sync direction running until it fails, is stopped, or ``max_runtime`` seconds pass.

    :param direction: the direction's settings as JSON (``SyncDirection.to_json()``) or a dict.
    :param max_runtime: stop cleanly after this many seconds (tests, demos); None runs until stopped.
    :param progress_interval: seconds between status lines in the task log.
    :param stop_timeout: how long a cancellation waits for the engine to stop and record its state.
    :param settle_seconds: the event is never yielded earlier than this after the trigger started
        (``triggers/settle.py``).
    """

    def __init__(
        self,
        *,
        direction: str | dict[str, Any],
        max_runtime: float | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        super().__init__()
        self.direction = direction if isinstance(direction, str) else json.dumps(direction, sort_keys=True)
        self.max_runtime = None if max_runtime in (None, "") else float(max_runtime)
        self.progress_interval = float(progress_interval)
        self.stop_timeout = float(stop_timeout)
        self.settle_seconds = float(settle_seconds)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        # The engine entry point; a unit test of the thread/stop mechanics may replace it.
        self._engine: Callable[..., Any] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "direction": self.direction,
                "max_runtime": self.max_runtime,
                "progress_interval": self.progress_interval,
                "stop_timeout": self.stop_timeout,
                "settle_seconds": self.settle_seconds,
            },
        )

    # ------------------------------------------------------------------ run

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # under `airflow dags test` SIGTERM must stop the engine (triggers/inline.py); the event is yielded
        # outside that block
        from airflow_provider_dts.triggers.inline import cancel_on_sigterm

        started = time.monotonic()
        gen = self._run()
        try:
            async with cancel_on_sigterm(self.log):
                event = await anext(gen, None)
        finally:
            await gen.aclose()
        if event is not None:
            await hold_until_settled(started, self.settle_seconds)
            yield event

    async def _run(self) -> AsyncGenerator[TriggerEvent, None]:
        try:
            direction = SyncDirection.from_json(self.direction)
        except (ConfigError, ValueError) as e:
            yield self._event("failed", "Failed", f"invalid direction settings: {e}", key="?")
            return
        try:
            source, destination = await self._settings(direction)
        except Exception as e:  # a missing or broken Airflow connection
            yield self._event(
                "failed",
                "Failed",
                f"{direction.key}: cannot look up the Airflow connections {direction.source_conn_id!r} / "
                f"{direction.destination_conn_id!r}: {e}. Fix: define both connections with conn_type mysql",
                key=direction.key,
            )
            return

        engine = self._engine or _load_engine()
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        stop = threading.Event()
        self._stop = stop
        ctx = contextvars.copy_context()  # keeps the trigger's log context in the engine's thread

        def resolve(setter: Callable[[Any], None], value: Any) -> None:
            if not done.done():
                setter(value)

        def work() -> None:
            try:
                result = ctx.run(
                    engine, direction, source, destination, stop=stop, max_runtime=self.max_runtime, logger=self.log
                )
            except BaseException as e:
                outcome: tuple = (done.set_exception, e)
            else:
                outcome = (done.set_result, result)
            try:
                loop.call_soon_threadsafe(resolve, *outcome)
            except RuntimeError:  # the event loop is already closed (triggerer exiting)
                pass

        self._thread = threading.Thread(target=work, name=f"dts-incremental-{direction.key}", daemon=True)
        self.log.info(
            "starting incremental sync of %s (%s -> %s), max_runtime=%s",
            direction.key,
            direction.source_conn_id,
            direction.destination_conn_id,
            self.max_runtime,
        )
        self._thread.start()
        try:
            while True:
                finished, _ = await asyncio.wait({done}, timeout=self.progress_interval)
                if finished:
                    break
                await self._log_progress(direction, destination)
        except asyncio.CancelledError:
            self.log.info("incremental sync of %s cancelled; stopping the engine", direction.key)
            await self._stop_engine(done)
            raise

        try:
            result = done.result()
        except Exception as e:
            self.log.exception("incremental sync of %s raised", direction.key)
            yield TriggerEvent(error_payload(direction.key, e))
            return
        yield TriggerEvent(result_payload(direction.key, result))

    async def _settings(self, direction: SyncDirection):
        from airflow_provider_dts.hooks.dts import DtsMySqlHook

        source = await DtsMySqlHook.aget_settings(direction.source_conn_id)
        destination = await DtsMySqlHook.aget_settings(direction.destination_conn_id)
        return source, destination

    async def _stop_engine(self, done: asyncio.Future) -> None:
        if self._stop is not None:
            self._stop.set()
        started = time.monotonic()
        try:
            await asyncio.wait({done}, timeout=self.stop_timeout)
        except asyncio.CancelledError:  # cancelled again while waiting: give up waiting, keep cancelling
            pass
        if done.done():
            self.log.info("engine stopped after %.1fs", time.monotonic() - started)
            if not done.cancelled() and done.exception() is None:
                r = done.result()
                self.log.info("%s: %s (%s)", r.state, r.message, stats_line(r.stats))
        else:
            self.log.warning("engine did not stop within %.0fs; its thread keeps the stop flag", self.stop_timeout)

    async def _log_progress(self, direction: SyncDirection, destination) -> None:
        try:
            status = await asyncio.to_thread(
                read_status, destination, direction.control_schema, direction.task_name, direction.role
            )
        except Exception as e:
            self.log.info("%s: status not readable right now: %s", direction.key, e)
            return
        self.log.info("%s", status.summary())

    async def cleanup(self) -> None:
        # Runs on every exit of run(): make sure the engine thread is told to stop and give it a moment.
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, min(self.stop_timeout, 10.0))

    async def on_kill(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _event(
        status: str, state: str, message: str, *, key: str, stats: dict | None = None, conflict_id: int | None = None
    ) -> TriggerEvent:
        return TriggerEvent(event_payload(status, state, message, key=key, stats=stats, conflict_id=conflict_id))
