"""The health watcher (issue 13, item 4) against the real pair: SyncHealthOperator with SyncHealthTrigger.

Real engines run both directions; a real conflict under TaskFailed fails task one. Lag, divergences and the end of
the watch are written into sync_state the way the engine and the self-check write them. The trigger runs
in-process, each event goes through the operator's ``execute_complete`` (notifiers, then a re-deferral with what
the trigger has seen): every episode calls the notifier exactly once. Metrics go through Airflow's stats,
initialized the way the triggerer initializes them, to a StatsD UDP listener on a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_dts.demo import direction_status, sql
from airflow_provider_dts.engine.config import TwoWayTask
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.localpair import free_port
from airflow_provider_dts.operators.health import SyncHealthOperator

CONTROL = ControlSchema("dts_meta")


class FileNotifier(BaseNotifier):
    """Writes one JSON line per call; its subject is a template rendered from the alert's context."""

    template_fields = ("subject",)

    def __init__(self, path, subject: str = "{{ dts_alert.subject }}") -> None:
        super().__init__()
        self.path = path
        self.subject = subject

    def notify(self, context: Any) -> None:
        a = context["dts_alert"]
        line = {"subject": self.subject, "message": context["message"], **{k: a[k] for k in ("role", "condition")}}
        with open(self.path, "a") as f:
            f.write(json.dumps({**line, "event": a["event"]}) + "\n")


class Watch:
    """One deferral: the operator's trigger runs in a thread until its first event (or ``timeout``)."""

    def __init__(self, op: SyncHealthOperator, seen: dict[str, Any], timeout: float) -> None:
        self.trigger = op.trigger({}, seen=seen)
        self.trigger.settle_seconds = 0.0  # no worker here to race with (triggers/settle.py)
        self.event: Any = None
        self.thread = threading.Thread(target=self._run, args=(timeout,))
        self.thread.start()

    def _run(self, timeout: float) -> None:
        async def first():
            return await asyncio.wait_for(anext(self.trigger.run()), timeout)

        try:
            self.event = asyncio.run(first())
        except TimeoutError:
            self.event = None

    def result(self) -> Any:
        self.thread.join()
        return self.event


def resume(op: SyncHealthOperator, event) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """execute_complete: (the seen state it re-defers with, None) or (None, its return value)."""
    try:
        return None, op.execute_complete({}, event.payload)
    except TaskDeferred as d:
        return d.trigger.seen, None


def step(op, seen, change, timeout=30.0, settle=1.5):
    """Start a deferral, let it take its baseline, make ``change``, return (event, seen after resuming)."""
    w = Watch(op, seen, timeout)
    time.sleep(settle)
    change()
    event = w.result()
    assert event is not None, f"no event within {timeout}s"
    new_seen, _ = resume(op, event)
    assert new_seen is not None
    return event, new_seen


class StatsdListener:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines += data.decode().splitlines()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def statsd(monkeypatch):
    """Airflow's stats configured for StatsD on a local listener, initialized as the triggerer does it."""
    from airflow.configuration import conf
    from airflow.observability import stats
    from airflow.observability.metrics import stats_utils

    listener = StatsdListener()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
    )
    try:
        yield listener
    finally:
        from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        listener.close()


def set_state(server, task_name, role, state, message=None, **cols):
    with server.settings().connect() as conn:
        CONTROL.set_state(conn, task_name, role, state, message, **cols)


