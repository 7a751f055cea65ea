"""Task two's start floor: no write window between task one's first write and task two's start.

Task one (forward, A -> B) writes on B long before task two (reverse, B -> A) starts. A user's write on B in
between must still reach A. So, before task one writes anything on B (its schema sync, its full data sync,
or - with both off - its first incremental apply), B's current binlog position P0 is recorded as task two's
start floor: task two's checkpoint row (its home is its destination A) gets ``snapshot_file/pos`` = P0 with
``binlog_file`` NULL. Task two then replays B's binlog from P0:

* its full data sync keeps ``snapshot_file/pos`` ("the first snapshot position") and ends with
  ``binlog_file/pos`` = P0; with its full data sync off, its incremental sync starts at the floor;
* everything task one wrote on B carries the loop mark (copy chunks and applied transactions also write
  task one's checkpoint row) and is dropped; task one's DDL is never applied by task two (``ddl.apply_ddl``);
* the user's writes are applied to A (strictly for the tables task one covers: a clash is a conflict).

The floor is written only when task two's row does not exist yet or has neither a binlog nor a snapshot
position: an existing floor or start position is never moved (every call is idempotent, so each of task
one's writing steps calls this before it writes).
"""

from __future__ import annotations

import logging

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.model import Position
from airflow_provider_dts.engine.servers import ConnectionSettings, binlog_position, server_info

log = logging.getLogger(__name__)

REVERSE = "reverse"


def _has_start(conn, control: ControlSchema, task: str) -> bool:
    """Task two's row already has a start position (binlog or snapshot floor)."""
    if not control.exists(conn) or control.version(conn) == 0:
        return False
    cp = control.read_checkpoint(conn, task, REVERSE)
    return cp is not None and (cp.binlog_file is not None or cp.snapshot_file is not None)


def record_reverse_floor_on(
    direction: SyncDirection, a_conn, b_conn, *, logger: logging.Logger | None = None
) -> Position | None:
    """Record B's current binlog position as task two's start floor (module doc), on open connections.

    ``direction`` is task one (role ``forward``; other roles: nothing is done). ``a_conn``: task one's source
    (task two's home), ``b_conn``: task one's destination. Returns the position recorded, or None when a
    floor or start position already exists (or B has no binary log: task two cannot run at all then).
    """
    if direction.role != "forward":
        return None
    lg = logger or log
    control = ControlSchema(direction.control_schema)
    task = direction.task_name
    if _has_start(a_conn, control, task):
        return None
    try:
        file, pos = binlog_position(b_conn, server_info(b_conn))
    except ServerError:
        lg.warning(
            "%s: the destination has no binary log, so task two (%s/%s) cannot run; no start floor recorded for it",
            direction.key,
            task,
            REVERSE,
        )
        return None
    except pymysql.err.OperationalError as e:
        what = (
            f"{direction.key}: cannot read the destination's binary log position (task two's start floor, "
            f"taken before task one writes there): {e.args[-1]}"
        )
        if e.args and e.args[0] == 1227:  # ER_SPECIFIC_ACCESS_DENIED_ERROR
            raise ServerError(
                f"{what}. Fix: grant the destination account BINLOG MONITOR (MariaDB) or REPLICATION "
                "CLIENT (MySQL); task two reads that server's binlog with it anyway"
            ) from None
        raise ServerError(f"{what}. Fix: check the destination server is reachable, then run the task again") from None
    control.ensure(a_conn)
    table = control.table("checkpoint")
    unset = "binlog_file IS NULL AND snapshot_file IS NULL"
    with a_conn.cursor() as cur:
        # One statement: insert the row, or fill an existing row that has no position at all. snapshot_pos is
        # assigned before snapshot_file so that both see the old (NULL) snapshot_file.
        cur.execute(
            f"INSERT INTO {table} (task_name, direction, snapshot_file, snapshot_pos, updated_at) "
            f"VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE "
            f"snapshot_pos=IF({unset}, VALUES(snapshot_pos), snapshot_pos), "
            f"updated_at=IF({unset}, VALUES(updated_at), updated_at), "
            f"snapshot_file=IF({unset}, VALUES(snapshot_file), snapshot_file)",
            (task, REVERSE, file, pos),
        )
    a_conn.commit()
    cp = control.read_checkpoint(a_conn, task, REVERSE)
    if cp is None or cp.binlog_file is not None or cp.snapshot_position != (file, pos):
        return None  # someone else recorded a position first: theirs stands
    lg.info(
        "%s: task two (%s/%s) will start no later than the destination's binlog position %s:%s, taken before "
        "task one writes there (its writes are dropped by the loop mark; writes of users reach the source)",
        direction.key,
        task,
        REVERSE,
        file,
        pos,
    )
    return file, pos


def record_reverse_floor(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
) -> Position | None:
    """``record_reverse_floor_on`` with connection settings (task one's source and destination)."""
    if direction.role != "forward":
        return None
    with source.connect() as a:
        if _has_start(a, ControlSchema(direction.control_schema), direction.task_name):
            return None  # the common case (already recorded): B is not even contacted
        with destination.connect() as b:
            return record_reverse_floor_on(direction, a, b, logger=logger)
