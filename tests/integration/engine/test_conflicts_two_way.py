"""Issue 12 against the real pair, both directions running: UPDATE/UPDATE conflicts under every policy
(UseMax / UseMin per table, with their fallbacks), rows that already match are no-ops, and answers recorded
in the conflict log are applied exactly once."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows

from airflow_provider_dts.engine import resolve
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.incremental import RunResult
from airflow_provider_dts.engine.servers import NamedLock

COLUMNS = {
    "integer": ("INT NULL", "10", "20"),
    "decimal": ("DECIMAL(12,3) NULL", "10.125", "10.5"),
    "datetime": ("DATETIME(6) NULL", "'2024-05-01 10:00:00.000001'", "'2024-05-01 10:00:00.000002'"),
}


def conflicts(server, task: str, role: str) -> list[dict[str, Any]]:
    conn = server.root_connect()
    try:
        return ControlSchema().conflicts(conn, task, role)
    finally:
        conn.close()


def checksum(server, table: str = "t") -> int:
    return sql(server, f"CHECKSUM TABLE shop.{table}")[0][1]


def directions(task: str, **kw: Any):
    return make_direction(task, **kw), make_direction(task, "reverse", **kw)


def start_both(pair, task: str, **kw: Any) -> tuple[Sync, Sync]:
    fwd, rev = directions(task, **kw)
    return Sync(fwd, pair.a, pair.b).start(), Sync(rev, pair.b, pair.a).start()


def first_start(pair, task: str, **kw: Any) -> None:
    """Both directions start once (their checkpoints are recorded), then stop: what each side writes next is
    read by the direction that carries it to the other side."""
    for s in start_both(pair, task, **kw):
        s.stop()


def write_both(pair, a_statement: str, b_statement: str) -> None:
    """The same row written on both servers 'at once': neither direction runs while they are written."""
    sql(pair.a, a_statement)
    sql(pair.b, b_statement)


def run_both_until(pair, task: str, done, what: str, **kw: Any) -> tuple[Sync, Sync]:
    fwd, rev = directions(task, **kw)
    syncs = (Sync(fwd, pair.a, pair.b).start(wait=False), Sync(rev, pair.b, pair.a).start(wait=False))
    try:
        wait_until(done, 30, what)
    finally:
        for s in syncs:
            if s.thread.is_alive():
                s.stop()
    return syncs


def converge(pair, task: str, expected: list[tuple], what: str, also=None) -> None:
    """Run both directions until both servers hold ``expected`` (and ``also()`` is true, when given)."""

    def converged():
        rows = table_rows(pair.a, "t") == expected and table_rows(pair.b, "t") == expected
        return rows and (also is None or also())

    for s in run_both_until(pair, task, converged, what):
        assert s.result is not None and s.result.outcome == "stopped", s.result
    assert checksum(pair.a) == checksum(pair.b)


def statuses(server, task: str, role: str) -> list[str]:
    return [c["status"] for c in conflicts(server, task, role)]


def logged(server, task: str, role: str, ctype: str) -> list[dict[str, Any]]:
    return [c for c in conflicts(server, task, role) if c["conflict_type"] == ctype]


def logged_on_both(pair, task: str, forward_type: str, reverse_type: str | None = None) -> Callable[[], bool]:
    """A condition to wait for: task one logged a conflict of ``forward_type`` on B and task two one of
    ``reverse_type`` (default: the same type) on A."""

    def both() -> bool:
        return bool(logged(pair.b, task, "forward", forward_type)) and bool(
            logged(pair.a, task, "reverse", reverse_type or forward_type)
        )

    return both


def sql_both(pair, *statements: str) -> None:
    """The same statements on A, then on B (each server's own starting rows, before the directions run)."""
    for server in (pair.a, pair.b):
        sql(server, *statements)


def stopped_on_conflict(pair, direction) -> RunResult:
    """Run ``direction`` (task one: A -> B, task two: B -> A) until it stops on a conflict under TaskFailed: it
    fails and names the open conflict."""
    src, dst = (pair.a, pair.b) if direction.role == "forward" else (pair.b, pair.a)
    result = Sync(direction, src, dst).start(wait=False).wait_result(30)
    assert result.outcome == "failed" and result.conflict_id is not None, result
    return result


def answer_forward(pair, fwd, conflict_id: int, choice: str, who: str) -> resolve.Recorded:
    """``resolve.record_answer`` for a conflict of task one (its source is A, its home B)."""
    return resolve.record_answer(fwd, pair.a.settings(name="a"), pair.b.settings(name="b"), conflict_id, choice, who)


# --------------------------------------------------------------------------- UPDATE/UPDATE under every policy


@pytest.mark.parametrize(
    "policy, expected_a, expected_b",
    [
        ("Ignore", 1, 2),  # each side keeps its own row: different (the README and precheck warn)
        ("Overwrite", 2, 1),  # each side takes the other's row: swapped
    ],
)
def test_update_update_is_logged_under_ignore_and_overwrite(clean_pair, task_name, policy, expected_a, expected_b):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10), n INT)")
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'base', 0)")
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'base', 0)")
    first_start(pair, task_name, conflict_policy=policy)
    write_both(pair, "UPDATE shop.t SET v='fromA', n=1 WHERE id=1", "UPDATE shop.t SET v='fromB', n=2 WHERE id=1")

    both_logged = logged_on_both(pair, task_name, "update_conflict")

    syncs = run_both_until(pair, task_name, both_logged, "update/update logged on both homes", conflict_policy=policy)
    values = {1: (1, "fromA", 1), 2: (1, "fromB", 2)}
    assert table_rows(pair.a, "t") == [values[expected_a]]
    assert table_rows(pair.b, "t") == [values[expected_b]]
    decision = "Ignored" if policy == "Ignore" else "Overwritten"
    for server, role, mine, theirs in ((pair.b, "forward", "fromA", "fromB"), (pair.a, "reverse", "fromB", "fromA")):
        (c,) = logged(server, task_name, role, "update_conflict")
        assert (c["decision"], c["policy"], c["status"]) == (decision, policy, "logged")
        image = json.loads(c["source_image"])
        assert image["before"] == {"id": 1, "v": "base", "n": 0} and image["after"]["v"] == mine
        assert json.loads(c["dest_image"])["v"] == theirs
        assert json.loads(c["key_json"]) == {"id": 1}
    assert all(s.result is not None and s.result.stats["conflicts"] == 1 for s in syncs)


