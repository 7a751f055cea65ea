"""Triggers on both servers through Airflow (issue 9, cause 6): the two-way DAG's operators under ``dag.test()``.

The directions come from the DAG's own ``build_task`` with ``guard_triggers`` and ``sync_triggers`` on: task
one's schema sync guards the source's triggers, the full data sync creates them guarded at the destination,
users write on both servers, and both servers end equal (the audit table too) with every trigger having fired
exactly once per user write. ``dag.test()`` runs tasks one at a time, so each incremental task runs for a few
seconds (``max_runtime``) in turn (as in test_write_window_dag.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import DAG_TEST_PREAMBLE, DAG_TEST_RUN
from syncing import sql
from test_guard_triggers import TABLES, TRIGGERS, bodies, checksum, rows

from airflow_provider_dts.engine.triggers import is_guarded

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"

TEST_DAG = (
    DAG_TEST_PREAMBLE
    + """FWD, REV = os.environ["DTS_GT_FORWARD"], os.environ["DTS_GT_REVERSE"]
"""
    + DAG_TEST_RUN
    + """

with DAG(dag_id="dts_guard_triggers_test", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def user_writes_on_a():
        run(os.environ["DTS_GT_A_SOCKET"], "INSERT INTO shop.items (id, name) VALUES (10, 'a10')",
            "UPDATE shop.items SET name = 'a1u' WHERE id = 1", "DELETE FROM shop.items WHERE id = 2")

    @task
    def user_writes_on_b():
        run(os.environ["DTS_GT_B_SOCKET"], "INSERT INTO shop.items (id, name) VALUES (20, 'b20')",
            "UPDATE shop.items SET name = 'b3u' WHERE id = 3", "DELETE FROM shop.items WHERE id = 10")

    (
        PrecheckOperator(task_id="task_one_precheck", direction=FWD)
        >> InitialSchemaSyncOperator(task_id="task_one_schema_sync", direction=FWD)
        >> FullDataSyncOperator(task_id="task_one_full_data_sync", direction=FWD)
        >> user_writes_on_a()
        >> IncrementalSyncOperator(task_id="task_one_incremental", direction=FWD, max_runtime=5)
        >> PrecheckOperator(task_id="task_two_precheck", direction=REV)
        >> InitialSchemaSyncOperator(task_id="task_two_schema_sync", direction=REV)
        >> FullDataSyncOperator(task_id="task_two_full_data_sync", direction=REV)
        >> user_writes_on_b()
        >> IncrementalSyncOperator(task_id="task_two_incremental", direction=REV, max_runtime=5)
        >> IncrementalSyncOperator(task_id="task_one_incremental_again", direction=FWD, max_runtime=5)
    )
"""
)


@pytest.mark.own_servers
def test_dag_with_guard_triggers_keeps_triggers_on_both_servers_equal(
    clean_pair, task_name, airflow_db, tmp_path, monkeypatch
):
    import airflow.settings

    p = clean_pair
    sql(
        p.a,
        "CREATE DATABASE shop",
        *TABLES,
        *TRIGGERS,
        "INSERT INTO shop.items (id, name) VALUES (1, 'a1'), (2, 'a2'), (3, 'a3')",
    )
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag_gt", DAG_FILE)
    real = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real)
    two_way = real.build_task(
        {"task_name": task_name, "objects": ["shop"], "guard_triggers": True, "sync_triggers": True}
    )

    (tmp_path / "gt_dag.py").write_text(TEST_DAG)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    monkeypatch.setenv("DTS_GT_FORWARD", two_way.forward.to_json())
    monkeypatch.setenv("DTS_GT_REVERSE", two_way.reverse.to_json())
    monkeypatch.setenv("DTS_GT_A_SOCKET", str(p.a.socket_path))
    monkeypatch.setenv("DTS_GT_B_SOCKET", str(p.b.socket_path))
    spec = importlib.util.spec_from_file_location("gt_dag", tmp_path / "gt_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    run = module.dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states

    # the triggers live on both servers, guarded, with the same bodies
    assert sorted(bodies(p.b)) == ["items_ad", "items_ai", "items_bu"]
    assert bodies(p.a) == bodies(p.b) and all(is_guarded(b) for b in bodies(p.b).values())
    for t in ("items", "audit"):
        assert rows(p.a, t) == rows(p.b, t), t
        assert checksum(p.a, t) == checksum(p.b, t), t
    # each user write fired its server's triggers once: touches/note changed once per user update
    assert [r[:4] for r in rows(p.a, "items")] == [(1, "a1u", 1, "+"), (3, "b3u", 1, "+"), (20, "b20", 0, None)]
    assert sorted((r[1], r[2]) for r in rows(p.a, "audit")) == sorted(
        [(1, "ins"), (2, "ins"), (3, "ins"), (10, "ins"), (2, "del"), (20, "ins"), (10, "del")]
    )
