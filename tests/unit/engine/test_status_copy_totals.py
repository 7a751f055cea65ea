"""``status.copy_totals``: the whole copy's percent, rate and time left from the per-table progress rows (what the
status page shows above the tables)."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_dts.engine.status import copy_totals

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def table(status: str, done: int, est: int, seconds: float | None) -> dict:
    started = None if seconds is None else T0
    end = None if seconds is None else T0 + dt.timedelta(seconds=seconds)
    return {
        "status": status,
        "rows_done": done,
        "rows_estimated": est,
        "started_at": started,
        "finished_at": end if status == "done" else None,
        "updated_at": end,
    }


def test_no_tables_no_totals():
    assert copy_totals([]) is None


def test_a_copy_in_progress_has_a_rate_and_the_time_left():
    t = copy_totals([table("done", 300, 250, 10), table("copying", 200, 700, 20)])
    assert t is not None
    # the copied table counts what it really had (300, not its estimate 250)
    assert (t["tables"], t["tables_done"], t["rows_done"], t["rows_estimated"]) == (2, 1, 500, 1000)
    assert t["rows_per_second"] == pytest.approx(25.0)  # 500 rows over the copy's 20 s
    assert t["percent"] == pytest.approx(50.0)
    assert t["eta_seconds"] == pytest.approx(20.0)  # 500 rows left at 25 rows/s
    assert t["finished"] is False


def test_an_estimate_that_was_too_low_stays_below_100_percent_until_done():
    t = copy_totals([table("copying", 900, 100, 9)])
    assert t is not None and t["rows_estimated"] == 900 and t["percent"] == 99.9 and t["eta_seconds"] is None


def test_a_finished_copy_is_100_percent_with_nothing_left():
    t = copy_totals([table("done", 10, 0, 2), table("done", 30, 40, 4)])
    assert t is not None and (t["percent"], t["eta_seconds"], t["finished"]) == (100.0, None, True)
    assert t["rows_per_second"] == pytest.approx(10.0)


def test_nothing_started_nothing_known():
    t = copy_totals([table("pending", 0, 0, None)])
    assert t is not None and (t["percent"], t["rows_per_second"], t["eta_seconds"]) == (None, None, None)
