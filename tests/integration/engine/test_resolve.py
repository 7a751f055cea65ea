"""engine/resolve.py against the real pair: recording answers to open conflicts, mirrored to the other direction.

Conflict rows are written as the engine writes them (``ControlSchema.log_conflict(status='open')``) on each
direction's home: task one (forward, A -> B) on B, task two (reverse, B -> A) on A.
"""

from __future__ import annotations

import json

import pytest
from syncing import create_both, make_direction, sql

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine import resolve
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ConfigError

CS = ControlSchema("dts_meta")


def _open(server, task: str, role: str, key: dict, src_image: dict, dst_image: dict, table: str = "t") -> int:
    with server.settings().connect() as conn:
        CS.ensure(conn)
        with conn.cursor() as cur:
            cid = CS.log_conflict(
                cur,
                task,
                role,
                conflict_type=C.INSERT_DUPLICATE,
                policy="TaskFailed",
                decision=C.DECISION_FAILED,
                source=("shop", table),
                dest=("shop", table),
                key=key,
                source_image=src_image,
                dest_image=dst_image,
                position="binlog.000001:100",
                status=C.STATUS_OPEN,
            )
            cur.execute("COMMIT")
    return cid


def _row(server, cid: int) -> dict:
    with server.settings().connect() as conn:
        row = resolve.conflict(conn, CS, cid)
    assert row is not None
    return row


@pytest.fixture
def dirs(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20), f FLOAT, d DATETIME(3))")
    fwd, rev = make_direction(task_name, "forward"), make_direction(task_name, "reverse")
    a, b = pair.a.settings(name="a"), pair.b.settings(name="b")
    for server in (pair.a, pair.b):  # both homes exist once task one passed its precheck
        with server.settings().connect() as conn:
            CS.ensure(conn)
    return pair, fwd, rev, a, b


def test_answer_on_both_open_conflicts_of_one_key(dirs, task_name):
    pair, fwd, _rev, a, b = dirs
    fa, fb = {"id": 1, "v": "fromA"}, {"id": 1, "v": "fromB"}
    f_id = _open(pair.b, task_name, "forward", {"id": 1}, fa, fb)  # task one: A's row meets B's
    r_id = _open(pair.a, task_name, "reverse", {"id": 1}, fb, fa)  # task two: B's row meets A's
    other_key = _open(pair.a, task_name, "reverse", {"id": 2}, fb, fa)  # another key: untouched

    rec = resolve.record_answer(fwd, a, b, f_id, C.ANSWER_TAKE_SOURCE, "admin", "A wins")
    assert rec.recorded and rec.mirror == "answered" and rec.mirrored_id == r_id
    f, r = _row(pair.b, f_id), _row(pair.a, r_id)
    assert (f["status"], f["answer"], f["answered_by"], f["linked_id"]) == ("answered", "take_source", "admin", r_id)
    assert f["answered_at"] is not None and "A wins" in f["note"]
    assert (r["status"], r["answer"], r["linked_id"]) == ("answered", "keep_destination", f_id)
    assert r["answered_by"].startswith("admin (via task one")
    assert _row(pair.a, other_key)["status"] == "open" and _row(pair.a, other_key)["answer"] is None
    assert resolve.is_answered(f) and resolve.is_answered(r)

    # idempotent, and the first answer wins: a second answer (either side) changes nothing
    again = resolve.record_answer(fwd, a, b, f_id, C.ANSWER_SKIP, "bob")
    assert not again.recorded and again.conflict["answer"] == "take_source"
    assert _row(pair.b, f_id)["answered_by"] == "admin"

    with pair.a.settings().connect() as conn:
        assert [c["id"] for c in resolve.open_conflicts(conn, CS, task_name)] == [other_key]
        recent = resolve.recent_conflicts(conn, CS, task_name)
    assert next(c["id"] for c in recent) == other_key  # open ones first
    assert "Take the source row by admin" in resolve.describe(f)


def test_answer_recorded_in_advance_for_the_other_direction(dirs, task_name):
    """Task two has not met its change of the key yet: a row 'answered' for it, covering its source (B) binlog up
    to now."""
    pair, _fwd, rev, a, b = dirs
    r_id = _open(pair.a, task_name, "reverse", {"id": 5}, {"id": 5, "v": "fromB"}, {"id": 5, "v": "fromA"})
    rec = resolve.record_answer(rev, b, a, r_id, C.ANSWER_TAKE_SOURCE, "admin")
    assert rec.recorded and rec.mirror == "inserted" and rec.mirrored_id is not None
    m = _row(pair.b, rec.mirrored_id)  # task one's home
    assert (m["task_name"], m["direction"], m["status"], m["answer"], m["linked_id"]) == (
        task_name,
        "forward",
        "answered",
        "keep_destination",
        r_id,
    )
    assert (m["dest_db"], m["dest_table"], json.loads(m["key_json"])) == ("shop", "t", {"id": 5})
    assert json.loads(m["source_image"]) == {"id": 5, "v": "fromA"} and m["source_position"] is None
    file, pos = sql(pair.a, "SHOW MASTER STATUS")[0][:2]  # task one's source: A
    through_file, through_pos = m["applies_through"].rsplit(":", 1)
    assert through_file == file and int(through_pos) <= int(pos)
    assert _row(pair.a, r_id)["linked_id"] == rec.mirrored_id


