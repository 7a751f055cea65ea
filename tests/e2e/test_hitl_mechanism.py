"""The human-in-the-loop mechanism the sync's conflicts use (issue 12), proven under a real Airflow (``airflow
standalone``: scheduler, dag-processor, triggerer, api-server) with a probe DAG in a temp folder.

What tests/e2e/test_conflict_hitl_dag.py (the two-way DAG answering a real conflict) does not show: one task
instance asks TWICE with a deferral to another trigger in between, the second request keeps the FIRST request's
text (Airflow keeps one ``hitl_detail`` row per task instance: a canary for when Airflow changes that), only
the last answer is left in Airflow, and a request nobody answers takes its default at the timeout. Only the
wait mode DTS uses (deferred to ``HITLTrigger``, ``ask_human(trigger=True)``). No MySQL is involved.
"""

from __future__ import annotations

import textwrap
import time
import urllib.parse
from typing import Any

import pytest

from airflow_provider_dts.demo import AirflowStandalone
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.localpair import free_port

pytestmark = pytest.mark.e2e

TAKE, KEEP, SKIP, STOP = "take the source row", "keep the destination row", "skip this change", "stop the direction"

PROBE_DAG = textwrap.dedent(
    '''
    """Probe: one task asks a person twice, with a deferral to another trigger before each question."""
    from datetime import timedelta

    import pendulum
    from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
    from airflow.sdk import DAG, BaseOperator

    from airflow_provider_dts.operators.hitl_support import HumanInTheLoopMixin, HumanQuestion

    # like every DTS trigger (triggers/settle.py), the trigger before a question fires no earlier than the
    # worker that parked the task has exited: Airflow 3.3.2 fails a task resumed before that
    SETTLE = 12

    OPTIONS = ["take the source row", "keep the destination row", "skip this change", "stop the direction"]


    class ProbeOperator(HumanInTheLoopMixin, BaseOperator):
        def __init__(self, *, rounds, timeout_seconds=None, trigger=False, **kwargs):
            super().__init__(**kwargs)
            self.rounds = rounds
            self.timeout_seconds = timeout_seconds
            self.trigger = trigger

        def execute(self, context):
            self.defer(
                trigger=TimeDeltaTrigger(timedelta(seconds=SETTLE)),
                method_name="synced",
                kwargs={"round": 1, "answers": []},
            )

        def synced(self, context, event, round, answers):
            timeout = timedelta(seconds=self.timeout_seconds) if self.timeout_seconds else None
            question = HumanQuestion(
                subject=f"Conflict {round} on shop.orders",
                body=f"**key** id={round}  \\nsource: `fromA{round}`  \\ndestination: `fromB{round}`",
                options=OPTIONS,
                defaults=["stop the direction"],
                params={"note": ""},
                response_timeout=timeout,
            )
            self.ask_human(
                context,
                question,
                method_name="answered",
                kwargs={"round": round, "answers": answers},
                trigger=self.trigger,
            )

        def answered(self, context, answer, round, answers):
            answers = [*answers, answer.to_dict()]
            self.log.info("answer %s: %s", round, answer)
            if round < self.rounds:
                self.defer(
                    trigger=TimeDeltaTrigger(timedelta(seconds=SETTLE)),
                    method_name="synced",
                    kwargs={"round": round + 1, "answers": answers},
                )
            return answers


    for dag_id, rounds, timeout_seconds, trigger in (("hitl_probe_trigger", 2, 45, True),):
        with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
            ProbeOperator(task_id="direction", rounds=rounds, timeout_seconds=timeout_seconds, trigger=trigger)
    '''
)


@pytest.fixture
def probe_airflow(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "hitl_probe.py").write_text(PROBE_DAG)
    af = AirflowStandalone(
        tmp_path / "airflow",
        port=free_port(),
        dags_folder=dags,
    )
    af.start()
    try:
        af.wait_ready(timeout=240)
        yield af
    finally:
        af.stop()
        assert not af.running(), "airflow standalone is still running after stop()"


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def _start(af: AirflowStandalone, dag_id: str) -> str:
    af.wait_dag(dag_id)
    af.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return af.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]


def _diag(af: AirflowStandalone, dag_id: str) -> str:
    logs = af.task_logs(dag_id)[-8000:]
    return f"states: {af.task_states(dag_id)}\n--- log tail:\n{af.log_tail(30)}\n--- task logs:\n{logs}"


