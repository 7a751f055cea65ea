"""No write window before task two, through Airflow (issue 9, cause 1).

The two-way DAG's own operators in its order, run by ``dag.test()``: task one's precheck, schema sync, full data
sync and incremental sync, then a user writes on B, then task two's precheck, schema sync, full data sync and
incremental sync. The directions are built by the DAG's own ``build_task`` from trigger params. The real DAG
waits for task one with a deferred sensor while task one's incremental task runs; ``dag.test()`` runs tasks one
at a time (a deferred task's trigger inline until its event), so here each incremental task runs for a few
seconds (``max_runtime``) in turn instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import DAG_TEST_PREAMBLE, DAG_TEST_RUN
from syncing import sql, table_rows
from test_write_window import checkpoint, checksum, conflicts

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"

TEST_DAG = (
    DAG_TEST_PREAMBLE
    + """FWD, REV = os.environ["DTS_WW_FORWARD"], os.environ["DTS_WW_REVERSE"]
"""
    + DAG_TEST_RUN
    + """

with DAG(dag_id="dts_write_window_test", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def writes_on_a():
        run(os.environ["DTS_WW_A_SOCKET"], "INSERT INTO shop.t VALUES (10, 'from a')",
            "UPDATE shop.t SET v = 'a2' WHERE id = 1")

    @task
    def user_writes_on_b():  # task one is live, task two does not exist yet
        run(os.environ["DTS_WW_B_SOCKET"], "INSERT INTO shop.t VALUES (20, 'from b'), (21, 'from b')",
            "UPDATE shop.t SET v = 'b2' WHERE id = 2", "DELETE FROM shop.t WHERE id = 3")

    (
        PrecheckOperator(task_id="task_one_precheck", direction=FWD)
        >> InitialSchemaSyncOperator(task_id="task_one_schema_sync", direction=FWD)
        >> FullDataSyncOperator(task_id="task_one_full_data_sync", direction=FWD)
        >> writes_on_a()
        >> IncrementalSyncOperator(task_id="task_one_incremental", direction=FWD, max_runtime=5)
        >> user_writes_on_b()
        >> PrecheckOperator(task_id="task_two_precheck", direction=REV)
        >> InitialSchemaSyncOperator(task_id="task_two_schema_sync", direction=REV)
        >> FullDataSyncOperator(task_id="task_two_full_data_sync", direction=REV)
        >> IncrementalSyncOperator(task_id="task_two_incremental", direction=REV, max_runtime=5)
    )
"""
)


@pytest.mark.own_servers
def test_writes_on_b_between_task_one_and_task_two_reach_a_in_a_dag_run(
    clean_pair, task_name, airflow_db, tmp_path, monkeypatch
):
    import airflow.settings

    p = clean_pair
    sql(
        p.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO shop.t VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d')",
    )
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag_ww", DAG_FILE)
    real = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real)
    two_way = real.build_task({"task_name": task_name, "objects": ["shop"]})

    (tmp_path / "ww_dag.py").write_text(TEST_DAG)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    monkeypatch.setenv("DTS_WW_FORWARD", two_way.forward.to_json())
    monkeypatch.setenv("DTS_WW_REVERSE", two_way.reverse.to_json())
    monkeypatch.setenv("DTS_WW_A_SOCKET", str(p.a.socket_path))
    monkeypatch.setenv("DTS_WW_B_SOCKET", str(p.b.socket_path))
    spec = importlib.util.spec_from_file_location("ww_dag", tmp_path / "ww_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    run = module.dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states

    expected = [(1, "a2"), (2, "b2"), (4, "d"), (10, "from a"), (20, "from b"), (21, "from b")]
    assert table_rows(p.a, "t") == expected  # the user's writes on B reached A
    assert table_rows(p.b, "t") == expected
    assert checksum(p.a, "shop", "t") == checksum(p.b, "shop", "t")
    rev, fwd = checkpoint(p.a, task_name, "reverse"), checkpoint(p.b, task_name, "forward")
    assert (rev.rows_inserted, rev.rows_updated, rev.rows_deleted) == (2, 1, 1), rev  # nothing echoed back
    assert (fwd.rows_inserted, fwd.rows_updated, fwd.rows_deleted) == (1, 1, 0), fwd
    assert conflicts(p.a, task_name, "reverse") == [] and conflicts(p.b, task_name, "forward") == []


def test_task_one_precheck_records_the_floor_only_when_it_passes(clean_pair, task_name):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_dts.engine.config import TwoWayTask
    from airflow_provider_dts.operators.precheck import PrecheckOperator

    p = clean_pair
    sql(p.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")

    def forward(objects):
        return TwoWayTask.from_dict(
            {
                "name": task_name,
                "forward": {
                    "source_conn_id": "dts_source",
                    "destination_conn_id": "dts_destination",
                    "objects": objects,
                },
            }
        ).forward

    failing = PrecheckOperator(task_id="task_one_precheck", direction=forward(["shop.t", "shop.missing"]).to_json())
    try:
        failing.execute({})
    except AirflowFailException as e:
        assert "precheck failed" in str(e) and "missing" in str(e), str(e)
    else:
        raise AssertionError("the precheck of a missing table passed")
    assert checkpoint(p.a, task_name, "reverse") is None  # a failed precheck leaves no floor behind

    (before,) = sql(p.b, "SHOW MASTER STATUS")[:1]
    PrecheckOperator(task_id="task_one_precheck", direction=forward(["shop"]).to_json()).execute({})
    floor = checkpoint(p.a, task_name, "reverse")
    assert floor is not None and floor.binlog_file is None and floor.snapshot_file == before[0]
    assert floor.snapshot_pos >= before[1]  # taken after the precheck, before anything else of task one
    sql(
        p.b,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO shop.t VALUES (1, 'x')",
    )
    (now,) = sql(p.b, "SHOW MASTER STATUS")[:1]
    assert floor.snapshot_pos < now[1]
