"""The pure decision logic of engine/conflicts.py (issue 12): policies, UseMax / UseMin and their fallbacks,
ties, and which answered conflict covers which change."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine import conflicts as C

POLICY_CASES = [
    ("TaskFailed", C.INSERT_DUPLICATE, None, True, C.DECISION_FAILED),
    ("Ignore", C.UPDATE_CONFLICT, None, True, C.DECISION_IGNORED),
    ("Overwrite", C.UPDATE_DUPLICATE, None, False, C.DECISION_OVERWRITTEN),
    # a missing row is never a policy question
    ("TaskFailed", C.UPDATE_MISSING, None, True, C.DECISION_CONVERTED),
    ("TaskFailed", C.DELETE_MISSING, None, True, C.DECISION_ALREADY_EQUAL),
    ("UseMax", C.DELETE_MISSING, None, True, C.DECISION_ALREADY_EQUAL),
    # a DELETE of a row the destination changed: stop / keep / delete; UseMax / UseMin keep the only row
    ("TaskFailed", C.DELETE_CONFLICT, None, True, C.DECISION_FAILED),
    ("Ignore", C.DELETE_CONFLICT, None, True, C.DECISION_IGNORED),
    ("Overwrite", C.DELETE_CONFLICT, None, False, C.DECISION_OVERWRITTEN),
    ("UseMax", C.DELETE_CONFLICT, C.CMP_NONE, True, C.DECISION_USE_MAX_DEST),
    ("UseMax", C.DELETE_CONFLICT, C.CMP_SOURCE_LARGER, True, C.DECISION_USE_MAX_DEST),
    ("UseMin", C.DELETE_CONFLICT, C.CMP_NONE, False, C.DECISION_USE_MIN_DEST),
    # UseMax: the larger value wins; UseMin: the smaller
    ("UseMax", C.UPDATE_CONFLICT, C.CMP_SOURCE_LARGER, True, C.DECISION_USE_MAX_SOURCE),
    ("UseMax", C.UPDATE_CONFLICT, C.CMP_SOURCE_SMALLER, True, C.DECISION_USE_MAX_DEST),
    ("UseMin", C.INSERT_DUPLICATE, C.CMP_SOURCE_SMALLER, False, C.DECISION_USE_MIN_SOURCE),
    ("UseMin", C.INSERT_DUPLICATE, C.CMP_SOURCE_LARGER, False, C.DECISION_USE_MIN_DEST),
    # fallbacks: UseMax -> Overwrite, UseMin -> Ignore
    ("UseMax", C.UPDATE_CONFLICT, C.CMP_NONE, True, C.DECISION_OVERWRITTEN),
    ("UseMin", C.UPDATE_CONFLICT, C.CMP_NONE, False, C.DECISION_IGNORED),
    # ties: task one's source (server A) wins on both servers
    ("UseMax", C.UPDATE_CONFLICT, C.CMP_EQUAL, True, C.DECISION_USE_MAX_SOURCE),
    ("UseMax", C.UPDATE_CONFLICT, C.CMP_EQUAL, False, C.DECISION_USE_MAX_DEST),
    ("UseMin", C.UPDATE_CONFLICT, C.CMP_EQUAL, True, C.DECISION_USE_MIN_SOURCE),
    ("UseMin", C.UPDATE_CONFLICT, C.CMP_EQUAL, False, C.DECISION_USE_MIN_DEST),
]


@pytest.mark.parametrize("policy, ctype, comparison, forward, expected", POLICY_CASES)
def test_decide(policy, ctype, comparison, forward, expected):
    assert C.decide(policy, ctype, comparison, forward=forward) == expected


@pytest.mark.parametrize("source_value, dest_value", [(1, 2), (5, 3), (4, 4)])
@pytest.mark.parametrize("policy", ["UseMax", "UseMin"])
def test_both_directions_pick_the_same_winner(policy, source_value, dest_value):
    """Forward sees A's row as source, reverse sees B's row as source: the same row must win on both sides."""

    def cmp(src, dst):
        if src == dst:
            return C.CMP_EQUAL
        return C.CMP_SOURCE_LARGER if src > dst else C.CMP_SOURCE_SMALLER

    a, b = source_value, dest_value
    on_b = C.decide(policy, C.UPDATE_CONFLICT, cmp(a, b), forward=True)  # forward: source A, destination B
    on_a = C.decide(policy, C.UPDATE_CONFLICT, cmp(b, a), forward=False)  # reverse: source B, destination A
    winner_on_b = "A" if on_b in C.SOURCE_WINS else "B"
    winner_on_a = "B" if on_a in C.SOURCE_WINS else "A"
    assert winner_on_a == winner_on_b


def test_comparison_of_the_servers_answers():
    assert C.comparison_of(0, False, 0, 1) == C.CMP_SOURCE_LARGER
    assert C.comparison_of(0, False, 1, 0) == C.CMP_SOURCE_SMALLER
    assert C.comparison_of(0, False, 0, 0) == C.CMP_EQUAL
    assert C.comparison_of(1, False, None, None) is C.CMP_NONE  # destination NULL
    assert C.comparison_of(0, True, None, None) is C.CMP_NONE  # source NULL
    assert C.comparison_of(None, False, None, None) is C.CMP_NONE


def test_compares_column_and_source_wins():
    assert C.compares_column("UseMax") and C.compares_column("UseMin") and not C.compares_column("Overwrite")
    assert C.DECISION_TAKE_SOURCE in C.SOURCE_WINS and C.DECISION_OVERWRITTEN in C.SOURCE_WINS
    assert not {C.DECISION_IGNORED, C.DECISION_KEEP_DESTINATION, C.DECISION_SKIPPED, C.DECISION_ALREADY_EQUAL} & (
        C.SOURCE_WINS
    )


def row(**over):
    r = {
        "id": 7,
        "status": "answered",
        "answer": "take_source",
        "dest_db": "shop",
        "dest_table": "t",
        "key_json": '{"id": 1}',
        "source_position": "bin.000003:500",
        "applies_through": None,
    }
    r.update(over)
    return r


def test_an_answer_covers_its_own_change_only():
    a = C.Answer.from_row(row())
    assert a.decision == C.DECISION_TAKE_SOURCE and a.position == ("bin.000003", 500)
    key = C.key_value({"id": 1})
    assert a.covers(("shop", "t"), key, ("bin.000003", 500))
    assert not a.covers(("shop", "t"), key, ("bin.000003", 400))  # another change of the key
    assert not a.covers(("shop", "t"), C.key_value({"id": 2}), ("bin.000003", 500))
    assert not a.covers(("shop", "u"), key, ("bin.000003", 500))
    assert a.passed_by(("bin.000003", 500)) and a.passed_by(("bin.000004", 4))
    assert not a.passed_by(("bin.000003", 499))


def test_a_mirrored_answer_covers_changes_up_to_applies_through():
    a = C.Answer.from_row(
        row(answer="keep_destination", source_position=None, applies_through=b"bin.000010:900", key_json=b'{"k": "x"}')
    )
    key = C.key_value({"k": "x"})
    assert a.decision == C.DECISION_KEEP_DESTINATION
    assert a.covers(("shop", "t"), key, ("bin.000009", 123456))
    assert a.covers(("shop", "t"), key, ("bin.000010", 900))
    assert not a.covers(("shop", "t"), key, ("bin.000010", 901))
    assert a.range_end == ("bin.000010", 900)


def test_open_and_stop_answers_decide_nothing():
    assert C.Answer.from_row(row(status="open", answer=None)).decision is None
    assert C.Answer.from_row(row(status="open", answer="stop")).decision is None
    assert C.Answer.from_row(row(answer="skip")).decision == C.DECISION_SKIPPED
    assert not C.Answer.from_row(row(status="open")).covers(("shop", "t"), {"id": 1}, ("bin.000003", 500))


def test_keys_compare_as_the_log_writes_them():
    import datetime as dt
    from decimal import Decimal

    key = {"d": dt.datetime(2024, 1, 2, 3, 4, 5, 6), "n": Decimal("1.50"), "b": b"\xff"}
    logged = C.Answer.from_row(row(key_json=C.to_json(key)))
    assert logged.key == C.key_value(key)


def test_parse_position():
    assert C.parse_position("mysql-bin.000001:4") == ("mysql-bin.000001", 4)
    assert C.parse_position(b"a.1:9") == ("a.1", 9)
    assert C.parse_position("") is None and C.parse_position(None) is None and C.parse_position("x:y") is None
