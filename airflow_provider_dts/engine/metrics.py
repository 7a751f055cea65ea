"""A direction's lag and throughput history, one row per minute (``<control>.metrics``, control migration 6).

The running direction samples its lag and counts the rows it applies about every second
(``incremental._DirectionRun._maybe_stats``); ``MinuteMetrics`` folds the samples into one record per UTC minute,
written when the minute is over (one small binlogged write a minute, also when idle, so the status page's charts
have a point for every minute the direction ran). ``status.read_metrics`` reads them back.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass


@dataclass(frozen=True)
class MinuteRecord:
    minute: _dt.datetime  # naive UTC, seconds zero
    lag_max: float | None
    lag_avg: float | None
    rows_applied: int
    conflicts: int  # conflicts logged during the minute


class MinuteMetrics:
    """Folds per-second samples into per-minute records."""

    def __init__(self) -> None:
        self.minute: _dt.datetime | None = None
        self._lag_sum = 0.0
        self._lag_n = 0
        self._lag_max: float | None = None
        self._rows = 0
        self._conflicts_before: int | None = None
        self._conflicts_last = 0

    def add(self, now: _dt.datetime, lag: float | None, rows: int, conflicts: int) -> MinuteRecord | None:
        """One sample (``now`` naive UTC; ``rows`` applied since the last sample; ``conflicts`` the running total).
        Returns the previous minute's record when ``now`` starts a new minute."""
        minute = now.replace(second=0, microsecond=0)
        done = None
        if self.minute is not None and minute != self.minute:
            done = self._record()
            self._conflicts_before = self._conflicts_last
            self._lag_sum, self._lag_n, self._lag_max, self._rows = 0.0, 0, None, 0
        if self.minute != minute:
            self.minute = minute
        if self._conflicts_before is None:
            self._conflicts_before = conflicts
        self._conflicts_last = conflicts
        if lag is not None:
            self._lag_sum += lag
            self._lag_n += 1
            self._lag_max = lag if self._lag_max is None else max(self._lag_max, lag)
        self._rows += rows
        return done

    def _record(self) -> MinuteRecord:
        assert self.minute is not None
        return MinuteRecord(
            self.minute,
            self._lag_max,
            self._lag_sum / self._lag_n if self._lag_n else None,
            self._rows,
            max(0, self._conflicts_last - (self._conflicts_before or 0)),
        )
