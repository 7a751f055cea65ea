"""The demo as a user runs it (issue 13, item 6): `make demo`, `make demo` again (kept, not wiped),
`make demo-stop` in under 15 s with nothing left running, `make demo` once more resumes the same demo
(same servers and rows, the sync picks up a write made while it was down)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from airflow_provider_dts.demo import AirflowStandalone, _live_group_members, compare_shop, direction_status, sql
from airflow_provider_dts.localpair import LocalPair, free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def make(target: str, env: dict, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        ["make", "-s", "-C", str(REPO), target], env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - started


def alive(pid: int) -> bool:
    return bool(_live_group_members(pid))


@pytest.mark.own_servers
def test_demo_keeps_itself_and_stops_fast(tmp_path):
    state = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"DTS_DEMO_DIR": str(state), "DTS_DEMO_PORT": str(free_port())})
    try:
        first, _ = make("demo", env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "Both sides are equal." in first.stdout
        pair = LocalPair.load(state / "pair")
        orders = sql(pair.b, "SELECT COUNT(*) FROM shop.orders")[0][0]

        again, took = make("demo", env, timeout=60)
        assert again.returncode == 0 and "kept as it is" in again.stdout, again.stdout
        assert took < 30

        status, _ = make("demo-status", env, timeout=60)
        assert status.returncode == 0 and status.stdout.count("Synchronizing") == 2, status.stdout

        # the README's CLI block for the demo, run as printed (paths of this test's demo)
        def readme_cli(command: str) -> subprocess.CompletedProcess:
            script = (
                f"cd {REPO}\n"
                f'eval "$(.venv/bin/python -m airflow_provider_dts.localpair env --dir {state}/pair)"\n'
                f"export AIRFLOW_HOME={state}/airflow AIRFLOW_API_URL=http://localhost:{env['DTS_DEMO_PORT']}\n"
                f".venv/bin/python -m airflow_provider_dts.cli {command}\n"
            )
            return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)

        shown = readme_cli("status")
        assert shown.returncode == 0 and "dts_two_way_sync/forward" in shown.stdout, shown.stdout + shown.stderr
        assert readme_cli("stop --task-name dts_two_way_sync").returncode == 0
        deadline = time.monotonic() + 60
        while any(s.state != "Stopped" for s in direction_status(pair, "dts_two_way_sync").values()):
            assert time.monotonic() < deadline, direction_status(pair, "dts_two_way_sync")
            time.sleep(1)
        resumed = readme_cli("resume --task-name dts_two_way_sync")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        deadline = time.monotonic() + 90
        while any(s.state != "Synchronizing" for s in direction_status(pair, "dts_two_way_sync").values()):
            assert time.monotonic() < deadline, direction_status(pair, "dts_two_way_sync")
            time.sleep(1)

        af = AirflowStandalone(state / "airflow")
        pids = [af.pid(), pair.a.pid(), pair.b.pid()]
        assert all(pids) and all(alive(p) for p in pids), pids
        stop, took = make("demo-stop", env, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert took < 15, f"make demo-stop took {took:.1f}s\n{af.log_tail(20)}"
        left = {p: _live_group_members(p) for p in pids if alive(p)}
        assert not left, f"still running after demo-stop: {left}"
        assert "sent SIGTERM to the triggerer" in af.log_tail(20) and "stopped after" in af.log_tail(20)

        # write while everything is down; `make demo` keeps the demo and the sync resumes from its checkpoint
        pair.a.start()
        sql(
            pair.a,
            "INSERT INTO shop.orders (id, customer_id, item, qty, price, updated_at) "
            "VALUES (900001, 1, 'while down', 1, 1.00, UTC_TIMESTAMP(6))",
        )
        pair.a.stop()
        third, _ = make("demo", env)
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
        assert "Keeping the existing demo" in third.stdout and "Loading the sample" not in third.stdout
        pair = LocalPair.load(state / "pair")
        deadline = time.monotonic() + 90
        while sql(pair.b, "SELECT COUNT(*) FROM shop.orders WHERE id = 900001")[0][0] != 1:
            assert time.monotonic() < deadline, direction_status(pair, "dts_two_way_sync")
            time.sleep(1)
        assert sql(pair.b, "SELECT COUNT(*) FROM shop.orders")[0][0] == orders + 1
        assert all(v["equal"] for v in compare_shop(pair.a, pair.b).values())
    finally:
        stop, took = make("demo-stop", env, timeout=120)
        assert stop.returncode == 0
    assert took < 15, f"second make demo-stop took {took:.1f}s"
