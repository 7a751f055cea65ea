"""What an idle two-way sync costs: binlog bytes per server and lag, with nobody writing (a script, not a test).

    .venv/bin/python bench/idle.py [--seconds 120] [--settle 20]

Starts its own pair, initializes a two-way task on one small table, runs both directions in threads (as the
triggerer runs them), waits until both are Synchronizing and ``--settle`` seconds more, then measures for
``--seconds`` seconds with no user writes:

- the binlog bytes each server adds, per 30 s, per hour and per day, beside the anchor of issue 13 (about
  85 KB every 30 s per server before the idle work), and which tables of the control schema they come from;
- the lag both directions report (sampled every second from ``sync_state``): it must stay under 2 s;
- one row written on each side afterwards and the time until it is on the other side.
"""

from __future__ import annotations

import argparse
import collections
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import QueryEvent
from pymysqlreplication.row_event import TableMapEvent

from airflow_provider_dts.engine import binlog_patches
from airflow_provider_dts.engine.binlog import stream_settings
from airflow_provider_dts.engine.config import TwoWayTask
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.model import position_le
from airflow_provider_dts.engine.precheck import run_precheck
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.localpair import LocalPair, LocalServer

ANCHOR_BYTES_PER_30S = 85_000  # issue 13: "each server's binlog grows about 85 KB every 30 s"


def q(server: LocalServer, sql: str, args=None):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def binlog_bytes(server: LocalServer) -> int:
    return sum(int(r[1]) for r in q(server, "SHOW BINARY LOGS"))


def master_pos(server: LocalServer) -> tuple[str, int]:
    r = q(server, "SHOW MASTER STATUS")[0]
    return str(r[0]), int(r[1])


def breakdown(server: LocalServer, start: tuple[str, int], end: tuple[str, int]) -> dict[str, int]:
    """Bytes of the range by the table its row events touch ('other' for transaction framing)."""
    reader = BinLogStreamReader(
        connection_settings=stream_settings(server.settings()),
        server_id=0x7000_0101,
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=False,
        enable_logging=False,
    )
    out: dict[str, int] = collections.Counter()
    table = "other"
    try:
        for ev in reader:
            if not position_le((reader.log_file, reader.log_pos), end):
                break
            size = int(ev.event_size)
            if isinstance(ev, TableMapEvent):
                table = f"{ev.schema}.{ev.table}"
            elif isinstance(ev, QueryEvent) and ev.query.strip().upper() not in ("BEGIN", "COMMIT"):
                table = "statements"
            out[table if table != "other" else "other"] += size
            if type(ev).__name__ in ("XidEvent",):
                table = "other"
    finally:
        reader.close()
    return dict(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--settle", type=int, default=20)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    binlog_patches.install()
    base = Path(tempfile.mkdtemp(prefix="dts-bench-idle-"))
    pair = LocalPair.create(base)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        pair.start()
        q(pair.a, "CREATE DATABASE shop")
        q(pair.a, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(40), at DATETIME(6))")
        q(pair.a, "INSERT INTO shop.t VALUES (1, 'one', NOW(6)), (2, 'two', NOW(6))")
        task = TwoWayTask.from_dict(
            {"name": "idle", "forward": {"source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}}
        )
        a, b = pair.a.settings(), pair.b.settings()
        for d, src, dst in ((task.forward, a, b), (task.reverse, b, a)):
            report = run_precheck(d, src, dst)
            assert report.passed, [r.line() for r in report.failed]
            if d.role == "forward":
                sync_schema(d, src, dst)
            full_data_sync(d, src, dst)
        for d, src, dst in ((task.forward, a, b), (task.reverse, b, a)):
            t = threading.Thread(target=run_direction, args=(d, src, dst), kwargs={"stop": stop}, daemon=True)
            t.start()
            threads.append(t)
        control = ControlSchema()
        homes = ((pair.b, "forward"), (pair.a, "reverse"))

        def states() -> dict[str, dict]:
            out = {}
            for server, role in homes:
                conn = server.root_connect()
                try:
                    out[role] = control.get_state(conn, "idle", role) or {}
                finally:
                    conn.close()
            return out

        deadline = time.monotonic() + 120
        while not all(s.get("state") == State.SYNCHRONIZING for s in states().values()):
            if time.monotonic() > deadline:
                raise SystemExit(f"not synchronizing after 120 s: {states()}")
            time.sleep(0.5)
        time.sleep(args.settle)
        before = {n: (binlog_bytes(s), master_pos(s)) for n, s in (("A", pair.a), ("B", pair.b))}
        lags: dict[str, list[float]] = {"forward": [], "reverse": []}
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            for role, st in states().items():
                if st.get("lag_seconds") is not None:
                    lags[role].append(float(st["lag_seconds"]))
            time.sleep(1.0)
        elapsed = time.monotonic() - t0
        after = {n: (binlog_bytes(s), master_pos(s)) for n, s in (("A", pair.a), ("B", pair.b))}

        print(f"\nidle two-way sync, {elapsed:.0f} s measured after {args.settle} s of settling, nobody writing\n")
        print(f"{'server':<8}{'bytes/30 s':>12}{'anchor/30 s':>13}{'ratio':>8}{'MB/day':>9}   biggest sources")
        for name, server in (("A", pair.a), ("B", pair.b)):
            grown = after[name][0] - before[name][0]
            per30 = grown * 30 / elapsed
            parts = breakdown(server, before[name][1], after[name][1])
            top = ", ".join(f"{k} {v * 30 / elapsed:,.0f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:4])
            print(
                f"{name:<8}{per30:>12,.0f}{ANCHOR_BYTES_PER_30S:>13,}{per30 / ANCHOR_BYTES_PER_30S:>8.3f}"
                f"{per30 * 2880 / 1e6:>9.2f}   {top}"
            )
        print(f"\n{'direction':<10}{'lag p50 s':>10}{'lag max s':>10}   (goal: idle lag under 2 s)")
        for role, values in lags.items():
            if values:
                print(f"{role:<10}{statistics.median(values):>10.2f}{max(values):>10.2f}")
            else:
                print(f"{role:<10}{'-':>10}{'-':>10}   no lag reported")
        # a write on each side after the idle time: how long until it is on the other side
        for name, src, dst, key in (("A->B", pair.a, pair.b, 101), ("B->A", pair.b, pair.a, 102)):
            q(src, "INSERT INTO shop.t VALUES (%s, 'after idle', NOW(6))", (key,))
            t1 = time.monotonic()
            while not q(dst, "SELECT 1 FROM shop.t WHERE id=%s", (key,)):
                if time.monotonic() - t1 > 30:
                    print(f"{name}: the row did not arrive in 30 s")
                    break
                time.sleep(0.01)
            else:
                print(f"{name}: a row written after the idle time arrived in {time.monotonic() - t1:.2f} s")
        return 0
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        pair.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
