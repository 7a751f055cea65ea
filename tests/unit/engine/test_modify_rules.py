"""Pure rules of engine/modify.py: which objects are added / removed and which mapping changes are refused."""

from __future__ import annotations

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.modify import _diff_objects, _mapping_changes


def d(objects, mapping=None) -> SyncDirection:
    return SyncDirection.from_dict(
        {
            "task_name": "t",
            "role": "forward",
            "source_conn_id": "a",
            "destination_conn_id": "b",
            "objects": objects,
            "mapping": mapping or {},
        }
    )


def test_added_and_removed_objects():
    assert _diff_objects(d(["shop.t1"]), d(["shop.t1", "shop.t2"])) == (("shop.t2",), ())
    assert _diff_objects(d(["shop.t1", "shop.t2"]), d(["shop.t2"])) == ((), ("shop.t1",))
    # a whole database replacing one of its tables: the database is added (its other tables are new)
    assert _diff_objects(d(["shop.t1"]), d(["shop"])) == (("shop",), ())
    # a table of a database synchronized as a whole is nothing new; the database itself is removed
    assert _diff_objects(d(["shop"]), d(["shop.t1"])) == ((), ("shop",))
    assert _diff_objects(d(["shop", "crm.a"]), d(["crm.a", "shop"])) == ((), ())


def test_mapping_of_synchronized_objects_cannot_change_but_new_objects_may_be_mapped():
    assert _mapping_changes(d(["shop.t1"]), d(["shop.t1", "shop.t2"], {"shop.t2": "t2_copy"})) == []
    assert _mapping_changes(d(["shop.t1"]), d(["shop.t1"], {"shop.t1": "t1_copy"})) == [
        "shop.t1 -> shop.t1 before, shop.t1_copy now"
    ]
    assert _mapping_changes(d(["shop"], {"shop": "shop2"}), d(["shop"])) == ["shop -> shop2 before, shop now"]
    # a table renamed inside a database synchronized as a whole
    assert _mapping_changes(d(["shop"]), d(["shop"], {"shop.t9": "t9b"})) == ["shop.t9 -> shop.t9 before, shop.t9b now"]
    # a removed object's mapping does not matter
    assert _mapping_changes(d(["shop.t1", "shop.t2"], {"shop.t2": "x"}), d(["shop.t1"])) == []
