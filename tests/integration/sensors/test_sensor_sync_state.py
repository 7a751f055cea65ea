"""SyncStateSensor and SyncStateTrigger against the real pair: they read the control schema on B."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.status import judge, read_status
from airflow_provider_dts.sensors.sync_state import SyncStateSensor
from airflow_provider_dts.triggers.sync_state import SyncStateTrigger

CONTROL = ControlSchema("dts_meta")


def set_state(pair, task_name, state, message=None, role="forward", **cols):
    with pair.b.settings().connect() as conn:
        CONTROL.ensure(conn)
        CONTROL.set_state(conn, task_name, role, state, message, **cols)


def direction(task_name, role="forward"):
    src, dst = ("dts_source", "dts_destination") if role == "forward" else ("dts_destination", "dts_source")
    return {
        "task_name": task_name,
        "role": role,
        "source_conn_id": src,
        "destination_conn_id": dst,
        "objects": ["shop"],
        "exclude_ddl": role == "reverse",
    }


def sensor(task_name, **kw):
    kw.setdefault("max_lag_seconds", 5)
    return SyncStateSensor(task_id="wait", direction=direction(task_name), **kw)


def test_waits_until_synchronizing_within_the_lag_bound(clean_pair, task_name):
    s = sensor(task_name)
    assert s.poke({}) is False  # no control schema at all yet
    set_state(clean_pair, task_name, State.INITIALIZING)
    assert s.poke({}) is False
    set_state(clean_pair, task_name, State.SYNCHRONIZING, lag_seconds=None)
    assert s.poke({}) is False  # lag not measured yet
    set_state(clean_pair, task_name, State.SYNCHRONIZING, lag_seconds=42.0)
    assert s.poke({}) is False
    set_state(clean_pair, task_name, State.SYNCHRONIZING, lag_seconds=0.4)
    result = s.poke({})
    assert result.is_done
    assert result.xcom_value["state"] == State.SYNCHRONIZING
    assert result.xcom_value["lag_seconds"] == pytest.approx(0.4)


def test_other_directions_state_does_not_count(pair, task_name):
    set_state(pair, task_name, State.SYNCHRONIZING, role="forward", lag_seconds=0.1)
    rev = SyncStateSensor(task_id="w", direction=direction(task_name, "reverse"))
    # the reverse direction's home is A: nothing recorded there
    assert rev.poke({}) is False
    by_name = SyncStateSensor(
        task_id="w2", task_name=task_name, role="forward", destination_conn_id="dts_destination", max_lag_seconds=1
    )
    assert by_name.poke({}).is_done


@pytest.mark.parametrize("state", [State.FAILED, State.PRECHECK_FAILED, State.INITIALIZE_FAILED])
def test_fails_at_once_with_the_engines_message(pair, task_name, state):
    set_state(pair, task_name, state, "conflict on shop.orders key (7): row exists")
    with pytest.raises(AirflowFailException) as e:
        sensor(task_name).poke({})
    assert state in str(e.value) and "shop.orders key (7)" in str(e.value)


def test_failure_left_by_an_earlier_run_is_waited_out(pair, task_name):
    """In the DAG the sensor starts while task one restarts: a Failed from before the sensor started is old."""
    import datetime as dt
    from types import SimpleNamespace

    set_state(pair, task_name, State.FAILED, "conflict from yesterday")
    time.sleep(0.05)
    ctx = {"ti": SimpleNamespace(start_date=dt.datetime.now(dt.UTC))}
    s = sensor(task_name, ignore_failures_before_start=True)
    assert s.poke(ctx) is False  # old failure: keep waiting
    with pytest.raises(AirflowFailException, match="conflict from yesterday"):
        sensor(task_name).poke(ctx)  # default: fail at once on any failure state
    set_state(pair, task_name, State.FAILED, "conflict just now")  # a failure after the sensor started
    with pytest.raises(AirflowFailException, match="conflict just now"):
        s.poke(ctx)
    set_state(pair, task_name, State.SYNCHRONIZING, lag_seconds=0.1)
    assert s.poke(ctx).is_done


def test_a_direction_stopped_while_waiting_fails_the_wait(pair, task_name):
    """Task one stopped (stop request, max_runtime) after the wait began: it will not become Synchronizing by
    itself, so the wait fails with the reason instead of hanging until its timeout (issue 10)."""
    import datetime as dt
    from types import SimpleNamespace

    set_state(pair, task_name, State.STOPPED, "stopped at binlog.000001:4 (an earlier run)")
    time.sleep(0.05)
    ctx = {"ti": SimpleNamespace(start_date=dt.datetime.now(dt.UTC))}
    s = sensor(task_name, ignore_failures_before_start=True)
    assert s.poke(ctx) is False  # stopped before the wait: the restart overwrites it
    set_state(pair, task_name, State.STOPPED, "stopped after max_runtime")
    with pytest.raises(AirflowFailException) as e:
        s.poke(ctx)
    assert "stopped after max_runtime" in str(e.value) and "clear its incremental task" in str(e.value)


def test_stale_synchronizing_row_is_not_trusted(pair, task_name):
    set_state(pair, task_name, State.SYNCHRONIZING, lag_seconds=0.0)
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE dts_meta.sync_state SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE WHERE task_name=%s",
            (task_name,),
        )
    status = read_status(pair.b.settings(), "dts_meta", task_name, "forward")
    assert status.age_seconds > 500
    verdict, reason = judge(status, 10)
    assert verdict == "wait" and "last refreshed" in reason
    assert sensor(task_name).poke({}) is False
    assert sensor(task_name, max_state_age_seconds=None).poke({}).is_done


def test_bad_target_fails_with_every_problem(pair):
    s = SyncStateSensor(task_id="w", task_name="", role="sideways")
    with pytest.raises(AirflowFailException) as e:
        s.poke({})
    msg = str(e.value)
    assert "task_name" in msg and "'sideways'" in msg and "destination_conn_id" in msg
    with pytest.raises(ConfigError):
        SyncStateSensor(task_id="w3", direction='{"task_name": ').target()


def test_unreachable_server_keeps_waiting(pair, task_name, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_NOWHERE",
        '{"conn_type": "mysql", "host": "127.0.0.1", "port": 1, "login": "x", "password": "secret-pw"}',
    )
    s = SyncStateSensor(task_id="w", task_name=task_name, role="forward", destination_conn_id="dts_nowhere")
    assert s.poke({}) is False


def test_trigger_fires_when_the_state_flips(pair, task_name):
    set_state(pair, task_name, State.INITIALIZING)
    trig = SyncStateTrigger(
        task_name=task_name,
        role="forward",
        destination_conn_id="dts_destination",
        max_lag_seconds=3,
        poke_interval=0.2,
        settle_seconds=0,
    )
    cls_path, kwargs = trig.serialize()
    assert cls_path == "airflow_provider_dts.triggers.sync_state.SyncStateTrigger"
    assert "password" not in str(kwargs)
    rebuilt = SyncStateTrigger(**kwargs)

    def flip():
        time.sleep(1.0)
        set_state(pair, task_name, State.SYNCHRONIZING, lag_seconds=0.5)

    async def first_event():
        gen = rebuilt.run()
        return await asyncio.wait_for(gen.__anext__(), timeout=30)

    t = threading.Thread(target=flip)
    started = time.monotonic()
    t.start()
    event = asyncio.run(first_event())
    t.join()
    assert time.monotonic() - started >= 1.0
    assert event.payload["status"] == "success"
    assert event.payload["direction_status"]["lag_seconds"] == pytest.approx(0.5)


def test_trigger_reports_failure(pair, task_name):
    set_state(pair, task_name, State.FAILED, "binlog purged; re-initialize the direction")
    trig = SyncStateTrigger(
        task_name=task_name, role="forward", destination_conn_id="dts_destination", poke_interval=0.2, settle_seconds=0
    )

    async def first_event():
        return await asyncio.wait_for(trig.run().__anext__(), timeout=30)

    event = asyncio.run(first_event())
    assert event.payload["status"] == "failed"
    assert "binlog purged" in event.payload["reason"]
    s = sensor(task_name)
    with pytest.raises(AirflowFailException, match="binlog purged"):
        s.execute_complete({}, event.payload)


SENSOR_DAG = """
import os
from airflow.sdk import DAG
from airflow_provider_dts.sensors.sync_state import SyncStateSensor

