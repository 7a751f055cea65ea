import json

import pytest

from airflow_provider_dts.engine.config import (
    ConflictPolicy,
    ExistingTableMode,
    SyncDirection,
    TableConflictPolicy,
    TwoWayTask,
    split_object_name,
)
from airflow_provider_dts.engine.errors import ConfigError


def direction(**over):
    d = {"task_name": "shop_sync", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    d.update(over)
    return SyncDirection.from_dict(d)


def test_defaults_follow_dts():
    d = direction()
    assert d.dml_types == ("INSERT", "UPDATE", "DELETE")
    assert d.conflict_policy is ConflictPolicy.TASK_FAILED
    assert d.existing_table_mode is ExistingTableMode.PRECHECK_AND_INTERCEPT
    assert d.retry_minutes == 720
    assert d.initial_schema_sync and d.initial_full_data_sync and not d.exclude_ddl
    assert d.control_schema == "dts_meta"


def test_json_round_trip():
    d = direction(
        objects=["shop", "crm.customers"],
        mapping={"shop": "shop2", "crm.customers": "clients"},
        dml_types=["INSERT", "DELETE"],
        conflict_policy="Overwrite",
        retry_minutes=30,
        ignore_precheck_items=["triggers"],
    )
    again = SyncDirection.from_json(d.to_json())
    assert again == d
    assert json.loads(d.to_json())["conflict_policy"] == "Overwrite"


def test_every_bad_field_is_listed_with_allowed_values():
    with pytest.raises(ConfigError) as e:
        SyncDirection.from_dict(
            {
                "task_name": "bad name!",
                "source_conn_id": "",
                "destination_conn_id": "b",
                "objects": [],
                "dml_types": ["MERGE"],
                "conflict_policy": "LastWins",
                "existing_table_mode": "Drop",
                "retry_minutes": 0,
                "ignore_precheck_items": ["nope"],
                "colour": "blue",
            }
        )
    msg = str(e.value)
    for needle in (
        "task_name",
        "source_conn_id",
        "objects",
        "'MERGE'",
        "INSERT, UPDATE, DELETE",
        "'LastWins'",
        "TaskFailed, Ignore, Overwrite",
        "'Drop'",
        "PrecheckAndIntercept, Ignore",
        "retry_minutes",
        "'nope'",
        "colour: unknown setting",
    ):
        assert needle in msg, needle
    assert len(e.value.problems) >= 9


def test_object_names_with_dots_and_backticks():
    assert split_object_name("shop") == ("shop", None)
    assert split_object_name("shop.orders") == ("shop", "orders")
    assert split_object_name("`my.db`.`odd ``t```") == ("my.db", "odd `t`")
    with pytest.raises(ValueError):
        split_object_name("a.b.c")
    d = direction(objects=["`my.db`.`t.1`"])
    assert d.selects_table("my.db", "t.1") and not d.selects_table("my.db", "t2")


def test_mapping_to_odd_names_returns_plain_names():
    d = direction(objects=["`my.db`", "shop.t"], mapping={"`my.db`": "`new.db`", "shop.t": "`odd``name`"})
    assert d.map_database("my.db") == "new.db"
    assert d.map_table("my.db", "x") == ("new.db", "x")
    assert d.map_table("shop", "t") == ("shop", "odd`name")
    assert d.inverse_mapping() == {"`new.db`": "`my.db`", "shop.`odd``name`": "shop.t"}


def test_name_mapping_database_and_table():
    d = direction(
        objects=["shop", "crm.customers"],
        mapping={"shop": "shop_copy", "shop.orders": "orders_v2", "crm.customers": "archive.clients"},
    )
    assert d.map_database("shop") == "shop_copy"
    assert d.map_table("shop", "items") == ("shop_copy", "items")
    assert d.map_table("shop", "orders") == ("shop_copy", "orders_v2")
    assert d.map_table("crm", "customers") == ("archive", "clients")
    assert not d.selects_table("crm", "other")
    assert not d.selects_table("dts_meta", "checkpoint")


def test_mapping_must_name_selected_objects():
    with pytest.raises(ConfigError, match="not among the selected objects"):
        direction(mapping={"other": "x"})


def test_two_way_task_derives_reverse_and_skips_overlap():
    t = TwoWayTask.from_dict(
        {
            "name": "shop_sync",
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "mapping": {"shop": "shop_copy"},
            },
            "reverse": {"conflict_policy": "Ignore"},
        }
    )
    assert t.reverse.source_conn_id == "dts_destination"
    assert t.reverse.objects == ("shop_copy",)
    assert t.reverse.map_database("shop_copy") == "shop"
    assert t.reverse.exclude_ddl is True
    assert t.reverse.conflict_policy is ConflictPolicy.IGNORE
    assert t.reverse.skip_initial_tables == ("shop_copy",)
    assert TwoWayTask.from_json(t.to_json()) == t