def _wait(af: AirflowStandalone, dag_id: str, what: str, pred, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if af.task_states(dag_id).get("direction") in ("failed", "upstream_failed"):
            pytest.fail(f"the task failed while waiting for {what}\n{_diag(af, dag_id)}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{_diag(af, dag_id)}")


def _pending(af: AirflowStandalone, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The open requests of a run: what "Required actions" lists (``~`` for all DAGs / runs works too)."""
    out = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/hitlDetails?response_received=false")
    return out["hitl_details"]


def _ti_state(af: AirflowStandalone, dag_id: str, run_id: str) -> str | None:
    return af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/direction")["state"]


# Airflow 3.3.2 race, seen here: the worker that parked the task reports "success" to the executor only when
# its process has exited (about 5 s after the park here). An answer before that resumes the task (scheduled,
# then queued again under the SAME try number); the scheduler then reads the late "success" as the new run's,
# takes the task for killed externally and fails it ("finished with state success, but the task instance's
# state attribute is queued"); its guard covers a resumed task still ``scheduled`` only. So the test answers
# like a person: after the parking worker is gone (its "Workload finished ... deferred" line).
def _wait_parked(af: AirflowStandalone, dag_id: str, state: str, times: int) -> None:
    def parked() -> bool:
        log = af.log_file.read_text(errors="replace")
        return log.count(f"final_state={state}") >= times

    _wait(af, dag_id, f"the worker of park #{times} ({state}) to exit", parked, timeout=60)
    time.sleep(2)  # the scheduler's next loop processes the executor event


def _answer(af: AirflowStandalone, dag_id: str, run_id: str, option: str, note: str) -> dict[str, Any]:
    return af.api(
        "PATCH",
        f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/direction/-1/hitlDetails",
        {"chosen_options": [option], "params_input": {"note": note}},
    )


def _return_value(af: AirflowStandalone, dag_id: str, run_id: str) -> Any:
    x = af.api(
        "GET",
        f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/direction/xcomEntries/return_value?deserialize=true",
    )
    return x["value"]


def test_one_task_asks_twice_across_deferrals_and_the_second_times_out(probe_airflow):
    """Deferred to HITLTrigger (what DTS's ConflictAnswerTrigger is): every round defers to another trigger first,
    so the n-th park of the task is the 2n-th one. Each question times out after 45 s with "stop the direction"."""
    af, dag_id = probe_airflow, "hitl_probe_trigger"
    run_id = _start(af, dag_id)

    # 1st request: opened from the method the first trigger resumed; the task waits without a worker slot
    first = _wait(af, dag_id, "the first request", lambda: _pending(af, dag_id, run_id))
    assert len(first) == 1
    req = first[0]
    assert req["subject"] == "Conflict 1 on shop.orders"
    assert "fromA1" in req["body"] and "fromB1" in req["body"]
    assert req["options"] == [TAKE, KEEP, SKIP, STOP] and req["defaults"] == [STOP]
    assert req["task_instance"]["task_id"] == "direction"
    ti_id = req["task_instance"]["id"]
    _wait(af, dag_id, "deferred", lambda: _ti_state(af, dag_id, run_id) == "deferred")
    _wait_parked(af, dag_id, "deferred", 2)

    answered = _answer(af, dag_id, run_id, TAKE, "first")
    assert answered["chosen_options"] == [TAKE]
    assert answered["responded_by"] == {"id": "admin", "name": "admin"}
    # an answered request cannot be answered again
    with pytest.raises(DtsError, match="409"):
        _answer(af, dag_id, run_id, SKIP, "again")

    # 2nd request, same task instance, after a second deferral to the other trigger. Airflow keeps one
    # hitl_detail row per task instance: the answer is cleared, the subject/body stay the first request's.
    def second_open() -> list[dict[str, Any]]:
        return [r for r in _pending(af, dag_id, run_id) if r["task_instance"]["id"] == ti_id]

    second = _wait(af, dag_id, "the second request", second_open)
    assert len(second) == 1
    assert second[0]["responded_by_user"] is None and second[0]["chosen_options"] is None
    assert second[0]["subject"] == "Conflict 1 on shop.orders", "Airflow now refreshes the request text"
    assert "fromA2" not in second[0]["body"]

    # nobody answers the second one: HITLTrigger writes the default at the timeout and the task resumes with it
    _wait(af, dag_id, "the task to succeed", lambda: _ti_state(af, dag_id, run_id) == "success", timeout=120)
    answers = _return_value(af, dag_id, run_id)
    assert [a["option"] for a in answers] == [TAKE, STOP]
    assert answers[0]["params_input"] == {"note": "first"} and answers[0]["responded_by"]["name"] == "admin"
    assert answers[1]["timed_out"] is True and answers[1]["responded_by"] is None
    assert not answers[0]["timed_out"]

    # only the last answer is left in Airflow: the task (and DTS's conflict log) must keep the earlier ones
    detail = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/direction/-1/hitlDetails")
    assert detail["chosen_options"] == [STOP] and detail["responded_by_user"] is None
    assert detail["response_received"] is True
