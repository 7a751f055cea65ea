"""Health of a sync in Airflow itself (issue 13, item 4), under a real scheduler and triggerer.

The two-way DAG runs both directions; its ``health`` task (deferred beside them) emits the sync's metrics from the
triggerer through Airflow's stats to a StatsD listener ([metrics] statsd_on, as a user configures it); each
incremental task links to the status page at its direction ("DTS status"). ``cli stop`` then marks both incremental
tasks *skipped*: their deferred triggers are cancelled, so the engines record ``Stopped`` with their checkpoints,
the grid shows them skipped (not a green success), the health watcher ends, and the run ends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from dag_helpers import both, diagnostics, wait_until

from airflow_provider_dts.demo import DAG_ID, AirflowStandalone, direction_status, sql
from airflow_provider_dts.localpair import free_port

pytestmark = pytest.mark.e2e


def listen_statsd() -> tuple[int, list[str], threading.Event]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                lines.extend(sock.recv(65535).decode().splitlines())
            except TimeoutError:
                continue
        sock.close()

    threading.Thread(target=read, daemon=True).start()
    return sock.getsockname()[1], lines, done


def test_cli_stop_skips_the_incremental_tasks_and_the_engines_stop(clean_pair, task_name, tmp_path):
    pair = clean_pair
    started = time.monotonic()
    sql(
        pair.a,
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)",
        "INSERT INTO shop.t VALUES (1, 1)",
    )
    port, lines, done = listen_statsd()
    env = {
        **pair.env(),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    af = AirflowStandalone(tmp_path / "airflow", port=free_port(), env=env)
    af.start()
    try:
        af.wait_ready(timeout=240)
        af.wait_dag(timeout=120)
        assert not af.import_errors(), af.import_errors()
        af.cli("dags", "unpause", DAG_ID)
        af.cli("dags", "trigger", DAG_ID, "--conf", json.dumps({"objects": ["shop"], "task_name": task_name}))
        (run_id,) = af.run_ids()
        wait_until(lambda: both(pair, task_name, "Synchronizing"), 300, "both Synchronizing", af, pair, task_name)
        states = af.task_states()
        assert states["health"] == "deferred" and states["task_two_incremental"] == "deferred", states

        # the running task links to its direction on the status page
        q = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
        links = af.api("GET", f"{q}/task_one_incremental/links")["extra_links"]
        assert links == {"DTS status": f"{af.url}/dts/#direction-{task_name}-forward"}, links
        assert af.api("GET", f"{q}/task_two_incremental/links")["extra_links"]["DTS status"].endswith(
            f"/dts/#direction-{task_name}-reverse"
        )

        # metrics from the triggerer, per direction
        wait_until(
            lambda: any(ln.startswith(f"airflow.dts.lag_seconds.{task_name}.reverse:") for ln in lines),
            60,
            "the health task's metrics",
            af,
            pair,
            task_name,
        )
        assert any(ln.startswith(f"airflow.dts.state.{task_name}.forward.Synchronizing:1|g") for ln in lines)

        # stop, exactly as the README prints it
        cli_env = {**af.env(), "AIRFLOW_API_URL": af.url}
        stop = subprocess.run(
            [sys.executable, "-m", "airflow_provider_dts.cli", "stop", "--task-name", task_name],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "task_one_incremental skipped" in stop.stdout
        # skipping a deferred task cancels its trigger: the engines stop and record Stopped with their checkpoints
        wait_until(lambda: both(pair, task_name, "Stopped"), 60, "both Stopped", af, pair, task_name)
        for st in direction_status(pair, task_name).values():
            assert st.binlog_file and st.binlog_pos and st.message and st.message.startswith("stopped at"), st
        # the health watcher ends with the run's other tasks, and the run with it
        wait_until(lambda: af.task_states().get("health") == "success", 60, "health ended", af, pair, task_name)
        states = af.task_states()
        assert states["task_one_incremental"] == states["task_two_incremental"] == "skipped", states

        def run_state() -> str:
            with af._db() as db:
                return db.execute("SELECT state FROM dag_run WHERE run_id=?", (run_id,)).fetchone()[0]

        wait_until(lambda: run_state() != "running", 30, "the run to end", af, pair, task_name)
        assert run_state() == "success", diagnostics(af, pair, task_name)
    finally:
        af.stop()
        done.set()
    assert not af.running()
    print(f"e2e health test took {time.monotonic() - started:.0f}s")
