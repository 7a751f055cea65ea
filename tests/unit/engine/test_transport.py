"""Transactions cross the pipe from the reader process pickled: every field must survive."""

import dataclasses
import datetime as dt
import pickle

from airflow_provider_dts.engine.model import RowChange, Transaction


def _filled(cls, **given):
    """An instance with a distinct, non-default value in every field (a new field is covered automatically)."""
    values = {f.name: f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls)}
    values.update(given)
    return cls(**values)


def test_every_field_of_a_transaction_and_its_changes_survives_pickling():
    change = _filled(RowChange, before={"id": 1, "at": dt.datetime(2026, 1, 1)}, after={"id": 2}, primary_key=("id",))
    txn = _filled(
        Transaction,
        changes=[change, _filled(RowChange)],
        start_position=("binlog.000001", 4),
        marked=True,
        heartbeat_at=dt.datetime(2026, 1, 2),
    )
    copy = pickle.loads(pickle.dumps(txn, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy == txn
    assert [dataclasses.asdict(c) for c in copy.changes] == [dataclasses.asdict(c) for c in txn.changes]
    assert copy.row_count == 2