def test_update_update_under_task_failed_stops_both_directions(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'base'), (2, 'two')")
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'base'), (2, 'two')")
    first_start(pair, task_name)
    write_both(pair, "UPDATE shop.t SET v='fromA' WHERE id=1", "UPDATE shop.t SET v='fromB' WHERE id=1")
    fwd, rev = directions(task_name)
    results = [Sync(fwd, pair.a, pair.b).start(wait=False), Sync(rev, pair.b, pair.a).start(wait=False)]
    for s in results:
        r = s.wait_result(30)
        assert r.outcome == "failed" and r.state == State.FAILED
        assert "update conflict" in r.message and "fromA" in r.message and "fromB" in r.message
        assert r.conflict_id is not None
    assert table_rows(pair.a, "t") == [(1, "fromA"), (2, "two")]
    assert table_rows(pair.b, "t") == [(1, "fromB"), (2, "two")]
    for server, role, s in ((pair.b, "forward", results[0]), (pair.a, "reverse", results[1])):
        (c,) = conflicts(server, task_name, role)
        assert (c["conflict_type"], c["decision"], c["status"]) == ("update_conflict", "TaskFailed", "open")
        assert c["id"] == s.result.conflict_id
    # a restart meets the same conflict again: the same open row, not counted twice
    again = Sync(fwd, pair.a, pair.b).start(wait=False).wait_result(30)
    assert again.outcome == "failed" and again.conflict_id == results[0].result.conflict_id
    assert len(conflicts(pair.b, task_name, "forward")) == 1
    assert again.stats["conflicts"] == 1


# --------------------------------------------------------------------------- UseMax / UseMin


@pytest.mark.parametrize("kind", list(COLUMNS))
@pytest.mark.parametrize("policy", ["UseMax", "UseMin"])
def test_use_max_and_use_min_converge_on_both_servers(clean_pair, task_name, kind, policy):
    pair = clean_pair
    coltype, small, large = COLUMNS[kind]
    create_both(pair, f"CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(10), c {coltype})")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base', NULL)")
    policies = {"shop.t": {"policy": policy, "column": "c"}}
    first_start(pair, task_name, table_conflict_policies=policies)
    # A writes the smaller value, B the larger: UseMax keeps B's row on both sides, UseMin A's row
    write_both(
        pair,
        f"UPDATE shop.t SET note='fromA', c={small} WHERE id=1",
        f"UPDATE shop.t SET note='fromB', c={large} WHERE id=1",
    )

    both_decided = logged_on_both(pair, task_name, "update_conflict")

    run_both_until(pair, task_name, both_decided, "both directions decided", table_conflict_policies=policies)
    winner = "fromB" if policy == "UseMax" else "fromA"
    rows_a, rows_b = table_rows(pair.a, "t"), table_rows(pair.b, "t")
    assert rows_a == rows_b and rows_a[0][1] == winner, (rows_a, rows_b)
    assert checksum(pair.a) == checksum(pair.b)
    (fc,) = logged(pair.b, task_name, "forward", "update_conflict")  # source A
    (rc,) = logged(pair.a, task_name, "reverse", "update_conflict")  # source B
    if policy == "UseMax":
        assert (fc["decision"], rc["decision"]) == ("UseMax:dest", "UseMax:source")
    else:
        assert (fc["decision"], rc["decision"]) == ("UseMin:source", "UseMin:dest")
    assert fc["policy"] == rc["policy"] == policy


