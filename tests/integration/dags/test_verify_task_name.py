"""dts_verify with only a task_name: the sync's objects, mapping and connections come from its control schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.precheck import run_precheck
from airflow_provider_dts.operators.verify import DataVerifyOperator


def sql(server, stmt, args=None):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(stmt, args)
        return cur.fetchall()


def run_verify_dag(conf):
    # a fresh DAG object each time: an earlier test's dag.test(run_conf=...) of the same module must not leak
    # its params (objects) into this run
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "dts_verify_fresh", Path(__file__).resolve().parents[3] / "dags" / "dts_verify.py"
    )
    dts_verify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dts_verify)
    dr = dts_verify.dag.test(run_conf=conf)
    return dr, {ti.task_id: ti for ti in dr.get_task_instances()}


def test_verify_dag_with_only_the_task_name(clean_pair, airflow_db, task_name):
    pair = clean_pair
    # the sync compares vmap.items on A with its mapped copy vmap_copy.items_v2 on B; vmap.other is not selected
    for server, db, table in ((pair.a, "vmap", "items"), (pair.b, "vmap_copy", "items_v2")):
        sql(server, f"CREATE DATABASE {db}")
        sql(server, f"CREATE TABLE {db}.{table} (id INT PRIMARY KEY, v VARCHAR(20))")
        sql(server, f"INSERT INTO {db}.{table} VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 301)))
    sql(pair.a, "CREATE TABLE vmap.other (id INT PRIMARY KEY)")
    sql(pair.a, "INSERT INTO vmap.other VALUES (1)")
    direction = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["vmap.items"],
            "mapping": {"vmap": "vmap_copy", "vmap.items": "items_v2"},
            "existing_table_mode": "Ignore",
        }
    )
    # the sync's own precheck stores its settings in sync_state.config_json on its destination (B)
    report = run_precheck(direction, pair.a.settings(), pair.b.settings())
    assert report.recorded, report.record_error

    conf = {"task_name": task_name, "recheck_delay": 0.1}
    dr, tis = run_verify_dag(conf)
    assert dr.state == "success", tis["verify"].state
    rows = sql(
        pair.b,
        "SELECT source_table, dest_table, equal, rows_source FROM dts_meta.verify_result WHERE task_name=%s",
        (task_name,),
    )
    assert rows == (("vmap.items", "vmap_copy.items_v2", 1, 300),)

    sql(pair.b, "UPDATE vmap_copy.items_v2 SET v='broken' WHERE id=77")
    dr, tis = run_verify_dag(conf)
    assert dr.state == "failed" and tis["verify"].state == "failed"
    diffs = sql(
        pair.b,
        "SELECT different, diffs_json FROM dts_meta.verify_result WHERE task_name=%s ORDER BY id DESC LIMIT 1",
        (task_name,),
    )
    assert diffs[0][0] == 1 and '"key": [77]' in diffs[0][1] and '"columns": ["v"]' in diffs[0][1]


def test_unknown_task_name_says_what_to_do(clean_pair, task_name):
    op = DataVerifyOperator(task_id="verify", task_name=task_name)
    with pytest.raises(ConfigError, match=f"no sync named '{task_name}' in dts_meta.sync_state on dts_destination"):
        op.get_direction()
    with pytest.raises(ConfigError, match="give the direction's settings, or task_name"):
        DataVerifyOperator(task_id="verify2").get_direction()


def test_the_settings_the_sync_runs_with_win_over_the_last_precheck(clean_pair, task_name):
    """A precheck of changed settings overwrites config_json before the change is applied; the settings the sync
    was last initialized or modified with (sync_state.synced_config, engine/modify.py) are the ones to compare."""
    from airflow_provider_dts.engine.control import ControlSchema
    from airflow_provider_dts.engine.modify import write_synced
    from airflow_provider_dts.engine.verify import stored_direction

    pair = clean_pair
    for server in (pair.a, pair.b):
        sql(server, "CREATE DATABASE vmod")
        sql(server, "CREATE TABLE vmod.t1 (id INT PRIMARY KEY)")
    base = {
        "task_name": task_name,
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "existing_table_mode": "Ignore",
    }
    running = SyncDirection.from_dict({**base, "objects": ["vmod.t1"]})
    proposed = SyncDirection.from_dict({**base, "objects": ["vmod"]})
    control = ControlSchema()
    with pair.b.settings().connect() as conn:
        control.ensure(conn)
        with conn.cursor() as cur:
            write_synced(cur, control, running, {})
    assert run_precheck(proposed, pair.a.settings(), pair.b.settings()).recorded
    with pair.b.settings().connect() as conn:
        assert stored_direction(conn, task_name).objects == ("vmod.t1",)
        with conn.cursor() as cur:
            cur.execute("UPDATE dts_meta.sync_state SET synced_config=NULL WHERE task_name=%s", (task_name,))
        assert stored_direction(conn, task_name).objects == ("vmod",)  # no synced settings: the precheck's
