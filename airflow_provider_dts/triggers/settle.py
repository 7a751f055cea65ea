"""Why no DTS trigger fires within ``SETTLE_SECONDS`` of starting (Airflow 3.3.2 resume race).

Seen under a real scheduler here (tests/e2e/test_hitl_mechanism.py): the worker that parks a task as DEFERRED
reports "success" to the executor only when its process has exited, about 5 s after the park. If the trigger
fires before that, the task is resumed (scheduled, then queued again under the same try number); the scheduler
then reads the late "success" as the resumed run's, takes the task for killed externally and fails it ("finished
with state success, but the task instance's state attribute is queued"). Airflow's guard covers a resumed task
that is still ``scheduled`` only (apache/airflow PR 71579, open in 2026, extends it to ``running``).

A DTS trigger can fire at once: a sync that fails at start, a conflict met right after an answer, a sensor whose
direction is already in sync, a health change, a conflict settled in the control schema. So every DTS trigger
holds its event until ``settle_seconds`` after it started; the cost is a few seconds on an event, never a lost
one. Under ``airflow dags test`` (the trigger runs inline, no worker to race) nothing is held.

Not covered here: an answer given in Airflow (Required actions, the REST API) resumes the deferred task itself
(``core_api/routes/public/hitl.py``), not through the trigger. ``cli.py answer`` waits until the task has been
parked for ``SETTLE_SECONDS`` (``_wait_until_settled``); a person in the UI should answer a request that has
been open for about 10 s.
"""

from __future__ import annotations

import asyncio
import time

from airflow_provider_dts.triggers.inline import running_inline

SETTLE_SECONDS = 12.0


async def hold_until_settled(started: float, settle_seconds: float) -> None:
    """Sleep until ``settle_seconds`` after ``started`` (``time.monotonic()`` when the trigger's run began)."""
    if settle_seconds <= 0 or running_inline():
        return
    left = settle_seconds - (time.monotonic() - started)
    if left > 0:
        await asyncio.sleep(left)
