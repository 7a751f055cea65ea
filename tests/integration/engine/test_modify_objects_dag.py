"""Changing the objects of an existing sync through Airflow (issue 9, cause 9).

The two-way DAG's own operators in its order, run by ``dag.test()`` (as in test_write_window_dag.py), with the
directions built by the real DAG's ``build_task`` from trigger params:

1. a sync of ``shop.t1`` runs both ways and stops (each incremental task runs a few seconds);
2. while it is stopped a user writes to t1 and to t2, a table on A that was not selected so far;
3. the DAG is triggered again with the same task_name and ``[shop.t1, shop.t2]``: t2 is created and copied, t1 is
   not copied again, writes on A after the copy and on B before task two resumes reach the other side once;
4. triggered with ``[shop.t2]``: t1 is no longer synchronized, t2 still is;
5. triggered with a mapping change: task one's schema sync fails with the message, nothing is written.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import DAG_TEST_PREAMBLE, DAG_TEST_RUN
from syncing import sql, table_rows
from test_modify_objects import progress, user_objects
from test_write_window import checkpoint, checksum, conflicts

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"

HEAD = (
    DAG_TEST_PREAMBLE
    + """FWD, REV = os.environ["DTS_MOD_FORWARD_{n}"], os.environ["DTS_MOD_REVERSE_{n}"]
"""
    + DAG_TEST_RUN
    + """

