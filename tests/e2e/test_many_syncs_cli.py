"""Several syncs at once under a real Airflow, operated from the provider CLI (issue 13, items 1 and 2).

Two two-way syncs on two database pairs (each its own task_name, connections and objects) are triggered one
after the other and both reach Synchronizing at the same time; a trigger with a misspelt key fails within a
minute while they run; a trigger reusing a running task_name is refused at once, naming it. Then the CLI, run
exactly as the README prints it: status lists every direction, stop stops a sync (Stopped, nothing applied),
resume resumes it from its checkpoint (the row written meanwhile arrives), verify finds both sides equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from dag_helpers import wait_until

from airflow_provider_dts.demo import DAG_ID, AirflowStandalone, compare_shop, direction_status, load_sample_shop, sql
from airflow_provider_dts.localpair import LocalPair, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def second_pair(tmp_path_factory):
    p = LocalPair.create(tmp_path_factory.mktemp("pair2"))
    p.a.server_id, p.b.server_id = 11, 12
    p.start()
    yield p
    p.stop()


def cli(af: AirflowStandalone, *args: str) -> subprocess.CompletedProcess:
    """`python -m airflow_provider_dts.cli ...` with the environment the README names: the Airflow
    connections (AIRFLOW_CONN_*), AIRFLOW_HOME, AIRFLOW_API_URL."""
    env = af.env()
    env["AIRFLOW_API_URL"] = af.url
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_dts.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def run_state(af: AirflowStandalone, run_id: str) -> tuple[str | None, dict]:
    with af._db() as db:
        row = db.execute("SELECT state FROM dag_run WHERE run_id=?", (run_id,)).fetchone()
    return (row[0] if row else None), af.task_states(run_id=run_id)


def trigger(af: AirflowStandalone, conf: dict) -> str:
    before = set(af.run_ids())
    af.cli("dags", "trigger", DAG_ID, "--conf", json.dumps(conf))
    new = [r for r in af.run_ids() if r not in before]
    assert len(new) == 1, new
    return new[0]


@pytest.mark.own_servers
def test_two_syncs_at_once_bad_and_duplicate_triggers_and_the_cli(clean_pair, second_pair, tmp_path):
    pair, pair2 = clean_pair, second_pair
    for s in (pair2.a, pair2.b):
        sql(s, "DROP DATABASE IF EXISTS dts_meta")
    load_sample_shop(pair.a, customers=30, orders=60)
    sql(
        pair2.a,
        "CREATE DATABASE stock",
        "CREATE TABLE stock.items (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO stock.items VALUES (1, 'bolt'), (2, 'nut')",
    )
    env = {**pair.env(), **pair2.env(("dts_c", "dts_d"))}
    af = AirflowStandalone(tmp_path / "airflow", port=free_port(), env=env)
    af.start()
    try:
        af.wait_ready(timeout=240)
        af.wait_dag(timeout=120)
        assert not af.import_errors(), af.import_errors()
        af.cli("dags", "unpause", DAG_ID)
        one, two = "shop_eu", "stock_eu"  # the README's names (clean_pair and second_pair start empty)
        run_one = trigger(af, {"objects": ["shop"], "task_name": one})
        run_two = trigger(
            af, {"objects": ["stock"], "task_name": two, "source_conn_id": "dts_c", "destination_conn_id": "dts_d"}
        )
        bad_at = time.monotonic()
        run_bad = trigger(af, {"objects": ["shop"], "task_name": "typo", "conflict_polcy": "Ignore"})

        # the bad conf fails within a minute, while the two syncs run
        deadline = bad_at + 60
        while run_state(af, run_bad)[0] != "failed":
            assert time.monotonic() < deadline, f"bad conf not failed in 60 s: {run_state(af, run_bad)}"
            time.sleep(1)
        assert run_state(af, run_bad)[1]["configure"] == "failed"
        assert "conflict_polcy: unknown setting" in af.task_logs()

        def synchronizing():
            a = direction_status(pair, one)
            b = direction_status(pair2, two)
            return all(s.state == "Synchronizing" for s in [*a.values(), *b.values()])

        wait_until(
            synchronizing,
            360,
            "both syncs' four directions Synchronizing at once",
            af,
            pair,
            one,
            fail_on_task_failure=False,
        )
        assert run_state(af, run_one)[0] == run_state(af, run_two)[0] == "running"
        assert sql(pair2.b, "SELECT id, name FROM stock.items ORDER BY id") == [(1, "bolt"), (2, "nut")]

        # the same task_name again: refused at once by configure, naming the running sync
        dup_at = time.monotonic()
        run_dup = trigger(af, {"objects": ["shop"], "task_name": one})
        while run_state(af, run_dup)[0] != "failed":
            assert time.monotonic() < dup_at + 60, f"duplicate not refused in 60 s: {run_state(af, run_dup)}"
            time.sleep(1)
        assert f"task_name '{one}' is already running" in af.task_logs()
        assert run_state(af, run_one)[0] == "running"

        # --- the CLI as the README prints it
        status = cli(
            af,
            "status",
            "--conn-id",
            "dts_source",
            "--conn-id",
            "dts_destination",
            "--conn-id",
            "dts_c",
            "--conn-id",
            "dts_d",
        )
        assert status.returncode == 0, status.stderr
        for key in (f"{one}/forward", f"{one}/reverse", f"{two}/forward", f"{two}/reverse"):
            line = next(ln for ln in status.stdout.splitlines() if ln.startswith(key + " "))
            assert "state=Synchronizing" in line, status.stdout

        stop = cli(af, "stop", "--task-name", one)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        wait_until(
            lambda: all(s.state == "Stopped" for s in direction_status(pair, one).values()),
            60,
            "both directions of the first sync Stopped",
            af,
            pair,
            one,
            fail_on_task_failure=False,
        )
        assert all(s.state == "Synchronizing" for s in direction_status(pair2, two).values())  # the other runs on
        sql(
            pair.a,
            "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
            "VALUES (50001, 1, 'while stopped', 1, 1.00, UTC_TIMESTAMP(6))",
        )
        time.sleep(3)
        assert sql(pair.b, "SELECT COUNT(*) FROM shop.orders WHERE id = 50001")[0][0] == 0
        assert "state=Stopped" in cli(af, "status").stdout

        resume = cli(af, "resume", "--task-name", one)
        assert resume.returncode == 0, resume.stdout + resume.stderr
        wait_until(
            lambda: sql(pair.b, "SELECT COUNT(*) FROM shop.orders WHERE id = 50001")[0][0] == 1,
            120,
            "the row written while stopped",
            af,
            pair,
            one,
            fail_on_task_failure=False,
        )
        wait_until(
            lambda: all(s.state == "Synchronizing" for s in direction_status(pair, one).values()),
            60,
            "resumed",
            af,
            pair,
            one,
            fail_on_task_failure=False,
        )
        assert all(v["equal"] for v in compare_shop(pair.a, pair.b).values())

        verify = cli(af, "verify", "--task-name", one)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert f"{one}/forward" in verify.stdout and "both sides equal" in verify.stdout
    finally:
        af.stop()
    assert not af.running()
