"""The apply loop's grouping: pure logic, with the applier and the reader's queue stubbed."""

import queue
import threading

import pytest

from airflow_provider_dts.engine import incremental
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import RowChange, Transaction


def _txn(n: int) -> Transaction:
    change = RowChange("insert", "shop", "t", "shop", "t", None, {"id": n}, ("id",))
    return Transaction(("binlog.000001", 100 * n), ("binlog.000001", 100 * n + 100), None, 0.0, [change])


class _Loop(incremental._DirectionRun):
    """Only the apply loop is real; the applier records the groups it was given."""

    def __init__(self, items):
        self.stop = threading.Event()
        self.deadline = None
        self.lag = None
        self._rows_since = 0
        self.applied: list[list[int]] = []
        self._queue = queue.Queue()
        for item in items:
            self._queue.put(item)

    def _maybe_stats(self):
        pass

    def _apply(self, group):
        self.applied.append([t.changes[0].after["id"] for t in group])


def test_transactions_read_before_a_reader_failure_are_applied_first():
    # the reader queued two good transactions, then failed on a statement-based event: the two are
    # applied (with their checkpoint) before the failure is reported, so nothing is left unapplied
    loop = _Loop([_txn(1), _txn(2), SyncFailed("statement-based change")])
    with pytest.raises(SyncFailed, match="statement-based"):
        loop._apply_loop()
    assert loop.applied == [[1, 2]]


def test_a_failure_first_in_the_queue_applies_nothing():
    loop = _Loop([SyncFailed("compressed event")])
    with pytest.raises(SyncFailed):
        loop._apply_loop()
    assert loop.applied == []
