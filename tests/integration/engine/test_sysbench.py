"""A standard load tool, both ways at once: Debian's sysbench oltp_write_only writes one database on A and
another on B while both directions run; afterwards both servers hold the same rows (row by row and CHECKSUM
TABLE), with no conflict and no echo (issue 9: "a two-way load from a standard tool")."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
from helpers import wait_until
from syncing import Sync, make_direction, sql, state_row

from airflow_provider_dts.engine.control import State
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync

TABLES, ROWS = 2, 2000


def sysbench(server, db: str, command: str, *extra: str) -> str:
    exe = shutil.which("sysbench")
    assert exe, "sysbench is not installed: `make deps` installs it (Debian package sysbench)"
    out = subprocess.run(
        [
            exe,
            "oltp_write_only",
            "--db-driver=mysql",
            f"--mysql-socket={server.socket_path}",
            "--mysql-user=root",
            f"--mysql-db={db}",
            f"--tables={TABLES}",
            f"--table-size={ROWS}",
            *extra,
            command,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"sysbench {command} on {db} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def checksums(server) -> dict[str, int]:
    names = ", ".join(f"{db}.sbtest{i}" for db in ("sb_a", "sb_b") for i in range(1, TABLES + 1))
    return {r[0]: r[1] for r in sql(server, f"CHECKSUM TABLE {names}")}


@pytest.mark.own_servers
def test_sysbench_write_load_on_both_servers_converges(clean_pair, task_name):
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE sb_a", "CREATE DATABASE sb_b")
    sysbench(pair.a, "sb_a", "prepare")
    sysbench(pair.a, "sb_b", "prepare")
    fwd = make_direction(task_name, objects=["sb_a", "sb_b"], initial_full_data_sync=True)
    rev = make_direction(task_name, "reverse", objects=["sb_a", "sb_b"])
    src, dst = pair.a.settings(name="A"), pair.b.settings(name="B")
    sync_schema(fwd, src, dst)
    full_data_sync(fwd, src, dst)
    assert checksums(pair.a) == checksums(pair.b)

    with Sync(fwd, pair.a, pair.b), Sync(rev, pair.b, pair.a):
        reports: dict[str, str] = {}
        runs = [
            threading.Thread(
                target=lambda s=s, db=db: reports.__setitem__(
                    db, sysbench(s, db, "run", "--time=10", "--threads=2", "--report-interval=0")
                )
            )
            for s, db in ((pair.a, "sb_a"), (pair.b, "sb_b"))
        ]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        for text in reports.values():
            assert "transactions:" in text and " 0 (0.00 per sec.)" not in text.split("transactions:")[1][:40], text
        wait_until(lambda: checksums(pair.a) == checksums(pair.b), 120, "equal checksums on both servers")
        for db in ("sb_a", "sb_b"):
            for i in range(1, TABLES + 1):
                query = f"SELECT * FROM {db}.sbtest{i} ORDER BY id"
                assert sql(pair.a, query) == sql(pair.b, query), f"{db}.sbtest{i} differs"
        for server, role in ((pair.b, "forward"), (pair.a, "reverse")):
            row = state_row(server, task_name, role)
            assert row["state"] == State.SYNCHRONIZING and row["conflicts"] == 0, row
            assert row["transactions_applied"] > 100, row
