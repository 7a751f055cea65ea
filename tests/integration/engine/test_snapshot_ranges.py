"""Issue 14: a large table is split into key ranges that several pipelines copy at once (real pair).

Every row arrives exactly once (row by row and CHECKSUM TABLE), the ranges recorded in ``table_progress`` cover
the whole key space, and a copy killed (SIGKILL) or stopped mid-table resumes each range where it stopped.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from helpers import q

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import FullSyncError, full_data_sync

# values a LOAD DATA line or an INSERT literal must escape: tab, newline, backslash, quote, NUL, 4-byte UTF-8
ODD_TEXT = "CONCAT('n', seq, IF(seq % 7 = 0, CONCAT(CHAR(9), CHAR(10), '\\\\', '''', CHAR(0), ' 😀'), ''))"


def direction(task_name: str, objects: list[str]) -> SyncDirection:
    return SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": objects,
        }
    )


def make_int_table(conn, rows: int) -> None:
    """``rg.nums``: a BIGINT key with gaps (every third value), a secondary index, awkward text."""
    q(conn, "CREATE DATABASE IF NOT EXISTS rg")
    q(
        conn,
        "CREATE TABLE rg.nums (id BIGINT UNSIGNED PRIMARY KEY, grp INT NOT NULL, name VARCHAR(80) NOT NULL, "
        "note TEXT NULL, KEY by_grp (grp))",
    )
    q(
        conn,
        f"INSERT INTO rg.nums SELECT seq * 3, seq % 13, {ODD_TEXT}, IF(seq % 5 = 0, NULL, REPEAT('x', seq % 40)) "
        f"FROM rg.seq_1_to_{rows}",
    )
    q(conn, "ANALYZE TABLE rg.nums")


def make_composite_table(conn, rows: int) -> None:
    """``rg.words``: a (VARCHAR, INT) key under a case- and accent-insensitive collation."""
    q(conn, "CREATE DATABASE IF NOT EXISTS rg")
    q(
        conn,
        "CREATE TABLE rg.words (region VARCHAR(10) NOT NULL, n INT NOT NULL, body VARCHAR(50) NOT NULL, "
        "PRIMARY KEY (region, n)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
    )
    q(
        conn,
        "INSERT INTO rg.words SELECT ELT(1 + seq % 6, 'alpha', 'Beta', 'éclair', 'delta', 'Zulu', 'b''q'), "
        f"seq, {ODD_TEXT} FROM rg.seq_1_to_{rows}",
    )
    q(conn, "ANALYZE TABLE rg.words")


def rows_of(conn, table: str, order: str) -> tuple:
    return q(conn, f"SELECT * FROM rg.{table} ORDER BY {order}")


def checksum(conn, table: str) -> int:
    return q(conn, f"CHECKSUM TABLE rg.{table}")[0][1]


def progress(conn, task_name: str, table: str) -> tuple[str, int, dict]:
    status, done, last_key = q(
        conn,
        f"SELECT status, rows_done, last_key FROM {ControlSchema().table('table_progress')} "
        "WHERE task_name=%s AND source_table=%s",
        (task_name, table),
    )[0]
    return status, done, json.loads(last_key)


def assert_ranges_cover_every_key(ranges: list[dict]) -> None:
    assert len(ranges) >= 2
    assert ranges[0]["lo"] is None and ranges[-1]["hi"] is None
    for before, after in itertools.pairwise(ranges):
        assert before["hi"] == after["lo"] and before["hi"] is not None


@pytest.mark.parametrize("method", ["load_data", "insert"])
def test_large_table_is_copied_by_several_pipelines_exactly_once(clean_pair, task_name, method, caplog):
    a, b = clean_pair.a.root_connect(), clean_pair.b.root_connect()
    make_int_table(a, 6000)
    d = direction(task_name, ["rg"])
    sync_schema(d, clean_pair.a.settings(), clean_pair.b.settings())
    writers: dict[str, int] = {}

    def on_chunk(table: str, rows_done: int) -> None:
        name = threading.current_thread().name
        writers[name] = writers.get(name, 0) + 1

    caplog.set_level(logging.INFO, logger="airflow_provider_dts")
    result = full_data_sync(
        d,
        clean_pair.a.settings(),
        clean_pair.b.settings(),
        method=method,
        parallel=2,
        split_rows=500,
        chunk_bytes=8000,
        on_chunk=on_chunk,
    )
    assert result.rows == 6000 and result.table_rows == {"rg.nums": 6000}
    assert rows_of(b, "nums", "id") == rows_of(a, "nums", "id")
    assert checksum(b, "nums") == checksum(a, "nums")
    assert any("rg.nums (~" in r.getMessage() and "key ranges" in r.getMessage() for r in caplog.records)
    # both pipelines wrote chunks of the one table
    assert sorted(writers) == ["dts-copy-write-0", "dts-copy-write-1"], writers
    status, done, stored = progress(b, task_name, "nums")
    assert (status, done) == ("done", 6000)
    assert_ranges_cover_every_key(stored["ranges"])
    assert all(r["done"] for r in stored["ranges"])


def test_composite_text_key_is_split_in_collation_order(clean_pair, task_name):
    a, b = clean_pair.a.root_connect(), clean_pair.b.root_connect()
    make_composite_table(a, 5000)
    d = direction(task_name, ["rg"])
    sync_schema(d, clean_pair.a.settings(), clean_pair.b.settings())
    result = full_data_sync(
        d, clean_pair.a.settings(), clean_pair.b.settings(), parallel=2, split_rows=400, chunk_bytes=6000
    )
    assert result.rows == 5000
    assert rows_of(b, "words", "region, n") == rows_of(a, "words", "region, n")
    assert checksum(b, "words") == checksum(a, "words")
    status, done, stored = progress(b, task_name, "words")
    assert (status, done) == ("done", 5000)
    assert_ranges_cover_every_key(stored["ranges"])
    # the boundaries are (region, n) literals; each range holds the rows between its boundaries
    for r in stored["ranges"]:
        assert r["hi"] is None or len(r["hi"]) == 2


KILL_SCRIPT = textwrap.dedent("""
    import json, sys
    from airflow_provider_dts.engine.config import SyncDirection
    from airflow_provider_dts.engine.servers import ConnectionSettings
    from airflow_provider_dts.engine.snapshot import full_data_sync
    cfg = json.loads(sys.stdin.read())
    full_data_sync(SyncDirection.from_dict(cfg["direction"]), ConnectionSettings(**cfg["source"]),
                   ConnectionSettings(**cfg["destination"]), chunk_bytes=3000, max_rows_per_second=3000,
                   parallel=2, split_rows=500)
