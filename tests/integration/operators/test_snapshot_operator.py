"""InitialSchemaSyncOperator and FullDataSyncOperator run against the real pair (env-var connections)."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from helpers import q

from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.operators.initial_sync import FullDataSyncOperator, InitialSchemaSyncOperator


def make_direction(task_name, **kw):
    d = {
        "task_name": task_name,
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["opshop"],
        "mapping": {"opshop": "opshop_b"},
    }
    d.update(kw)
    return d


@pytest.fixture
def opshop(clean_pair):
    a = clean_pair.a.root_connect()
    q(a, "CREATE DATABASE opshop")
    q(a, "CREATE TABLE opshop.items (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2))")
    q(a, "INSERT INTO opshop.items SELECT seq, CONCAT('item ', seq), seq / 4 FROM opshop.seq_1_to_1500")
    q(a, "CREATE VIEW opshop.cheap AS SELECT id FROM opshop.items WHERE price < 10")
    return clean_pair


def test_schema_then_full_sync_then_both_skip_when_initialized(opshop, task_name, capfd):
    direction = make_direction(task_name)
    schema_op = InitialSchemaSyncOperator(task_id="schema", direction=direction)
    full_op = FullDataSyncOperator(task_id="full", direction=json.dumps(direction), progress_interval=0)
    schema = schema_op.execute({})
    assert schema["databases_created"] == ["opshop_b"] and schema["views_created"] == ["opshop.cheap -> opshop_b.cheap"]
    summary = full_op.execute({})
    out = "".join(capfd.readouterr())
    assert summary["tables"] == 1 and summary["rows"] == 1500 and summary["seconds"] > 0
    assert summary["snapshot_position"].startswith("binlog.")
    assert "opshop.items -> opshop_b.items: 1500 of ~" in out and "rows/s, ETA" in out  # the task log
    b = opshop.b.root_connect()
    assert q(b, "SELECT COUNT(*), SUM(price) FROM opshop_b.items") == q(
        opshop.a.root_connect(), "SELECT COUNT(*), SUM(price) FROM opshop.items"
    )
    assert q(b, "SELECT COUNT(*) FROM opshop_b.cheap") == ((39,),)
    password = opshop.b.password
    assert password not in json.dumps(summary) and password not in json.dumps(schema)
    assert password not in out and opshop.a.password not in out
    # a retry of the whole DAG: both steps see the direction is initialized and do nothing
    again_schema = InitialSchemaSyncOperator(task_id="schema", direction=direction).execute({})
    again_full = FullDataSyncOperator(task_id="full", direction=direction).execute({})
    assert again_schema["skipped"].startswith("already initialized")
    assert again_full["skipped"].startswith("already initialized") and again_full["rows"] == 0
    assert q(b, "SELECT COUNT(*) FROM opshop_b.items") == ((1500,),)


def test_steps_turned_off_do_nothing(opshop, task_name):
    direction = make_direction(task_name, initial_schema_sync=False, initial_full_data_sync=False)
    assert InitialSchemaSyncOperator(task_id="s", direction=direction).execute({}) == {
        "skipped": "initial_schema_sync is off"
    }
    assert FullDataSyncOperator(task_id="f", direction=direction).execute({}) == {
        "skipped": "initial_full_data_sync is off"
    }
    b = opshop.b.root_connect()
    assert q(b, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='opshop_b'") == ((0,),)
    control = ControlSchema()
    assert not control.exists(b) or control.read_checkpoint(b, task_name, "forward") is None


def test_bad_input_fails_with_a_clear_message(opshop, task_name):
    with pytest.raises(AirflowFailException, match="conflict_policy"):
        FullDataSyncOperator(task_id="f", direction=make_direction(task_name, conflict_policy="Whatever")).execute({})
    with pytest.raises(AirflowFailException, match="max_rows_per_second 'fast' is not a positive number"):
        FullDataSyncOperator(task_id="f", direction=make_direction(task_name), max_rows_per_second="fast").execute({})
    with pytest.raises(AirflowFailException, match=r"do not exist on the source: nope"):
        InitialSchemaSyncOperator(
            task_id="s", direction=make_direction(task_name, objects=["nope"], mapping={})
        ).execute({})
    # the data step without the schema: the destination table is missing
    with pytest.raises(AirflowFailException, match=r"opshop_b\.items does not exist at the destination"):
        FullDataSyncOperator(task_id="f", direction=make_direction(task_name)).execute({})
    state = ControlSchema().get_state(opshop.b.root_connect(), task_name, "forward")
    assert state["state"] == "InitializeFailed" and "does not exist at the destination" in state["message"]
