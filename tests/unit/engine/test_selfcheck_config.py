"""Self-check settings: defaults, validation messages, task two's derived values (pure logic)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.config import SyncDirection, TwoWayTask
from airflow_provider_dts.engine.errors import ConfigError

BASE = {"task_name": "t1", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}


def test_defaults_on_report_only():
    d = SyncDirection.from_dict(BASE)
    assert (d.self_check, d.self_check_rows_per_second, d.self_check_auto_repair) == (True, 1000, False)
    assert SyncDirection.from_json(d.to_json()) == d


@pytest.mark.parametrize("value", [0, -5, 1_000_001, "fast", 2.5, True])
def test_bad_budget_names_the_field_and_the_range(value):
    with pytest.raises(ConfigError, match=r"self_check_rows_per_second: .* from 1 to 1000000"):
        SyncDirection.from_dict({**BASE, "self_check_rows_per_second": value})


def test_auto_repair_only_in_task_one_and_only_with_the_check_on():
    with pytest.raises(ConfigError, match="self_check_auto_repair: only task one"):
        SyncDirection.from_dict({**BASE, "role": "reverse", "exclude_ddl": True, "self_check_auto_repair": True})
    with pytest.raises(ConfigError, match="self_check_auto_repair: needs self_check on"):
        SyncDirection.from_dict({**BASE, "self_check": False, "self_check_auto_repair": True})


def test_task_two_follows_task_one_but_never_repairs():
    t = TwoWayTask.from_dict(
        {
            "name": "t1",
            "forward": {
                **{k: v for k, v in BASE.items() if k != "task_name"},
                "self_check_rows_per_second": 250,
                "self_check_auto_repair": True,
            },
        }
    )
    assert (t.forward.self_check_rows_per_second, t.forward.self_check_auto_repair) == (250, True)
    assert (t.reverse.self_check, t.reverse.self_check_rows_per_second, t.reverse.self_check_auto_repair) == (
        True,
        250,
        False,
    )
    off = TwoWayTask.from_dict(
        {"name": "t1", "forward": {**{k: v for k, v in BASE.items() if k != "task_name"}, "self_check": False}}
    )
    assert off.reverse.self_check is False


def test_noting_applied_keys_is_sampled_and_bounded():
    """The apply thread's hook keeps memory flat: a large group is sampled, the backlog is capped."""
    from airflow_provider_dts.engine import selfcheck
    from airflow_provider_dts.engine.model import RowChange, Transaction
    from airflow_provider_dts.engine.servers import ConnectionSettings

    d = SyncDirection.from_dict(BASE)
    sc = selfcheck.SelfCheck(
        d,
        ConnectionSettings(host="h", port=1, user="u", password="p"),
        ConnectionSettings(host="h", port=2, user="u", password="p"),
        position_fn=lambda: None,
        lag_fn=lambda: None,
    )

    def group(n, kind="update", start=0):
        return [
            Transaction(
                ("binlog.000001", 4),
                ("binlog.000001", 8),
                None,
                0.0,
                [
                    RowChange(
                        kind,
                        "shop",
                        "t",
                        "shop",
                        "t",
                        {"id": i, "v": 0},
                        {"id": i + (kind == "update") * 10**7, "v": 1},
                        ("id",),
                    )
                    for i in range(start, start + n)
                ],
            )
        ]

    sc.note(group(5000))
    # evenly sampled: NOTE_PER_GROUP changes; each update that moves its key also notes the old key
    assert len(sc.noted) == 2 * selfcheck.NOTE_PER_GROUP
    assert {img["id"] for _, _, _, img in sc.noted} >= {0, 10**7}
    for k in range(120):  # 120 groups x 200 sampled > NOTED_MAX: the oldest are dropped, and counted
        sc.note(group(400, "insert", k * 400))
    assert len(sc.noted) == selfcheck.NOTED_MAX and sc.noted_dropped > 0
