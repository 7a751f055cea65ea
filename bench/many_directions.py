"""Benchmark: eight sync directions on one host (four two-way tasks), total rows/s and each direction's lag.

    .venv/bin/python bench/many_directions.py [--tasks 4] [--rows 20000] [--lag-seconds 20] [--lag-rate 2000]
                                              [--modes worker,triggerer]

A script, not a test. Starts its own two servers A and B. Task k (k = 0..tasks-1) syncs database ``many_k`` both
ways: forward A -> B, reverse B -> A, as the two-way DAG does (the reverse applies no DDL). Each direction runs
the engine as the deployment modes do:

- ``worker``: every direction in a process of its own (``engine.runner``: what a worker task or a Kubernetes pod
  per direction runs), plus its binlog reader process;
- ``triggerer``: every direction in a thread of ONE process (what the triggerer does), plus its reader process.

Anchor, same run: ONE direction alone draining the same backlog (``single``). Then for each mode:

1. drain: with nothing running, ``--rows`` row changes per direction are written (on A for the forward
   directions, on B for the reverse ones, in 100-row insert transactions with updates and deletes); then all
   directions start at once from the position before the writes. Printed: total rows/s until the last one has
   caught up, and each direction's own rows/s and time;
2. lag: all directions running, a steady mixed load of ``--lag-rate`` rows/s in total, spread over every
   direction, for ``--lag-seconds``; each transaction carries a probe row stamped with UTC_TIMESTAMP(6), watched
   on the other server. Printed: each direction's lag p50 / p99 / max and the rows/s applied.

At the end both servers are compared table by table (CHECKSUM TABLE): a run that lost or duplicated a row says so.
The writers, the watchers, both servers and every direction share this machine: say how many cores it has next
to any figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.model import Checkpoint, position_le
from airflow_provider_dts.localpair import LocalPair, LocalServer
from bench.incremental import master_pos, q  # one way to talk to the bench servers

CONTROL = ControlSchema()
TABLE = """CREATE TABLE {db}.orders (
  id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(16) NOT NULL, amount DECIMAL(12,2) NOT NULL,
  note VARCHAR(80) NULL, created_at DATETIME(6) NOT NULL, KEY (customer)
) ENGINE=InnoDB"""
PROBE = "CREATE TABLE {db}.probe (id BIGINT PRIMARY KEY, written_at DATETIME(6) NOT NULL)"
# id ranges: forward writes (on A) and reverse writes (on B) never touch the same key
ID_BASE = {"forward": 1_000_000_000, "reverse": 2_000_000_000}


@dataclass
class Direction:
    d: SyncDirection
    src: LocalServer
    dst: LocalServer
    next_id: int
    rows_written: int = 0  # row changes written on the source for this direction
    lags: list[float] = field(default_factory=list)

    @property
    def db(self) -> str:
        return self.d.objects[0]

    @property
    def label(self) -> str:
        return f"{self.d.task_name}/{self.d.role}"


def make_directions(pair: LocalPair, prefix: str, tasks: int) -> list[Direction]:
    out = []
    for k in range(tasks):
        db = f"many_{k}"
        for role, src, dst, s_id, d_id in (
            ("forward", pair.a, pair.b, "a", "b"),
            ("reverse", pair.b, pair.a, "b", "a"),
        ):
            d = SyncDirection.from_dict(
                {
                    "task_name": f"{prefix}{k}",
                    "role": role,
                    "source_conn_id": s_id,
                    "destination_conn_id": d_id,
                    "objects": [db],
                    "initial_full_data_sync": False,
                    "exclude_ddl": role == "reverse",
                    "self_check": False,
                }
            )
            out.append(Direction(d, src, dst, ID_BASE[role] + k * 10_000_000))
    return out


def reset_databases(pair: LocalPair, tasks: int) -> None:
    for s in (pair.a, pair.b):
        for k in range(tasks):
            db = f"many_{k}"
            q(s, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}", TABLE.format(db=db), PROBE.format(db=db))


def set_start(dirs: list[Direction]) -> None:
    """Each direction starts at its source's current position (as a first start with no copy would)."""
    for x in dirs:
        pos = master_pos(x.src)
        conn = x.dst.root_connect()
        try:
            CONTROL.ensure(conn)
            with conn.cursor() as cur:
                CONTROL.write_checkpoint(
                    cur, x.d.task_name, x.d.role, Checkpoint(binlog_file=pos[0], binlog_pos=pos[1])
                )
            conn.commit()
        finally:
            conn.close()


