"""Is a sync direction running right now? The control schema on its destination is the truth, not Airflow.

A direction runs when an applier holds its lease (``GET_LOCK`` on the destination: a running incremental
sync, engine/apply.py), or when its state row says it is being prechecked or initialized and is not stale
(``status.is_stale``: a precheck or full copy in progress; a row left by a killed run ages out).
``running_reason`` says which, for an error message. Listing the directions a server knows is
``status.read_directions``.
"""

from __future__ import annotations

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import State
from airflow_provider_dts.engine.status import is_stale, read_direction

ACTIVE_STATES = (State.PRECHECKING, State.INITIALIZING)


def lease_holder(dst_conn: pymysql.connections.Connection, direction: SyncDirection) -> int | None:
    """The connection id holding the direction's apply lease on its destination, or None (no applier runs)."""
    from airflow_provider_dts.engine.apply import lease_name

    with dst_conn.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK(%s)", (lease_name(direction),))
        row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def running_reason(dst_conn: pymysql.connections.Connection, direction: SyncDirection) -> str | None:
    """Why ``direction`` counts as running on its destination (``dst_conn``), or None when it does not."""
    if lease_holder(dst_conn, direction) is not None:
        return "its incremental sync is running (it holds the apply lease on the destination)"
    try:
        st = read_direction(dst_conn, direction.control_schema, direction.task_name, direction.role)
    except pymysql.err.ProgrammingError:  # a control schema this version cannot read: nothing of ours runs
        return None
    if st.state not in ACTIVE_STATES or st.age_seconds is None or is_stale(st.age_seconds):
        return None
    return f"it is {st.state} (state written {st.age_seconds:.0f}s ago: {st.message or 'no message'})"
