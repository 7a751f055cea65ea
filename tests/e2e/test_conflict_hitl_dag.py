"""End to end (issue 12): a conflict under TaskFailed is answered in Airflow, under a real scheduler and triggerer.

The two-way DAG runs both directions; the same key is inserted on both servers at once, so both directions stop
on it and each incremental task opens a human-in-the-loop request (queried through the REST API). "Take the
source row" on task one's request, given through the REST API as a person would: both servers end with task
one's row, both directions Synchronizing, no task cleared, the conflict log holds the answer and who gave it,
and task two's request was closed by its trigger (answered elsewhere: the mirrored answer).
Then a conflict whose destination row is made identical by hand: the direction resumes on its own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from typing import Any

import pytest
from dag_helpers import both, wait_until

from airflow_provider_dts.demo import DAG_ID, compare_shop, load_sample_shop, sql

pytestmark = pytest.mark.e2e

TAKE, KEEP = "Take the source row", "Keep the destination row"
ROW = (
    "INSERT INTO shop.orders (id, customer_id, item, qty, price, status, updated_at) "
    "VALUES ({}, 1, '{}', {}, 1.50, 'new', '2026-02-03 04:05:06.000007')"
)


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def _open_requests(af, run_id: str) -> dict[str, dict[str, Any]]:
    out = af.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/hitlDetails?response_received=false")
    return {r["task_instance"]["task_id"]: r for r in out["hitl_details"]}


def _detail(af, run_id: str, task_id: str) -> dict[str, Any]:
    return af.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances/{task_id}/-1/hitlDetails")


def _conflicts(server, task_name: str) -> list[dict[str, Any]]:
    cols = "id, direction, status, answer, answered_by, answered_at, applied_at, decision, linked_id, key_json"
    rows = sql(server, f"SELECT {cols} FROM dts_meta.conflict_log WHERE task_name = '{task_name}' ORDER BY id")
    return [dict(zip([c.strip() for c in cols.split(",")], r, strict=True)) for r in rows]


def _item(server, key: int) -> list[tuple]:
    return [tuple(r) for r in sql(server, f"SELECT item, qty FROM shop.orders WHERE id = {key}")]


def _insert_on_both_at_once(pair, key: int) -> None:
    """Both inserts are in open transactions before either commits: each direction's applier meets the other
    side's row (waiting on its lock if it comes early), so both directions conflict on the key."""
    conns = [pair.a.root_connect(), pair.b.root_connect()]
    try:
        for conn, item in zip(conns, ("fromA", "fromB"), strict=True):
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(ROW.format(key, item, 1))
        threads = [threading.Thread(target=c.commit) for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for c in conns:
            c.close()


def test_conflict_answered_in_airflow_settles_both_directions(clean_pair, airflow, task_name, monkeypatch):
    pair, af = clean_pair, airflow
    load_sample_shop(pair.a, customers=20, orders=30)
    af.wait_dag(timeout=120)
    af.cli("dags", "unpause", DAG_ID)
    af.cli("dags", "trigger", DAG_ID, "--conf", json.dumps({"objects": ["shop"], "task_name": task_name}))
    wait_until(lambda: both(pair, task_name, "Synchronizing"), 420, "both Synchronizing", af, pair, task_name)
    run_id = af.run_ids()[-1]

    # the same key on both servers at once: both directions stop on it and ask (TaskFailed, the default policy)
    _insert_on_both_at_once(pair, 90001)
    requests = wait_until(
        lambda: (lambda r: r if set(r) == {"task_one_incremental", "task_two_incremental"} else None)(
            _open_requests(af, run_id)
        ),
        120,
        "a request on each incremental task",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    one = requests["task_one_incremental"]
    assert one["subject"] == f"DTS conflict: {task_name} task one (dts_source -> dts_destination)"
    assert one["options"] == [TAKE, KEEP, "Skip this change", "Stop the direction"]
    assert one["defaults"] == ["Stop the direction"]
    assert f"/dts/#open-{task_name}-forward" in one["body"] and "cli conflicts" in one["body"]
    assert requests["task_two_incremental"]["subject"].endswith("task two (dts_destination -> dts_source)")
    (fwd,) = [c for c in _conflicts(pair.b, task_name) if c["direction"] == "forward"]
    (rev,) = [c for c in _conflicts(pair.a, task_name) if c["direction"] == "reverse"]
    assert fwd["status"] == rev["status"] == "open" and json.loads(fwd["key_json"]) == {"id": 90001}
    assert "90001" in af.task_logs() and "fromB" in af.task_logs()  # the whole conflict in the task log

    # an answer given through Airflow's REST API (or Required actions) resumes the task itself, not through its
    # trigger: answered like a person, once the request has been open a while (triggers/settle.py). The CLI's
    # answer below waits by itself and is given at once.
    wait_until(
        lambda: af.task_states().get("task_one_incremental") == "deferred",
        60,
        "task one waiting",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    time.sleep(12)
    answered = af.api(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances/task_one_incremental/-1/hitlDetails",
        {"chosen_options": [TAKE], "params_input": {"note": "A wins"}},
    )
    assert answered["responded_by"]["name"] == "admin"

    wait_until(
        lambda: _item(pair.a, 90001) == _item(pair.b, 90001) == [("fromA", 1)],
        120,
        "task one's row on both servers",
        af,
        pair,
        task_name,
    )
    wait_until(lambda: both(pair, task_name, "Synchronizing"), 120, "both Synchronizing again", af, pair, task_name)
    states = af.task_states()
    assert states["task_one_incremental"] == states["task_two_incremental"] == "deferred", states
    assert len(af.run_ids()) == 1
    verdict = compare_shop(pair.a, pair.b)
    assert all(v["equal"] for v in verdict.values()), verdict

    fwd = next(c for c in _conflicts(pair.b, task_name) if c["id"] == fwd["id"])
    # the mirrored answer covers task two's changes of the key up to a position (applies_through): it is resolved
    # once task two's checkpoint has passed that position (its next checkpoint, idle or not)
    rev_id = rev["id"]
    rev = wait_until(
        lambda: (
            (r := next(c for c in _conflicts(pair.a, task_name) if c["id"] == rev_id))["status"] == "resolved" and r
        ),
        60,
        "task two's mirrored answer resolved",
        af,
        pair,
        task_name,
    )
    assert (fwd["answer"], fwd["answered_by"], fwd["status"]) == ("take_source", "admin", "resolved"), fwd
    assert fwd["answered_at"] is not None and fwd["applied_at"] is not None
    assert (rev["answer"], rev["status"], rev["linked_id"]) == ("keep_destination", "resolved", fwd["id"]), rev
    assert rev["answered_by"].startswith("admin (via task one")
    # task two's request was closed by its trigger, not by a person
    two = _detail(af, run_id, "task_two_incremental")
    assert two["response_received"] and two["chosen_options"] == [KEEP] and two["responded_by_user"] is None
    assert not _open_requests(af, run_id)

    # a conflict whose destination row is made identical by hand: the direction resumes on its own
    sql(pair.b, "SET sql_log_bin = 0", ROW.format(90002, "fromB", 2))  # on B only (task two does not see it)
    sql(pair.a, ROW.format(90002, "fromA", 2))
    wait_until(
        lambda: "task_one_incremental" in _open_requests(af, run_id),
        120,
        "task one asking again (same task instance)",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    sql(pair.b, "SET sql_log_bin = 0", "UPDATE shop.orders SET item = 'fromA' WHERE id = 90002")
    wait_until(
        lambda: not _open_requests(af, run_id) and both(pair, task_name, "Synchronizing"),
        120,
        "task one resuming by itself",
        af,
        pair,
        task_name,
    )

    def fixed_row() -> dict[str, Any]:
        logged = [c for c in _conflicts(pair.b, task_name) if json.loads(c["key_json"]) == {"id": 90002}]
        (row,) = [c for c in logged if c["decision"] != "AlreadyEqual"]  # (a no-op re-apply may be logged too)
        return row

    # the engine re-applies the change as a no-op and marks DTS's own answer superseded
    wait_until(lambda: fixed_row()["status"] == "superseded", 60, "the conflict superseded", af, pair, task_name)
    fixed = fixed_row()
    assert fixed["answer"] == "take_source" and fixed["answered_by"].startswith("dts"), fixed
    assert af.task_states()["task_one_incremental"] == "deferred"
    assert _item(pair.a, 90002) == _item(pair.b, 90002) == [("fromA", 2)]

    # `cli answer` answers through Airflow's request when there is one (so Airflow records who answered)
    from airflow_provider_dts import cli

    for k, v in pair.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AIRFLOW_API_PASSWORD", af.admin_password() or "")
    sql(pair.a, "SET sql_log_bin = 0", ROW.format(90003, "fromA", 3))  # on A only (task one does not see it)
    sql(pair.b, ROW.format(90003, "fromB", 3))  # task two meets A's row
    wait_until(
        lambda: "task_two_incremental" in _open_requests(af, run_id),
        120,
        "task two asking",
        af,
        pair,
        task_name,
        fail_on_task_failure=False,
    )
    argv = ["answer", "--task-name", task_name, "--direction", "reverse", "--choice", "take_source"]
    assert cli.main([*argv, "--note", "B wins", "--airflow-url", af.url]) == 0
    wait_until(
        lambda: _item(pair.a, 90003) == _item(pair.b, 90003) == [("fromB", 3)],
        120,
        "task two's row on both servers",
        af,
        pair,
        task_name,
    )
    (third,) = [c for c in _conflicts(pair.a, task_name) if json.loads(c["key_json"]) == {"id": 90003}]
    assert (third["answer"], third["answered_by"]) == ("take_source", "admin"), third
    wait_until(lambda: both(pair, task_name, "Synchronizing"), 60, "both Synchronizing at the end", af, pair, task_name)
    assert af.task_states()["task_two_incremental"] == "deferred"
