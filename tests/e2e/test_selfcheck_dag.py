"""The self-check through the two-way DAG under a real scheduler and triggerer: rows broken on one server behind
the sync's back (not in the binlog) are reported by the running directions within a minute, with both row
images, in the control schema, on the status page served by the API server and in the task log."""

from __future__ import annotations

import json
import time

import pytest
from dag_helpers import both, wait_until

from airflow_provider_dts.demo import DAG_ID, sql

pytestmark = pytest.mark.e2e


def all_task_logs(af) -> str:
    """Every task log file of the DAG, whole (a deferred task's trigger writes into its task's log)."""
    root = af.home / "logs" / f"dag_id={DAG_ID}"
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*.log"))) if root.exists() else ""


def test_broken_rows_are_reported_through_the_dag(clean_pair, airflow, task_name):
    pair, af = clean_pair, airflow
    sql(
        pair.a,
        "CREATE DATABASE chk",
        "CREATE TABLE chk.acct (id INT PRIMARY KEY, owner VARCHAR(40), balance DECIMAL(10,2))",
        "INSERT INTO chk.acct VALUES " + ", ".join(f"({i}, 'owner {i}', {i}.50)" for i in range(1, 201)),
    )
    af.wait_dag(timeout=120)
    af.cli("dags", "unpause", DAG_ID)
    af.cli(
        "dags",
        "trigger",
        DAG_ID,
        "--conf",
        json.dumps(
            {"objects": ["chk"], "task_name": task_name, "max_lag_seconds": 30, "self_check_rows_per_second": 20000}
        ),
    )
    wait_until(
        lambda: both(pair, task_name, "Synchronizing"), 420, "both directions Synchronizing", af, pair, task_name
    )
    wait_until(
        lambda: sql(pair.a, "SELECT * FROM chk.acct ORDER BY id") == sql(pair.b, "SELECT * FROM chk.acct ORDER BY id"),
        60,
        "the copy",
        af,
        pair,
        task_name,
    )

    started = time.monotonic()
    sql(
        pair.b,
        "SET SESSION sql_log_bin=0",
        "UPDATE chk.acct SET balance=999.99 WHERE id=50",
        "DELETE FROM chk.acct WHERE id=60",
        "INSERT INTO chk.acct VALUES (5000, 'ghost row', 1.25)",
    )
    q = (
        "SELECT kind, key_json, source_image, dest_image FROM dts_meta.divergence WHERE task_name='{t}' "
        "AND direction='{d}' AND resolved_at IS NULL ORDER BY key_json"
    )
    found = wait_until(
        lambda: len(r := sql(pair.b, q.format(t=task_name, d="forward"))) == 3 and r,
        60,
        "task one reporting the broken rows",
        af,
        pair,
        task_name,
    )
    assert time.monotonic() - started < 60
    assert [(k, key) for k, key, _, _ in found] == [
        ("extra", '{"id": 5000}'),
        ("different", '{"id": 50}'),
        ("missing", '{"id": 60}'),
    ]
    images = {key: (json.loads(s) if s else None, json.loads(d) if d else None) for _, key, s, d in found}
    assert images['{"id": 50}'] == (
        {"id": 50, "owner": "owner 50", "balance": "50.50"},
        {"id": 50, "owner": "owner 50", "balance": "999.99"},
    )
    assert images['{"id": 5000}'] == (None, {"id": 5000, "owner": "ghost row", "balance": "1.25"})

    # the status page of the running Airflow (plugin), as an admin sees it
    status = af.api("GET", "/dts/api/status")
    mine = {d["direction"]: d for d in status["directions"] if d["task_name"] == task_name}
    assert mine["forward"]["open_divergences"] == 3 and mine["forward"]["state"] == "Synchronizing"
    assert {(v["direction"], v["key_json"]) for v in status["divergences"] if v["task_name"] == task_name} >= {
        ("forward", '{"id": 50}'),
        ("forward", '{"id": 60}'),
        ("forward", '{"id": 5000}'),
    }
    # and the task log of task one's incremental sync says so
    wait_until(
        lambda: "self-check found a divergence" in (t := all_task_logs(af)) and "ghost row" in t,
        60,
        "the warning in the task log",
        af,
        pair,
        task_name,
    )
    # nothing was changed by reporting: A keeps its rows
    assert sql(pair.a, "SELECT COUNT(*), SUM(balance) FROM chk.acct")[0][0] == 200
    af.set_task_state("task_one_incremental", "success")
    af.set_task_state("task_two_incremental", "success")
