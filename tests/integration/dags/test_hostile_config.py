"""Issue 10: every bad setting is refused by `configure` (and by the engine's own config, which the operators
use) in one error naming each bad field and its fix, before anything is written on either server. System
schemas can never be selected, mapped into or used as the control schema, however they are spelt."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from airflow_provider_dts.engine.config import SyncDirection, TwoWayTask
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.precheck import run_precheck

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"


@pytest.fixture(scope="module")
def dag_module():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag_hostile", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def everything(server) -> list[tuple]:
    """Every schema and table of a server, with the binlog position (any write moves it)."""
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema') ORDER BY 1, 2"
        )
        tables = list(cur.fetchall())
        cur.execute("SHOW DATABASES")
        dbs = list(cur.fetchall())
        cur.execute("SHOW MASTER STATUS")
        return tables + dbs + [cur.fetchone()[:2]]


BAD = [
    # (conf, the field named in the error, words of the fix)
    ({"objects": ["mysql.global_priv"], "existing_table_mode": "Ignore"}, "forward.objects", "system schema"),
    ({"objects": ["`mysql`.`user`"]}, "forward.objects", "system schema"),
    ({"objects": ["MySQL"]}, "forward.objects", "system schema"),
    ({"objects": ["INFORMATION_SCHEMA.tables"]}, "forward.objects", "system schema"),
    ({"objects": ["performance_schema"]}, "forward.objects", "system schema"),
    ({"objects": ["sys"]}, "forward.objects", "system schema"),
    ({"objects": ["shop"], "mapping": {"shop": "mysql"}}, "forward.mapping", "system schema"),
    ({"objects": ["shop.t"], "mapping": {"shop.t": "`SYS`.t"}}, "forward.mapping", "system schema"),
    ({"objects": ["shop"], "control_schema": "mysql"}, "forward.control_schema", "system schema"),
    ({"objects": ["shop"], "control_schema": "dts%meta"}, "forward.control_schema", "letters, digits and '_'"),
    ({"objects": ["shop"], "control_schema": "dts meta"}, "forward.control_schema", "letters, digits and '_'"),
    ({"objects": ["dts_meta"]}, "forward.objects", "control schema"),
    ({"objects": ["``"]}, "forward.objects", "empty name"),
    ({"objects": ["shop", "shop.t"]}, "forward.objects", "selected whole"),
    (
        {"objects": ["shop.a", "shop.b"], "mapping": {"shop.a": "x.t", "shop.b": "x.t"}},
        "forward.mapping",
        "different tables",
    ),
    ({"objects": ["shop", "crm"], "mapping": {"crm": "shop"}}, "forward.mapping", "different databases"),
    ({"objects": ["shop"], "task_name": "t_nl\n"}, "forward.task_name", "letters, digits"),
    ({"objects": ["shop"], "max_runtime": "NaN"}, "max_runtime", "finite number"),
    ({"objects": ["shop"], "max_runtime": float("inf")}, "max_runtime", "finite number"),
    ({"objects": ["shop"], "reverse_objects": ["mysql"]}, "reverse.objects", "system schema"),
]


@pytest.mark.parametrize("conf,field,fix", BAD, ids=[repr(b[0])[:60] for b in BAD])
def test_configure_refuses_each_bad_value_and_writes_nothing(clean_pair, dag_module, conf, field, fix):
    from airflow.sdk.exceptions import AirflowFailException

    before = (everything(clean_pair.a), everything(clean_pair.b))
    configure = dag_module.dag.get_task("configure")
    with pytest.raises(AirflowFailException) as e:
        configure.python_callable(params=conf)
    lines = [x for x in str(e.value).splitlines() if x.strip().startswith("- ")]
    assert any(x.strip().startswith(f"- {field}:") and fix in x for x in lines), str(e.value)
    assert not any("ValueError" in x or "Traceback" in x for x in lines)
    assert (everything(clean_pair.a), everything(clean_pair.b)) == before


def test_engine_config_refuses_the_same_values():
    base = {"task_name": "t", "role": "forward", "source_conn_id": "a", "destination_conn_id": "b"}
    for extra, field in (
        ({"objects": ["mysql"]}, "objects"),
        ({"objects": ["x"], "control_schema": "dts%m"}, "control_schema"),
        ({"objects": ["x", "x.t"]}, "objects"),
        ({"objects": ["x"], "task_name": "t\n"}, "task_name"),
    ):
        with pytest.raises(ConfigError) as e:
            SyncDirection.from_dict({**base, **extra})
        assert any(p.startswith(f"{field}:") for p in e.value.problems), e.value.problems
    # a forward problem is listed once, not repeated as task two's derived settings
    with pytest.raises(ConfigError) as e:
        TwoWayTask.from_dict(
            {"name": "t", "forward": {"source_conn_id": "a", "destination_conn_id": "b", "objects": ["mysql.user"]}}
        )
    assert len(e.value.problems) == 1


def test_a_failing_precheck_writes_nothing_on_either_server(clean_pair, task_name):
    """The precheck used to create the control schema on the destination even when it failed."""
    before = (everything(clean_pair.a), everything(clean_pair.b))
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "role": "forward",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["no_such_db"],
        }
    )
    report = run_precheck(d, clean_pair.a.settings(), clean_pair.b.settings())
    assert [r.name for r in report.failed] == ["objects_exist"]
    assert not report.recorded
    assert (everything(clean_pair.a), everything(clean_pair.b)) == before