""")


def _settings_dict(server) -> dict:
    s = server.settings()
    return {"host": s.host, "port": s.port, "user": s.user, "password": s.password}


def _committed_matches_progress(a, b, stored: dict) -> int:
    """Each range's rows at the destination are exactly the source's rows from its start up to its recorded
    last key (all of it when done, none when not started); returns how many ranges had started."""
    started = 0
    for r in stored["ranges"]:
        lo = int(r["lo"][0]) if r["lo"] else -1
        hi = int(r["hi"][0]) if r["hi"] else 2**63
        upto = hi if r["done"] else (int(r["last"][0]) if r["last"] else lo)
        started += r["last"] is not None or r["done"]
        got = q(b, "SELECT * FROM rg.nums WHERE id > %s AND id <= %s ORDER BY id", (lo, hi))
        want = q(a, "SELECT * FROM rg.nums WHERE id > %s AND id <= %s ORDER BY id", (lo, upto))
        assert got == want, (r, len(got), len(want))
    return started


def test_sigkill_mid_split_table_then_rerun_copies_every_row_once(clean_pair, task_name):
    a, b = clean_pair.a.root_connect(), clean_pair.b.root_connect()
    make_int_table(a, 8000)
    d = direction(task_name, ["rg"])
    sync_schema(d, clean_pair.a.settings(), clean_pair.b.settings())
    cfg = {
        "direction": d.to_dict(),
        "source": _settings_dict(clean_pair.a),
        "destination": _settings_dict(clean_pair.b),
    }
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], stdin=subprocess.PIPE)
    proc.stdin.write(json.dumps(cfg).encode())
    proc.stdin.close()
    control = ControlSchema()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if control.exists(b):
            rows = q(
                b,
                f"SELECT rows_done FROM {control.table('table_progress')} WHERE task_name=%s AND status='copying'",
                (task_name,),
            )
            if rows and rows[0][0] >= 2000:
                break
        time.sleep(0.05)
    else:
        pytest.fail("the copy did not get far enough")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    # what was committed is exactly what the progress row says, range by range
    status, done, stored = progress(b, task_name, "nums")
    assert status == "copying" and 0 < done < 8000
    assert q(b, "SELECT COUNT(*) FROM rg.nums")[0][0] == done
    assert_ranges_cover_every_key(stored["ranges"])
    assert _committed_matches_progress(a, b, stored) >= 2  # two pipelines were copying ranges at once
    assert not stored["ranges"][-1]["done"]
    first = control.read_checkpoint(b, task_name, "forward")
    assert first.binlog_file is None and first.snapshot_file

    # the source changes between the runs (past the last key: in the last range, not copied yet)
    q(a, "INSERT INTO rg.nums VALUES (99999, 1, 'late row', NULL)")
    result = full_data_sync(d, clean_pair.a.settings(), clean_pair.b.settings(), parallel=2, split_rows=500)
    assert result.resumed and result.rows == 8001
    assert rows_of(b, "nums", "id") == rows_of(a, "nums", "id")
    assert checksum(b, "nums") == checksum(a, "nums")
    status, done, after = progress(b, task_name, "nums")
    assert (status, done) == ("done", 8001)
    assert [(r["lo"], r["hi"]) for r in after["ranges"]] == [(r["lo"], r["hi"]) for r in stored["ranges"]]
    cp = control.read_checkpoint(b, task_name, "forward")
    assert (cp.binlog_file, cp.binlog_pos) == (first.snapshot_file, first.snapshot_pos)


def test_stopped_split_copy_resumes_with_one_pipeline(clean_pair, task_name):
    """The ranges recorded by a two-pipeline copy are kept when the next run has a single pipeline."""
    a, b = clean_pair.a.root_connect(), clean_pair.b.root_connect()
    make_int_table(a, 4000)
    d = direction(task_name, ["rg"])
    sync_schema(d, clean_pair.a.settings(), clean_pair.b.settings())
    stop = threading.Event()
    chunks = []

    def on_chunk(table: str, rows_done: int) -> None:
        chunks.append(rows_done)
        if len(chunks) == 6:
            stop.set()

    with pytest.raises(FullSyncError, match=r"stopped on request.*resumes"):
        full_data_sync(
            d,
            clean_pair.a.settings(),
            clean_pair.b.settings(),
            parallel=2,
            split_rows=500,
            chunk_bytes=3000,
            on_chunk=on_chunk,
            stop=stop,
        )
    status, done, stored = progress(b, task_name, "nums")
    assert status == "copying" and 0 < done < 4000
    assert q(b, "SELECT COUNT(*) FROM rg.nums")[0][0] == done
    _committed_matches_progress(a, b, stored)
    result = full_data_sync(d, clean_pair.a.settings(), clean_pair.b.settings(), parallel=1)
    assert result.resumed and result.rows == 4000
    assert rows_of(b, "nums", "id") == rows_of(a, "nums", "id")
    assert checksum(b, "nums") == checksum(a, "nums")
    status, done, after = progress(b, task_name, "nums")
    assert (status, done) == ("done", 4000)
    assert [(r["lo"], r["hi"]) for r in after["ranges"]] == [(r["lo"], r["hi"]) for r in stored["ranges"]]