def write_backlog(x: Direction, rows: int) -> None:
    """``rows`` row changes on the direction's source: 100-row inserts, then 10-row updates and deletes."""
    conn = x.src.root_connect()
    done = 0
    try:
        with conn.cursor() as cur:
            while done < rows:
                base = x.next_id
                values = ",".join(
                    f"({i},{i % 5000},'new',{(i % 9999) / 100},'note {i}','2026-01-01 10:00:00.{i % 1000000:06d}')"
                    for i in range(base, base + 100)
                )
                cur.execute("START TRANSACTION")
                cur.execute(f"INSERT INTO {x.db}.orders VALUES {values}")
                cur.execute(f"UPDATE {x.db}.orders SET status='paid' WHERE id BETWEEN {base} AND {base + 9}")
                cur.execute(f"DELETE FROM {x.db}.orders WHERE id BETWEEN {base + 90} AND {base + 99}")
                cur.execute("COMMIT")
                x.next_id += 100
                done += 120
    finally:
        conn.close()
    x.rows_written += done


# --------------------------------------------------------------------------- running the directions


class Fleet:
    """The directions running in one deployment mode."""

    def __init__(self, mode: str, dirs: list[Direction], logdir: Path) -> None:
        self.mode = mode
        self.dirs = dirs
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.results: dict[str, Any] = {}
        self._logs: dict[int, Path] = {}
        self.peak_rss = 0  # bytes: every process of the fleet (readers included), sampled twice a second
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self.stop.is_set():
            roots = [p.pid for p in self.procs] if self.mode == "worker" else [os.getpid()]
            total = 0
            for pid in roots:
                try:
                    root = psutil.Process(pid)
                    for proc in [root, *root.children(recursive=True)]:
                        total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, total)
            self.stop.wait(0.5)

    def start(self) -> None:
        for x in self.dirs:
            if self.mode == "worker":
                self.procs.append(self._process(x))
            else:
                t = threading.Thread(target=self._thread, args=(x,), name=f"dts-{x.label}", daemon=True)
                t.start()
                self.threads.append(t)
        self._sampler.start()

    def _thread(self, x: Direction) -> None:
        self.results[x.label] = run_direction(
            x.d, x.src.settings(), x.dst.settings(), stop=self.stop, logger=logging.getLogger(f"dts.{x.label}")
        )

    def _process(self, x: Direction) -> subprocess.Popen:
        env = dict(os.environ)
        env["DTS_DIRECTION"] = x.d.to_json()
        for var, s in (("DTS_SOURCE", x.src), ("DTS_DESTINATION", x.dst)):
            st = s.settings()
            env[var] = json.dumps({"host": st.host, "port": st.port, "user": st.user, "password": st.password})
        log = self.logdir / f"{self.mode}-{x.label.replace('/', '-')}.log"
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            p = subprocess.Popen(
                [sys.executable, "-m", "airflow_provider_dts.engine.runner", "--log-level", "WARNING"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._logs[p.pid] = log
        return p

    def check(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                tail = self._logs[p.pid].read_text(errors="replace")[-2000:]
                raise RuntimeError(f"a direction process ended with {p.returncode}; its log ends:\n{tail}")
        for label, r in self.results.items():
            raise RuntimeError(f"{label} ended: {r}")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.stop.set()
        for t in self.threads:
            t.join(60)


def checkpoint(x: Direction, conn) -> Any:
    return CONTROL.read_checkpoint(conn, x.d.task_name, x.d.role)


def drain(fleet: Fleet, ends: dict[str, tuple[str, int]], timeout: float = 900) -> dict[str, Any]:
    """Start the fleet and watch every direction's checkpoint: when it first moves (its process started, its reader
    delivers) and when it passes its end. Times in seconds after the start."""
    conns = {id(s): s.root_connect() for s in {id(x.dst): x.dst for x in fleet.dirs}.values()}
    starts = {x.label: checkpoint(x, conns[id(x.dst)]).position for x in fleet.dirs}
    moved: dict[str, float] = {}
    done: dict[str, float] = {}
    t0 = time.perf_counter()
    fleet.start()
    try:
        while len(done) < len(fleet.dirs):
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"not caught up after {timeout}s: {sorted(set(ends) - set(done))}")
            fleet.check()
            for x in fleet.dirs:
                if x.label in done:
                    continue
                cp = checkpoint(x, conns[id(x.dst)])
                now = time.perf_counter() - t0
                if cp is not None and cp.position is not None and cp.position != starts[x.label]:
                    moved.setdefault(x.label, now)
                if cp is not None and cp.position is not None and position_le(ends[x.label], cp.position):
                    done[x.label] = now
            time.sleep(0.02)
    finally:
        for c in conns.values():
            c.close()
    return {"moved": moved, "done": done}


def counters(x: Direction) -> int:
    conn = x.dst.root_connect()
    try:
        st = CONTROL.get_state(conn, x.d.task_name, x.d.role) or {}
    finally:
        conn.close()
    return int(st.get("rows_inserted") or 0) + int(st.get("rows_updated") or 0) + int(st.get("rows_deleted") or 0)


def lag_phase(dirs: list[Direction], seconds: float, rate: int) -> tuple[float, float]:
    """Steady load on every direction's source; probes watched on its destination. Rows/s written and applied in
    total (the writers fall short of ``rate`` when the machine has no CPU to spare)."""
    stop = threading.Event()
    per_dir_rows = rate / len(dirs)  # each transaction: 3 inserts + 1 update + 1 delete + 1 probe = 6 rows
    txn_interval = 6 / per_dir_rows
    before = sum(counters(x) for x in dirs)
    written_before = sum(x.rows_written for x in dirs)

    def writer(side: list[Direction]) -> None:
        conns = [x.src.root_connect() for x in side]
        probe = {x.label: 0 for x in side}
        t_next = time.perf_counter()
        try:
            while not stop.is_set():
                for x, conn in zip(side, conns, strict=True):
                    i = x.next_id
                    with conn.cursor() as cur:
                        cur.execute("START TRANSACTION")
                        cur.execute(
                            f"INSERT INTO {x.db}.orders VALUES "
                            + ",".join(f"({k},{k % 5000},'new',1.5,'lag',UTC_TIMESTAMP(6))" for k in (i, i + 1, i + 2))
                        )
                        cur.execute(f"UPDATE {x.db}.orders SET note='upd' WHERE id = {i}")
                        cur.execute(f"DELETE FROM {x.db}.orders WHERE id = {i + 1}")
                        probe[x.label] += 1
                        cur.execute(f"INSERT INTO {x.db}.probe VALUES ({x.next_id}, UTC_TIMESTAMP(6))")
                        cur.execute("COMMIT")
                    x.next_id += 3
                    x.rows_written += 6
                t_next += txn_interval
                delay = t_next - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        finally:
            for c in conns:
                c.close()

    def watcher(side: list[Direction]) -> None:
        conn = side[0].dst.root_connect()
        seen = {x.label: 0 for x in side}
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone='+00:00'")
                while not stop.is_set():
                    for x in side:
                        cur.execute(
                            f"SELECT id, written_at, UTC_TIMESTAMP(6) FROM {x.db}.probe WHERE id > {seen[x.label]} "
                            "ORDER BY id"
                        )
                        for pid, written, now in cur.fetchall():
                            x.lags.append((now - written).total_seconds())
                            seen[x.label] = pid
                    time.sleep(0.02)
        finally:
            conn.close()

    sides = [[x for x in dirs if x.d.role == "forward"], [x for x in dirs if x.d.role == "reverse"]]
    # one writer per direction (its own connection and pace), one watcher per destination server
    workers = [threading.Thread(target=writer, args=([x],), daemon=True) for x in dirs]
    workers += [threading.Thread(target=watcher, args=(side,), daemon=True) for side in sides]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(30)
    elapsed = time.perf_counter() - t0
    written = (sum(x.rows_written for x in dirs) - written_before) / elapsed
    return written, (sum(counters(x) for x in dirs) - before) / elapsed


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def compare(pair: LocalPair, tasks: int) -> list[str]:
    bad = []
    for k in range(tasks):
        for t in ("orders", "probe"):
            a = q(pair.a, f"CHECKSUM TABLE many_{k}.{t}")[0][1]
            b = q(pair.b, f"CHECKSUM TABLE many_{k}.{t}")[0][1]
            if a != b:
                bad.append(f"many_{k}.{t}")
    return bad


def wait_equal(pair: LocalPair, tasks: int, timeout: float = 120) -> list[str]:
    end = time.monotonic() + timeout
    while True:
        bad = compare(pair, tasks)
        if not bad or time.monotonic() > end:
            return bad
        time.sleep(0.5)


def run_mode(pair: LocalPair, mode: str, args: argparse.Namespace, logdir: Path, prefix: str) -> dict[str, Any]:
    reset_databases(pair, args.tasks)
    dirs = make_directions(pair, prefix, args.tasks)
    if mode == "single":
        dirs = dirs[:1]
    set_start(dirs)
    threads = [threading.Thread(target=write_backlog, args=(x, args.rows)) for x in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ends = {x.label: master_pos(x.src) for x in dirs}
    fleet = Fleet("worker" if mode == "single" else mode, dirs, logdir)
    out: dict[str, Any] = {"mode": mode, "directions": len(dirs), "lag_rate": args.lag_rate}
    try:
        t = drain(fleet, ends)
        rows = sum(x.rows_written for x in dirs)
        first, last = min(t["moved"].values()), max(t["done"].values())
        out["drain_rows"] = rows
        out["startup_seconds"] = first  # from starting the processes/threads to the first applied group
        out["drain_seconds"] = last - first
        out["drain_rows_per_s"] = rows / (last - first)
        out["drain_each"] = {
            x.label: (x.rows_written / (t["done"][x.label] - t["moved"][x.label]), t["done"][x.label]) for x in dirs
        }
        if mode != "single":
            out["lag_written_per_s"], out["lag_rows_per_s"] = lag_phase(dirs, args.lag_seconds, args.lag_rate)
            out["lag_each"] = {
                x.label: (pct(x.lags, 50), pct(x.lags, 99), max(x.lags or [float("nan")]), len(x.lags)) for x in dirs
            }
        bad = wait_equal(pair, args.tasks if mode != "single" else 1)
        if mode == "single":
            bad = [b for b in bad if b.startswith("many_0.")]
        out["differences"] = bad
    finally:
        fleet.close()
    out["peak_rss"] = fleet.peak_rss
    return out


def report(r: dict[str, Any]) -> None:
    print(
        f"\n## {r['mode']}: {r['directions']} direction(s); drain {r['drain_rows']} row changes in "
        f"{r['drain_seconds']:.1f}s = {r['drain_rows_per_s']:,.0f} rows/s in total (timed from the first applied "
        f"group, {r['startup_seconds']:.1f}s after the start, to the last direction caught up)",
        flush=True,
    )
    for label, (rps, secs) in r["drain_each"].items():
        print(f"  drain  {label:<20} {rps:>9,.0f} rows/s  caught up {secs:5.1f}s after the start")
    if "lag_each" in r:
        print(
            f"  steady load: {r['lag_written_per_s']:,.0f} rows/s written (asked {r['lag_rate']:,}), "
            f"{r['lag_rows_per_s']:,.0f} rows/s applied in total"
        )
        for label, (p50, p99, mx, n) in r["lag_each"].items():
            print(
                f"  lag    {label:<20} p50 {p50 * 1000:7.0f} ms  p99 {p99 * 1000:7.0f} ms  max {mx * 1000:7.0f} ms  "
                f"({n} probes)"
            )
    rss = r["peak_rss"] / 2**20
    where = "this one process and its readers" if r["mode"] == "triggerer" else "the runner processes and their readers"
    print(f"  peak RSS ({where}): {rss:,.0f} MB, {rss / r['directions']:,.0f} MB per direction")
    verdict = "equal" if not r["differences"] else "DIFFERENT: " + ", ".join(r["differences"])
    print(f"  CHECKSUM TABLE A vs B: {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=4, help="two-way tasks (directions = 2 x tasks)")
    ap.add_argument("--rows", type=int, default=20_000, help="row changes per direction in the drain phase")
    ap.add_argument("--lag-seconds", type=float, default=20)
    ap.add_argument("--lag-rate", type=int, default=2000, help="rows/s in total over all directions (lag phase)")
    ap.add_argument("--modes", default="worker,triggerer", help="comma-separated: worker, triggerer")
    ap.add_argument("--keep", action="store_true", help="keep the servers' directories")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("worker", "triggerer"):
            ap.error(f"--modes: {m!r} is not worker or triggerer")

    base = Path(tempfile.mkdtemp(prefix="dts-bench-many-"))
    pair = LocalPair.create(base)
    print(f"# servers in {base}; {os.cpu_count()} CPU cores shared by both servers, the load and every direction")
    print(
        f"# {args.tasks} two-way tasks = {2 * args.tasks} directions; drain {args.rows} row changes per direction; "
        f"steady load {args.lag_rate} rows/s for {args.lag_seconds:.0f}s",
        flush=True,
    )
    results = []
    try:
        pair.start()
        results.append(run_mode(pair, "single", args, base, "single"))
        report(results[-1])
        for i, m in enumerate(modes):
            results.append(run_mode(pair, m, args, base, f"{m[0]}{i}_"))
            report(results[-1])
    finally:
        pair.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    single = results[0]["drain_rows_per_s"]
    print("\n## summary (same run, same machine)")
    print(f"  one direction alone (anchor):           {single:>9,.0f} rows/s")
    for r in results[1:]:
        lags = [v[1] for v in r["lag_each"].values()]
        print(
            f"  {r['directions']} directions, {r['mode']:<9} mode: {r['drain_rows_per_s']:>9,.0f} rows/s in total "
            f"({r['drain_rows_per_s'] / single:.2f}x one direction); under {r['lag_rows_per_s']:,.0f} rows/s steady: "
            f"worst p99 lag {max(lags) * 1000:,.0f} ms, median p99 {statistics.median(lags) * 1000:,.0f} ms"
        )
    return 1 if any(r["differences"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