def wait_states(pair, task_name, want: dict[str, str], timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        st = direction_status(pair, task_name)
        if all(st[r].state == s for r, s in want.items()):
            return st
        assert time.monotonic() < deadline, {r: (s.state, s.message) for r, s in st.items()}
        time.sleep(0.2)


def test_alerts_once_per_episode_and_metrics_through_airflow_stats(clean_pair, task_name, tmp_path, statsd):
    pair = clean_pair
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    two_way = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "initial_full_data_sync": False,
                "self_check": False,
            },
            "reverse": {"initial_full_data_sync": False},
        }
    )
    engines = {}
    for d, src, dst in ((two_way.forward, pair.a, pair.b), (two_way.reverse, pair.b, pair.a)):
        stop = threading.Event()
        t = threading.Thread(
            target=run_direction, args=(d, src.settings(), dst.settings()), kwargs={"stop": stop}, daemon=True
        )
        t.start()
        engines[d.role] = (stop, t)
    alerts = tmp_path / "alerts.jsonl"
    notifier = FileNotifier(alerts)
    op = SyncHealthOperator(
        task_id="health",
        task_name=task_name,
        poll_seconds=1,
        alert_lag_seconds=5,
        alert_lag_for_seconds=2,
        notifiers=[notifier],
    )
    try:
        wait_states(pair, task_name, {"forward": "Synchronizing", "reverse": "Synchronizing"})

        # healthy: nothing to report
        assert Watch(op, {}, timeout=3.5).result() is None

        # a real conflict under TaskFailed: B has the key already (not binlogged), A inserts it -> task one Failed
        def conflict():
            sql(pair.b, "SET sql_log_bin=0", "INSERT INTO shop.t VALUES (1, 'on B')")
            sql(pair.a, "INSERT INTO shop.t VALUES (1, 'on A')")

        event, seen = step(op, {}, conflict)
        (change,) = event.payload["changes"]
        assert (change["direction"], change["condition"], change["event"]) == (
            f"{task_name}/forward",
            "failed",
            "started",
        )
        assert "Failed" in change["message"] and "conflict" in change["message"].lower()
        assert change["subject"] == f"DTS {task_name}/forward (task one): failed"
        # the episode goes on: no second alert
        assert Watch(op, seen, timeout=3.5).result() is None

        # task two lags (its state written as the engine writes it): an alert only after alert_lag_for_seconds
        stop, t = engines.pop("reverse")
        stop.set()
        t.join(60)
        started = time.monotonic()
        event, seen = step(
            op, seen, lambda: set_state(pair.a, task_name, "reverse", State.SYNCHRONIZING, lag_seconds=30.0)
        )
        assert time.monotonic() - started >= 1.5 + 2
        (change,) = event.payload["changes"]
        assert (change["role"], change["condition"], change["event"]) == ("reverse", "lag", "started")
        assert "lag 30.0s, above 5s" in change["message"]
        # ... and once it is back under the bound, one "cleared"
        event, seen = step(
            op, seen, lambda: set_state(pair.a, task_name, "reverse", State.SYNCHRONIZING, lag_seconds=0.5)
        )
        assert [(c["role"], c["condition"], c["event"]) for c in event.payload["changes"]] == [
            ("reverse", "lag", "cleared")
        ]

        # a divergence confirmed by the self-check (its counter, as selfcheck.py writes it)
        def divergence():
            with pair.a.settings().connect() as conn, conn.cursor() as cur:
                cur.execute(
                    "UPDATE dts_meta.sync_state SET divergences=divergences+1, last_divergence=%s, "
                    "last_divergence_at=UTC_TIMESTAMP(6), updated_at=UTC_TIMESTAMP(6) "
                    "WHERE task_name=%s AND direction='reverse'",
                    ('shop.t key {"id": 7}: missing at the destination', task_name),
                )
                conn.commit()

        event, seen = step(op, seen, divergence)
        (change,) = event.payload["changes"]
        assert (change["role"], change["condition"], change["event"]) == ("reverse", "divergence", "started")
        assert "1 new divergence(s), 1 in all" in change["message"] and '{"id": 7}' in change["message"]

        # task one restarted (Synchronizing again): its Failed episode clears
        event, seen = step(
            op, seen, lambda: set_state(pair.b, task_name, "forward", State.SYNCHRONIZING, lag_seconds=0.2)
        )
        assert ("forward", "failed", "cleared") in [
            (c["role"], c["condition"], c["event"]) for c in event.payload["changes"]
        ]

        # both directions stopped: the watch is over, the task succeeds
        def stop_both():
            set_state(pair.b, task_name, "forward", State.STOPPED, "stopped")
            set_state(pair.a, task_name, "reverse", State.STOPPED, "stopped")

        w = Watch(op, seen, timeout=30)
        time.sleep(1.5)
        stop_both()
        event = w.result()
        assert event is not None and event.payload["ended"] == "every direction was stopped"
        assert resume(op, event)[1]["ended"] == "every direction was stopped"
    finally:
        for stop, t in engines.values():
            stop.set()
            t.join(60)

    calls = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [(c["role"], c["condition"], c["event"]) for c in calls] == [
        ("forward", "failed", "started"),
        ("reverse", "lag", "started"),
        ("reverse", "lag", "cleared"),
        ("reverse", "divergence", "started"),
        ("forward", "failed", "cleared"),
    ]
    assert calls[0]["subject"] == f"DTS {task_name}/forward (task one): failed"  # the template, rendered
    assert notifier.subject == "{{ dts_alert.subject }}"  # each call rendered a copy

    time.sleep(0.5)
    lines = statsd.lines
    named = {ln.split(":")[0] for ln in lines}

    def value(name: str) -> list[str]:
        return [ln.split(":", 1)[1] for ln in lines if ln.split(":")[0] == name]

    for role in ("forward", "reverse"):
        assert f"airflow.dts.lag_seconds.{task_name}.{role}" in named, sorted(named)
        assert f"airflow.dts.rows_per_second.{task_name}.{role}" in named
    assert "airflow.dts.lag_seconds" in named  # the tagged name (tags travel with Datadog / OpenTelemetry)
    assert "30.0|g" in value(f"airflow.dts.lag_seconds.{task_name}.reverse")
    assert "1|g" in value(f"airflow.dts.state.{task_name}.forward.Failed")
    assert "1|g" in value(f"airflow.dts.state.{task_name}.forward.Synchronizing")
    assert value(f"airflow.dts.divergences.{task_name}.reverse") == ["1|c"]  # counted once, not per poll
    assert "1|g" in value(f"airflow.dts.alerts.{task_name}.forward")


