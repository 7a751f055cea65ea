"""SIGTERM under ``airflow dags test`` (issue 10, item 5): a deferred task's trigger runs inline there, with
the task runner's leftover SIGTERM handler (triggers/inline.py), so the command used to ignore SIGTERM for as
long as the trigger ran. Here the real command runs in a subprocess against the suite's pair, is sent SIGTERM
while it waits in a deferred task, and must exit promptly, leave no process behind (the binlog reader child
included) and leave the direction ``Stopped`` with its checkpoint when its engine was running.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_dts.demo import direction_status, load_sample_shop
from airflow_provider_dts.engine.status import DirectionStatus, judge

REPO = Path(__file__).resolve().parents[3]
INLINE = "[DAG TEST] running trigger in line"

INCREMENTAL_DAG = """
import os
from airflow.sdk import DAG
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

with DAG(dag_id="dts_sigterm_incremental", schedule=None) as dag:
    IncrementalSyncOperator(task_id="incremental", direction=os.environ["DTS_TEST_DIRECTION"], progress_interval=2)
"""


def _group_members(pgid: int) -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_text().replace("\0", " ")[:120]
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[2] == str(pgid) and fields[0] != "Z":
                out.append(f"{entry.name} {cmd}")
    return out


def _dags_test(tmp_path: Path, dag_id: str, conf: dict | None, dags_folder: Path, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__DAGS_FOLDER")}
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(extra_env or {})
    log = tmp_path / f"{dag_id}.log"
    cmd = [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id]
    if conf is not None:
        cmd += ["-c", json.dumps(conf)]
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(tmp_path),
        )
    return proc, log


def _terminate_and_check(proc: subprocess.Popen, log: Path) -> float:
    """SIGTERM the command (only its own pid); it must exit within 30 s, its whole group with it."""
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"`airflow dags test` ignored SIGTERM for 30 s\n{log.read_text()[-4000:]}")
    took = time.monotonic() - started
    assert rc == 128 + signal.SIGTERM, f"exit code {rc}\n{log.read_text()[-4000:]}"
    deadline = time.monotonic() + 10
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _group_members(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"processes left after SIGTERM: {left}"
    return took


def _wait_log(proc, log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"`airflow dags test` exited ({proc.returncode}) before {text!r}\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"no {text!r} within {timeout}s\n{log.read_text()[-4000:]}")


def test_sigterm_stops_the_running_incremental_sync_under_dags_test(clean_pair, task_name, airflow_db, tmp_path):
    pair = clean_pair
    load_sample_shop(pair.a, customers=5, orders=5)
    load_sample_shop(pair.b, customers=5, orders=5)
    direction = json.dumps(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
            "initial_full_data_sync": False,
            "existing_table_mode": "Ignore",
        }
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "sigterm_dag.py").write_text(INCREMENTAL_DAG)
    proc, log = _dags_test(tmp_path, "dts_sigterm_incremental", None, dags, {"DTS_TEST_DIRECTION": direction})
    _wait_log(proc, log, INLINE, 120)
    deadline = time.monotonic() + 60
    while direction_status(pair, task_name)["forward"].state != "Synchronizing":
        assert time.monotonic() < deadline, f"not Synchronizing\n{log.read_text()[-4000:]}"
        assert proc.poll() is None, log.read_text()[-4000:]
        time.sleep(0.5)
    # the engine's binlog reader child runs in the command's process group
    assert any("reader_process" in p for p in _group_members(proc.pid)), _group_members(proc.pid)

    took = _terminate_and_check(proc, log)
    assert took < 20, f"took {took:.1f}s to stop"
    st = direction_status(pair, task_name)["forward"]
    assert st.state == "Stopped" and st.binlog_file and st.binlog_pos, (st, log.read_text()[-3000:])
    assert "SIGTERM received while the trigger runs inline" in log.read_text()


def test_sigterm_stops_the_two_way_dag_waiting_in_a_deferred_task(clean_pair, task_name, airflow_db, tmp_path):
    """The two-way DAG as the issue ran it: whichever deferred task `dags test` runs first (task one's
    incremental sync or the sensor waiting for it), SIGTERM ends the command at once."""
    pair = clean_pair
    load_sample_shop(pair.a, customers=10, orders=20)
    proc, log = _dags_test(tmp_path, "dts_two_way_sync", {"objects": ["shop"], "task_name": task_name}, REPO / "dags")
    _wait_log(proc, log, INLINE, 180)
    time.sleep(3)  # well inside the wait (the sensor polls every 5 s)
    took = _terminate_and_check(proc, log)
    assert took < 20, f"took {took:.1f}s to stop"
    st = direction_status(pair, task_name)["forward"]
    text = log.read_text()
    if "starting incremental sync of" in text:  # task one's engine ran inline: it recorded Stopped
        assert st.state == "Stopped", st
    else:  # the sensor was waiting; task one never started its incremental sync
        assert "waiting for Synchronizing" in text and st.state == "Initializing", st
    assert st.state != "Synchronizing"


def _status(state: str, age: float | None) -> DirectionStatus:
    now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    return DirectionStatus(
        "t",
        "forward",
        state,
        "full data sync complete",
        lag_seconds=None,
        age_seconds=age,
        updated_at=(now - _dt.timedelta(seconds=age or 0)).isoformat(),
    )


def test_inline_wait_on_a_state_nobody_writes_fails_instead_of_hanging():
    """Pure rule (judge): under dags test nothing else runs while the sensor waits, so a stale row fails."""
    verdict, reason = judge(_status("Initializing", 300), 10, 120, inline=True)
    assert verdict == "fail" and "Under `airflow dags test` tasks run one at a time" in reason
    assert "forward is Initializing" in reason and "airflow standalone" in reason
    # a fresh row, or the same row under a real triggerer, keeps waiting
    assert judge(_status("Initializing", 30), 10, 120, inline=True)[0] == "wait"
    assert judge(_status("Initializing", 300), 10, 120, inline=False)[0] == "wait"
