"""IncrementalSyncTrigger's thread and stop mechanics, with a plain function in place of the engine.

Pure logic: no server is involved (connection look-up is replaced too). The real engine is exercised in
tests/integration/operators/test_dag_incremental_operator.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
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
    kw.setdefault("settle_seconds", 0)
    trig = IncrementalSyncTrigger(direction=DIRECTION.to_json(), progress_interval=0.05, **kw)
    trig._engine = engine

    async def settings(direction):
        return (
            ConnectionSettings(port=1, password="s3cret-pass", name="src"),
            ConnectionSettings(port=2, password="s3cret-pass", name="dst"),
        )

    vars(trig).update(_settings=settings, _log_progress=_no_progress)  # test doubles on the instance
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
    trig = IncrementalSyncTrigger(direction='{"task_name": "x"}', settle_seconds=0)

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


# --------------------------------------------------------------------------- conflicts (issue 12)


def test_a_run_ended_on_a_conflict_puts_its_id_in_the_event():
    def engine(direction, source, destination, *, stop, max_runtime=None, logger=None):
        return RunResult("failed", "Failed", "insert duplicate conflict on shop.t", {}, conflict_id=42)

    (event,) = asyncio.run(_events(make_trigger(engine)))
    assert event.payload["status"] == "failed" and event.payload["conflict_id"] == 42


async def _events(trig):
    return [e async for e in trig.run()]


def test_answer_timeout_parsing():
    from datetime import timedelta

    from airflow_provider_dts.operators.incremental import parse_answer_timeout

    assert parse_answer_timeout(None) is None and parse_answer_timeout("") is None and parse_answer_timeout(0) is None
    assert parse_answer_timeout("1.5") == timedelta(minutes=1.5)
    with pytest.raises(ConfigError, match="conflict_answer_timeout"):
        parse_answer_timeout("soon")
    with pytest.raises(ConfigError, match="conflict_answer_timeout"):
        parse_answer_timeout(-1)


def test_the_request_names_the_direction_never_a_conflict():
    from datetime import timedelta

    from airflow_provider_dts.engine.conflicts import ANSWER_LABELS
    from airflow_provider_dts.operators.incremental import conflict_question

    q = conflict_question(DIRECTION, timedelta(minutes=30))
    assert q.body is not None
    assert q.subject == "DTS conflict: shop_sync task one (dts_source -> dts_destination)"
    assert q.options == list(ANSWER_LABELS.values()) and q.defaults == ["Stop the direction"]
    assert "/dts/#open-shop_sync-forward" in q.body and "cli conflicts --task-name shop_sync" in q.body
    assert "after 30 minutes" in q.body
    for label in ANSWER_LABELS.values():
        assert label in q.body
    q.operator("x")  # a valid HITLOperator question (options, defaults, params)


def test_conflict_answer_trigger_round_trips_and_holds_no_secret():
    import uuid

    from airflow_provider_dts.triggers.conflict_answer import ConflictAnswerTrigger

    trig = ConflictAnswerTrigger(
        ti_id=uuid.uuid4(),
        options=["Take the source row", "Stop the direction"],
        defaults=["Stop the direction"],
        params={"note": {"value": "", "schema": {}, "description": None}},
        timeout_datetime=None,
        direction=DIRECTION.to_json(),
        conflict_id=7,
    )
    path, kwargs = trig.serialize()
    assert path == "airflow_provider_dts.triggers.conflict_answer.ConflictAnswerTrigger"
    assert kwargs["conflict_id"] == 7 and kwargs["settle_seconds"] >= 10
    expected = copy.deepcopy(kwargs)
    rebuilt = ConflictAnswerTrigger(**kwargs)  # (HITLTrigger consumes the params' "value" keys)
    assert rebuilt.serialize() == (path, expected)
    assert "password" not in str(kwargs)


# --------------------------------------------------------------------------- health in Airflow itself (issue 13)


def test_a_run_the_engine_ended_stopped_skips_the_task():
    from airflow.sdk.exceptions import AirflowSkipException

    op = IncrementalSyncOperator(task_id="inc", direction=DIRECTION.to_dict())
    with pytest.raises(AirflowSkipException, match="clear this task to resume"):
        op.execute_complete(
            {},
            {
                "status": "stopped",
                "state": "Stopped",
                "message": "stopped",
                "stats": {},
                "direction": "shop_sync/forward",
            },
        )


def test_the_status_link_points_at_the_direction(monkeypatch):
    from airflow_provider_dts.operators.incremental import DtsStatusLink, status_anchor

    op = IncrementalSyncOperator(task_id="inc", direction=DIRECTION.to_json())
    assert [link.name for link in op.operator_extra_links] == ["DTS status"]
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/af/")
    assert (
        DtsStatusLink().get_link(op, ti_key=None) == "https://airflow.example.com/af/dts/#direction-shop_sync-forward"
    )
    assert status_anchor("shop_sync", "reverse") == "direction-shop_sync-reverse"
    # not rendered yet (a template): the page itself
    op.direction = "{{ ti.xcom_pull(task_ids='configure', key='forward') }}"
    assert DtsStatusLink().get_link(op, ti_key=None) == "https://airflow.example.com/af/dts/"


def test_health_trigger_round_trips_and_holds_no_secret():
    from airflow_provider_dts.triggers.health import SyncHealthTrigger, watched_direction

    trig = SyncHealthTrigger(
        directions=[watched_direction("shop_sync", "forward", "dts_destination", "dts_meta")],
        poll_seconds=5,
        seen={"shop_sync/forward": {"active": True, "alerts": {"lag": "lag 90s"}, "divergences": 2}},
        dag_id="dts_two_way_sync",
        run_id="manual__1",
        watch_tasks=["task_one_incremental"],
    )
    path, kwargs = trig.serialize()
    assert path == "airflow_provider_dts.triggers.health.SyncHealthTrigger"
    assert SyncHealthTrigger(**kwargs).serialize() == (path, kwargs)
    assert "password" not in json.dumps(kwargs)  # plain JSON values only


def test_health_conditions_start_and_clear_once():
    import datetime as _dt

    from airflow_provider_dts.engine.status import DirectionStatus
    from airflow_provider_dts.triggers.health import SyncHealthTrigger, new_seen, watched_direction

    d = watched_direction("shop_sync", "forward", "dts_destination", "dts_meta")
    trig = SyncHealthTrigger(directions=[d], alert_lag_seconds=60, alert_lag_for_seconds=120)
    now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None).isoformat()

    def status(state, lag=None, divergences=0):
        return DirectionStatus(
            "shop_sync",
            "forward",
            state,
            "m",
            lag_seconds=lag,
            age_seconds=1,
            updated_at=now,
            row={"divergences": divergences},
        )

    mine = new_seen()
    events = []
    for t, st in [
        (0, status("Synchronizing", 1)),
        (10, status("Synchronizing", 90)),  # above the bound, not long enough yet
        (100, status("Synchronizing", 95)),
        (130, status("Synchronizing", 99)),  # 120 s above: starts
        (160, status("Synchronizing", 99)),  # same episode
        (190, status("Synchronizing", 2)),  # clears
        (200, status("Failed")),
        (230, status("Failed")),
        (260, status("Synchronizing", 1)),
    ]:
        events += [(t, c["condition"], c["event"]) for c in trig.judge(d, st, None, mine, t)]
    assert events == [
        (130, "lag", "started"),
        (190, "lag", "cleared"),
        (200, "failed", "started"),
        (260, "failed", "cleared"),
    ]
    assert mine["active"] and mine["state"] == "Synchronizing"


def test_the_dags_health_task_watches_every_other_task():
    import importlib.util
    import types
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "dts_two_way_sync_health", Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    health = module.dag.get_task("health")
    assert not health.upstream_task_ids and not health.downstream_task_ids
    assert health.notifiers == module.ALERT_NOTIFIERS
    health.task_name, health.alert_lag_seconds, health.alert_lag_for_seconds = "shop_sync", "60", "120"
    ti = types.SimpleNamespace(dag_id="dts_two_way_sync", run_id="manual__1")
    trig = health.trigger({"ti": ti})
    assert set(trig.watch_tasks) == set(module.dag.task_ids) - {"health"}
    assert [(x["role"], x["conn_id"]) for x in trig.directions] == [
        ("forward", "{{ params.destination_conn_id }}"),
        ("reverse", "{{ params.source_conn_id }}"),
    ]
    assert (trig.alert_lag_seconds, trig.alert_lag_for_seconds) == (60.0, 120.0)
