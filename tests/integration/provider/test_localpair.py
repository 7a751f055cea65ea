"""The local pair as the README runs it: `python -m airflow_provider_dts.localpair start|env|stop --dir <relative>`."""

import json
import os
import shlex
import subprocess
import sys

import pymysql
import pytest


def run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_dts.localpair", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.own_servers
def test_start_env_stop_with_a_relative_directory(tmp_path):
    started = run(["start", "--dir", "state/pair", "--extra-b=--binlog-format=MIXED"], tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
        assert set(exports) == {"AIRFLOW_CONN_DTS_SOURCE", "AIRFLOW_CONN_DTS_DESTINATION"}
        conns = {k: json.loads(shlex.split(v)[0]) for k, v in exports.items()}
        fmt = {}
        for name, c in conns.items():
            with (
                pymysql.connect(host=c["host"], port=c["port"], user=c["login"], password=c["password"]) as conn,
                conn.cursor() as cur,
            ):
                cur.execute("SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id")
                fmt[name] = cur.fetchone()
        assert fmt["AIRFLOW_CONN_DTS_SOURCE"] == ("ROW", "FULL", "FULL", 1)
        assert fmt["AIRFLOW_CONN_DTS_DESTINATION"] == ("MIXED", "FULL", "FULL", 2)  # extra flags win
        again = run(["env", "--dir", "state/pair"], tmp_path)
        assert again.stdout == started.stdout
    finally:
        stopped = run(["stop", "--dir", "state/pair"], tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    for side in ("a", "b"):
        assert not (tmp_path / "state" / "pair" / side / "p.pid").exists()
    pids = json.loads((tmp_path / "state" / "pair" / "pair.json").read_text())
    assert all(os.path.isabs(s["datadir"]) for s in pids.values())
