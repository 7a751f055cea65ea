"""Benchmark of incremental sync (a script, not a test).

    .venv/bin/python bench/incremental.py [--rows 100000] [--lag-seconds 20] [--lag-rate 2000]

Starts its own servers: A (source), B (destination of this sync) and C (a native MariaDB replica of A,
CHANGE MASTER TO ... MASTER_USE_GTID=no, file/position). For each workload - bulk inserts, single-row updates,
deletes, mixed OLTP - the changes are first written on A with nothing running, then applied from the same
binlog range by (1) python-mysql-replication alone (raw decode rate: every row decoded, nothing applied),
(1b) the same with the engine's decoders (table-map cache, row decoder), (2) this sync (run_direction,
A -> B), (3) native replication (A -> C). Printed: rows/s of each, ratios.
Then both directions run at once under a steady mixed load on A and B (--lag-rate rows/s in total) and the
lag of probe rows (written with a UTC timestamp, watched on the other side) is reported as p50/p99.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from airflow_provider_dts.engine.binlog import stream_settings
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.model import position_le
from airflow_provider_dts.localpair import LocalPair, LocalServer

TABLE = """CREATE TABLE bench.orders (
  id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(16) NOT NULL, amount DECIMAL(12,2) NOT NULL,
  note VARCHAR(80) NULL, payload JSON NULL, created_at DATETIME(6) NOT NULL, KEY (customer)
) ENGINE=InnoDB"""
PROBE = "CREATE TABLE bench.probe (id BIGINT PRIMARY KEY, side CHAR(1) NOT NULL, written_at DATETIME(6) NOT NULL)"


def q(server: LocalServer, *statements: str):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            out = None
            for s in statements:
                cur.execute(s)
                out = cur.fetchall()
            return out
    finally:
        conn.close()


def master_pos(server: LocalServer) -> tuple[str, int]:
    r = q(server, "SHOW MASTER STATUS")[0]
    return str(r[0]), int(r[1])


def row_values(i: int, rnd: random.Random) -> str:
    return (
        f"({i},{rnd.randint(1, 5000)},'{rnd.choice(['new', 'paid', 'shipped'])}',{rnd.randint(100, 99999) / 100},"
        f'\'note {i}\',\'{{"k": {i}, "tags": ["a", "b"]}}\',\'2026-01-01 10:00:00.{i % 1000000:06d}\')'
    )


# --------------------------------------------------------------------------- workloads (written on A)


def wl_bulk_insert(a: LocalServer, rows: int, start_id: int) -> None:
    rnd = random.Random(1)
    conn = a.root_connect()
    with conn.cursor() as cur:
        for base in range(start_id, start_id + rows, 1000):
            cur.execute("START TRANSACTION")
            cur.execute(
                "INSERT INTO bench.orders VALUES " + ",".join(row_values(i, rnd) for i in range(base, base + 1000))
            )
            cur.execute("COMMIT")
    conn.close()


def wl_single_updates(a: LocalServer, count: int, max_id: int) -> None:
    rnd = random.Random(2)
    conn = a.root_connect()
    with conn.cursor() as cur:
        for _ in range(count):
            cur.execute(
                f"UPDATE bench.orders SET amount = amount + 1, status = 'paid' WHERE id = {rnd.randint(0, max_id - 1)}"
            )
    conn.close()


def wl_deletes(a: LocalServer, first: int, count: int) -> None:
    conn = a.root_connect()
    with conn.cursor() as cur:
        for base in range(first, first + count, 1000):
            cur.execute(f"DELETE FROM bench.orders WHERE id >= {base} AND id < {base + 1000}")
    conn.close()


def wl_mixed(a: LocalServer, txns: int, next_id: int, live_hi: int) -> int:
    rnd = random.Random(3)
    conn = a.root_connect()
    with conn.cursor() as cur:
        for _ in range(txns):
            cur.execute("START TRANSACTION")
            cur.execute(
                "INSERT INTO bench.orders VALUES " + ",".join(row_values(i, rnd) for i in (next_id, next_id + 1))
            )
            next_id += 2
            for _ in range(2):
                cur.execute(f"UPDATE bench.orders SET note = 'mixed' WHERE id = {rnd.randint(0, live_hi)}")
            cur.execute(f"DELETE FROM bench.orders WHERE id = {next_id - 2}")
            cur.execute("COMMIT")
    conn.close()
    return next_id


# --------------------------------------------------------------------------- appliers


def raw_decode(a: LocalServer, start, end, library_only: bool = True) -> tuple[int, float]:
    """Decode every row of the range; ``library_only`` undoes the engine's table-map cache and row decoder
    (binlog_patches.py, rowdecode.py), measuring python-mysql-replication alone."""
    from pymysqlreplication.row_event import TableMapEvent

    from airflow_provider_dts.engine import binlog_patches, rowdecode

    binlog_patches.install()  # the engine's decoders (importing the engine changes nothing by itself)
    patched = TableMapEvent.__init__
    if library_only:
        TableMapEvent.__init__ = binlog_patches._orig_table_map_init
        rowdecode.uninstall()
    try:
        return _raw_decode(a, start, end)
    finally:
        TableMapEvent.__init__ = patched
        rowdecode.install()


def _raw_decode(a: LocalServer, start, end) -> tuple[int, float]:
    settings = stream_settings(a.settings())
    reader = BinLogStreamReader(
        connection_settings=settings,
        server_id=0x7000_0001,
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=False,
        enable_logging=False,
        only_schemas=["bench"],
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    )
    rows = 0
    t0 = time.perf_counter()
    for ev in reader:
        if not position_le((reader.log_file, reader.log_pos), end):
            break
        rows += len(ev.rows)
    elapsed = time.perf_counter() - t0
    reader.close()
    return rows, elapsed


def sync_range(pair: LocalPair, direction: SyncDirection, end) -> float:
    stop = threading.Event()
    result = {}
    t0 = time.perf_counter()
    th = threading.Thread(
        target=lambda: result.setdefault(
            "r", run_direction(direction, pair.a.settings(), pair.b.settings(), stop=stop)
        ),
        daemon=True,
    )
    th.start()
    control = ControlSchema()
    conn = pair.b.root_connect()
    try:
        while True:
            if "r" in result:
                raise RuntimeError(f"sync ended: {result['r']}")
            cp = control.read_checkpoint(conn, direction.task_name, direction.role)
            if cp is not None and cp.position is not None and position_le(end, cp.position):
                elapsed = time.perf_counter() - t0
                break
            time.sleep(0.02)
    finally:
        conn.close()
        stop.set()
        th.join(30)
    return elapsed


def native_range(c: LocalServer, end) -> float:
    t0 = time.perf_counter()
    q(c, f"START SLAVE UNTIL MASTER_LOG_FILE='{end[0]}', MASTER_LOG_POS={end[1]}")
    conn = c.root_connect()
    import pymysql.cursors

    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            while True:
                cur.execute("SHOW SLAVE STATUS")
                st = cur.fetchone()
                if st["Last_SQL_Error"] or st["Last_IO_Error"]:
                    raise RuntimeError(f"native replication error: {st['Last_SQL_Error'] or st['Last_IO_Error']}")
                if position_le(end, (st["Relay_Master_Log_File"], int(st["Exec_Master_Log_Pos"]))):
                    elapsed = time.perf_counter() - t0
                    break
                time.sleep(0.01)
    finally:
        conn.close()
    q(c, "STOP SLAVE")
    return elapsed


# --------------------------------------------------------------------------- lag under steady two-way load


def start_runner(direction: SyncDirection, src: LocalServer, dst: LocalServer, log: Path):
    """One direction in its own process (as the fault-injection suite runs it)."""
    import json
    import os
    import subprocess

    env = dict(os.environ)
    env["DTS_DIRECTION"] = direction.to_json()
    for var, s in (("DTS_SOURCE", src), ("DTS_DESTINATION", dst)):
        st = s.settings()
        env[var] = json.dumps({"host": st.host, "port": st.port, "user": st.user, "password": st.password})
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dts.engine.runner", "--log-level", "WARNING"],
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def lag_run(pair: LocalPair, fwd: SyncDirection, rev: SyncDirection, seconds: float, rate: int) -> list[float]:
    import signal

    procs = [
        start_runner(fwd, pair.a, pair.b, pair.base / "fwd.log"),
        start_runner(rev, pair.b, pair.a, pair.base / "rev.log"),
    ]
    time.sleep(3)
    stop_load = threading.Event()
    lags: list[float] = []
    per_side = rate // 2  # rows/s on each side; each transaction: 3 inserts + 1 update + 1 delete + 1 probe
    txn_rate = per_side / 6

    def writer(server: LocalServer, side: str, base: int):
        rnd = random.Random(base)
        conn = server.root_connect()
        i, probe = base, base
        t_next = time.perf_counter()
        with conn.cursor() as cur:
            while not stop_load.is_set():
                cur.execute("START TRANSACTION")
                cur.execute(
                    "INSERT INTO bench.orders VALUES " + ",".join(row_values(k, rnd) for k in (i, i + 1, i + 2))
                )
                cur.execute(f"UPDATE bench.orders SET note='upd' WHERE id = {i}")
                cur.execute(f"DELETE FROM bench.orders WHERE id = {i + 1}")
                probe += 1
                cur.execute(f"INSERT INTO bench.probe VALUES ({probe}, '{side}', UTC_TIMESTAMP(6))")
                cur.execute("COMMIT")
                i += 3
                t_next += 1.0 / txn_rate
                delay = t_next - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        conn.close()

    def watcher(server: LocalServer, side: str):
        conn = server.root_connect()
        seen = 0
        with conn.cursor() as cur:
            cur.execute("SET time_zone='+00:00'")
            while not stop_load.is_set():
                cur.execute(
                    f"SELECT id, written_at, UTC_TIMESTAMP(6) FROM bench.probe WHERE side='{side}' AND id > {seen} "
                    "ORDER BY id"
                )
                for pid, written, now in cur.fetchall():
                    lags.append((now - written).total_seconds())
                    seen = pid
                time.sleep(0.01)
        conn.close()

    workers = [
        threading.Thread(target=writer, args=(pair.a, "A", 50_000_000), daemon=True),
        threading.Thread(target=writer, args=(pair.b, "B", 60_000_000), daemon=True),
        threading.Thread(target=watcher, args=(pair.b, "A"), daemon=True),
        threading.Thread(target=watcher, args=(pair.a, "B"), daemon=True),
    ]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop_load.set()
    for w in workers:
        w.join(10)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:  # let both directions drain before stopping them
        if all(
            q(pair.a, f"CHECKSUM TABLE bench.{t}")[0][1] == q(pair.b, f"CHECKSUM TABLE bench.{t}")[0][1]
            for t in ("orders", "probe")
        ):
            break
        time.sleep(0.2)
    print(f"  drained {time.perf_counter() - t0:.1f}s after the load stopped", flush=True)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)
    return lags


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the bulk insert phase")
    ap.add_argument("--lag-seconds", type=float, default=20)
    ap.add_argument("--lag-rate", type=int, default=2000, help="rows/s in total (both sides) during the lag run")
    ap.add_argument("--keep", action="store_true", help="keep the servers' directories")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)

    base = Path(tempfile.mkdtemp(prefix="dts-bench-inc-"))
    pair = LocalPair.create(base)
    c = LocalServer(
        base / "c", server_id=3, extra_args=["--replicate-wild-ignore-table=dts_meta.%", "--skip-slave-start"]
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# servers in {base}; {os.cpu_count()} CPU cores, load average {load:.2f} at the start", flush=True)
    try:
        pair.start()
        c.start()
        for s in (pair.a, pair.b, c):
            q(s, "CREATE DATABASE bench", TABLE, PROBE)
        start = master_pos(pair.a)
        q(
            c,
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={pair.a.port}, MASTER_USER='dts_admin', "
            f"MASTER_PASSWORD='{pair.a.password}', MASTER_LOG_FILE='{start[0]}', MASTER_LOG_POS={start[1]}, "
            "MASTER_USE_GTID=no",
        )
        fwd = SyncDirection.from_dict(
            dict(
                task_name="bench",
                role="forward",
                source_conn_id="a",
                destination_conn_id="b",
                objects=["bench"],
                initial_full_data_sync=False,
            )
        )
        rev = SyncDirection.from_dict(
            dict(
                task_name="bench",
                role="reverse",
                source_conn_id="b",
                destination_conn_id="a",
                objects=["bench"],
                initial_full_data_sync=False,
                exclude_ddl=True,
            )
        )
        # record the forward start position at `start`
        conn = pair.b.root_connect()
        control = ControlSchema()
        control.ensure(conn)
        from airflow_provider_dts.engine.model import Checkpoint

        with conn.cursor() as cur:
            control.write_checkpoint(cur, "bench", "forward", Checkpoint(binlog_file=start[0], binlog_pos=start[1]))
        conn.close()

        n = args.rows
        phases = [
            ("bulk inserts (1000-row txns)", lambda: wl_bulk_insert(pair.a, n, 0)),
            ("single-row updates", lambda: wl_single_updates(pair.a, n // 5, n)),
            ("deletes (1000-row txns)", lambda: wl_deletes(pair.a, n // 2, n // 4)),
            ("mixed OLTP (2 ins, 2 upd, 1 del)", lambda: wl_mixed(pair.a, n // 20, n + 1, n // 2)),
        ]
        results = []
        for name, write in phases:
            p0 = master_pos(pair.a)
            write()
            p1 = master_pos(pair.a)
            rows, t_raw = raw_decode(pair.a, p0, p1)
            _, t_cached = raw_decode(pair.a, p0, p1, library_only=False)
            t_sync = sync_range(pair, fwd, p1)
            t_nat = native_range(c, p1)
            results.append((name, rows, rows / t_raw, rows / t_sync, rows / t_nat, rows / t_cached))
            print(
                f"  {name:34s} rows={rows:7d} raw={rows / t_raw:7.0f}/s engine={rows / t_cached:7.0f}/s "
                f"sync={rows / t_sync:7.0f}/s native={rows / t_nat:7.0f}/s sync/native={t_nat / t_sync:.3f}",
                flush=True,
            )
        # equality check: B and C must equal A
        for s, label in ((pair.b, "B (sync)"), (c, "C (native)")):
            a_sum = q(pair.a, "CHECKSUM TABLE bench.orders")[0][1]
            s_sum = q(s, "CHECKSUM TABLE bench.orders")[0][1]
            print(f"  checksum A={a_sum} {label}={s_sum} {'OK' if a_sum == s_sum else 'DIFFERENT!'}")
        tot_rows = sum(r[1] for r in results)
        t_raw = sum(r[1] / r[2] for r in results)
        t_sync = sum(r[1] / r[3] for r in results)
        t_nat = sum(r[1] / r[4] for r in results)
        t_cached = sum(r[1] / r[5] for r in results)
        print("\nTOTAL over all phases")
        print(f"  raw decode (python-mysql-replication alone): {tot_rows / t_raw:9.0f} rows/s")
        print(f"  raw decode with the engine's decoders:     {tot_rows / t_cached:9.0f} rows/s")
        print(f"  this sync end-to-end:                        {tot_rows / t_sync:9.0f} rows/s")
        print(f"  native MariaDB replication:                  {tot_rows / t_nat:9.0f} rows/s")
        weakest = min(results, key=lambda r: r[3] / r[4])
        print(
            f"  sync / raw decode = {t_raw / t_sync:.2f} (floor 0.8)   sync / native = {t_nat / t_sync:.3f} "
            f"(goal >= 0.35)   weakest phase: {weakest[0]} {weakest[3] / weakest[4]:.3f} (goal >= 0.25)"
        )

        # lag under steady two-way load
        conn = pair.a.root_connect()
        control.ensure(conn)
        with conn.cursor() as cur:
            pos_b = master_pos(pair.b)
            control.write_checkpoint(cur, "bench", "reverse", Checkpoint(binlog_file=pos_b[0], binlog_pos=pos_b[1]))
        conn.close()
        lags = lag_run(pair, fwd, rev, args.lag_seconds, args.lag_rate)
        if lags:
            print(
                f"\nLAG under ~{args.lag_rate} rows/s mixed load on both sides at once for {args.lag_seconds:.0f}s "
                f"({len(lags)} probes): p50={pct(lags, 50) * 1000:.0f} ms p99={pct(lags, 99) * 1000:.0f} ms "
                f"max={max(lags) * 1000:.0f} ms mean={statistics.mean(lags) * 1000:.0f} ms"
            )
        a_sum = q(pair.a, "CHECKSUM TABLE bench.orders")[0][1]
        time.sleep(0.5)
        b_sum = q(pair.b, "CHECKSUM TABLE bench.orders")[0][1]
        print(f"  after the two-way run: checksum A={a_sum} B={b_sum} {'OK' if a_sum == b_sum else 'DIFFERENT!'}")
    finally:
        c.stop()
        pair.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
