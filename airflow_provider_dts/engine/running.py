"""Is a sync direction running right now? The control schema on its destination is the truth, not Airflow.

A direction runs when an applier holds its lease (``GET_LOCK`` on the destination: a running incremental
sync, engine/apply.py), or when its state row says it is being prechecked or initialized and was written
recently (a precheck or full copy in progress; a row left by a killed run ages out). ``running_reason``
says which, for an error message; ``find_syncs`` lists every direction a server's control schema knows.
"""

from __future__ import annotations

from typing import Any

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State

# a Prechecking/Initializing row newer than this belongs to a run still working (same bound as the sensor's)
ACTIVE_STATE_AGE_SECONDS = 120.0
ACTIVE_STATES = (State.PRECHECKING, State.INITIALIZING)


def running_reason(dst_conn, direction: SyncDirection) -> str | None:
    """Why ``direction`` counts as running on its destination (``dst_conn``), or None when it does not."""
    from airflow_provider_dts.engine.modify import _running as holds_lease  # the lease rule lives there

    if holds_lease(dst_conn, direction):
        return "its incremental sync is running (it holds the apply lease on the destination)"
    control = ControlSchema(direction.control_schema)
    try:
        row = control.get_state(dst_conn, direction.task_name, direction.role)
    except pymysql.err.ProgrammingError:  # no control schema yet: nothing ever ran here
        return None
    if not row or row["state"] not in ACTIVE_STATES or row.get("updated_at") is None:
        return None
    with dst_conn.cursor() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, %s, UTC_TIMESTAMP(6)) / 1e6", (row["updated_at"],))
        age = float(cur.fetchone()[0])
    if age > ACTIVE_STATE_AGE_SECONDS:
        return None
    return f"it is {row['state']} (state written {age:.0f}s ago: {row.get('message') or 'no message'})"


def find_syncs(conn, control_schema: str) -> list[dict[str, Any]]:
    """Every (task_name, direction) whose state lives in this server's control schema, with state and lag."""
    control = ControlSchema(control_schema)
    if not control.exists(conn):
        return []
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT task_name, direction, state FROM {control.table('sync_state')} ORDER BY task_name, direction"
            )
            return list(cur.fetchall())
    except pymysql.err.ProgrammingError:  # the schema exists but has no sync_state table yet
        return []