def test_stop_keeps_the_conflict_open_and_reopen_asks_again(dirs, task_name):
    pair, fwd, _rev, a, b = dirs
    f_id = _open(pair.b, task_name, "forward", {"id": 3}, {"id": 3, "v": "x"}, {"id": 3, "v": "y"})
    r_id = _open(pair.a, task_name, "reverse", {"id": 3}, {"id": 3, "v": "y"}, {"id": 3, "v": "x"})
    rec = resolve.record_answer(fwd, a, b, f_id, C.ANSWER_STOP, "admin", "look first")
    assert rec.recorded and rec.mirrored_id == r_id
    f = _row(pair.b, f_id)
    assert (f["status"], f["answer"]) == ("open", "stop") and resolve.is_answered(f)
    assert (_row(pair.a, r_id)["status"], _row(pair.a, r_id)["answer"]) == ("open", "stop")
    with pair.b.settings().connect() as conn:
        assert resolve.reopen(conn, CS, f_id)
    f = _row(pair.b, f_id)
    assert (f["status"], f["answer"], f["answered_by"]) == ("open", None, None) and "stop by admin" in f["note"]
    assert not resolve.is_answered(f)
    # a stop with nothing open on the other side inserts nothing there
    only = _open(pair.b, task_name, "forward", {"id": 4}, {"id": 4, "v": "x"}, {"id": 4, "v": "y"})
    assert resolve.record_answer(fwd, a, b, only, C.ANSWER_STOP, "admin").mirror is None


def test_bad_answer_and_unknown_conflict(dirs, task_name):
    _pair, fwd, _rev, a, b = dirs
    with pytest.raises(ConfigError, match="answer"):
        resolve.record_answer(fwd, a, b, 1, "maybe", "admin")
    with pytest.raises(resolve.ConflictNotFound, match="cli conflicts"):
        resolve.record_answer(fwd, a, b, 987654, C.ANSWER_SKIP, "admin")


def test_conflict_holds_until_the_destination_row_equals_the_source_row(dirs, task_name):
    pair, *_ = dirs
    src = {"id": 9, "v": "Same", "d": "2026-01-02T03:04:05.678000"}  # as the log writes it (to_json)
    sql(pair.b, "INSERT INTO shop.t VALUES (9, 'other', 0.1, '2026-01-02 03:04:05.678')")
    cid = _open(pair.b, task_name, "forward", {"id": 9}, src, {"id": 9, "v": "other"})
    row = _row(pair.b, cid)
    with pair.b.settings().connect() as conn:
        assert resolve.conflict_holds(conn, row)
    sql(pair.b, "UPDATE shop.t SET v = 'Same' WHERE id = 9")  # made equal by hand
    with pair.b.settings().connect() as conn:
        assert not resolve.conflict_holds(conn, row)


def test_an_answer_after_the_other_direction_was_answered_first_takes_its_mirror(dirs, task_name):
    """Task one was answered first ('take the source row') while task two had not met the key: its mirrored
    answer was recorded in advance. Task two's own conflict of that key, answered later ('take the source row',
    which would swap the rows), takes the mirror of the first answer instead; nothing is written on B."""
    pair, fwd, rev, a, b = dirs
    fa, fb = {"id": 7, "v": "fromA"}, {"id": 7, "v": "fromB"}
    f_id = _open(pair.b, task_name, "forward", {"id": 7}, fa, fb)
    first = resolve.record_answer(fwd, a, b, f_id, C.ANSWER_TAKE_SOURCE, "alice")
    assert first.recorded and first.mirror == "inserted" and first.mirrored_id is not None
    r_id = _open(pair.a, task_name, "reverse", {"id": 7}, fb, fa)  # task two met it anyway

    late = resolve.record_answer(rev, b, a, r_id, C.ANSWER_TAKE_SOURCE, "bob", "B wins")
    assert not late.recorded and late.superseded_by == f_id and late.mirror is None
    assert f"conflict {f_id}; this answer was not applied" in late.describe()
    r = _row(pair.a, r_id)
    assert (r["status"], r["answer"], r["answered_by"], r["linked_id"]) == (
        "answered",
        "keep_destination",
        "alice",
        f_id,
    )
    assert "take_source by bob: superseded by the answer given first" in r["note"]
    f = _row(pair.b, f_id)
    assert (f["status"], f["answer"], f["answered_by"], f["linked_id"]) == (
        "answered",
        "take_source",
        "alice",
        first.mirrored_id,
    )
    with pair.b.settings().connect() as conn:  # no second mirrored row for task one
        assert [c["id"] for c in CS.conflicts(conn, task_name, "forward")] == [f_id]

    # task one applied its answer already: the mirrored answer still waiting on A is the first answer here
    sql(pair.b, f"UPDATE dts_meta.conflict_log SET status='resolved' WHERE id={f_id}")
    r2_id = _open(pair.a, task_name, "reverse", {"id": 7}, fb, fa)
    again = resolve.record_answer(rev, b, a, r2_id, C.ANSWER_SKIP, "carol")
    assert not again.recorded and again.superseded_by == f_id
    r2 = _row(pair.a, r2_id)
    assert (r2["status"], r2["answer"], r2["linked_id"]) == ("answered", "keep_destination", f_id)
    assert f"mirrored here as conflict {first.mirrored_id}" in r2["note"]
    with pair.b.settings().connect() as conn:
        assert [c["id"] for c in CS.conflicts(conn, task_name, "forward")] == [f_id]
