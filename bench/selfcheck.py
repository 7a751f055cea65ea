"""Cost of the self-check on the apply loop (a script, not a test).

    .venv/bin/python bench/selfcheck.py [--rows 50000] [--repeat 2] [--rows-per-second 1000]

Starts its own pair, writes bench/incremental.py's workloads on A (bulk inserts, single-row updates, mixed
OLTP) with nothing running, then applies the same binlog range to a fresh copy of the table on B with
``self_check`` off and on, alternately, ``--repeat`` times each. Printed: rows/s of each run and the ratio.
While catching up, the destination differs from the source everywhere: the worst case for the self-check
(every rolling chunk differs, every applied key is a candidate).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.localpair import LocalPair
from bench.incremental import (
    TABLE,
    master_pos,
    q,
    sync_range,
    wl_bulk_insert,
    wl_mixed,
    wl_single_updates,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rows-per-second", type=int, default=1000, help="self_check_rows_per_second")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    base = Path(tempfile.mkdtemp(prefix="dts-bench-selfcheck-"))
    pair = LocalPair.create(base)
    try:
        pair.start()
        for s in (pair.a, pair.b):
            q(s, "CREATE DATABASE bench", TABLE)
        start = master_pos(pair.a)
        n = args.rows
        wl_bulk_insert(pair.a, n, 0)
        wl_single_updates(pair.a, n // 5, n)
        wl_mixed(pair.a, n // 20, n + 1, n // 2)
        end = master_pos(pair.a)
        rows = n + n // 5 + (n // 20) * 5
        control = ControlSchema()
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(args.repeat):
            for on in (False, True) if i % 2 == 0 else (True, False):
                task = f"bench{i}{'on' if on else 'off'}"
                q(pair.b, "DROP TABLE bench.orders", TABLE)
                conn = pair.b.root_connect()
                control.ensure(conn)
                with conn.cursor() as cur:
                    control.write_checkpoint(
                        cur, task, "forward", Checkpoint(binlog_file=start[0], binlog_pos=start[1])
                    )
                conn.close()
                d = SyncDirection.from_dict(
                    dict(
                        task_name=task,
                        source_conn_id="a",
                        destination_conn_id="b",
                        objects=["bench"],
                        initial_full_data_sync=False,
                        self_check=on,
                        self_check_rows_per_second=args.rows_per_second,
                    )
                )
                t = sync_range(pair, d, end)
                times[on].append(t)
                a_sum = q(pair.a, "CHECKSUM TABLE bench.orders")[0][1]
                b_sum = q(pair.b, "CHECKSUM TABLE bench.orders")[0][1]
                print(
                    f"  self_check={'on ' if on else 'off'} {rows / t:8.0f} rows/s ({t:.2f} s) "
                    f"checksum {'OK' if a_sum == b_sum else 'DIFFERENT!'}",
                    flush=True,
                )
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"median: off {rows / off:.0f} rows/s, on {rows / on:.0f} rows/s; on/off throughput = {off / on:.3f}")
    finally:
        pair.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
