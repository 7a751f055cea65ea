"""Benchmark: the full data sync against `mariadb-dump --single-transaction | mariadb` on the same data.

    .venv/bin/python bench/full_sync.py [--rows 1000000] [--keep]

Starts its own local server pair (nothing else is touched), builds a realistic table on server A (mixed
types, about 150 bytes a row), then in the same run copies it to server B twice:
  1. `mariadb-dump --single-transaction --skip-lock-tables bench | mariadb bench_dump` (a pipe: dump and
     load overlap), and
  2. this provider's full data sync (schema sync + full data sync) into `bench_sync`.
Both copies are checked against the source with CHECKSUM TABLE. Prints rows/s of each, the ratio
sync/dump, and the sync's peak RSS (resource.getrusage of this process).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
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


def run_dump(pair: LocalPair) -> float:
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    client = shutil.which("mariadb") or shutil.which("mysql")
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE bench_dump CHARACTER SET utf8mb4")
    env_a = dict(os.environ, MYSQL_PWD=pair.a.password)
    env_b = dict(os.environ, MYSQL_PWD=pair.b.password)
    common = ["--protocol=TCP", "-h127.0.0.1", "-udts_admin"]
    t0 = time.monotonic()
    p1 = subprocess.Popen(
        [
            dump,
            *common,
            f"-P{pair.a.port}",
            "--single-transaction",
            "--skip-lock-tables",
            "--default-character-set=utf8mb4",
            "bench",
            "orders",
        ],
        stdout=subprocess.PIPE,
        env=env_a,
    )
    p2 = subprocess.Popen(
        [client, *common, f"-P{pair.b.port}", "--default-character-set=utf8mb4", "bench_dump"],
        stdin=p1.stdout,
        env=env_b,
    )
    p1.stdout.close()
    rc2, rc1 = p2.wait(), p1.wait()
    elapsed = time.monotonic() - t0
    if rc1 or rc2:
        raise SystemExit(f"dump | load failed: {rc1}, {rc2}")
    return elapsed


def run_sync(pair: LocalPair, method: str = "auto") -> tuple[float, float, dict]:
    direction = SyncDirection.from_dict(
        {
            "task_name": "bench",
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["bench"],
            "mapping": {"bench": "bench_sync"},
        }
    )
    t0 = time.monotonic()
    sync_schema(direction, pair.a.settings(), pair.b.settings())
    t1 = time.monotonic()
    result = full_data_sync(direction, pair.a.settings(), pair.b.settings(), progress_interval=5.0, method=method)
    t2 = time.monotonic()
    return t2 - t0, t2 - t1, result.summary()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="leave the pair running (its directory is printed)")
    ap.add_argument("--sync-first", action="store_true", help="run the sync before the dump")
    ap.add_argument(
        "--method",
        default="auto",
        choices=("auto", "load_data", "insert"),
        help="the sync's write method (auto: LOAD DATA LOCAL INFILE when the destination allows it)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base = Path(tempfile.mkdtemp(prefix="dts-bench-full-"))
    pair = LocalPair.create(base)
    pair.start()
    try:
        build(pair, args.rows)
        src_sum = checksum(pair.a, "bench")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results = {}
        order = ["sync", "dump"] if args.sync_first else ["dump", "sync"]
        for what in order:
            if what == "dump":
                results["dump"] = run_dump(pair)
                assert checksum(pair.b, "bench_dump") == src_sum, "dump copy differs from the source"
                with pair.b.root_connect() as conn, conn.cursor() as cur:
                    cur.execute("DROP DATABASE bench_dump")
            else:
                total, data_only, summary = run_sync(pair, args.method)
                results["sync"] = total
                results["sync_data_only"] = data_only
                assert checksum(pair.b, "bench_sync") == src_sum, "sync copy differs from the source"
                assert summary["rows"] == args.rows, summary
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = args.rows
        dump_rps = rows / results["dump"]
        sync_rps = rows / results["sync"]
        print()
        print(f"rows                          {rows}")
        print(f"mariadb-dump | mariadb        {results['dump']:.2f} s   {dump_rps:,.0f} rows/s")
        print(
            f"full sync (schema + data)     {results['sync']:.2f} s   {sync_rps:,.0f} rows/s"
            f"   (data only {results['sync_data_only']:.2f} s, method {summary['method']})"
        )
        print(f"ratio sync/dump               {sync_rps / dump_rps:.2f}   (floor 0.5, goal 1.0)")
        print(f"peak RSS of the sync process  {rss_peak:.0f} MB (before the copies: {rss_before:.0f} MB)")
        print("both copies verified with CHECKSUM TABLE against the source")
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end "
            "(other processes compete for the same cores)"
        )
    finally:
        if args.keep:
            print(f"pair kept in {base}")
        else:
            pair.stop()
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
