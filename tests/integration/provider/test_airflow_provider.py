"""The provider inside Airflow: listed by `airflow providers list`, and a DAG using PrecheckOperator runs with
dag.test() against the real pair (passing and failing)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.precheck import PASS

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))

CONTROL = ControlSchema("dts_meta")


def test_airflow_providers_list_shows_the_provider(tmp_path):
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    proc = subprocess.run(
        [AIRFLOW_BIN, "providers", "list", "--output", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.index("[")
    providers = {p["package_name"]: p for p in json.loads(proc.stdout[start:])}
    assert "airflow-provider-dts" in providers
    assert providers["airflow-provider-dts"]["version"] == "0.1.0"
    assert "apache-airflow-providers-mysql" in providers  # the connection type the hook builds on


@pytest.fixture
def dag_folder(tmp_path, monkeypatch):
    """A private DAG folder: dag.test() finds a DAG only in the folder Airflow read at import
    (``settings.DAGS_FOLDER``), so point that at the test's folder for this test only."""
    from airflow import settings

    folder = tmp_path / "dags"
    folder.mkdir()
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))
    return folder


def _write_dag(folder, dag_id, direction):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(
        textwrap.dedent(f"""
        from datetime import datetime

        from airflow.sdk import DAG

        from airflow_provider_dts.operators.precheck import PrecheckOperator

        with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
            PrecheckOperator(task_id="precheck", direction={direction!r})
    """)
    )
    spec = importlib.util.spec_from_file_location(dag_id, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _xcom(dr, task_id, key="return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        if row is None:
            return None
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def _make_shop(server):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY, qty INT)")


def test_dag_with_precheck_operator_succeeds(airflow_db, clean_pair, task_name, dag_folder):
    _make_shop(clean_pair.a)
    folder = dag_folder
    dag = _write_dag(
        folder,
        f"pc_ok_{task_name}",
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
        },
    )
    dr = dag.test()
    assert dr.state == "success"
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()} == {"precheck": "success"}
    report = _xcom(dr, "precheck")
    assert report["passed"] is True and report["failed"] == []
    assert {r["status"] for r in report["results"]} == {PASS}
    assert clean_pair.a.password not in json.dumps(report) and clean_pair.b.password not in json.dumps(report)
    with clean_pair.b.settings().connect() as conn:
        rows = CONTROL.precheck_results(conn, task_name, "forward")
        state = CONTROL.get_state(conn, task_name, "forward")
    assert len(rows) == len(report["results"]) and all(r["run_id"].startswith(dr.run_id) for r in rows)
    assert state["state"] == State.NOT_STARTED


def test_dag_with_failing_precheck_fails_the_task(airflow_db, clean_pair, task_name, dag_folder):
    _make_shop(clean_pair.a)
    folder = dag_folder
    dag = _write_dag(
        folder,
        f"pc_fail_{task_name}",
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop.orders", "shop.missing_table"],
        },
    )
    dr = dag.test()
    assert dr.state == "failed"
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()} == {"precheck": "failed"}
    report = _xcom(dr, "precheck", key="precheck_report")
    assert report["passed"] is False and report["failed"] == ["objects_exist"]
    with clean_pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES WHERE `Database` IN ('shop', 'dts_meta')")
        assert cur.fetchall() == ()  # nothing was written to the destination, not even the control schema


def test_operator_bad_configuration_and_unknown_connection_fail_clearly(clean_pair, task_name):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_dts.operators.precheck import PrecheckOperator

    bad = PrecheckOperator(
        task_id="precheck",
        direction={
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
            "existing_table_mode": "Overwrite",
        },
    )
    with pytest.raises(AirflowFailException) as exc:
        bad.execute({})
    assert "existing_table_mode: 'Overwrite' is not allowed; use one of PrecheckAndIntercept, Ignore" in str(exc.value)

    unknown = PrecheckOperator(
        task_id="precheck",
        direction=json.dumps(
            {
                "task_name": task_name,
                "source_conn_id": "dts_nowhere",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
            }
        ),
    )
    with pytest.raises(AirflowFailException) as exc:
        unknown.execute({})
    assert "'dts_nowhere'" in str(exc.value) and "AIRFLOW_CONN_<CONN_ID>" in str(exc.value)
    with clean_pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'dts_meta'")
        assert cur.fetchall() == ()  # bad input wrote nothing anywhere


def test_operator_returns_the_report_with_warnings(clean_pair, task_name):
    from airflow_provider_dts.operators.precheck import PrecheckOperator

    with clean_pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.hits (id INT PRIMARY KEY) ENGINE=MyISAM")
    op = PrecheckOperator(
        task_id="precheck",
        run_id="manual-1",
        direction={
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
        },
    )
    result = op.execute({})
    assert result["passed"] is True and result["warnings"] == ["storage_engines"] and result["run_id"] == "manual-1"
    assert json.loads(json.dumps(result)) == result  # XCom-safe
    assert clean_pair.a.password not in json.dumps(result) and clean_pair.b.password not in json.dumps(result)