def test_stale_and_unreachable_directions_alert(clean_pair, task_name, tmp_path, monkeypatch):
    """A Synchronizing row nobody refreshes (its process is gone) alerts at once; a status that cannot be read
    alerts after alert_lag_for_seconds."""
    pair = clean_pair
    with pair.b.settings().connect() as conn:
        CONTROL.ensure(conn)
        CONTROL.set_state(conn, task_name, "forward", State.SYNCHRONIZING, lag_seconds=0.1)
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE dts_meta.sync_state SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 300 SECOND "
                "WHERE task_name=%s AND direction='forward'",
                (task_name,),
            )
        conn.commit()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_NOWHERE",
        json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": free_port(), "login": "x"}),
    )
    op = SyncHealthOperator(
        task_id="health", task_name=task_name, source_conn_id="dts_nowhere", poll_seconds=1, alert_lag_for_seconds=1
    )
    seen: dict[str, Any] = {}
    found = []
    deadline = time.monotonic() + 60
    while len(found) < 2:
        assert time.monotonic() < deadline, found
        event = Watch(op, seen, timeout=30).result()
        assert event is not None
        found += [(c["role"], c["condition"], c["event"]) for c in event.payload["changes"]]
        seen, _ = resume(op, event)
    assert sorted(found) == [("forward", "stale", "started"), ("reverse", "unreachable", "started")]
    messages = " ".join(c["message"] for c in event.payload["changes"])
    assert "dts_nowhere" in messages or "last written" in messages


def test_a_cluster_policy_sets_the_notifiers_without_editing_the_dag_file(monkeypatch, tmp_path):
    """For people who do not edit DAG files: an Airflow cluster policy (airflow_local_settings.py ``task_policy``)
    sets the health task's notifiers wherever Airflow parses the DAG (the worker that calls them included)."""
    from pathlib import Path

    import airflow.settings
    from airflow.dag_processing.dagbag import DagBag

    chosen = FileNotifier(tmp_path / "alerts.jsonl")

    def task_policy(task):
        if isinstance(task, SyncHealthOperator):
            task.notifiers = [chosen]

    monkeypatch.setattr(airflow.settings, "task_policy", task_policy)
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"))
    assert not bag.import_errors, bag.import_errors
    assert bag.dags["dts_two_way_sync"].get_task("health").notifiers == [chosen]
