"""IncrementalSyncTrigger / IncrementalSyncOperator with the real engine against the real pair.

The trigger runs in an asyncio loop here exactly as in the triggerer: started, cancelled (as when the task
is marked success/failed), re-created from its serialize() kwargs (as after a triggerer restart), and run
until max_runtime; the operator runs for real under dag.test().
"""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.triggers.incremental import IncrementalSyncTrigger

CONTROL = ControlSchema("dts_meta")


def sql(server, *statements, db=None):
    conn = server.root_connect(database=db) if db else server.root_connect()
    try:
        with conn.cursor() as cur:
            out = []
            for s in statements:
                cur.execute(s)
                out = list(cur.fetchall())
            return out
    finally:
        conn.close()


def make_shop(pair):
    for s in (pair.a, pair.b):
        sql(
            s,
            "CREATE DATABASE shop",
            "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40) NOT NULL, qty INT NOT NULL)",
        )


def direction(task_name, **kw) -> SyncDirection:
    d = {
        "task_name": task_name,
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
        "initial_full_data_sync": False,
        "retry_minutes": 1,
    }
    d.update(kw)
    return SyncDirection.from_dict(d)


def state(pair, task_name):
    import pymysql

    with pair.b.root_connect() as conn:
        try:
            return CONTROL.get_state(conn, task_name, "forward")
        except pymysql.err.ProgrammingError:  # control schema (being) created
            return None


async def wait_for(pred, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = await asyncio.to_thread(pred)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rows(server):
    return sql(server, "SELECT id, item, qty FROM shop.orders ORDER BY id")


def test_trigger_syncs_stops_on_cancel_and_resumes_from_the_checkpoint(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)
    d = direction(task_name)
    trig = IncrementalSyncTrigger(direction=d.to_json(), progress_interval=1.0)
    kwargs = trig.serialize()[1]

    async def first_run():
        task = asyncio.ensure_future(trig.run().__anext__())
        await wait_for(lambda: (state(pair, task_name) or {}).get("state") == State.SYNCHRONIZING, what="Synchronizing")
        await asyncio.to_thread(
            sql,
            pair.a,
            "INSERT INTO shop.orders VALUES (1, 'apple', 3), (2, 'pear', 5)",
            "UPDATE shop.orders SET qty = 4 WHERE id = 1",
        )
        await wait_for(lambda: rows(pair.b) == [(1, "apple", 4), (2, "pear", 5)], what="rows on B")
        # the event loop is never blocked by the engine
        t0 = time.monotonic()
        await asyncio.sleep(0.5)
        assert time.monotonic() - t0 < 1.0
        task.cancel()  # what the triggerer does when the task is marked success/failed
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(first_run())
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED, st
    assert st["binlog_file"] and st["rows_inserted"] == 2 and st["rows_updated"] == 1

    # written while the direction is stopped: must arrive after the restart, exactly once
    sql(pair.a, "INSERT INTO shop.orders VALUES (3, 'plum', 7)", "DELETE FROM shop.orders WHERE id = 2")

    rebuilt = IncrementalSyncTrigger(**kwargs)  # a triggerer restart re-creates it from serialize()
    rebuilt.max_runtime = None

    async def second_run():
        task = asyncio.ensure_future(rebuilt.run().__anext__())
        await wait_for(lambda: rows(pair.b) == [(1, "apple", 4), (3, "plum", 7)], what="resumed rows on B")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(second_run())
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED
    assert (st["rows_inserted"], st["rows_updated"], st["rows_deleted"]) == (3, 1, 1)
    assert rows(pair.a) == rows(pair.b)


def test_max_runtime_yields_one_event(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)
    trig = IncrementalSyncTrigger(
        direction=direction(task_name).to_json(), max_runtime=4, progress_interval=1, settle_seconds=0
    )

    async def events():
        return [e async for e in trig.run()]

    started = time.monotonic()
    out = asyncio.run(asyncio.wait_for(events(), timeout=60))
    assert time.monotonic() - started >= 4
    assert len(out) == 1
    ev = out[0].payload
    assert ev["status"] == "max_runtime" and ev["state"] == State.STOPPED, ev
    assert ev["direction"] == f"{task_name}/forward"
    assert state(pair, task_name)["state"] == State.STOPPED


def test_conflict_under_taskfailed_fails_with_the_engines_message(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

    trig = IncrementalSyncTrigger(direction=direction(task_name).to_json(), progress_interval=1, settle_seconds=0)

    async def run_until_event():
        gen = trig.run()
        task = asyncio.ensure_future(gen.__anext__())
        await wait_for(lambda: (state(pair, task_name) or {}).get("state") == State.SYNCHRONIZING, what="Synchronizing")
        await asyncio.to_thread(sql, pair.b, "INSERT INTO shop.orders VALUES (9, 'on B', 1)")
        await asyncio.to_thread(sql, pair.a, "INSERT INTO shop.orders VALUES (9, 'on A', 2)")
        return await asyncio.wait_for(task, timeout=60)

    event = asyncio.run(run_until_event()).payload
    assert event["status"] == "failed" and event["state"] == State.FAILED
    assert "orders" in event["message"]
    assert state(pair, task_name)["state"] == State.FAILED
    op = IncrementalSyncOperator(task_id="inc", direction=direction(task_name).to_dict())
    with pytest.raises(AirflowFailException, match="orders"):
        op.execute_complete({}, event)
    assert rows(pair.b) == [(9, "on B", 1)]


def test_missing_connection_is_a_clear_failure(pair, task_name):
    d = direction(task_name, source_conn_id="dts_nope_missing")
    trig = IncrementalSyncTrigger(direction=d.to_json(), settle_seconds=0)

    async def events():
        return [e async for e in trig.run()]

    (event,) = asyncio.run(events())
    assert event.payload["status"] == "failed"
    assert "dts_nope_missing" in event.payload["message"]


OPERATOR_DAG = """
import os
from airflow.sdk import DAG
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

with DAG(dag_id="dts_incremental_operator_test", schedule=None) as dag:
    IncrementalSyncOperator(task_id="incremental", direction=os.environ["DTS_TEST_DIRECTION"], max_runtime=6,
                            progress_interval=2)
"""


def test_operator_defers_and_syncs_in_a_dag_run(clean_pair, task_name, airflow_db, tmp_path, monkeypatch):
    """dag.test() runs the deferred operator's trigger in-process: rows written meanwhile arrive."""
    import importlib.util
    import threading

    import airflow.settings

    pair = clean_pair
    make_shop(pair)
    (tmp_path / "op_dag.py").write_text(OPERATOR_DAG)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    monkeypatch.setenv("DTS_TEST_DIRECTION", direction(task_name).to_json())
    spec = importlib.util.spec_from_file_location("op_dag", tmp_path / "op_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def writer():
        end = time.monotonic() + 20
        while time.monotonic() < end:
            st = state(pair, task_name)
            if st and st["state"] == State.SYNCHRONIZING:
                sql(pair.a, "INSERT INTO shop.orders VALUES (1, 'apple', 1), (2, 'fig', 2)")
                return
            time.sleep(0.2)

    t = threading.Thread(target=writer)
    t.start()
    run = module.dag.test()
    t.join()
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "incremental")
    assert ti.state == "success", ti.state
    assert rows(pair.b) == [(1, "apple", 1), (2, "fig", 2)]
    assert state(pair, task_name)["state"] == State.STOPPED
