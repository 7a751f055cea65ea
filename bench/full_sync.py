"""Benchmark: the full data sync against `mariadb-dump | mariadb` and `mydumper` + `myloader` on the same data.

    .venv/bin/python bench/full_sync.py [--rows 1000000] [--threads 2] [--keep]

Starts its own local server pair (nothing else is touched), builds a realistic table on server A (mixed
types, about 150 bytes a row), then in the same run copies it to server B three times:
  1. `mariadb-dump --single-transaction --skip-lock-tables bench | mariadb bench_dump` (a pipe: dump and
     load overlap),
  2. `mydumper -t N --rows R` into a directory, then `myloader -t N` into `bench_mydumper` (the Debian package
     `mydumper`, installed by this script with apt-get when missing; myloader's default: no binlog on B), and
  3. this provider's full data sync (schema sync + full data sync, `parallel=N`) into `bench_sync`.
N is the same for mydumper, myloader and the sync (`--threads`, default 2). Every copy is checked against the
source with CHECKSUM TABLE. Prints rows/s of each, the ratios sync/dump and sync/mydumper, the peak RSS of the
sync (resource.getrusage of this process) and of mydumper and myloader (wait4 of each).
Passwords reach the clients through the environment (mariadb) or a 0600 defaults file, never argv.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.localpair import LocalPair

TABLE_DDL = """
CREATE TABLE bench.orders (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('new','paid','shipped','returned','cancelled') NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  ratio DOUBLE NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at TIMESTAMP(6) NULL DEFAULT NULL,
  code CHAR(8) NOT NULL,
  note VARCHAR(120) NULL,
  flags TINYINT UNSIGNED NOT NULL,
  KEY by_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

FILL_SQL = """
INSERT INTO bench.orders
SELECT seq, 1 + (seq * 7919) % 100000, ELT(1 + seq % 5, 'new','paid','shipped','returned','cancelled'),
       ROUND((seq * 37 % 100000) / 100, 2), IF(seq % 10 = 0, NULL, (seq % 1000) / 7),
       TIMESTAMP('2020-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
       IF(seq % 3 = 0, NULL, FROM_UNIXTIME(1600000000 + seq)),
       LPAD(HEX(seq), 8, '0'),
       CONCAT('order note ', seq, ' ', REPEAT(CHAR(97 + seq % 26), 30 + seq % 40), IF(seq % 50 = 0, ' ünï 😀', '')),
       seq % 256
FROM seq_{lo}_to_{hi}
"""


def build(pair: LocalPair, rows: int) -> None:
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE bench CHARACTER SET utf8mb4")
        cur.execute(TABLE_DDL)
        cur.execute("USE bench")
        step = 200_000
        for lo in range(1, rows + 1, step):
            hi = min(rows, lo + step - 1)
            cur.execute(FILL_SQL.format(lo=lo, hi=hi))
        cur.execute("ANALYZE TABLE bench.orders")
        cur.fetchall()
        cur.execute("SELECT AVG_ROW_LENGTH, DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
        avg, data = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM bench.orders")  # warm the buffer pool for both copies
        print(f"built bench.orders: {rows} rows, avg row length {avg} bytes, data {data / 1e6:.0f} MB")


def checksum(server, db: str) -> int:
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE `{db}`.orders")
        return int(cur.fetchone()[1])


def server_cpu(server) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    with open(f"/proc/{server.pid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Measured:
    """Wall time and CPU seconds of one copy: source server, destination server, and the client processes."""

    def __init__(self, pair: LocalPair):
        self.pair = pair
        self.seconds = 0.0
        self.cpu_a = self.cpu_b = self.cpu_client = 0.0
        self.rss_client = 0.0

    def __enter__(self) -> Measured:
        self.a0, self.b0 = server_cpu(self.pair.a), server_cpu(self.pair.b)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.t0
        self.cpu_a = server_cpu(self.pair.a) - self.a0
        self.cpu_b = server_cpu(self.pair.b) - self.b0

    def client(self, usage: resource.struct_rusage) -> None:
        self.cpu_client += usage.ru_utime + usage.ru_stime

    def cpu_text(self) -> str:
        total = self.cpu_a + self.cpu_b + self.cpu_client
        return (
            f"CPU s: source {self.cpu_a:.1f} + destination {self.cpu_b:.1f} + client {self.cpu_client:.1f} "
            f"= {total:.1f}"
        )


def _wait(proc: subprocess.Popen, m: Measured) -> int:
    """Wait for ``proc``; its CPU seconds (wait4) and peak RSS (VmHWM, read while it runs: wait4's maxrss
    starts from this process's own RSS at fork) go to ``m``."""
    peak = [0]

    def watch() -> None:
        while proc.returncode is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    m.client(usage)
    m.rss_client = max(m.rss_client, peak[0] / 1024)
    return proc.returncode


def run_dump(pair: LocalPair, work: Path) -> Measured:
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not (dump and client):
        raise SystemExit("mariadb-dump / mariadb not found: install the Debian package mariadb-client")
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE bench_dump CHARACTER SET utf8mb4")
    conf_a = _defaults_file(work, "dump-a.cnf", pair.a.password)
    conf_b = _defaults_file(work, "dump-b.cnf", pair.b.password)
    common = ["--protocol=TCP", "-h127.0.0.1", "-udts_admin", "--default-character-set=utf8mb4"]
    with Measured(pair) as m:
        p1 = subprocess.Popen(
            [dump, f"--defaults-extra-file={conf_a}", *common, f"-P{pair.a.port}", "--single-transaction",
             "--skip-lock-tables", "bench", "orders"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        p2 = subprocess.Popen(
            [client, f"--defaults-extra-file={conf_b}", *common, f"-P{pair.b.port}", "bench_dump"], stdin=p1.stdout
        )
        assert p1.stdout is not None
        p1.stdout.close()
        rc2, rc1 = _wait(p2, m), _wait(p1, m)
    if rc1 or rc2:
        raise SystemExit(f"dump | load failed: {rc1}, {rc2}")
    return m


def ensure_mydumper() -> tuple[str, str]:
    """The paths of mydumper and myloader; installs the Debian package `mydumper` when missing (as the
    Makefile's deps target does: apt-get, through sudo when not root)."""
    if not (shutil.which("mydumper") and shutil.which("myloader")):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        print("installing the Debian package mydumper (the benchmark's anchor)")
        install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "mydumper"]
        if subprocess.run(install, env=env).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    dumper, loader = shutil.which("mydumper"), shutil.which("myloader")
    if not (dumper and loader):
        raise SystemExit("mydumper/myloader not found after installing the Debian package mydumper")
    return dumper, loader


def _defaults_file(directory: Path, name: str, password: str) -> Path:
    """A 0600 option file with the password ([client] group), so it never appears in argv or the environment."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[client]\npassword={password}\n[mydumper]\npassword={password}\n[myloader]\npassword={password}\n")
    return path


def run_mydumper(pair: LocalPair, work: Path, threads: int, rows: int, chunk_rows: int | None) -> dict:
    """mydumper -t N (split into row chunks so N threads share the one table), then myloader -t N."""
    dumper, loader = ensure_mydumper()
    conf_a = _defaults_file(work, "mydumper-a.cnf", pair.a.password)
    conf_b = _defaults_file(work, "mydumper-b.cnf", pair.b.password)
    out = work / "mydumper"
    # enough chunks for every thread to stay busy (mydumper splits by the primary key's range)
    chunk = chunk_rows or max(10_000, math.ceil(rows / (threads * 8)))
    verbosity = os.environ.get("BENCH_MYDUMPER_VERBOSE", "1")
    common = ["-h", "127.0.0.1", "-u", "dts_admin", "-t", str(threads), "-v", verbosity]
    try:
        with Measured(pair) as dump:
            proc = subprocess.Popen(
                [dumper, f"--defaults-file={conf_a}", *common, "-P", str(pair.a.port), "-B", "bench",
                 "--rows", str(chunk), "--trx-consistency-only", "-o", str(out)],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if _wait(proc, dump):
                raise SystemExit(f"mydumper failed with exit code {proc.returncode}")
        files = len([f for f in out.iterdir() if f.name.startswith("bench.orders.") and f.name.endswith(".sql")])
        with Measured(pair) as load:
            proc = subprocess.Popen(
                [loader, f"--defaults-file={conf_b}", *common, "-P", str(pair.b.port), "-d", str(out),
                 "-s", "bench", "-B", "bench_mydumper"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if _wait(proc, load):
                raise SystemExit(f"myloader failed with exit code {proc.returncode}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"dump": dump, "load": load, "chunk": chunk, "files": files}


def run_sync(pair: LocalPair, method: str = "auto", parallel: int = 2) -> tuple[Measured, float, dict]:
    direction = SyncDirection.from_dict(
        {
            "task_name": "bench",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["bench"],
            "mapping": {"bench": "bench_sync"},
        }
    )
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    with Measured(pair) as m:
        sync_schema(direction, pair.a.settings(), pair.b.settings())
        t1 = time.monotonic()
        result = full_data_sync(
            direction, pair.a.settings(), pair.b.settings(), progress_interval=5.0, method=method, parallel=parallel
        )
        t2 = time.monotonic()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    m.cpu_client = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    m.rss_client = self1.ru_maxrss / 1024
    return m, t2 - t1, result.summary()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2, help="mydumper/myloader threads and the sync's parallel")
    ap.add_argument("--mydumper-rows", type=int, default=None, help="mydumper --rows (default: rows/threads/8)")
    ap.add_argument("--keep", action="store_true", help="leave the pair running (its directory is printed)")
    ap.add_argument("--sync-first", action="store_true", help="run the sync before the other copies")
    ap.add_argument("--only-sync", action="store_true", help="skip mariadb-dump and mydumper (profiling)")
    ap.add_argument(
        "--method",
        default="auto",
        choices=("auto", "load_data", "insert"),
        help="the sync's write method (auto: LOAD DATA LOCAL INFILE when the destination allows it)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.only_sync:
        ensure_mydumper()  # before the timed copies
    base = Path(tempfile.mkdtemp(prefix="dts-bench-full-"))
    os.chmod(base, 0o700)  # the clients' option files (passwords) live here
    work = base / "work"
    work.mkdir()
    pair = LocalPair.create(base)
    pair.start()
    try:
        build(pair, args.rows)
        src_sum = checksum(pair.a, "bench")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results: dict = {}
        order = ["dump", "mydumper", "sync"]
        if args.sync_first:
            order = ["sync", "dump", "mydumper"]
        if args.only_sync:
            order = ["sync"]
        for what in order:
            if what == "dump":
                results["dump"] = run_dump(pair, work)
                assert checksum(pair.b, "bench_dump") == src_sum, "dump copy differs from the source"
                drop(pair, "bench_dump")
            elif what == "mydumper":
                results["mydumper"] = run_mydumper(pair, work, args.threads, args.rows, args.mydumper_rows)
                assert checksum(pair.b, "bench_mydumper") == src_sum, "mydumper copy differs from the source"
                drop(pair, "bench_mydumper")
            else:
                sync, data_only, summary = run_sync(pair, args.method, args.threads)
                results["sync"], results["sync_data_only"] = sync, data_only
                assert checksum(pair.b, "bench_sync") == src_sum, "sync copy differs from the source"
                assert summary["rows"] == args.rows, summary
        rows = args.rows
        sync = results["sync"]
        sync_rps = rows / sync.seconds
        print()
        print(f"rows                          {rows}   (--threads {args.threads} for mydumper, myloader and the sync)")
        if "dump" in results:
            dump = results["dump"]
            dump_rps = rows / dump.seconds
            print(f"mariadb-dump | mariadb        {dump.seconds:6.2f} s  {dump_rps:9,.0f} rows/s   {dump.cpu_text()}")
        if "mydumper" in results:
            m = results["mydumper"]
            my_s = m["dump"].seconds + m["load"].seconds
            my_rps = rows / my_s
            both = Measured(pair)  # the two steps' sums
            both.cpu_a = m["dump"].cpu_a + m["load"].cpu_a
            both.cpu_b = m["dump"].cpu_b + m["load"].cpu_b
            both.cpu_client = m["dump"].cpu_client + m["load"].cpu_client
            print(f"mydumper, then myloader       {my_s:6.2f} s  {my_rps:9,.0f} rows/s   {both.cpu_text()}")
            print(
                f"    mydumper {m['dump'].seconds:.2f} s + myloader {m['load'].seconds:.2f} s; --rows {m['chunk']} "
                f"({m['files']} files); peak RSS mydumper {m['dump'].rss_client:.0f} MB, myloader "
                f"{m['load'].rss_client:.0f} MB; myloader's default: its rows are not in B's binlog"
            )
        print(f"full sync (schema + data)     {sync.seconds:6.2f} s  {sync_rps:9,.0f} rows/s   {sync.cpu_text()}")
        print(
            f"    data only {results['sync_data_only']:.2f} s, method {summary['method']}, parallel {args.threads}; "
            "its rows are in B's binlog (with the loop mark)"
        )
        if "dump" in results:
            print(f"ratio sync/dump               {sync_rps / dump_rps:.2f}   (floor 0.5, goal 1.0)")
        if "mydumper" in results:
            print(f"ratio sync/mydumper+myloader  {sync_rps / my_rps:.2f}   (goal 1.0)")
        print(
            f"peak RSS of the sync process  {sync.rss_client:.0f} MB (before the copies: {rss_before:.0f} MB; "
            "goal < 300)"
        )
        print("every copy verified with CHECKSUM TABLE against the source")
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end "
            "(other processes compete for the same cores; CPU seconds do not depend on them)"
        )
    finally:
        if args.keep:
            print(f"pair kept in {base}")
        else:
            pair.stop()
            shutil.rmtree(base, ignore_errors=True)
    return 0


def drop(pair: LocalPair, db: str) -> None:
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{db}`")


if __name__ == "__main__":
    sys.exit(main())