@pytest.mark.parametrize("policy, winner_a, winner_b", [("UseMax", "fromB", "fromA"), ("UseMin", "fromA", "fromB")])
def test_use_max_and_use_min_fall_back_when_the_column_is_null(clean_pair, task_name, policy, winner_a, winner_b):
    """NULL on one side: UseMax falls back to Overwrite (swapped), UseMin to Ignore (each keeps its own)."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(10), c INT NULL)")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base', 5)")
    policies = {"shop.t": {"policy": policy, "column": "c"}}
    first_start(pair, task_name, table_conflict_policies=policies)
    write_both(
        pair, "UPDATE shop.t SET note='fromA', c=NULL WHERE id=1", "UPDATE shop.t SET note='fromB', c=7 WHERE id=1"
    )

    both_decided = logged_on_both(pair, task_name, "update_conflict")

    run_both_until(pair, task_name, both_decided, "both directions decided", table_conflict_policies=policies)
    assert table_rows(pair.a, "t")[0][1] == winner_a
    assert table_rows(pair.b, "t")[0][1] == winner_b
    fallback = "Overwritten" if policy == "UseMax" else "Ignored"
    for server, role in ((pair.b, "forward"), (pair.a, "reverse")):
        (c,) = logged(server, task_name, role, "update_conflict")
        assert (c["policy"], c["decision"]) == (policy, fallback)


def test_use_max_ties_go_to_task_ones_source_and_other_tables_keep_the_global_policy(clean_pair, task_name):
    pair = clean_pair
    create_both(
        pair,
        "CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(10), c INT NULL)",
        "CREATE TABLE shop.u (id INT PRIMARY KEY, note VARCHAR(10))",
    )
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base', 5)", "INSERT INTO shop.u VALUES (1, 'base')")
    kw: dict[str, Any] = dict(
        conflict_policy="Ignore", table_conflict_policies={"shop.t": {"policy": "UseMax", "column": "c"}}
    )
    first_start(pair, task_name, **kw)
    sql(pair.a, "UPDATE shop.t SET note='fromA' WHERE id=1", "UPDATE shop.u SET note='fromA' WHERE id=1")
    sql(pair.b, "UPDATE shop.t SET note='fromB' WHERE id=1", "UPDATE shop.u SET note='fromB' WHERE id=1")

    def all_decided():
        return all(len(conflicts(s, task_name, r)) == 2 for s, r in ((pair.b, "forward"), (pair.a, "reverse")))

    run_both_until(pair, task_name, all_decided, "four conflicts decided", **kw)
    assert table_rows(pair.a, "t") == table_rows(pair.b, "t") == [(1, "fromA", 5)]
    assert checksum(pair.a, "t") == checksum(pair.b, "t")
    assert table_rows(pair.a, "u") == [(1, "fromA")] and table_rows(pair.b, "u") == [(1, "fromB")]  # Ignore
    decisions = {
        (role, c["dest_table"]): (c["policy"], c["decision"])
        for server, role in ((pair.b, "forward"), (pair.a, "reverse"))
        for c in conflicts(server, task_name, role)
    }
    assert decisions == {
        ("forward", "t"): ("UseMax", "UseMax:source"),
        ("reverse", "t"): ("UseMax", "UseMax:dest"),
        ("forward", "u"): ("Ignore", "Ignored"),
        ("reverse", "u"): ("Ignore", "Ignored"),
    }


def test_use_max_on_an_insert_duplicate(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(10), c DECIMAL(8,2))")
    policies = {"shop.t": {"policy": "UseMax", "column": "c"}}
    first_start(pair, task_name, table_conflict_policies=policies)
    write_both(pair, "INSERT INTO shop.t VALUES (1, 'fromA', 3.50)", "INSERT INTO shop.t VALUES (1, 'fromB', 3.25)")

    both_decided = logged_on_both(pair, task_name, "insert_duplicate")

    run_both_until(pair, task_name, both_decided, "both decided", table_conflict_policies=policies)
    assert [r[:2] for r in table_rows(pair.a, "t")] == [r[:2] for r in table_rows(pair.b, "t")] == [(1, "fromA")]
    assert checksum(pair.a) == checksum(pair.b)


# --------------------------------------------------------------------------- rows that already match


@pytest.mark.parametrize("policy", ["TaskFailed", "Ignore", "Overwrite"])
def test_the_same_change_on_both_sides_is_not_a_conflict(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10), f FLOAT, d DATETIME(3))")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base', 0.1, '2024-01-01 00:00:00.5'), (3, 'three', 3.3, NULL)")
    first_start(pair, task_name, conflict_policy=policy)
    same = [
        "UPDATE shop.t SET v='same', f=1.1 WHERE id=1",  # UPDATE to the same after-image on both sides
        "INSERT INTO shop.t VALUES (2, 'two', 2.2, '2024-01-02 00:00:00.25')",  # the same INSERT
        "DELETE FROM shop.t WHERE id=3",  # the same DELETE
    ]
    sql_both(pair, *same)

    def all_seen():
        return all(len(conflicts(s, task_name, r)) == 3 for s, r in ((pair.b, "forward"), (pair.a, "reverse")))

    syncs = run_both_until(pair, task_name, all_seen, "no-ops logged", conflict_policy=policy)
    for s in syncs:
        assert s.result is not None and s.result.outcome == "stopped", s.result
        assert s.result.stats["conflicts"] == 0
    assert table_rows(pair.a, "t") == table_rows(pair.b, "t")
    assert checksum(pair.a) == checksum(pair.b)
    for server, role in ((pair.b, "forward"), (pair.a, "reverse")):
        got = sorted((c["conflict_type"], c["decision"], c["status"]) for c in conflicts(server, task_name, role))
        assert got == [
            ("delete_missing", "AlreadyEqual", "logged"),
            ("insert_duplicate", "AlreadyEqual", "logged"),
            ("update_conflict", "AlreadyEqual", "logged"),
        ]


def test_a_row_made_equal_by_hand_resumes_and_supersedes_the_open_conflict(clean_pair, task_name):
    """The issue's recovery: TaskFailed stopped on a row; the destination row is made identical to the source
    row by hand; the restart applies the change as a no-op (not counted again) and the open row is superseded."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    fwd = make_direction(task_name)
    Sync(fwd, pair.a, pair.b).start().stop()
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'fromB')")
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 'fromA')", "INSERT INTO shop.t VALUES (2, 'after')")
    failed = stopped_on_conflict(pair, fwd)
    sql(pair.b, "UPDATE shop.t SET v='fromA' WHERE id=1")  # made identical by hand
    with Sync(fwd, pair.a, pair.b) as sync:
        wait_until(lambda: table_rows(pair.b, "t") == [(1, "fromA"), (2, "after")], 20, "resumed")
    assert sync.result is not None and sync.result.outcome == "stopped"
    assert sync.result.stats["conflicts"] == 1  # the first one only
    rows = {c["id"]: c for c in conflicts(pair.b, task_name, "forward")}
    assert rows[failed.conflict_id]["status"] == "superseded"
    assert [(c["conflict_type"], c["decision"]) for i, c in rows.items() if i != failed.conflict_id] == [
        ("insert_duplicate", "AlreadyEqual")
    ]
    assert state_row(pair.b, task_name, "forward")["state"] == State.STOPPED


