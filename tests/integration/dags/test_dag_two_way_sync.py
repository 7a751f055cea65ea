"""dags/dts_two_way_sync.py: it parses, its params drive the UI form, and they build a valid TwoWayTask."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from airflow_provider_dts.engine.config import PRECHECK_ITEMS, ConflictPolicy, TwoWayTask
from airflow_provider_dts.engine.errors import ConfigError

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"


@pytest.fixture(scope="module")
def dag_module():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trigger_params(dag, conf):
    """Params as a triggered run sees them: defaults updated with the run's conf, validated by Airflow."""
    import copy

    params = copy.deepcopy(dag.params)
    params.update(conf)
    return params.validate()


def test_dag_folder_parses_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags.get("dts_two_way_sync")
    assert dag is not None
    # no schedule; every run is one sync and runs until stopped, so runs must not queue (issue 13)
    assert type(dag.timetable).__name__ == "NullTimetable" and dag.max_active_runs > 1


def test_orchestration_follows_the_dts_procedure(dag_module):
    dag = dag_module.dag

    def down(task_id):
        return set(dag.get_task(task_id).downstream_task_ids)

    assert down("configure") == {"task_one_precheck"}
    assert down("task_one_precheck") == {"task_one_schema_sync"}
    assert down("task_one_schema_sync") == {"task_one_full_data_sync"}
    assert down("task_one_full_data_sync") == {"task_one_incremental", "wait_task_one_synchronizing"}
    assert down("wait_task_one_synchronizing") == {"task_two_precheck"}
    assert down("task_two_precheck") == {"task_two_schema_sync"}
    assert down("task_two_schema_sync") == {"task_two_full_data_sync"}
    assert down("task_two_full_data_sync") == {"task_two_incremental"}
    assert down("task_one_incremental") == set() and down("task_two_incremental") == set()
    sensor = dag.get_task("wait_task_one_synchronizing")
    assert sensor.deferrable and "forward" in sensor.direction and sensor.ignore_failures_before_start
    for tid in ("task_one_precheck", "task_one_schema_sync", "task_one_full_data_sync", "task_one_incremental"):
        assert "key='forward'" in dag.get_task(tid).direction
    for tid in ("task_two_precheck", "task_two_schema_sync", "task_two_full_data_sync", "task_two_incremental"):
        assert "key='reverse'" in dag.get_task(tid).direction


def test_every_param_has_type_title_description_and_default(dag_module):
    params = dag_module.dag.params
    for name in dag_module.PARAMS:
        p = params.get_param(name)
        schema = p.schema
        assert schema.get("type"), name
        assert schema.get("title"), name
        assert p.description or schema.get("description"), name
        assert "section" in schema, name
    assert params["source_conn_id"] == "dts_source" and params["destination_conn_id"] == "dts_destination"
    assert params["objects"] == ["shop"]
    assert params.get_param("conflict_policy").schema["enum"] == [p.value for p in ConflictPolicy]
    assert set(params.get_param("ignore_precheck_items").schema["items"]["enum"]) == set(PRECHECK_ITEMS)


def test_default_params_build_the_two_way_task(dag_module):
    task = dag_module.build_task(dag_module.dag.params.validate())
    assert isinstance(task, TwoWayTask)
    f, r = task.forward, task.reverse
    assert (f.source_conn_id, f.destination_conn_id) == ("dts_source", "dts_destination")
    assert (r.source_conn_id, r.destination_conn_id) == ("dts_destination", "dts_source")
    assert f.objects == ("shop",) and r.objects == ("shop",)
    assert not f.exclude_ddl and r.exclude_ddl  # DDL one way only
    assert r.skip_initial_tables == ("shop",)  # task two does not initially sync what task one fills
    assert f.task_name == r.task_name == "dts_two_way_sync"


def test_only_objects_is_enough(dag_module):
    """What `airflow dags trigger dts_two_way_sync --conf '{"objects": ["shop"]}'` hands the configure task."""
    params = trigger_params(dag_module.dag, {"objects": ["shop"]})
    task = dag_module.build_task(params)
    assert task.forward.objects == ("shop",)
    assert dag_module.build_task({"objects": ["shop"]}) == task


def test_task_one_and_task_two_are_configured_separately(dag_module):
    task = dag_module.build_task(
        {
            "objects": ["shop", "crm.contacts"],
            "mapping": {"shop": "shop_copy"},
            "conflict_policy": "Ignore",
            "dml_types": ["INSERT", "UPDATE"],
            "reverse_conflict_policy": "Overwrite",
            "reverse_dml_types": ["INSERT"],
            "reverse_retry_minutes": 30,
            "reverse_ignore_precheck_items": ["triggers"],
        }
    )
    f, r = task.forward, task.reverse
    assert f.conflict_policy.value == "Ignore" and r.conflict_policy.value == "Overwrite"
    assert f.dml_types == ("INSERT", "UPDATE") and r.dml_types == ("INSERT",)
    assert f.retry_minutes == 720 and r.retry_minutes == 30
    assert r.ignore_precheck_items == ("triggers",) and f.ignore_precheck_items == ()
    assert set(r.objects) == {"shop_copy", "crm.contacts"}  # destination names
    assert r.map_database("shop_copy") == "shop"  # mapping inverted
    assert set(r.skip_initial_tables) == {"shop_copy", "crm.contacts"}


def test_bad_params_get_one_error_listing_each_problem(dag_module):
    with pytest.raises(ConfigError) as e:
        dag_module.build_task(
            {
                "object": ["shop"],  # typo
                "conflict_policy": "LastWriterWins",
                "retry_minutes": 0,
                "max_runtime": "soon",
                "destination_conn_id": "dts_source",
            }
        )
    msg = str(e.value)
    assert "object: unknown setting" in msg
    assert "'LastWriterWins'" in msg and "TaskFailed, Ignore, Overwrite" in msg
    assert "retry_minutes" in msg and "max_runtime" in msg
    assert "two-way sync needs two servers" in msg


def test_airflow_rejects_a_bad_param_at_trigger_time(dag_module):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        trigger_params(dag_module.dag, {"conflict_policy": "Bogus"})
    with pytest.raises(ParamValidationError):
        trigger_params(dag_module.dag, {"objects": []})
    with pytest.raises(ParamValidationError):
        trigger_params(dag_module.dag, {"retry_minutes": 0})
    ok = trigger_params(dag_module.dag, {"reverse_conflict_policy": "Overwrite", "max_runtime": 30})
    assert dag_module.build_task(ok).reverse.conflict_policy.value == "Overwrite"


def test_configure_task_publishes_both_directions(dag_module):
    from airflow.sdk.exceptions import AirflowFailException

    configure = dag_module.dag.get_task("configure")
    out = configure.python_callable(params={"objects": ["shop"], "max_runtime": 30})
    from airflow_provider_dts.engine.config import SyncDirection

    fwd, rev = SyncDirection.from_json(out["forward"]), SyncDirection.from_json(out["reverse"])
    assert fwd.role == "forward" and rev.role == "reverse"
    with pytest.raises(AirflowFailException, match="conflict_policy"):
        configure.python_callable(params={"objects": ["shop"], "conflict_policy": "x"})
