"""The DDL owner rule (engine/ddl_owner.py): which direction applies a DDL transaction ending at a position."""

from __future__ import annotations

import datetime as _dt

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.ddl_owner import (
    DONE,
    SWITCHING,
    Decision,
    Switch,
    _merged,
    applies_ddl,
    current_owner,
    owner_at,
    owner_lock_name,
)

T = _dt.datetime(2026, 1, 1)

# switch 1: forward -> reverse at A bin.000002:500 (P_old) and B bin.000007:900 (P_new)
S1 = Switch(1, "reverse", DONE, ("bin.000002", 500), ("bin.000007", 900), T, "me")
# switch 2: reverse -> forward at B bin.000008:100 (P_old) and A bin.000003:40 (P_new)
S2 = Switch(2, "forward", DONE, ("bin.000003", 40), ("bin.000008", 100), T, "me")


def test_no_switch_forward_owns_everything():
    assert owner_at([], "a", ("bin.000001", 4)) == ("forward", None)
    assert owner_at([], "b", ("bin.000009", 4)) == ("forward", None)
    assert current_owner([]) == "forward"


def test_old_owner_keeps_ddl_up_to_and_including_p_old():
    assert owner_at([S1], "a", ("bin.000002", 499)) == ("forward", None)
    assert owner_at([S1], "a", ("bin.000002", 500)) == ("forward", None)  # at P_old: still the old owner's
    assert owner_at([S1], "a", ("bin.000002", 501)) == ("reverse", S1)
    assert owner_at([S1], "a", ("bin.000003", 4)) == ("reverse", S1)  # a later file, however small the offset


def test_new_owner_applies_after_p_new_only():
    assert owner_at([S1], "b", ("bin.000007", 900)) == ("forward", None)  # at or before P_new: not the new owner's
    assert owner_at([S1], "b", ("bin.000006", 99999)) == ("forward", None)
    assert owner_at([S1], "b", ("bin.000007", 901)) == ("reverse", S1)
    assert current_owner([S1]) == "reverse"


def test_switching_row_gives_the_new_owner_nothing_yet():
    pending = Switch(1, "reverse", SWITCHING, ("bin.000002", 500), None, T, "me")
    assert owner_at([pending], "a", ("bin.000002", 600)) == ("reverse", pending)  # the old owner stops at P_old
    assert owner_at([pending], "b", ("bin.999999", 1)) == ("forward", None)  # the new owner: not yet
    assert current_owner([pending]) == "forward"


def test_switching_back_uses_the_latest_switch_before_the_position():
    switches = [S2, S1]  # any order: by seq
    # A: forward until 2:500, reverse until 3:40, forward after
    assert owner_at(switches, "a", ("bin.000002", 500))[0] == "forward"
    assert owner_at(switches, "a", ("bin.000002", 501))[0] == "reverse"
    assert owner_at(switches, "a", ("bin.000003", 40))[0] == "reverse"
    assert owner_at(switches, "a", ("bin.000003", 41)) == ("forward", S2)
    # B: forward (nobody applies B's DDL) until 7:900, reverse until 8:100, then forward again
    assert owner_at(switches, "b", ("bin.000007", 901))[0] == "reverse"
    assert owner_at(switches, "b", ("bin.000008", 100))[0] == "reverse"
    assert owner_at(switches, "b", ("bin.000008", 101)) == ("forward", S2)
    assert current_owner(switches) == "forward"


def test_merged_history_takes_missing_and_completed_rows():
    pending = Switch(1, "reverse", SWITCHING, ("bin.000002", 500), None, T, "me")
    assert _merged([pending], [S1]) == [S1]
    assert _merged([S1], [pending]) == [S1]
    assert _merged([S1, S2], [S1]) == [S1, S2]


def test_decision_is_truthy_when_applied_and_exclude_ddl_never_applies():
    assert Decision(True) and not Decision(False, "no")
    fwd = SyncDirection.from_dict(
        dict(
            task_name="t",
            role="forward",
            source_conn_id="a",
            destination_conn_id="b",
            objects=["shop"],
            exclude_ddl=True,
        )
    )
    d = applies_ddl(None, fwd, ("bin.000001", 4))  # decided without reading a server
    assert not d and "exclude_ddl" in d.reason and not d.warn


def test_lock_name_fits_the_server_limit():
    assert owner_lock_name("dts_meta", "x") == "dts_ddl_owner:dts_meta:x"
    assert len(owner_lock_name("m" * 64, "t" * 64)) <= 64