# --------------------------------------------------------------------------- answers


def answer(server, conflict_id: int, choice: str, who: str = "tester") -> None:
    """What engine.resolve does (C2): the open conflict gets an answer."""
    sql(
        server,
        f"UPDATE dts_meta.conflict_log SET status='answered', answer='{choice}', answered_by='{who}', "
        f"answered_at=UTC_TIMESTAMP(6) WHERE id={int(conflict_id)} AND status='open'",
    )


def test_insert_insert_answered_on_both_directions_ends_with_one_winner(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10), UNIQUE KEY (v))")
    first_start(pair, task_name)
    write_both(
        pair,
        "INSERT INTO shop.t VALUES (1, 'fromA')",
        "INSERT INTO shop.t VALUES (1, 'fromB')",
    )
    sql(pair.a, "INSERT INTO shop.t VALUES (2, 'two')")  # after the conflict: must arrive once answered
    fwd, rev = directions(task_name)
    f, r = stopped_on_conflict(pair, fwd), stopped_on_conflict(pair, rev)
    # take the source row on task one; the mirrored answer (keep the destination row) on task two
    answer(pair.b, f.conflict_id, "take_source")
    answer(pair.a, r.conflict_id, "keep_destination")
    converge(pair, task_name, [(1, "fromA"), (2, "two")], "one winner on both sides")
    fc = {c["id"]: c for c in conflicts(pair.b, task_name, "forward")}[f.conflict_id]
    rc = {c["id"]: c for c in conflicts(pair.a, task_name, "reverse")}[r.conflict_id]
    assert (fc["status"], fc["decision"], fc["answered_by"]) == ("resolved", "TakeSource", "tester")
    assert (rc["status"], rc["decision"]) == ("resolved", "KeepDestination")
    assert fc["applied_at"] is not None and rc["applied_at"] is not None
    assert len(conflicts(pair.b, task_name, "forward")) == len(conflicts(pair.a, task_name, "reverse")) == 1
    # exactly once: another restart applies nothing again (the checkpoints are past the answered changes)
    sql(pair.b, "UPDATE shop.t SET v='changedB' WHERE id=1")
    expected = [(1, "changedB"), (2, "two")]
    converge(pair, task_name, expected, "the later change arrives, the answer is not re-applied")
    assert table_rows(pair.b, "t") == expected
    assert statuses(pair.b, task_name, "forward") == ["resolved"]
    assert statuses(pair.a, task_name, "reverse") == ["resolved"]


