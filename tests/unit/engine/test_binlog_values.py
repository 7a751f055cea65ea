"""Pure logic of the reader and applier: value normalisation, positions, batching order."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from pymysqlreplication.constants import FIELD_TYPE

from airflow_provider_dts.engine.apply import Applier, TableInfo, _runs
from airflow_provider_dts.engine.binlog import normalize_value
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.model import RowChange, position_key, position_le
from airflow_provider_dts.engine.values import format_timedelta


def col(type_, **kw):
    return SimpleNamespace(type=type_, set_values=kw.get("set_values"), name=kw.get("name", "c"))


def test_timedelta_literals_are_exact_for_negative_and_long_times():
    assert format_timedelta(dt.timedelta(seconds=-1)) == "-00:00:01"
    assert format_timedelta(-dt.timedelta(milliseconds=1)) == "-00:00:00.001000"
    assert format_timedelta(dt.timedelta(hours=838, minutes=59, seconds=59)) == "838:59:59"
    assert (
        format_timedelta(-dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=500000)) == "-838:59:59.500000"
    )


def test_values_the_library_decodes_lossily_are_restored():
    assert normalize_value(None, col(FIELD_TYPE.DATE), "out of date range") == "0000-00-00"
    assert normalize_value(None, col(FIELD_TYPE.DATETIME2), "out of datetime2 range") == "0000-00-00 00:00:00"
    assert normalize_value(None, col(FIELD_TYPE.SET), "empty set") == ""
    assert normalize_value(None, col(FIELD_TYPE.DATE), "null") is None
    assert normalize_value({"b", "a"}, col(FIELD_TYPE.SET, set_values=["b", "a"]), None) == "b,a"
    assert normalize_value("0000001010", col(FIELD_TYPE.BIT), None) == 10
    assert normalize_value({b"k": [1, b"x"]}, col(FIELD_TYPE.JSON), None) == '{"k": [1, "x"]}'
    assert normalize_value(dt.datetime(1970, 1, 1), col(FIELD_TYPE.TIMESTAMP2), None) == "0000-00-00 00:00:00"
    assert normalize_value(1900, col(FIELD_TYPE.YEAR), None) == 0
    assert normalize_value(2001, col(FIELD_TYPE.YEAR), None) == 2001


def test_positions_order_by_file_number_then_offset():
    assert position_le(("binlog.000009", 900), ("binlog.000010", 4))
    assert not position_le(("binlog.000010", 5), ("binlog.000010", 4))
    assert position_key(("binlog.000002", 4)) < position_key(("binlog.000010", 4))


def change(kind, k, before=None, after=None, table="t"):
    b = {"id": k, "u": f"u{k}"} if kind != "insert" else None
    a = {"id": k if after is None else after, "u": f"v{k}"} if kind != "delete" else None
    c = RowChange(kind, "s", table, "s", table, b if before is None else before, a, ("id",))
    return c


def applier_with(info: TableInfo) -> Applier:
    d = SyncDirection.from_dict(
        dict(task_name="t", role="forward", source_conn_id="a", destination_conn_id="b", objects=["s"])
    )
    ap = Applier(d, None)  # no connection: only the ordering logic is used
    ap.tables[("s", "t")] = info
    return ap


def test_order_keeps_per_key_order_and_batches_the_rest():
    pk_only = TableInfo("s", "t", ["id", "u"], {"id", "u"}, ("id",), [("id",)], ("id",))
    ap = applier_with(pk_only)
    items = [
        change("insert", 1),
        change("update", 7),
        change("delete", 1),
        change("insert", 2),
        change("update", 8),
        change("delete", 9),
    ]
    ordered = ap._order(None, items)
    kinds = [(c.kind, (c.after or c.before)["id"]) for c in ordered]
    # level 0: first change of each key (delete, updates, inserts); level 1: the delete of key 1
    assert kinds == [("delete", 9), ("update", 7), ("update", 8), ("insert", 1), ("insert", 2), ("delete", 1)]
    assert [len(r) for r in _runs(ordered)] == [1, 2, 2, 1]


def test_order_with_a_secondary_unique_key_breaks_at_repeated_keys():
    with_unique = TableInfo("s", "t", ["id", "u"], {"id", "u"}, ("id",), [("id",), ("u",)], ("id",))
    ap = applier_with(with_unique)
    items = [change("insert", 1), change("delete", 1), change("insert", 2), change("update", 3)]
    ordered = ap._order(None, items)
    assert [(c.kind, (c.after or c.before)["id"]) for c in ordered] == [
        ("insert", 1),
        ("delete", 1),
        ("update", 3),
        ("insert", 2),
    ]
