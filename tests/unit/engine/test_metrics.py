"""The per-minute history folds per-second samples into one record per UTC minute (engine/metrics.py)."""

from __future__ import annotations

import datetime as dt

from airflow_provider_dts.engine.metrics import MinuteMetrics, MinuteRecord

T0 = dt.datetime(2026, 11, 29, 12, 0, 0)


def test_samples_of_a_minute_become_one_record_when_the_next_minute_starts():
    m = MinuteMetrics()
    assert m.add(T0, 0.5, 100, 3) is None
    assert m.add(T0 + dt.timedelta(seconds=20), 1.5, 50, 4) is None
    assert m.add(T0 + dt.timedelta(seconds=40), None, 0, 5) is None  # no lag known: not averaged in
    done = m.add(T0 + dt.timedelta(seconds=61), 0.2, 7, 5)
    assert done == MinuteRecord(T0, 1.5, 1.0, 150, 2)
    # the next minute starts from the sample that closed the last one; its conflicts count from 5
    done = m.add(T0 + dt.timedelta(seconds=125), 0.0, 0, 6)
    assert done == MinuteRecord(T0 + dt.timedelta(minutes=1), 0.2, 0.2, 7, 0)
    done = m.add(T0 + dt.timedelta(seconds=190), 0.0, 0, 6)
    assert done is not None and done.conflicts == 1 and done.rows_applied == 0


def test_an_idle_minute_is_a_record_too():
    m = MinuteMetrics()
    m.add(T0, None, 0, 0)
    done = m.add(T0 + dt.timedelta(minutes=1), None, 0, 0)
    assert done == MinuteRecord(T0, None, None, 0, 0)
