"""Pure parts of the precheck checks: an account whose grants cannot be read fails both privileges items with
the same reason and fix (the real-server tests of every item are in integration/engine/test_precheck.py)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.precheck.facts import _Context, _Side
from airflow_provider_dts.engine.precheck.results import FAIL
from airflow_provider_dts.engine.precheck.runner import _run_all
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo

INFO = ServerInfo("mariadb", (10, 11, 6), "10.11.6-MariaDB", {"log_bin": "ON"}, "sync@%")


def context() -> _Context:
    d = SyncDirection.from_dict(
        {"task_name": "t", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    )
    sides = [
        _Side(role, ConnectionSettings(port=port, name=name), conn=object(), info=INFO, grants_error="(1142) denied")
        for role, port, name in (("source", 3307, "a"), ("destination", 3308, "b"))
    ]
    return _Context(d, ControlSchema(), *sides)


@pytest.mark.parametrize(
    "item, where",
    [
        ("source_privileges", "source a (root@127.0.0.1:3307)"),
        ("destination_privileges", "destination b (root@127.0.0.1:3308)"),
    ],
)
def test_grants_that_cannot_be_read_fail_the_item_naming_account_server_and_error(item, where):
    (r,) = [r for r in _run_all(context()) if r.name == item]
    assert (r.status, r.reason, r.fix) == (
        FAIL,
        f"cannot read the grants of sync@% on the {where}: (1142) denied.",
        "allow the account to run SHOW GRANTS",
    )
