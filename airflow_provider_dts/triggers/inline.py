"""Termination of a trigger that runs *inline*, under ``airflow dags test`` / ``dag.test()``.

Why this exists (Airflow 3.3, read in airflow/sdk/definitions/dag.py and execution_time/task_runner.py):
``dag.test()`` runs every task in its own process, one at a time. When a task defers, it runs the trigger
right there with ``asyncio.run(anext(trigger.run()))`` (``InProcessTestSupervisor.run_trigger_in_process``),
with no timeout. Before that, the in-process task runner (``_run_task_and_map_outcome``) installed a SIGTERM
handler that only calls the *task's* ``on_kill()`` and is never restored. While the trigger waits, SIGTERM
therefore lands in that leftover handler, which returns, and the process keeps waiting: ``airflow dags test``
ignores SIGTERM for as long as the trigger runs (hours for a sensor, forever for an incremental sync).

``cancel_on_sigterm()`` wraps a trigger's ``run()``: only when the trigger runs inline in the main thread, it
routes SIGTERM to a cancellation of the running trigger (what the triggerer itself does on shutdown), so
the trigger's own cleanup runs (an incremental sync stops its engine, which records ``Stopped`` with its
checkpoint and ends its reader process), then ends the process with ``SystemExit(128 + SIGTERM)``, as a
process killed by SIGTERM would. Under the real triggerer nothing is changed: its own handlers stay.
SIGINT needs no help: ``asyncio.run`` already turns Ctrl-C into a cancellation of the running trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator


def running_inline() -> bool:
    """True when this trigger runs inside ``dag.test()`` (in-process supervisor comms), not in a triggerer."""
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms
    except ImportError:  # pragma: no cover - another Airflow layout: behave as under a triggerer
        return False
    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms)


@contextlib.asynccontextmanager
async def cancel_on_sigterm(log=None) -> AsyncIterator[None]:
    """Within the block, SIGTERM cancels the current task (inline runs only); afterwards the process exits."""
    if threading.current_thread() is not threading.main_thread() or not running_inline():
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def on_sigterm() -> None:
        if not received and log is not None:
            log.warning("SIGTERM received while the trigger runs inline (airflow dags test): stopping it")
        received.append(signal.SIGTERM)
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)  # restores the default disposition
        if received:
            raise SystemExit(128 + signal.SIGTERM)
