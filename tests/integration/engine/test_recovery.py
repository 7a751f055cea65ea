"""Issue 10, recovery paths: a full copy killed mid-way resumes when the same task is simply run again (no
setting changed), and the precheck says why the half-copied tables are not a name clash."""

from __future__ import annotations

import threading

import pytest
from helpers import q

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.precheck import PASS, run_precheck
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import FullSyncError, full_data_sync


def test_a_killed_copy_resumes_on_a_plain_rerun(clean_pair, task_name):
    pair = clean_pair
    with pair.a.root_connect() as a:
        q(a, "CREATE DATABASE rec")
        q(a, "CREATE TABLE rec.big (id INT PRIMARY KEY, v VARCHAR(100))")
        q(a, "INSERT INTO rec.big SELECT seq, REPEAT('x', 80) FROM rec.seq_1_to_3000")
        q(a, "CREATE TABLE rec.small (id INT PRIMARY KEY)")
        q(a, "INSERT INTO rec.small VALUES (1), (2)")
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "role": "forward",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["rec"],
        }
    )
    src, dst = pair.a.settings(), pair.b.settings()

    def initialize(**kw):
        report = run_precheck(d, src, dst)
        assert report.passed, [r.line() for r in report.failed]
        sync_schema(d, src, dst)
        return report, full_data_sync(d, src, dst, **kw)

    stop, chunks = threading.Event(), []

    def on_chunk(table, rows_done):
        chunks.append(rows_done)
        if len(chunks) == 3:
            stop.set()  # the copy dies after three committed chunks

    with pytest.raises(FullSyncError):
        initialize(chunk_bytes=4000, on_chunk=on_chunk, stop=stop)
    with pair.b.root_connect() as b:
        copied = q(b, "SELECT COUNT(*) FROM rec.big")[0][0]
    assert 0 < copied < 3000

    # the same task run again, no setting changed: the precheck passes and says why, the copy resumes
    report, result = initialize()
    clash = report.result("destination_name_clash")
    assert clash.status == PASS and "earlier, interrupted run" in clash.reason
    assert result.resumed and result.rows == 3002
    with pair.a.root_connect() as a, pair.b.root_connect() as b:
        for t in ("big", "small"):
            assert q(a, f"SELECT * FROM rec.{t} ORDER BY id") == q(b, f"SELECT * FROM rec.{t} ORDER BY id")
            assert q(a, f"CHECKSUM TABLE rec.{t}")[0][1] == q(b, f"CHECKSUM TABLE rec.{t}")[0][1]


def _cli(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_dts.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_reinitialize_from_the_documented_command(clean_pair, task_name):
    """The command says what it will overwrite, does nothing without --yes, refuses while the direction runs,
    and afterwards the initial sync runs again and makes a drifted destination equal."""
    from syncing import Sync

    pair = clean_pair
    with pair.a.root_connect() as a:
        q(a, "CREATE DATABASE rec")
        q(a, "CREATE TABLE rec.t (id INT PRIMARY KEY, v INT)")
        q(a, "INSERT INTO rec.t SELECT seq, seq FROM rec.seq_1_to_500")
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "role": "forward",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["rec"],
        }
    )
    src, dst = pair.a.settings(), pair.b.settings()
    assert run_precheck(d, src, dst).passed  # stores the direction's settings at its home
    sync_schema(d, src, dst)
    full_data_sync(d, src, dst)
    with pair.b.root_connect() as b:  # the destination drifts behind the sync's back
        q(b, "SET sql_log_bin=0")
        q(b, "DELETE FROM rec.t WHERE id <= 100")
        q(b, "INSERT INTO rec.t VALUES (9999, 1)")

    with Sync(d, pair.a, pair.b):
        busy = _cli("reinitialize", "--task-name", task_name, "--direction", "task_one", "--yes")
    assert busy.returncode == 1 and "is running" in busy.stderr and "stop it first" in busy.stderr

    dry = _cli("reinitialize", "--task-name", task_name, "--direction", "task_one")
    assert dry.returncode == 2, dry.stderr
    assert "empty and copy again from the source: rec.t" in dry.stdout and "nothing was changed" in dry.stdout
    with pair.b.root_connect() as b:
        assert q(b, "SELECT COUNT(*) FROM rec.t")[0][0] == 401

    done = _cli("reinitialize", "--task-name", task_name, "--direction", "task_one", "--yes")
    assert done.returncode == 0, done.stderr
    with pair.b.root_connect() as b:
        assert q(b, "SELECT COUNT(*) FROM rec.t")[0][0] == 0
        assert q(b, f"SELECT COUNT(*) FROM dts_meta.checkpoint WHERE task_name='{task_name}'")[0][0] == 0

    assert run_precheck(d, src, dst).passed
    sync_schema(d, src, dst)
    result = full_data_sync(d, src, dst)
    assert not result.already_initialized and result.rows == 500
    with pair.a.root_connect() as a, pair.b.root_connect() as b:
        assert q(a, "SELECT * FROM rec.t ORDER BY id") == q(b, "SELECT * FROM rec.t ORDER BY id")
        assert q(a, "CHECKSUM TABLE rec.t")[0][1] == q(b, "CHECKSUM TABLE rec.t")[0][1]


def test_reinitializing_task_two_never_truncates_what_task_one_selects(clean_pair, task_name):
    """A TRUNCATE on task one's source would be applied to its destination by task one's DDL sync: task two's
    re-initialization leaves every table task one selects alone, and refuses when it cannot tell which."""
    from airflow_provider_dts.engine.reinit import ReinitError, plan

    pair = clean_pair
    for server in (pair.a, pair.b):
        with server.root_connect() as conn:
            q(conn, "CREATE DATABASE rec")
            q(conn, "CREATE TABLE rec.t (id INT PRIMARY KEY)")
            q(conn, "INSERT INTO rec.t VALUES (1)")
    rev = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "role": "reverse",
            "source_conn_id": "dts_destination",
            "destination_conn_id": "dts_source",
            "objects": ["rec"],
            "exclude_ddl": True,
        }
    )
    with pytest.raises(ReinitError, match="task one's settings"):
        plan(rev, pair.b.settings(), pair.a.settings())
    fwd = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "role": "forward",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["rec"],
            "existing_table_mode": "Ignore",
        }
    )
    assert run_precheck(fwd, pair.a.settings(), pair.b.settings()).passed  # stores task one's settings at B
    p = plan(rev, pair.b.settings(), pair.a.settings())
    assert p.truncate == [] and p.kept == ["rec.t"]
