"""Several syncs from one Airflow (issue 13, item 1), without a scheduler: the duplicate-task_name rule of the
two-way DAG's ``configure`` against a really running engine, syncs declared in a file parsed by Airflow's own
DagBag, and a trigger form with no "null" choice and no tri-state toggle."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.demo import direction_status, sql
from airflow_provider_dts.engine.incremental import run_direction

DAGS = Path(__file__).resolve().parents[2] / "dags"


def two_way_module():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_many", DAGS / "dts_two_way_sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configure_refuses_a_task_name_that_is_running(clean_pair, task_name):
    pair, dag = clean_pair, two_way_module()
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)")
    two_way = dag.build_task({"task_name": task_name, "objects": ["shop"], "initial_full_data_sync": False})
    dag.refuse_if_running(two_way)  # nothing runs yet

    stop = threading.Event()
    engine = threading.Thread(
        target=run_direction, args=(two_way.forward, pair.a.settings(), pair.b.settings()), kwargs={"stop": stop}
    )
    engine.start()
    try:
        deadline = time.monotonic() + 30
        while direction_status(pair, task_name)["forward"].state != "Synchronizing":
            assert time.monotonic() < deadline, direction_status(pair, task_name)
            time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(AirflowFailException) as e:
            dag.refuse_if_running(dag.build_task({"task_name": task_name, "objects": ["shop"]}))
        assert time.monotonic() - started < 5
        msg = str(e.value)
        assert f"task_name {task_name!r} is already running" in msg
        assert f"{task_name}/forward (task one) on dts_destination" in msg and "apply lease" in msg
        assert "reverse" not in msg.split("Fix:")[0]  # task two does not run
        assert "pick another task_name" in msg
        # another sync on the same servers is free to start
        dag.refuse_if_running(dag.build_task({"task_name": task_name + "x", "objects": ["shop"]}))
    finally:
        stop.set()
        engine.join(60)
    assert direction_status(pair, task_name)["forward"].state == "Stopped"
    dag.refuse_if_running(two_way)  # stopped: may be triggered again (resume)


SYNCS = """
syncs:
  eu_shop:
    objects: [shop]
    conflict_policy: Overwrite
  billing:
    source_conn_id: billing_a
    destination_conn_id: billing_b
    objects: [billing.invoices]
"""


def _bag(monkeypatch, tmp_path, text):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "syncs.yaml"
    path.write_text(text)
    monkeypatch.setenv("DTS_SYNCS_FILE", str(path))
    return DagBag(dag_folder=str(DAGS))


def test_syncs_declared_in_a_file_become_one_dag_each(monkeypatch, tmp_path):
    bag = _bag(monkeypatch, tmp_path, SYNCS)
    assert not bag.import_errors, bag.import_errors
    assert {"dts_two_way_sync", "dts_sync_eu_shop", "dts_sync_billing"} <= set(bag.dag_ids)
    eu, billing = bag.dags["dts_sync_eu_shop"], bag.dags["dts_sync_billing"]
    assert eu.params["task_name"] == "eu_shop" and eu.params["objects"] == ["shop"]
    assert eu.params["conflict_policy"] == "Overwrite"
    assert billing.params["source_conn_id"] == "billing_a" and billing.params["objects"] == ["billing.invoices"]
    assert eu.max_active_runs > 1 and bag.dags["dts_two_way_sync"].max_active_runs > 1
    assert set(eu.task_ids) == set(bag.dags["dts_two_way_sync"].task_ids)
    # the template DAG keeps its own defaults
    assert bag.dags["dts_two_way_sync"].params["conflict_policy"] == "TaskFailed"


def test_a_bad_declared_sync_is_an_import_error_naming_it(monkeypatch, tmp_path):
    bag = _bag(monkeypatch, tmp_path, SYNCS + "  broken:\n    objects: [mysql]\n    conflict_policy: Sometimes\n")
    errors = {Path(k).name: v for k, v in bag.import_errors.items()}
    assert set(errors) == {"dts_syncs_from_file.py"}, bag.import_errors
    assert "syncs.broken.forward.conflict_policy" in errors["dts_syncs_from_file.py"]
    assert "syncs.broken.forward.objects" in errors["dts_syncs_from_file.py"]
    assert "dts_two_way_sync" in bag.dag_ids  # the other DAG files are untouched


def test_trigger_form_has_no_null_choice_and_no_tri_state_toggle():
    params = two_way_module().PARAMS
    for name, p in params.items():
        schema = p.schema
        assert None not in (schema.get("enum") or []), f"{name}: the form would offer 'null'"
        items = schema.get("items") or {}
        assert None not in (items.get("enum") or []), name
        types = schema.get("type")
        assert not (isinstance(types, list) and "boolean" in types and "null" in types), (
            f"{name}: a toggle that can be empty shows OFF while meaning something else"
        )
        if "enum" in schema or types == "boolean":
            assert p.value is not None, f"{name}: a choice or toggle needs a real default"