def test_reverse_direction_may_not_sync_ddl():
    with pytest.raises(ConfigError, match="one direction only"):
        TwoWayTask.from_dict(
            {
                "name": "x",
                "forward": {"source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]},
                "reverse": {"exclude_ddl": False},
            }
        )


def test_password_free_repr():
    from airflow_provider_dts.engine.servers import ConnectionSettings

    s = ConnectionSettings(password="s3cret-pw", name="dts_source")
    assert "s3cret-pw" not in repr(s) and "s3cret-pw" not in str(s)


# --------------------------------------------------------------------------- per-table conflict policies (issue 12)


def test_table_conflict_policies_are_validated_with_the_field_and_the_fix():
    with pytest.raises(ConfigError) as e:
        direction(
            objects=["shop"],
            table_conflict_policies={
                "crm.customers": {"policy": "Ignore"},  # not selected
                "shop.a": {"policy": "UseMax"},  # no column
                "shop.b": {"policy": "Overwrite", "column": "x"},  # column refused
                "shop.c": {"policy": "Newest"},  # unknown policy
                "shop.d": {"policy": "UseMin", "column": "v", "when": "always"},  # unknown field
                "shop": {"policy": "Ignore"},  # a database
            },
        )
    text = "\n".join(e.value.problems)
    assert "table_conflict_policies: 'crm.customers' is not among the selected objects" in text
    assert "'shop.a': policy UseMax needs \"column\"" in text
    assert "'shop.b': \"column\" is only for UseMax / UseMin" in text
    assert "'shop.c': policy 'Newest' is not allowed; use one of TaskFailed, Ignore, Overwrite, UseMax, UseMin" in text
    assert "'shop.d': unknown field(s) when" in text
    assert "'shop' is a database" in text
    with pytest.raises(ConfigError) as e:
        direction(conflict_policy="UseMax")  # the global policy stays TaskFailed | Ignore | Overwrite
    assert "conflict_policy: 'UseMax' is not allowed; use one of TaskFailed, Ignore, Overwrite" in e.value.problems[0]


def test_table_conflict_policies_apply_per_table_and_round_trip():
    d = direction(
        objects=["shop", "crm.customers"],
        conflict_policy="Ignore",
        table_conflict_policies={
            "shop.orders": {"policy": "UseMax", "column": "updated_at"},
            "crm.customers": {"policy": "TaskFailed"},
        },
    )
    assert d.conflict_policy_for("shop", "orders") == TableConflictPolicy("UseMax", "updated_at")
    assert d.conflict_policy_for("crm", "customers") == TableConflictPolicy("TaskFailed")
    assert d.conflict_policy_for("shop", "other") == TableConflictPolicy("Ignore")
    assert SyncDirection.from_json(d.to_json()) == d


def test_task_two_gets_the_table_policies_under_its_own_names():
    task = TwoWayTask.from_dict(
        {
            "name": "t",
            "forward": {
                "source_conn_id": "a",
                "destination_conn_id": "b",
                "objects": ["shop", "crm.customers"],
                "mapping": {"shop": "shop_b", "crm.customers": "archive.clients"},
                "table_conflict_policies": {
                    "shop.orders": {"policy": "UseMin", "column": "version"},
                    "crm.customers": {"policy": "Overwrite"},
                },
            },
        }
    )
    assert task.reverse.table_conflict_policies == {
        "shop_b.orders": {"policy": "UseMin", "column": "version"},
        "archive.clients": {"policy": "Overwrite"},
    }
    assert task.reverse.conflict_policy_for("shop_b", "orders") == TableConflictPolicy("UseMin", "version")
    assert TwoWayTask.from_json(task.to_json()) == task
