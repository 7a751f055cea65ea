"""An idle two-way sync costs little binlog and keeps a right lag (issue 13: before, each server's binlog grew
about 85 KB every 30 s with nobody writing; now at most a tenth of that, and idle lag stays under 2 s), and it
keeps its per-minute lag history.

The figures themselves (bytes per 30 s and per day, which tables they come from) are printed by
``bench/idle.py``; this test guards the bound over one minute of two running directions."""

from __future__ import annotations

import time

from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql, state_row

from airflow_provider_dts.engine.status import read_metrics

ANCHOR_BYTES_PER_30S = 85_000  # issue 13's measurement before the idle work
MEASURE_SECONDS = 60


def binlog_bytes(server) -> int:
    return sum(int(r[1]) for r in sql(server, "SHOW BINARY LOGS"))


def test_an_idle_pair_adds_a_tenth_of_the_binlog_and_keeps_its_lag(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    homes = ((pair.b, "forward"), (pair.a, "reverse"))
    with (
        Sync(make_direction(task_name), pair.a, pair.b),
        Sync(make_direction(task_name, "reverse"), pair.b, pair.a),
    ):
        sql(pair.a, "INSERT INTO shop.t VALUES (1, 'a')")
        sql(pair.b, "INSERT INTO shop.t VALUES (2, 'b')")
        wait_until(lambda: sql(pair.a, "SELECT COUNT(*) FROM shop.t")[0][0] == 2, what="both rows on A")
        wait_until(lambda: sql(pair.b, "SELECT COUNT(*) FROM shop.t")[0][0] == 2, what="both rows on B")
        time.sleep(15)  # the heartbeat's active window after the last user write, and one idle checkpoint
        before = [binlog_bytes(pair.a), binlog_bytes(pair.b)]
        lags: list[float] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < MEASURE_SECONDS:
            for server, role in homes:
                st = state_row(server, task_name, role) or {}
                assert st.get("state") == "Synchronizing", st
                if st.get("lag_seconds") is not None:
                    lags.append(float(st["lag_seconds"]))
            time.sleep(2)
        elapsed = time.monotonic() - t0
        grown = [binlog_bytes(pair.a) - before[0], binlog_bytes(pair.b) - before[1]]
        per_30s = [g * 30 / elapsed for g in grown]
        assert max(per_30s) <= ANCHOR_BYTES_PER_30S / 10, f"binlog bytes per 30 s on A, B: {per_30s}"
        assert lags and max(lags) < 2.0, f"idle lag samples: {lags}"
        # the per-minute history the status page charts: at least one whole idle minute of each direction
        for server, role in homes:
            conn = server.root_connect()
            try:
                history = read_metrics(conn, "dts_meta", task_name, role, minutes=10)
            finally:
                conn.close()
            assert history, f"{role}: no minute recorded"
            assert all(m["lag_max"] is not None and m["lag_max"] < 2.0 for m in history), history
        # and a write after the quiet minute still arrives at once
        sql(pair.b, "INSERT INTO shop.t VALUES (3, 'after idle')")
        wait_until(lambda: sql(pair.a, "SELECT COUNT(*) FROM shop.t")[0][0] == 3, 10, "the row written after idle")