def test_update_update_answered_skip_and_mirrored_answer_in_advance(clean_pair, task_name):
    """Task one stops on an UPDATE/UPDATE; the answer 'take the source row' puts A's row on B. Task two has not
    met its side yet: the mirrored answer (keep the destination row) is a new answered row with applies_through
    (as engine.resolve writes it), so task two does not apply its stale change of that key, and both sides end
    with A's row."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base')")
    first_start(pair, task_name)
    write_both(pair, "UPDATE shop.t SET v='fromA' WHERE id=1", "UPDATE shop.t SET v='fromB' WHERE id=1")
    fwd = make_direction(task_name)
    f = stopped_on_conflict(pair, fwd)
    answer(pair.b, f.conflict_id, "take_source")
    # the mirrored answer for task two: its changes of key 1 up to B's current position keep A's row
    b_pos = sql(pair.b, "SHOW MASTER STATUS")[0]
    sql(
        pair.a,
        "INSERT INTO dts_meta.conflict_log (task_name, direction, detected_at, conflict_type, policy, decision, "
        "source_db, source_table, dest_db, dest_table, key_json, status, answer, answered_by, answered_at, "
        "applies_through, linked_id) VALUES ("
        f"'{task_name}', 'reverse', UTC_TIMESTAMP(6), 'update_conflict', 'TaskFailed', 'Mirrored', 'shop', 't', "
        f"'shop', 't', '{{\"id\": 1}}', 'answered', 'keep_destination', 'tester', UTC_TIMESTAMP(6), "
        f"'{b_pos[0]}:{b_pos[1]}', {f.conflict_id})",
    )
    converge(pair, task_name, [(1, "fromA")], "A's row on both sides")
    (fc,) = conflicts(pair.b, task_name, "forward")
    (rc,) = conflicts(pair.a, task_name, "reverse")
    assert (fc["status"], fc["decision"]) == ("resolved", "TakeSource")
    assert (rc["status"], rc["decision"]) == ("resolved", "KeepDestination")


@pytest.mark.parametrize("policy", ["Ignore", "Overwrite"])
def test_update_update_in_a_batch_of_updates(clean_pair, task_name, policy):
    """Updates of many rows go in batches (one existence check for all): the row B changed meanwhile is found
    by that check and decided alone; the others are applied."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT, f FLOAT, d DATETIME(6))")
    sql_both(
        pair,
        "INSERT INTO shop.t VALUES " + ", ".join(f"({i}, {i}, {i}.1, '2024-01-01 00:00:0{i}.5')" for i in range(1, 6)),
    )
    fwd = make_direction(task_name, conflict_policy=policy)
    Sync(fwd, pair.a, pair.b).start().stop()
    sql(pair.b, "UPDATE shop.t SET v=-3 WHERE id=3")
    sql(pair.a, "UPDATE shop.t SET v=v*10, f=f*2")  # one transaction, five rows
    with Sync(fwd, pair.a, pair.b):
        wait_until(lambda: len(conflicts(pair.b, task_name, "forward")) == 1, 20, "the conflict logged")
    expected_3 = (3, -3) if policy == "Ignore" else (3, 30)
    assert [r[:2] for r in table_rows(pair.b, "t")] == [(1, 10), (2, 20), expected_3, (4, 40), (5, 50)]
    (c,) = conflicts(pair.b, task_name, "forward")
    assert (c["conflict_type"], json.loads(c["key_json"])) == ("update_conflict", {"id": 3})
    assert json.loads(c["dest_image"])["v"] == -3 and json.loads(c["source_image"])["before"]["v"] == 3
    if policy == "Overwrite":
        assert checksum(pair.a) == checksum(pair.b)


def both_failed_on_one_key(pair, task: str):
    """The same key inserted on both servers, both directions stopped on it (TaskFailed)."""
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    first_start(pair, task)
    write_both(pair, "INSERT INTO shop.t VALUES (1, 'fromA')", "INSERT INTO shop.t VALUES (1, 'fromB')")
    fwd, rev = directions(task)
    f, r = stopped_on_conflict(pair, fwd), stopped_on_conflict(pair, rev)
    return fwd, rev, f.conflict_id, r.conflict_id


def test_skip_on_a_two_sided_conflict_keeps_the_destination_row_on_both_sides(clean_pair, task_name):
    """'Skip this change' on task one leaves B's row on B; the mirrored answer makes task two take it (the
    source row of task two), so both servers end with B's row, not each with its own."""
    pair = clean_pair
    fwd, _rev, f_id, r_id = both_failed_on_one_key(pair, task_name)
    rec = answer_forward(pair, fwd, f_id, "skip", "tester")
    assert rec.recorded and rec.mirror == "answered" and rec.mirrored_id == r_id
    converge(pair, task_name, [(1, "fromB")], "B's row on both sides")
    (fc,) = conflicts(pair.b, task_name, "forward")
    (rc,) = conflicts(pair.a, task_name, "reverse")
    assert (fc["id"], fc["status"], fc["answer"], fc["decision"]) == (f_id, "resolved", "skip", "Skipped")
    assert (rc["id"], rc["status"], rc["answer"], rc["decision"]) == (r_id, "resolved", "take_source", "TakeSource")
    assert (fc["linked_id"], rc["linked_id"]) == (r_id, f_id)


def test_a_running_direction_uses_a_mirrored_answer_recorded_while_it_runs(clean_pair, task_name):
    """Task two is running (its answers read at connect) and held up before its change of key 1; task one stops
    on that key and is answered 'take the source row'. The mirrored answer recorded meanwhile for task two is
    read again before task two would stop: it keeps A's row instead of opening a second request."""
    pair = clean_pair
    create_both(
        pair,
        "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))",
        "CREATE TABLE shop.u (id INT PRIMARY KEY, n INT)",
        "INSERT INTO shop.u VALUES (1, 0)",
    )
    first_start(pair, task_name)
    sql(pair.b, "UPDATE shop.u SET n=1 WHERE id=1")
    write_both(pair, "INSERT INTO shop.t VALUES (1, 'fromA')", "INSERT INTO shop.t VALUES (1, 'fromB')")
    fwd, rev = directions(task_name)
    blocker = pair.a.root_connect()
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM shop.u WHERE id=1 FOR UPDATE")  # task two waits on this row
        with Sync(rev, pair.b, pair.a) as rs:
            f = stopped_on_conflict(pair, fwd)
            rec = answer_forward(pair, fwd, f.conflict_id, "take_source", "tester")
            assert rec.recorded and rec.mirror == "inserted"
            blocker.commit()
            wait_until(lambda: sql(pair.a, "SELECT n FROM shop.u")[0][0] == 1, 20, "task two went on")
            with Sync(fwd, pair.a, pair.b):
                wait_until(lambda: table_rows(pair.b, "t") == [(1, "fromA")], 20, "task one applied its answer")
                wait_until(
                    lambda: statuses(pair.a, task_name, "reverse") == ["resolved"],
                    30,
                    "the mirrored answer resolved once task two's checkpoint passed its range",
                )
            assert rs.thread.is_alive() and rs.result is None
    finally:
        blocker.close()
    assert table_rows(pair.a, "t") == table_rows(pair.b, "t") == [(1, "fromA")]
    assert checksum(pair.a) == checksum(pair.b) and checksum(pair.a, "u") == checksum(pair.b, "u")
    (fc,) = conflicts(pair.b, task_name, "forward")
    (rc,) = conflicts(pair.a, task_name, "reverse")  # no second open conflict on task two
    assert (fc["status"], fc["decision"]) == ("resolved", "TakeSource")
    assert (rc["id"], rc["answer"], rc["decision"], rc["linked_id"]) == (
        rec.mirrored_id,
        "keep_destination",
        "KeepDestination",
        f.conflict_id,
    )
    assert rc["applied_at"] is not None
    assert state_row(pair.a, task_name, "reverse")["state"] == State.STOPPED


