"""Pure logic: a group's changes split into stretches by the source session's foreign_key_checks."""

from __future__ import annotations

from airflow_provider_dts.engine.apply import _fk_segments
from airflow_provider_dts.engine.model import RowChange, Transaction

IDEMPOTENT: set[int] = set()  # ids of catch-up changes (Applier._apply_group decides them before the split)


def changes(n: int, base: int, idem: bool = False) -> list[RowChange]:
    out = [RowChange("insert", "s", "t", "s", "t", None, {"id": base + i}, ("id",)) for i in range(n)]
    if idem:
        IDEMPOTENT.update(id(c) for c in out)
    return out


def idempotent(c: RowChange) -> bool:
    return id(c) in IDEMPOTENT


def ids(segments) -> list[tuple[bool, list[int]]]:
    return [(on, [c.after["id"] for c in cs]) for on, cs in segments]


def txn(n: int, base: int, off=()) -> Transaction:
    return Transaction(("f.1", base), ("f.1", base + 1), None, 0.0, changes(n, base), fk_checks_off=off)


def test_no_change_with_checks_off_is_one_stretch_of_the_same_list():
    txns = [txn(2, 0), txn(3, 10)]
    items = txns[0].changes + txns[1].changes
    segs = _fk_segments(txns, items)
    assert len(segs) == 1 and segs[0][0] is True and segs[0][1] is items


def test_stretches_follow_binlog_order_and_merge_across_transactions():
    txns = [txn(3, 0, off=((1, 3),)), txn(2, 10, off=((0, 1),)), txn(2, 20), txn(3, 30, off=((0, 1), (2, 3)))]
    items = [c for t in txns for c in t.changes]
    assert ids(_fk_segments(txns, items)) == [
        (True, [0]),
        (False, [1, 2, 10]),
        (True, [11, 20, 21]),
        (False, [30]),
        (True, [31]),
        (False, [32]),
    ]


def test_the_ranges_survive_pickling():
    import pickle

    t = pickle.loads(pickle.dumps(txn(3, 0, off=((1, 3),)), protocol=pickle.HIGHEST_PROTOCOL))
    assert t.fk_checks_off == ((1, 3),)


def test_catch_up_changes_are_applied_with_checks_off():
    """A catch-up change replays history onto a snapshot that already holds the cascades' results."""
    first = Transaction(("f.1", 0), ("f.1", 1), None, 0.0, changes(2, 0, idem=True))
    second = Transaction(("f.1", 1), ("f.1", 2), None, 0.0, changes(2, 10))
    segs = _fk_segments([first, second], first.changes + second.changes, idempotent)
    assert ids(segs) == [(False, [0, 1]), (True, [10, 11])]
