"""Issue 10, errors with context: a destination with a small max_allowed_packet gets statements that fit it,
and a single row larger than it fails the direction naming the table, the position, the size and the fix;
raising the limit and restarting applies it, nothing lost."""

from __future__ import annotations

from helpers import global_variables, wait_until
from syncing import Sync, create_both, make_direction, sql

from airflow_provider_dts.engine.control import State


def test_small_destination_packet_limit(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, body LONGTEXT)")
    with global_variables(pair.b, max_allowed_packet=65536):
        sync = Sync(make_direction(task_name), pair.a, pair.b).start()
        # 400 rows of 1 KB in one transaction: 400 KB of SQL, batched into statements that fit 64 KB
        sql(pair.a, "INSERT INTO shop.t SELECT seq, REPEAT('a', 1000) FROM shop.seq_1_to_400")
        wait_until(lambda: sql(pair.b, "SELECT COUNT(*) FROM shop.t")[0][0] == 400, 30, "the 400 rows")
        sql(pair.a, "INSERT INTO shop.t VALUES (1000, REPEAT('b', 100000))")  # one row of 100 KB
        result = sync.wait_result(30)
        assert result.state == State.FAILED
        for text in ("`shop`.`t`", "binlog.", "bytes as SQL", "max_allowed_packet", "Fix: raise max_allowed_packet"):
            assert text in result.message, result.message
    # the limit is back at the server's own value (the suite's servers: 64 MB)
    with Sync(make_direction(task_name), pair.a, pair.b):
        wait_until(
            lambda: sql(pair.b, "SELECT LENGTH(body) FROM shop.t WHERE id=1000") == [(100000,)],
            30,
            "the large row after the limit was raised",
        )
    assert sql(pair.a, "CHECKSUM TABLE shop.t")[0][1] == sql(pair.b, "CHECKSUM TABLE shop.t")[0][1]