def test_a_mirrored_answer_decides_every_stale_change_of_its_key(clean_pair, task_name):
    """B changed the row twice while A changed it once; task one is answered 'take the source row'. The
    mirrored answer (keep the destination row, up to B's position then) decides both of task two's stale
    changes, stays answered while task two is inside its range, and is resolved once its checkpoint passes it."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base')")
    first_start(pair, task_name)
    sql(pair.a, "UPDATE shop.t SET v='fromA' WHERE id=1")
    sql(pair.b, "UPDATE shop.t SET v='fromB1' WHERE id=1", "UPDATE shop.t SET v='fromB2' WHERE id=1")
    fwd, _rev = directions(task_name)
    f = stopped_on_conflict(pair, fwd)
    rec = answer_forward(pair, fwd, f.conflict_id, "take_source", "tester")
    assert rec.recorded and rec.mirror == "inserted"

    converge(
        pair,
        task_name,
        [(1, "fromA")],
        "A's row on both sides, the mirrored answer resolved",
        also=lambda: statuses(pair.a, task_name, "reverse") == ["resolved"],
    )
    (fc,) = conflicts(pair.b, task_name, "forward")
    (rc,) = conflicts(pair.a, task_name, "reverse")  # both stale changes decided by the one answer
    assert (fc["status"], fc["decision"]) == ("resolved", "TakeSource")
    assert (rc["id"], rc["answer"], rc["decision"]) == (rec.mirrored_id, "keep_destination", "KeepDestination")
    assert rc["applied_at"] is not None and rc["applies_through"] is not None
    for role, server in (("forward", pair.b), ("reverse", pair.a)):
        assert state_row(server, task_name, role)["state"] == State.STOPPED


def test_two_answers_at_the_same_moment_the_first_wins_on_both_sides(clean_pair, task_name, monkeypatch):
    """Two people answer the two directions' conflicts of one key at the same moment, each 'take the source
    row' (which would swap the rows). The answer lock on both servers serializes them: the first answer and
    its mirror stand, the second is not recorded, and both servers end with the first answer's row."""
    pair = clean_pair
    fwd, rev, f_id, r_id = both_failed_on_one_key(pair, task_name)
    barrier = threading.Barrier(2, timeout=20)

    class Together(NamedLock):
        def held(self, *args: Any, **kw: Any):
            barrier.wait()  # both answers reach the lock at once
            return super().held(*args, **kw)

    monkeypatch.setattr(resolve, "ANSWER_LOCK", Together(**dataclasses.asdict(resolve.ANSWER_LOCK)))
    a, b = pair.a.settings(name="a"), pair.b.settings(name="b")
    out: dict[str, resolve.Recorded] = {}

    def answer_as(key: str, direction, src, dst, conflict_id: int, who: str) -> None:
        out[key] = resolve.record_answer(direction, src, dst, conflict_id, "take_source", who)

    threads = [
        threading.Thread(target=answer_as, args=("f", fwd, a, b, f_id, "al")),
        threading.Thread(target=answer_as, args=("r", rev, b, a, r_id, "bo")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert sorted(out) == ["f", "r"] and [out["f"].recorded, out["r"].recorded].count(True) == 1
    first = "f" if out["f"].recorded else "r"
    assert out[first].mirror == "answered"
    expected = [(1, "fromA")] if first == "f" else [(1, "fromB")]

    def both_resolved() -> bool:
        return statuses(pair.b, task_name, "forward") == statuses(pair.a, task_name, "reverse") == ["resolved"]

    # the mirrored answer changes no row on its side: wait until that direction has applied it too
    converge(
        pair, task_name, expected, "the first answer's row on both sides, both answers applied", also=both_resolved
    )
    (fc,) = conflicts(pair.b, task_name, "forward")  # no second mirrored row on either side
    (rc,) = conflicts(pair.a, task_name, "reverse")
    assert {fc["status"], rc["status"]} == {"resolved"}
    assert (fc["linked_id"], rc["linked_id"]) == (r_id, f_id)
    if first == "f":
        assert (fc["answer"], fc["answered_by"], fc["decision"]) == ("take_source", "al", "TakeSource")
        assert (rc["answer"], rc["decision"]) == ("keep_destination", "KeepDestination")
    else:
        assert (rc["answer"], rc["answered_by"], rc["decision"]) == ("take_source", "bo", "TakeSource")
        assert (fc["answer"], fc["decision"]) == ("keep_destination", "KeepDestination")


def test_an_answer_matches_a_key_the_destination_collation_calls_equal(clean_pair, task_name):
    """'abc' on A and 'ABC' on B are one key under a case-insensitive collation: the answer on task one is
    mirrored to task two's conflict of 'ABC', and both servers end with A's row."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v VARCHAR(10))")
    first_start(pair, task_name)
    write_both(pair, "INSERT INTO shop.t VALUES ('abc', 'fromA')", "INSERT INTO shop.t VALUES ('ABC', 'fromB')")
    fwd, rev = directions(task_name)
    f, r = stopped_on_conflict(pair, fwd), stopped_on_conflict(pair, rev)
    rec = answer_forward(pair, fwd, f.conflict_id, "take_source", "tester")
    assert rec.recorded and rec.mirror == "answered" and rec.mirrored_id == r.conflict_id
    converge(pair, task_name, [("abc", "fromA")], "A's row on both sides")
    (fc,) = conflicts(pair.b, task_name, "forward")
    (rc,) = conflicts(pair.a, task_name, "reverse")
    assert (fc["status"], fc["decision"], json.loads(fc["key_json"])) == ("resolved", "TakeSource", {"id": "abc"})
    assert (rc["status"], rc["decision"], json.loads(rc["key_json"])) == ("resolved", "KeepDestination", {"id": "ABC"})


def test_a_mirrored_answer_in_advance_matches_a_key_the_destination_collation_calls_equal(clean_pair, task_name):
    """The mirrored answer recorded in advance for task two names key 'abc'; task two's stale change is of 'ABC'
    (one key under the column's case-insensitive collation): the applier asks the destination and applies it."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v VARCHAR(10))")
    first_start(pair, task_name)
    write_both(pair, "INSERT INTO shop.t VALUES ('abc', 'fromA')", "INSERT INTO shop.t VALUES ('ABC', 'fromB')")
    fwd = make_direction(task_name)
    f = stopped_on_conflict(pair, fwd)
    rec = answer_forward(pair, fwd, f.conflict_id, "take_source", "tester")
    assert rec.recorded and rec.mirror == "inserted"

    converge(
        pair,
        task_name,
        [("abc", "fromA")],
        "A's row on both sides, the mirrored answer resolved",
        also=lambda: statuses(pair.a, task_name, "reverse") == ["resolved"],
    )
    (rc,) = conflicts(pair.a, task_name, "reverse")  # no open conflict of 'ABC'
    assert (rc["id"], rc["decision"], json.loads(rc["key_json"])) == (rec.mirrored_id, "KeepDestination", {"id": "abc"})


# --------------------------------------------------------------------------- DELETE vs UPDATE


def delete_on_a_update_on_b(pair, task: str, **kw: Any) -> None:
    """Row 1 deleted on A while B updates it; row 2 untouched."""
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base'), (2, 'two')")
    first_start(pair, task, **kw)
    write_both(pair, "DELETE FROM shop.t WHERE id=1", "UPDATE shop.t SET v='fromB' WHERE id=1")


@pytest.mark.parametrize(
    "choice, expected",
    [("take_source", [(2, "two")]), ("keep_destination", [(1, "fromB"), (2, "two")])],
)
def test_delete_vs_update_under_task_failed_is_answered_once_for_both_sides(clean_pair, task_name, choice, expected):
    """Task one's DELETE finds B's row changed: a delete_conflict, the direction stops with both images logged.
    The answer (take the source row = delete B's row; keep the destination row = keep it) is mirrored to task
    two, whose UPDATE of the row A deleted follows it (keep no row here / re-insert it): both servers end
    equal."""
    pair = clean_pair
    delete_on_a_update_on_b(pair, task_name)
    fwd = make_direction(task_name)
    f = stopped_on_conflict(pair, fwd)
    assert f.state == State.FAILED
    assert "delete conflict" in f.message and "base" in f.message and "fromB" in f.message
    assert table_rows(pair.b, "t") == [(1, "fromB"), (2, "two")]  # nothing applied
    (c,) = conflicts(pair.b, task_name, "forward")
    assert (c["conflict_type"], c["decision"], c["status"]) == ("delete_conflict", "TaskFailed", "open")
    assert json.loads(c["source_image"]) == {"id": 1, "v": "base"}
    assert json.loads(c["dest_image"]) == {"id": 1, "v": "fromB"}
    assert json.loads(c["key_json"]) == {"id": 1}
    rec = answer_forward(pair, fwd, f.conflict_id, choice, "t")
    assert rec.recorded and rec.mirror == "inserted"

    def forward_settled():  # keep_destination: the rows are right before task one has met its change again
        return {x["id"]: x for x in conflicts(pair.b, task_name, "forward")}[f.conflict_id]["status"] == "resolved"

    converge(pair, task_name, expected, f"{choice}: the same rows on both sides", also=forward_settled)
    fc = {x["id"]: x for x in conflicts(pair.b, task_name, "forward")}[f.conflict_id]
    assert (fc["status"], fc["answer"]) == ("resolved", choice)
    assert fc["decision"] == ("TakeSource" if choice == "take_source" else "KeepDestination")
    (rc,) = [x for x in conflicts(pair.a, task_name, "reverse") if x["conflict_type"] == "delete_conflict"]
    assert (rc["id"], rc["linked_id"], rc["applied_at"] is not None) == (rec.mirrored_id, f.conflict_id, True)
    assert rc["decision"] == ("KeepDestination" if choice == "take_source" else "TakeSource")
    (um,) = logged(pair.a, task_name, "reverse", "update_missing")  # task two's UPDATE of the row A deleted
    assert um["decision"] == ("KeepDestination" if choice == "take_source" else "TakeSource")
    assert json.loads(um["source_image"])["v"] == "fromB"


@pytest.mark.parametrize(
    "policy, rows_a, rows_b, decision",
    [
        # B keeps its row, task two re-inserts it on A (UPDATE of a missing row): equal
        ("Ignore", [(1, "fromB"), (2, "two")], [(1, "fromB"), (2, "two")], "Ignored"),
        # each side takes the other's change: B's row deleted, A's re-inserted (the documented divergence)
        ("Overwrite", [(1, "fromB"), (2, "two")], [(2, "two")], "Overwritten"),
    ],
)
def test_delete_vs_update_under_ignore_and_overwrite(clean_pair, task_name, policy, rows_a, rows_b, decision):
    pair = clean_pair
    delete_on_a_update_on_b(pair, task_name, conflict_policy=policy)

    both_logged = logged_on_both(pair, task_name, "delete_conflict", "update_missing")

    syncs = run_both_until(pair, task_name, both_logged, "both sides decided", conflict_policy=policy)
    for s in syncs:
        assert s.result is not None and s.result.outcome == "stopped", s.result
    assert table_rows(pair.a, "t") == rows_a and table_rows(pair.b, "t") == rows_b
    if rows_a == rows_b:
        assert checksum(pair.a) == checksum(pair.b)
    (c,) = logged(pair.b, task_name, "forward", "delete_conflict")
    assert (c["policy"], c["decision"], c["status"]) == (policy, decision, "logged")
    assert json.loads(c["source_image"]) == {"id": 1, "v": "base"} and json.loads(c["dest_image"])["v"] == "fromB"
    (u,) = logged(pair.a, task_name, "reverse", "update_missing")
    assert u["decision"] == "UpdateToInsert"


@pytest.mark.parametrize("policy", ["UseMax", "UseMin"])
def test_delete_vs_update_under_use_max_and_use_min_keeps_the_updated_row(clean_pair, task_name, policy):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10), c INT)")
    sql_both(pair, "INSERT INTO shop.t VALUES (1, 'base', 5)")
    policies = {"shop.t": {"policy": policy, "column": "c"}}
    first_start(pair, task_name, table_conflict_policies=policies)
    write_both(pair, "DELETE FROM shop.t WHERE id=1", "UPDATE shop.t SET v='fromB', c=3 WHERE id=1")

    both_logged = logged_on_both(pair, task_name, "delete_conflict", "update_missing")

    run_both_until(pair, task_name, both_logged, "both sides decided", table_conflict_policies=policies)
    assert table_rows(pair.a, "t") == table_rows(pair.b, "t") == [(1, "fromB", 3)]
    assert checksum(pair.a) == checksum(pair.b)
    (c,) = logged(pair.b, task_name, "forward", "delete_conflict")
    assert (c["policy"], c["decision"]) == (policy, f"{policy}:dest")


@pytest.mark.parametrize("policy", ["TaskFailed", "Ignore", "Overwrite"])
def test_delete_conflict_in_a_batch_of_deletes(clean_pair, task_name, policy):
    """Many deletes in one transaction go in one statement (each row's key and before-image): the row B changed
    meanwhile falls short, is found row by row and decided alone; a row already gone is a no-op; the others
    are deleted."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT, f FLOAT, d DATETIME(6))")
    rows = ", ".join(f"({i}, {i}, {i}.1, '2024-01-01 00:00:0{i}.5')" for i in range(1, 7))
    sql_both(pair, f"INSERT INTO shop.t VALUES {rows}")
    fwd = make_direction(task_name, conflict_policy=policy)
    Sync(fwd, pair.a, pair.b).start().stop()
    sql(pair.b, "UPDATE shop.t SET v=-3 WHERE id=3", "DELETE FROM shop.t WHERE id=5")
    sql(pair.a, "DELETE FROM shop.t WHERE id <= 5")  # one transaction, five rows
    if policy == "TaskFailed":
        f = stopped_on_conflict(pair, fwd)
        assert len(table_rows(pair.b, "t")) == 5  # nothing of the transaction applied
        rec = answer_forward(pair, fwd, f.conflict_id, "take_source", "t")
        assert rec.recorded
    with Sync(fwd, pair.a, pair.b):
        wait_until(lambda: [r[0] for r in table_rows(pair.b, "t")] in ([3, 6], [6]), 20, "the deletes applied")
    expected = [3, 6] if policy == "Ignore" else [6]
    assert [r[0] for r in table_rows(pair.b, "t")] == expected
    if policy != "Ignore":
        assert checksum(pair.a) == checksum(pair.b)
    got = {(c["conflict_type"], json.loads(c["key_json"])["id"]): c for c in conflicts(pair.b, task_name, "forward")}
    assert set(got) == {("delete_conflict", 3), ("delete_missing", 5)}
    c = got[("delete_conflict", 3)]
    assert json.loads(c["source_image"])["v"] == 3 and json.loads(c["dest_image"])["v"] == -3
    decisions = {"TaskFailed": "TakeSource", "Ignore": "Ignored", "Overwrite": "Overwritten"}
    assert c["decision"] == decisions[policy]
    assert got[("delete_missing", 5)]["decision"] == "AlreadyEqual"
