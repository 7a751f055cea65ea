"""Strict deletes and update batches check each row's before-image in statements of ``CHECK_BATCH_ROWS`` rows
(issue 14: one OR-ed statement over 1,000 rows costs the server the square of its rows). A row that differs, or
is missing, in any chunk is found exactly, and every other row of every chunk is applied once."""

from __future__ import annotations

import json

import pytest
from syncing import Sync, create_both, make_direction, sql, table_rows, wait_until

from airflow_provider_dts.engine import apply
from airflow_provider_dts.engine.control import ControlSchema

TABLE = "CREATE TABLE shop.c (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) NULL)"
ROWS = 130  # three chunks of at most 50 rows: 1-50, 51-100, 101-130


def conflicts(server, task):
    conn = server.root_connect()
    try:
        return sorted(
            (c["conflict_type"], json.loads(c["key_json"])["id"], c["decision"])
            for c in ControlSchema().conflicts(conn, task, "forward")
        )
    finally:
        conn.close()


def seed(pair):
    create_both(pair, TABLE)
    values = ",".join(f"({i}, {i}, 'n{i}')" for i in range(1, ROWS + 11))
    for s in (pair.a, pair.b):
        sql(s, f"INSERT INTO shop.c VALUES {values}")
    # the destination differs in the second chunk (row 75 changed) and the third (row 110 gone)
    sql(pair.b, "UPDATE shop.c SET v = -1 WHERE id = 75", "DELETE FROM shop.c WHERE id = 110")


def test_the_chunk_size_is_what_this_test_crosses():
    assert apply.CHECK_BATCH_ROWS < 75 < 2 * apply.CHECK_BATCH_ROWS < 110 <= ROWS


@pytest.mark.parametrize("policy", ["Ignore", "Overwrite"])
def test_a_large_strict_delete_finds_the_one_changed_and_the_one_missing_row(clean_pair, task_name, policy):
    pair = clean_pair
    seed(pair)
    with Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b):
        sql(pair.a, "START TRANSACTION", f"DELETE FROM shop.c WHERE id <= {ROWS}", "COMMIT")
        sql(pair.a, "INSERT INTO shop.c VALUES (1000, 0, 'after')")  # the next transaction: all applied
        wait_until(lambda: (1000, 0, "after") in table_rows(pair.b, "c"), 30, "the delete applied")
    kept = [(75, -1, "n75")] if policy == "Ignore" else []
    tail = [(i, i, f"n{i}") for i in range(ROWS + 1, ROWS + 11)] + [(1000, 0, "after")]
    assert table_rows(pair.b, "c") == kept + tail
    decision = "Ignored" if policy == "Ignore" else "Overwritten"
    assert conflicts(pair.b, task_name) == [
        ("delete_conflict", 75, decision),
        ("delete_missing", 110, "AlreadyEqual"),
    ]


@pytest.mark.parametrize("policy", ["Ignore", "Overwrite"])
def test_a_large_update_batch_finds_the_one_changed_and_the_one_missing_row(clean_pair, task_name, policy):
    pair = clean_pair
    seed(pair)
    with Sync(make_direction(task_name, conflict_policy=policy), pair.a, pair.b):
        sql(pair.a, "START TRANSACTION", f"UPDATE shop.c SET v = v + 1000 WHERE id <= {ROWS}", "COMMIT")
        sql(pair.a, "INSERT INTO shop.c VALUES (1000, 0, 'after')")
        wait_until(lambda: (1000, 0, "after") in table_rows(pair.b, "c"), 30, "the update applied")
    rows = {r[0]: r[1:] for r in table_rows(pair.b, "c")}
    for i in range(1, ROWS + 1):
        if i == 75 and policy == "Ignore":
            assert rows[i] == (-1, "n75")
        else:  # the missing row 110 comes back as the source's update leaves it (update_missing -> insert)
            assert rows[i] == (i + 1000, f"n{i}"), i
    assert all(rows[i] == (i, f"n{i}") for i in range(ROWS + 1, ROWS + 11))
    decision = "Ignored" if policy == "Ignore" else "Overwritten"
    got = conflicts(pair.b, task_name)
    assert ("update_conflict", 75, decision) in got
    assert [c for c in got if c[1] != 75] == [c for c in got if c[0] == "update_missing" and c[1] == 110]
    assert len([c for c in got if c[1] == 110]) == 1
    assert len(got) == 2
