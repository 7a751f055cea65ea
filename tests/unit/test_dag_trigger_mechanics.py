"""IncrementalSyncTrigger's thread and stop mechanics, with a plain function in place of the engine.

Pure logic: no server is involved (connection look-up is replaced too). The real engine is exercised in
tests/integration/test_dag_incremental_operator.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.incremental import RunResult
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator, parse_max_runtime
from airflow_provider_dts.triggers.incremental import IncrementalSyncTrigger

DIRECTION = SyncDirection.from_dict(
    {
        "task_name": "shop_sync",
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
    }
)


def make_trigger(engine, **kw) -> IncrementalSyncTrigger:
    trig = IncrementalSyncTrigger(direction=DIRECTION.to_json(), progress_interval=0.05, **kw)
    trig._engine = engine

    async def settings(direction):
        return (
            ConnectionSettings(port=1, password="s3cret-pass", name="src"),
            ConnectionSettings(port=2, password="s3cret-pass", name="dst"),
        )

    trig._settings = settings
    trig._log_progress = _no_progress
    return trig


async def _no_progress(direction, destination):
    return None


def blocking_engine(calls: list):
    def engine(direction, source, destination, *, stop, max_runtime=None, logger=None):
        calls.append(("start", direction.key, max_runtime, threading.current_thread().name))
        while not stop.wait(0.05):
            pass
        time.sleep(0.2)  # the engine records Stopped with its checkpoint
        calls.append(("stopped",))
        return RunResult("stopped", "Stopped", "stopped at binlog.000001:4", {"rows_inserted": 3})

    return engine


def test_serialize_holds_no_secret_and_round_trips():
    trig = IncrementalSyncTrigger(direction=DIRECTION.to_json(), max_runtime=12)
    path, kwargs = trig.serialize()
    assert path == "airflow_provider_dts.triggers.incremental.IncrementalSyncTrigger"
    assert kwargs["max_runtime"] == 12.0
    rebuilt = IncrementalSyncTrigger(**kwargs)
    assert SyncDirection.from_json(rebuilt.direction) == DIRECTION
    assert rebuilt.serialize() == (path, kwargs)
    assert "password" not in str(kwargs)


def test_cancel_sets_stop_and_waits_for_the_engine():
    calls: list = []
    trig = make_trigger(blocking_engine(calls))

    async def scenario():
        task = asyncio.ensure_future(trig.run().__anext__())
        # the event loop stays free while the engine runs: this sleep returns on time
        t0 = time.monotonic()
        await asyncio.sleep(0.3)
        assert time.monotonic() - t0 < 0.5
        assert calls and calls[0][0] == "start" and calls[0][3].startswith("dts-incremental-")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return calls

    out = asyncio.run(scenario())
    assert out[-1] == ("stopped",), "cancellation returned before the engine finished stopping"


def test_engine_result_becomes_the_single_event():
    def engine(direction, source, destination, *, stop, max_runtime=None, logger=None):
        time.sleep(0.2)
        return RunResult(
            "max_runtime", "Stopped", "stopped after max_runtime", {"rows_inserted": 5, "lag_seconds": 0.3}
        )

    trig = make_trigger(engine, max_runtime=0.2)

    async def events():
        return [e async for e in trig.run()]

    out = asyncio.run(events())
    assert len(out) == 1
    assert out[0].payload == {
        "status": "max_runtime",
        "state": "Stopped",
        "message": "stopped after max_runtime",
        "stats": {"rows_inserted": 5, "lag_seconds": 0.3},
        "direction": "shop_sync/forward",
    }


def test_engine_exception_is_a_failed_event():
    def engine(direction, source, destination, *, stop, max_runtime=None, logger=None):
        raise RuntimeError("boom in the engine")

    trig = make_trigger(engine)

    async def events():
        return [e async for e in trig.run()]

    (event,) = asyncio.run(events())
    assert event.payload["status"] == "failed"
    assert "boom in the engine" in event.payload["message"]


def test_bad_direction_json_is_a_failed_event():
    trig = IncrementalSyncTrigger(direction='{"task_name": "x"}')

    async def events():
        return [e async for e in trig.run()]

    (event,) = asyncio.run(events())
    assert event.payload["status"] == "failed" and "objects" in event.payload["message"]


def test_max_runtime_parsing():
    assert parse_max_runtime(None) is None
    assert parse_max_runtime("") is None
    assert parse_max_runtime("None") is None
    assert parse_max_runtime("30") == 30.0
    assert parse_max_runtime(0) is None
    with pytest.raises(ConfigError, match="max_runtime"):
        parse_max_runtime("soon")
    with pytest.raises(ConfigError, match="negative"):
        parse_max_runtime(-1)


def test_execute_complete_fails_the_task_on_failure():
    from airflow.sdk.exceptions import AirflowFailException

    op = IncrementalSyncOperator(task_id="inc", direction=DIRECTION.to_dict())
    ok = op.execute_complete(
        {},
        {
            "status": "max_runtime",
            "state": "Stopped",
            "message": "m",
            "stats": {"rows_inserted": 2},
            "direction": "shop_sync/forward",
        },
    )
    assert ok["outcome"] == "max_runtime" and ok["rows_inserted"] == 2
    with pytest.raises(AirflowFailException, match=r"conflict on shop.orders"):
        op.execute_complete(
            {},
            {
                "status": "failed",
                "state": "Failed",
                "message": "conflict on shop.orders",
                "stats": {},
                "direction": "shop_sync/forward",
            },
        )