with DAG(dag_id="dts_modify_objects_{n}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def writes_on_a():
        run(os.environ["DTS_MOD_A_SOCKET"], *{a_writes!r})

    @task
    def writes_on_b():
        run(os.environ["DTS_MOD_B_SOCKET"], *{b_writes!r})

    (
        PrecheckOperator(task_id="task_one_precheck", direction=FWD)
        >> InitialSchemaSyncOperator(task_id="task_one_schema_sync", direction=FWD)
        >> FullDataSyncOperator(task_id="task_one_full_data_sync", direction=FWD)
        >> writes_on_a()
        >> IncrementalSyncOperator(task_id="task_one_incremental", direction=FWD, max_runtime=4)
        >> writes_on_b()
        >> PrecheckOperator(task_id="task_two_precheck", direction=REV)
        >> InitialSchemaSyncOperator(task_id="task_two_schema_sync", direction=REV)
        >> FullDataSyncOperator(task_id="task_two_full_data_sync", direction=REV)
        >> IncrementalSyncOperator(task_id="task_two_incremental", direction=REV, max_runtime=4)
    )
"""
)


class Runs:
    def __init__(self, p, task_name, tmp_path, monkeypatch):
        import airflow.settings

        self.p, self.task_name, self.tmp_path, self.monkeypatch = p, task_name, tmp_path, monkeypatch
        spec = importlib.util.spec_from_file_location("dts_two_way_sync_dag_mod", DAG_FILE)
        self.real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.real)
        monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
        monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
        monkeypatch.setenv("DTS_MOD_A_SOCKET", str(p.a.socket_path))
        monkeypatch.setenv("DTS_MOD_B_SOCKET", str(p.b.socket_path))
        self.n = 0

    def trigger(self, params: dict, a_writes=("DO 0",), b_writes=("DO 0",)) -> dict[str, str]:
        """One DAG run with these trigger params; the task states."""
        self.n += 1
        two_way = self.real.build_task({"task_name": self.task_name, **params})
        self.monkeypatch.setenv(f"DTS_MOD_FORWARD_{self.n}", two_way.forward.to_json())
        self.monkeypatch.setenv(f"DTS_MOD_REVERSE_{self.n}", two_way.reverse.to_json())
        path = self.tmp_path / f"mod_dag_{self.n}.py"
        path.write_text(HEAD.format(n=self.n, a_writes=tuple(a_writes), b_writes=tuple(b_writes)))
        spec = importlib.util.spec_from_file_location(f"mod_dag_{self.n}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        run = module.dag.test()
        return {ti.task_id: ti.state for ti in run.get_task_instances()}


def same(p, table: str, expected: list[tuple]) -> None:
    assert table_rows(p.a, table) == expected
    assert table_rows(p.b, table) == expected
    assert checksum(p.a, "shop", table) == checksum(p.b, "shop", table)


@pytest.mark.own_servers
def test_objects_added_removed_and_a_refused_change_through_the_dag(
    clean_pair, task_name, airflow_db, tmp_path, monkeypatch, capfd
):
    p = clean_pair
    sql(
        p.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t1 (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO shop.t1 VALUES (1,'a'),(2,'b'),(3,'c')",
        "CREATE TABLE shop.t2 (id INT PRIMARY KEY, v VARCHAR(20))",  # not selected yet
        "INSERT INTO shop.t2 VALUES (1,'x'),(2,'y'),(3,'z')",
    )
    runs = Runs(p, task_name, tmp_path, monkeypatch)

    # 1. a running sync of shop.t1 (it stops when its incremental tasks end)
    states = runs.trigger({"objects": ["shop.t1"]})
    assert set(states.values()) == {"success"}, states
    same(p, "t1", [(1, "a"), (2, "b"), (3, "c")])
    t1_progress = progress(p.b, task_name)["t1"]
    fwd_p = checkpoint(p.b, task_name, "forward").position
    rev_before = checkpoint(p.a, task_name, "reverse")

    assert sql(p.b, "SHOW TABLES FROM shop") == [("t1",)]
    # 2. while stopped: writes to t1 and to t2
    sql(
        p.a,
        "INSERT INTO shop.t1 VALUES (4,'stopped')",
        "UPDATE shop.t1 SET v='a2' WHERE id=1",
        "INSERT INTO shop.t2 VALUES (4,'w')",
        "UPDATE shop.t2 SET v='x2' WHERE id=1",
    )

    # 3. the same task_name with one more table
    states = runs.trigger(
        {"objects": ["shop.t1", "shop.t2"]},
        a_writes=[
            "INSERT INTO shop.t2 VALUES (10,'after copy')",
            "DELETE FROM shop.t2 WHERE id=2",
            "INSERT INTO shop.t1 VALUES (5,'after copy')",
        ],
        b_writes=[
            "INSERT INTO shop.t2 VALUES (20,'from b')",
            "UPDATE shop.t2 SET v='b' WHERE id=3",
            "UPDATE shop.t1 SET v='b2' WHERE id=2",
        ],
    )
    assert set(states.values()) == {"success"}, states
    same(p, "t2", [(1, "x2"), (3, "b"), (4, "w"), (10, "after copy"), (20, "from b")])
    same(p, "t1", [(1, "a2"), (2, "b2"), (3, "c"), (4, "stopped"), (5, "after copy")])
    assert progress(p.b, task_name)["t1"] == t1_progress  # t1 not copied again
    assert progress(p.b, task_name)["t2"][:2] == ("done", 4)  # t2 copied from the new snapshot
    assert "t2" not in progress(p.a, task_name, "reverse")  # not copied back
    assert checkpoint(p.b, task_name, "forward").position != fwd_p  # resumed from P and went on
    rev = checkpoint(p.a, task_name, "reverse")
    assert (
        rev.rows_inserted - rev_before.rows_inserted,
        rev.rows_updated - rev_before.rows_updated,
        rev.rows_deleted - rev_before.rows_deleted,
    ) == (1, 2, 0), rev  # B's writes only, nothing echoed
    assert conflicts(p.b, task_name, "forward") == [] and conflicts(p.a, task_name, "reverse") == []

    # 4. t1 removed: no longer synchronized, left as it is; t2 still synchronized
    states = runs.trigger(
        {"objects": ["shop.t2"]},
        a_writes=["INSERT INTO shop.t1 VALUES (6,'not synced')", "INSERT INTO shop.t2 VALUES (30,'a')"],
    )
    assert set(states.values()) == {"success"}, states
    same(p, "t2", [(1, "x2"), (3, "b"), (4, "w"), (10, "after copy"), (20, "from b"), (30, "a")])
    assert table_rows(p.b, "t1") == [(1, "a2"), (2, "b2"), (3, "c"), (4, "stopped"), (5, "after copy")]

    # 5. a mapping change: refused by task one's schema sync before anything is written
    before_a, before_b = user_objects(p.a), user_objects(p.b)
    capfd.readouterr()
    states = runs.trigger(
        {"objects": ["shop.t2"], "mapping": {"shop.t2": "t2_copy"}},
        a_writes=["INSERT INTO shop.t2 VALUES (40,'never run')"],
    )
    assert states["task_one_schema_sync"] == "failed", states
    assert states["task_one_full_data_sync"] == "upstream_failed", states
    out = "".join(capfd.readouterr())  # the task's log (dag.test() prints it)
    assert "the mapping of shop.t2 -> shop.t2 before, shop.t2_copy now" in out, out[-3000:]
    assert "new task_name" in out
    assert user_objects(p.a) == before_a and user_objects(p.b) == before_b
