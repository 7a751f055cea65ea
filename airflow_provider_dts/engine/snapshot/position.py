"""The consistent snapshot of the source and the binlog position it is consistent at (module doc of the
package: MariaDB ``binlog_snapshot_%`` without a lock, MySQL a brief ``FLUSH TABLES WITH READ LOCK``)."""

from __future__ import annotations

import pymysql

from airflow_provider_dts.engine.errors import FullSyncError
from airflow_provider_dts.engine.servers import ServerInfo
from airflow_provider_dts.engine.sqltext import as_text


def take_snapshot(conn, info: ServerInfo) -> tuple[str, int]:
    """Open a consistent-snapshot transaction on ``conn``; return the binlog position it is consistent at."""
    return take_snapshots([conn], info)[0]


def _snapshot_position(cur) -> tuple[str, int] | None:
    cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
    status = {as_text(k).lower(): as_text(v) for k, v in cur.fetchall()}
    file = status.get("binlog_snapshot_file")
    return (str(file), int(status["binlog_snapshot_position"])) if file else None


def take_snapshots(conns: list, info: ServerInfo, attempts: int = 20) -> tuple[tuple[str, int], list]:
    """Open the SAME consistent snapshot on each connection (parallel readers); return its position and the
    connections that hold it (at least the first; extra ones are dropped when they cannot be aligned).

    MariaDB: each connection's snapshot reports its binlog position; snapshots at the same position see the
    same transactions, so they are retried until all positions agree (no lock at all). MySQL: all snapshots
    start while one connection holds FLUSH TABLES WITH READ LOCK (released right after).
    """
    if info.has_binlog_snapshot_status:
        use = list(conns)
        for attempt in range(attempts + 1):
            positions: list[tuple[str, int] | None] = []
            for c in use:
                with c.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    positions.append(_snapshot_position(cur))
            first = positions[0]
            if first is None:
                for c in use:
                    c.cursor().execute("ROLLBACK")
                raise FullSyncError(
                    "the source has no binary log position for the snapshot (binlog off?). "
                    "Fix: start the source with log_bin enabled"
                )
            if all(p == first for p in positions):
                return first, use
            for c in use:
                c.cursor().execute("ROLLBACK")
            if attempt == attempts - 1:
                use = use[:1]  # the source commits too often to align several snapshots: read alone
        raise FullSyncError("could not take a consistent snapshot on the source")  # pragma: no cover
    lock_cur = conns[0].cursor()
    for c in conns:
        c.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        lock_cur.execute("FLUSH TABLES WITH READ LOCK")
    except pymysql.err.MySQLError as e:
        raise FullSyncError(
            f"cannot take the snapshot lock on the source: {e.args[-1]}. Fix: grant the source account RELOAD "
            "(FLUSH TABLES WITH READ LOCK is held only while the snapshot starts)"
        ) from None
    try:
        for c in conns:
            c.cursor().execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        lock_cur.execute(info.binlog_status_sql)
        row = lock_cur.fetchone()
    finally:
        lock_cur.execute("UNLOCK TABLES")
    if not row:
        for c in conns:
            c.cursor().execute("ROLLBACK")
        raise FullSyncError("the binary log is off on the source. Fix: start it with log_bin enabled")
    return (str(as_text(row[0])), int(row[1])), list(conns)
