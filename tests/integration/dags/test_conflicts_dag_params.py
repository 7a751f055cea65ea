"""The two-way DAG's per-table conflict policies param (issue 12): one JSON param for both tasks, validated with
the field and the fix, task two's entries under its own table names."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

from airflow_provider_dts.engine.config import TABLE_POLICIES, TableConflictPolicy
from airflow_provider_dts.engine.errors import ConfigError

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"


@pytest.fixture(scope="module")
def dag_module():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag_conflicts", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_form_entry_describes_every_table_policy(dag_module):
    param = dag_module.PARAMS["table_conflict_policies"]
    assert param.value == {} and param.schema["type"] == "object"
    assert param.schema["section"] == dag_module.TASK_ONE
    for policy in TABLE_POLICIES:
        assert policy in param.description
    params = copy.deepcopy(dag_module.dag.params)  # as a triggered run validates its conf
    params.update({"table_conflict_policies": {"shop.t": {"policy": "UseMax", "column": "v"}}})
    assert params.validate()["table_conflict_policies"] == {"shop.t": {"policy": "UseMax", "column": "v"}}


def test_one_param_for_both_tasks(dag_module):
    task = dag_module.build_task(
        {
            "objects": ["shop"],
            "mapping": {"shop": "shop_b"},
            "table_conflict_policies": {"shop.orders": {"policy": "UseMax", "column": "updated_at"}},
        }
    )
    assert task.forward.conflict_policy_for("shop", "orders") == TableConflictPolicy("UseMax", "updated_at")
    assert task.reverse.conflict_policy_for("shop_b", "orders") == TableConflictPolicy("UseMax", "updated_at")
    assert task.forward.conflict_policy_for("shop", "other") == TableConflictPolicy("TaskFailed")


def test_a_bad_entry_is_one_clear_error(dag_module):
    with pytest.raises(ConfigError) as e:
        dag_module.build_task({"objects": ["shop"], "table_conflict_policies": {"shop.orders": {"policy": "UseMin"}}})
    assert any(
        p.startswith("forward.table_conflict_policies: 'shop.orders': policy UseMin needs \"column\"")
        for p in e.value.problems
    ), e.value.problems