with DAG(dag_id="dts_sensor_test", schedule=None) as dag:
    SyncStateSensor(task_id="wait_sync", task_name=os.environ["DTS_TEST_TASK_NAME"], role="forward",
                    destination_conn_id="dts_destination", deferrable=True, poke_interval=0.5, timeout=120,
                    max_lag_seconds=2)
"""


def test_deferrable_sensor_in_a_dag_run(pair, task_name, airflow_db, tmp_path, monkeypatch):
    """A real DAG run (dag.test) with the sensor deferred to the trigger, completing once the state flips."""
    import importlib.util

    (tmp_path / "sensor_dag.py").write_text(SENSOR_DAG)
    import airflow.settings

    # dag.test() serializes the DAG from the dags-folder bundle: point it at the test's own folder.
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    monkeypatch.setenv("DTS_TEST_TASK_NAME", task_name)
    spec = importlib.util.spec_from_file_location("sensor_dag", tmp_path / "sensor_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    set_state(pair, task_name, State.INITIALIZING)

    def flip():
        time.sleep(3)
        set_state(pair, task_name, State.SYNCHRONIZING, lag_seconds=0.2)

    t = threading.Thread(target=flip)
    started = time.monotonic()
    t.start()
    run = module.dag.test()
    t.join()
    assert time.monotonic() - started >= 3
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "wait_sync")
    assert ti.state == "success", ti.state
