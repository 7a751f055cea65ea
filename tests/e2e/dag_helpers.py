"""Waiting on a DAG run under a real Airflow, with the diagnostics a failure needs."""

from __future__ import annotations

import time

import pytest

from airflow_provider_dts.demo import AirflowStandalone, direction_status


def diagnostics(af: AirflowStandalone, pair, task_name: str) -> str:
    states = {r: (s.state, s.message) for r, s in direction_status(pair, task_name).items()}
    return (
        f"task states: {af.task_states()}\ndirections: {states}\nimport errors: {af.import_errors()}\n"
        f"--- standalone log tail:\n{af.log_tail(30)}\n--- task logs:\n{af.task_logs()[-15000:]}"
    )


def wait_until(pred, timeout, what, af, pair, task_name, fail_on_task_failure=True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if fail_on_task_failure:
            bad = {t: s for t, s in af.task_states().items() if s in ("failed", "upstream_failed")}
            if bad:
                pytest.fail(f"tasks failed while waiting for {what}: {bad}\n{diagnostics(af, pair, task_name)}")
        time.sleep(1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{diagnostics(af, pair, task_name)}")


def both(pair, task_name, state):
    st = direction_status(pair, task_name)
    return all(s.state == state for s in st.values())
