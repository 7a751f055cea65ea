"""``cli.py answer`` waits until the task has been parked for SETTLE_SECONDS before it answers in Airflow: the
answer resumes the task without its trigger, and Airflow 3.3.2 fails a task resumed before the worker that parked
it has exited (triggers/settle.py). The REST API is a test double; the real round trip is in
tests/e2e/test_conflict_hitl_dag.py (the CLI answers the moment task two asks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_dts import cli


class FakeApi:
    def __init__(self, ti: dict) -> None:
        self.ti = ti
        self.paths: list[str] = []

    def call(self, method: str, path: str, body=None):
        self.paths.append(path)
        return self.ti


@pytest.fixture
def slept(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(cli.time, "sleep", waits.append)
    return waits


def _parked(seconds_ago: float, state: str = "deferred") -> dict:
    created = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
    return {"state": state, "trigger": {"created_date": created}}


def test_a_task_parked_a_moment_ago_is_answered_after_the_settle_time(slept, capsys):
    api = FakeApi(_parked(2))
    cli._wait_until_settled(api, "dts_two_way_sync", "manual__2026", "task_one_incremental")  # type: ignore[arg-type]
    assert len(slept) == 1 and cli.SETTLE_SECONDS - 3 < slept[0] <= cli.SETTLE_SECONDS - 2
    assert "answering in" in capsys.readouterr().out
    assert api.paths == ["/api/v2/dags/dts_two_way_sync/dagRuns/manual__2026/taskInstances/task_one_incremental"]


@pytest.mark.parametrize("ti", [_parked(60), _parked(1, state="running"), {"state": "deferred", "trigger": None}])
def test_no_wait_when_parked_long_ago_or_not_parked(slept, ti):
    cli._wait_until_settled(FakeApi(ti), "d", "r", "t")  # type: ignore[arg-type]
    assert slept == []
