"""Every DTS trigger holds its event until ``settle_seconds`` after it started (triggers/settle.py: Airflow 3.3.2
fails a task resumed within about 5 s of being parked). Pure timing logic: the engine and Airflow's request are
test doubles; the race itself is shown under a real scheduler by tests/e2e/test_hitl_mechanism.py."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.incremental import RunResult
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.triggers import settle
from airflow_provider_dts.triggers.conflict_answer import ConflictAnswerTrigger
from airflow_provider_dts.triggers.incremental import IncrementalSyncTrigger

DIRECTION = SyncDirection.from_dict(
    {
        "task_name": "shop_sync",
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
    }
)


def _instant_trigger(settle_seconds: float) -> IncrementalSyncTrigger:
    trig = IncrementalSyncTrigger(direction=DIRECTION.to_json(), settle_seconds=settle_seconds)

    def engine(direction, source, destination, *, stop, max_runtime=None, logger=None):
        return RunResult("failed", "Failed", "the source refused the connection", {})

    async def settings(direction):
        return ConnectionSettings(port=1, name="src"), ConnectionSettings(port=2, name="dst")

    trig._engine = engine
    vars(trig).update(_settings=settings)
    return trig


def _first_event_after(trig) -> tuple[float, object]:
    async def first():
        started = time.monotonic()
        event = await anext(trig.run())
        return time.monotonic() - started, event

    return asyncio.run(first())


def test_an_engine_that_fails_at_once_is_reported_only_after_the_settle_time():
    took, event = _first_event_after(_instant_trigger(1.5))
    assert event.payload["status"] == "failed" and "refused" in event.payload["message"]
    assert took >= 1.5
    took, _ = _first_event_after(_instant_trigger(0))
    assert took < 1.0


def test_nothing_is_held_when_the_trigger_runs_inline(monkeypatch):
    monkeypatch.setattr(settle, "running_inline", lambda: True)  # airflow dags test: no worker to race with
    took, _ = _first_event_after(_instant_trigger(30))
    assert took < 5


def test_a_persons_answer_given_at_once_is_held_too():
    trig = ConflictAnswerTrigger(
        ti_id=uuid.uuid4(),
        options=["Take the source row", "Stop the direction"],
        defaults=["Stop the direction"],
        params={},
        timeout_datetime=None,
        direction=DIRECTION.to_json(),
        conflict_id=3,
        settle_seconds=1.5,
    )
    from airflow.triggers.base import TriggerEvent

    answer = TriggerEvent({"chosen_options": ["Take the source row"], "params_input": {}, "timedout": False})

    async def answered():
        return answer

    async def never():
        pytest.fail("the control schema is read only once the settle time is over, and the answer came first")

    vars(trig).update(_handle_response=answered, _settled_elsewhere=never)
    took, event = _first_event_after(trig)
    assert event is answer and took >= 1.5


def test_the_default_settle_time_outlasts_the_parking_worker():
    # the worker that parked the task exits about 5 s after the park (seen here); room for a loaded machine
    assert settle.SETTLE_SECONDS >= 10
    for trig in (IncrementalSyncTrigger(direction=DIRECTION.to_json()),):
        assert trig.serialize()[1]["settle_seconds"] == settle.SETTLE_SECONDS
