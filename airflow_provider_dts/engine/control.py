"""The control schema the provider owns on each server (default ``dts_meta``).

A direction's home is its destination server: its state, checkpoint, precheck results, copy progress and
conflict log live there, so every applied transaction can write its checkpoint in the same transaction as
the data. That checkpoint write is also the loop mark: the reader of the opposite direction drops every
transaction that touches ``<control schema>.checkpoint`` (see ``incremental``).

The source server holds only the direction's heartbeat row (written there so that an idle binlog still
carries a fresh timestamp and lag stays measurable).

The schema is created idempotently and upgraded in order: ``schema_version`` holds one row per applied
upgrade. Never edit an upgrade that has shipped; append a new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pymysql

from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.engine.sqltext import quote_ident


class State:
    NOT_STARTED = "NotStarted"
    PRECHECKING = "Prechecking"
    PRECHECK_FAILED = "PrecheckFailed"
    INITIALIZING = "Initializing"
    INITIALIZE_FAILED = "InitializeFailed"
    SYNCHRONIZING = "Synchronizing"
    FAILED = "Failed"
    STOPPED = "Stopped"

    ALL = (
        NOT_STARTED,
        PRECHECKING,
        PRECHECK_FAILED,
        INITIALIZING,
        INITIALIZE_FAILED,
        SYNCHRONIZING,
        FAILED,
        STOPPED,
    )
    TERMINAL_FAILURES = (PRECHECK_FAILED, INITIALIZE_FAILED, FAILED)


# Each entry: (version, [statements]); "{s}" is the quoted control schema name.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS {s}.sync_state (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                state VARCHAR(32) NOT NULL,
                message TEXT NULL,
                config_json MEDIUMTEXT NULL,
                owner VARCHAR(255) NULL,
                retrying_since DATETIME(6) NULL,
                lag_seconds DOUBLE NULL,
                rows_per_second DOUBLE NULL,
                last_source_commit_at DATETIME(6) NULL,
                last_applied_at DATETIME(6) NULL,
                started_at DATETIME(6) NULL,
                updated_at DATETIME(6) NOT NULL,
                PRIMARY KEY (task_name, direction)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.checkpoint (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                binlog_file VARCHAR(255) NULL,
                binlog_pos BIGINT UNSIGNED NULL,
                gtid VARCHAR(255) NULL,
                source_commit_at DATETIME(6) NULL,
                snapshot_file VARCHAR(255) NULL,
                snapshot_pos BIGINT UNSIGNED NULL,
                catchup_file VARCHAR(255) NULL,
                catchup_pos BIGINT UNSIGNED NULL,
                ddl_pending TEXT NULL,
                transactions_applied BIGINT UNSIGNED NOT NULL DEFAULT 0,
                rows_inserted BIGINT UNSIGNED NOT NULL DEFAULT 0,
                rows_updated BIGINT UNSIGNED NOT NULL DEFAULT 0,
                rows_deleted BIGINT UNSIGNED NOT NULL DEFAULT 0,
                conflicts BIGINT UNSIGNED NOT NULL DEFAULT 0,
                updated_at DATETIME(6) NOT NULL,
                PRIMARY KEY (task_name, direction)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.precheck_result (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                item VARCHAR(64) NOT NULL,
                status VARCHAR(16) NOT NULL,
                reason TEXT NULL,
                fix TEXT NULL,
                run_id VARCHAR(64) NOT NULL,
                checked_at DATETIME(6) NOT NULL,
                PRIMARY KEY (task_name, direction, item)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.table_progress (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                source_db VARCHAR(64) NOT NULL,
                source_table VARCHAR(64) NOT NULL,
                dest_db VARCHAR(64) NOT NULL,
                dest_table VARCHAR(64) NOT NULL,
                status VARCHAR(16) NOT NULL,
                rows_done BIGINT UNSIGNED NOT NULL DEFAULT 0,
                rows_estimated BIGINT UNSIGNED NOT NULL DEFAULT 0,
                last_key MEDIUMTEXT NULL,
                message TEXT NULL,
                started_at DATETIME(6) NULL,
                finished_at DATETIME(6) NULL,
                updated_at DATETIME(6) NOT NULL,
                PRIMARY KEY (task_name, direction, source_db, source_table)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.conflict_log (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                detected_at DATETIME(6) NOT NULL,
                conflict_type VARCHAR(32) NOT NULL,
                policy VARCHAR(16) NOT NULL,
                decision VARCHAR(16) NOT NULL,
                source_db VARCHAR(64) NOT NULL,
                source_table VARCHAR(64) NOT NULL,
                dest_db VARCHAR(64) NOT NULL,
                dest_table VARCHAR(64) NOT NULL,
                key_json TEXT NULL,
                source_image LONGTEXT NULL,
                dest_image LONGTEXT NULL,
                source_position VARCHAR(300) NULL,
                KEY task_time (task_name, direction, detected_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.heartbeat (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                beat_at DATETIME(6) NOT NULL,
                PRIMARY KEY (task_name, direction)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
            """CREATE TABLE IF NOT EXISTS {s}.ddl_log (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                source_position VARCHAR(300) NOT NULL,
                source_statement LONGTEXT NOT NULL,
                applied_statement LONGTEXT NULL,
                outcome VARCHAR(16) NOT NULL,
                applied_at DATETIME(6) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        ],
    ),
    (
        2,
        [
            """CREATE TABLE IF NOT EXISTS {s}.verify_result (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                run_id VARCHAR(250) NOT NULL,
                source_table VARCHAR(200) NOT NULL,
                dest_table VARCHAR(200) NOT NULL,
                equal TINYINT(1) NOT NULL,
                rows_source BIGINT UNSIGNED NOT NULL,
                rows_destination BIGINT UNSIGNED NOT NULL,
                chunks BIGINT UNSIGNED NOT NULL,
                mismatched_chunks BIGINT UNSIGNED NOT NULL,
                missing BIGINT UNSIGNED NOT NULL,
                extra BIGINT UNSIGNED NOT NULL,
                different BIGINT UNSIGNED NOT NULL,
                problem TEXT NULL,
                diffs_json LONGTEXT NULL,
                repaired BIGINT UNSIGNED NOT NULL DEFAULT 0,
                checked_at DATETIME(6) NOT NULL,
                KEY task_run (task_name, direction, run_id)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        ],
    ),
    (
        3,
        [
            # the self-check (engine/selfcheck.py): confirmed differences, per direction and in detail
            """ALTER TABLE {s}.sync_state
                ADD COLUMN divergences BIGINT UNSIGNED NOT NULL DEFAULT 0,
                ADD COLUMN last_divergence TEXT NULL,
                ADD COLUMN last_divergence_at DATETIME(6) NULL,
                ADD COLUMN self_check_message TEXT NULL,
                ADD COLUMN self_check_at DATETIME(6) NULL""",
            """CREATE TABLE IF NOT EXISTS {s}.divergence (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                source_db VARCHAR(64) NOT NULL,
                source_table VARCHAR(64) NOT NULL,
                dest_db VARCHAR(64) NOT NULL,
                dest_table VARCHAR(64) NOT NULL,
                kind VARCHAR(16) NOT NULL,
                key_json TEXT NOT NULL,
                key_hash CHAR(32) NOT NULL,
                columns_json TEXT NULL,
                source_image LONGTEXT NULL,
                dest_image LONGTEXT NULL,
                found_by VARCHAR(16) NOT NULL,
                detected_at DATETIME(6) NOT NULL,
                last_seen_at DATETIME(6) NOT NULL,
                repaired_at DATETIME(6) NULL,
                resolved_at DATETIME(6) NULL,
                KEY task_key (task_name, direction, key_hash),
                KEY task_time (task_name, direction, detected_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        ],
    ),
    (
        4,
        [
            # objects added to an initialized sync (engine/modify.py): each added table's copy snapshot position
            # (its catch-up window: changes in transactions ending at or before it apply idempotently), and the
            # settings the direction was last initialized or modified with (the precheck overwrites config_json)
            """ALTER TABLE {s}.table_progress
                ADD COLUMN catchup_file VARCHAR(255) NULL,
                ADD COLUMN catchup_pos BIGINT UNSIGNED NULL""",
            """ALTER TABLE {s}.sync_state ADD COLUMN synced_config MEDIUMTEXT NULL""",
        ],
    ),
    (
        5,
        [
            # conflicts a person answers (issue 12). status: 'logged' (decided by a policy), 'open' (TaskFailed:
            # the direction waits for an answer), 'answered' (answer recorded, not applied yet), 'resolved' (the
            # answer applied, in the destination transaction with the checkpoint), 'superseded' (the change no
            # longer conflicted when it was applied again, e.g. the row was made equal by hand). answer: one of
            # conflicts.ANSWERS. applies_through: for an answer mirrored from the other direction (same key on both
            # sides), the source position up to which changes of that key are covered by it.
            """ALTER TABLE {s}.conflict_log
                ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'logged',
                ADD COLUMN answer VARCHAR(32) NULL,
                ADD COLUMN answered_by VARCHAR(255) NULL,
                ADD COLUMN answered_at DATETIME(6) NULL,
                ADD COLUMN applied_at DATETIME(6) NULL,
                ADD COLUMN applies_through VARCHAR(300) NULL,
                ADD COLUMN linked_id BIGINT UNSIGNED NULL,
                ADD COLUMN note TEXT NULL,
                ADD KEY task_status (task_name, direction, status)""",
        ],
    ),
    (
        6,
        [
            # one row per direction and minute while it runs (engine/incremental.py, MetricsMinute): the lag and
            # rows/s history the status page charts (last hour, last day); rows older than METRICS_KEEP_DAYS
            # are deleted by the running direction
            """CREATE TABLE IF NOT EXISTS {s}.metrics (
                task_name VARCHAR(64) NOT NULL,
                direction VARCHAR(16) NOT NULL,
                minute DATETIME NOT NULL,
                lag_max DOUBLE NULL,
                lag_avg DOUBLE NULL,
                rows_applied BIGINT UNSIGNED NOT NULL DEFAULT 0,
                conflicts BIGINT UNSIGNED NOT NULL DEFAULT 0,
                PRIMARY KEY (task_name, direction, minute)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        ],
    ),
    (
        7,
        [
            # DTS's "switch direction" (engine/ddl_owner.py): one row per switch of a two-way task's DDL owner, on
            # BOTH servers. owner: the direction that applies DDL from this switch on ('forward' | 'reverse');
            # state: 'switching' (b_/a_ of the new owner's source not recorded yet) | 'done'. a_file/a_pos: the
            # threshold in task one's source binlog (A), b_file/b_pos: in task two's source binlog (B); no row for
            # a task = task one owns DDL (unless its exclude_ddl is on)
            """CREATE TABLE IF NOT EXISTS {s}.ddl_owner (
                task_name VARCHAR(64) NOT NULL,
                seq INT UNSIGNED NOT NULL,
                owner VARCHAR(16) NOT NULL,
                state VARCHAR(16) NOT NULL,
                a_file VARCHAR(255) NULL,
                a_pos BIGINT UNSIGNED NULL,
                b_file VARCHAR(255) NULL,
                b_pos BIGINT UNSIGNED NULL,
                switched_at DATETIME(6) NOT NULL,
                switched_by VARCHAR(255) NULL,
                completed_at DATETIME(6) NULL,
                PRIMARY KEY (task_name, seq)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        ],
    ),
    (
        8,
        [
            # GTID-aware checkpoints (engine/gtid.py, issue 15): the source's GTID state at the checkpoint (MariaDB
            # domain-server-seq list, MySQL uuid:interval set; written with the rows), the position it describes,
            # the server whose binlog the position belongs to, and after a resume by GTID on another server the end
            # of the already applied transactions that are skipped there
            """ALTER TABLE {s}.checkpoint
                ADD COLUMN gtid_state MEDIUMTEXT NULL,
                ADD COLUMN gtid_state_at VARCHAR(300) NULL,
                ADD COLUMN source_server_id BIGINT UNSIGNED NULL,
                ADD COLUMN source_server_uuid VARCHAR(64) NULL,
                ADD COLUMN gtid_skip_until VARCHAR(300) NULL""",
        ],
    ),
]
METRICS_KEEP_DAYS = 2
SCHEMA_VERSION = MIGRATIONS[-1][0]


_CHECKPOINT_COLUMNS = tuple(Checkpoint.__dataclass_fields__)


class ControlSchema:
    """Reads and writes the control schema. Methods taking a cursor join the caller's transaction."""

    def __init__(self, schema: str = "dts_meta"):
        self.schema = schema
        self.q = quote_ident(schema)

    def table(self, name: str) -> str:
        return f"{self.q}.{quote_ident(name)}"

    # ------------------------------------------------------------------ creation and upgrades

    def ensure(self, conn: pymysql.connections.Connection) -> int:
        """Create or upgrade the control schema; idempotent and safe to run concurrently."""
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.q} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table('schema_version')} ("
                "version INT NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL"
                ") ENGINE=InnoDB"
            )
            lock = f"dts_control_upgrade:{self.schema}"[:64]
            cur.execute("SELECT GET_LOCK(%s, 60)", (lock,))
            try:
                cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {self.table('schema_version')}")
                current = int(cur.fetchone()[0])
                for version, statements in MIGRATIONS:
                    if version <= current:
                        continue
                    for stmt in statements:
                        try:
                            cur.execute(stmt.format(s=self.q))
                        except pymysql.err.MySQLError as e:
                            # an upgrade interrupted between its statements and its schema_version row is run
                            # again: what it already added is fine (duplicate column / key, table exists)
                            if not (e.args and e.args[0] in (1050, 1060, 1061)):
                                raise
                    cur.execute(f"INSERT INTO {self.table('schema_version')} VALUES (%s, UTC_TIMESTAMP(6))", (version,))
                    current = version
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
        return current

    def version(self, conn: pymysql.connections.Connection) -> int:
        with conn.cursor() as cur:
            try:
                cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {self.table('schema_version')}")
            except pymysql.err.ProgrammingError:
                return 0
            return int(cur.fetchone()[0])

    def exists(self, conn: pymysql.connections.Connection) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (self.schema,))
            return bool(cur.fetchone()[0])

    # ------------------------------------------------------------------ state

    def get_state(self, conn, task: str, direction: str) -> dict[str, Any] | None:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT s.*, c.binlog_file, c.binlog_pos, c.gtid, c.source_commit_at, c.transactions_applied, "
                f"c.rows_inserted, c.rows_updated, c.rows_deleted, c.conflicts "
                f"FROM {self.table('sync_state')} s LEFT JOIN {self.table('checkpoint')} c "
                f"ON c.task_name=s.task_name AND c.direction=s.direction "
                f"WHERE s.task_name=%s AND s.direction=%s",
                (task, direction),
            )
            return cur.fetchone()

    def set_state(
        self, conn_or_cur, task: str, direction: str, state: str, message: str | None = None, **columns: Any
    ) -> None:
        """Upsert the direction's state row. Extra columns: owner, lag_seconds, rows_per_second, ..."""
        if state not in State.ALL:
            raise ValueError(f"unknown state {state!r}")
        cols = {"state": state, "message": message, **columns}
        self._upsert_direction_row(conn_or_cur, "sync_state", task, direction, cols)

    def write_metrics_minute(
        self,
        conn_or_cur,
        task: str,
        direction: str,
        minute: Any,
        *,
        lag_max: float | None,
        lag_avg: float | None,
        rows_applied: int,
        conflicts: int,
    ) -> None:
        """Upsert one minute of a direction's history (a minute written twice keeps the later figures)."""
        self._exec(
            conn_or_cur,
            f"INSERT INTO {self.table('metrics')} (task_name, direction, minute, lag_max, lag_avg, rows_applied, "
            "conflicts) VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE lag_max=VALUES(lag_max), "
            "lag_avg=VALUES(lag_avg), rows_applied=VALUES(rows_applied), conflicts=VALUES(conflicts)",
            (task, direction, minute, lag_max, lag_avg, rows_applied, conflicts),
        )

    def prune_metrics(self, conn_or_cur, task: str, direction: str) -> None:
        self._exec(
            conn_or_cur,
            f"DELETE FROM {self.table('metrics')} WHERE task_name=%s AND direction=%s "
            f"AND minute < UTC_TIMESTAMP() - INTERVAL {int(METRICS_KEEP_DAYS)} DAY",
            (task, direction),
        )

    def update_stats(self, conn_or_cur, task: str, direction: str, **columns: Any) -> None:
        if not columns:
            return
        assign = ", ".join(f"{quote_ident(n)}=%s" for n in columns)
        self._exec(
            conn_or_cur,
            f"UPDATE {self.table('sync_state')} SET {assign}, updated_at=UTC_TIMESTAMP(6) "
            f"WHERE task_name=%s AND direction=%s",
            (*columns.values(), task, direction),
        )

    # ------------------------------------------------------------------ checkpoint (the loop mark)

    def read_checkpoint(self, conn, task: str, direction: str) -> Checkpoint | None:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(_CHECKPOINT_COLUMNS)} FROM {self.table('checkpoint')} "
                f"WHERE task_name=%s AND direction=%s",
                (task, direction),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return Checkpoint(**dict(zip(_CHECKPOINT_COLUMNS, row)))

    def write_checkpoint(self, cur, task: str, direction: str, cp: Checkpoint) -> None:
        """Upsert the whole checkpoint row inside the caller's transaction."""
        self._upsert_direction_row(cur, "checkpoint", task, direction, {c: getattr(cp, c) for c in _CHECKPOINT_COLUMNS})

    def reset_direction(self, conn, task: str, direction: str) -> None:
        """Forget a direction's checkpoint and copy progress (re-initialization)."""
        with conn.cursor() as cur:
            for t in ("checkpoint", "table_progress"):
                cur.execute(f"DELETE FROM {self.table(t)} WHERE task_name=%s AND direction=%s", (task, direction))

    # ------------------------------------------------------------------ precheck results

    def record_precheck(self, conn, task: str, direction: str, run_id: str, results: Iterable[Any]) -> None:
        """Replace the direction's precheck rows with this run's (one row per item)."""
        rows = [(task, direction, r.name, r.status, r.reason, r.fix, run_id) for r in results]
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute(
                f"DELETE FROM {self.table('precheck_result')} WHERE task_name=%s AND direction=%s", (task, direction)
            )
            cur.executemany(
                f"INSERT INTO {self.table('precheck_result')} "
                f"(task_name, direction, item, status, reason, fix, run_id, checked_at) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
                rows,
            )
            cur.execute("COMMIT")

    def precheck_results(self, conn, task: str, direction: str) -> list[dict[str, Any]]:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT item, status, reason, fix, run_id FROM {self.table('precheck_result')} "
                f"WHERE task_name=%s AND direction=%s ORDER BY item",
                (task, direction),
            )
            return list(cur.fetchall())

    # ------------------------------------------------------------------ conflict log

    def log_conflict(
        self,
        cur,
        task: str,
        direction: str,
        *,
        conflict_type: str,
        policy: str,
        decision: str,
        source: tuple[str, str],
        dest: tuple[str, str],
        key: Any,
        source_image: Any,
        dest_image: Any,
        position: str,
        status: str = "logged",
    ) -> int:
        """Insert one conflict_log row; returns its id."""
        cur.execute(
            f"INSERT INTO {self.table('conflict_log')} (task_name, direction, detected_at, conflict_type, policy, "
            f"decision, source_db, source_table, dest_db, dest_table, key_json, source_image, dest_image, "
            f"source_position, status) VALUES (%s, %s, UTC_TIMESTAMP(6), {', '.join(['%s'] * 12)})",
            (
                task,
                direction,
                conflict_type,
                policy,
                decision,
                source[0],
                source[1],
                dest[0],
                dest[1],
                to_json(key),
                to_json(source_image),
                to_json(dest_image),
                position,
                status,
            ),
        )
        return int(cur.lastrowid)

    def conflicts(self, conn, task: str, direction: str) -> list[dict[str, Any]]:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT * FROM {self.table('conflict_log')} WHERE task_name=%s AND direction=%s ORDER BY id",
                (task, direction),
            )
            return list(cur.fetchall())

    # ------------------------------------------------------------------ helpers

    def _upsert_direction_row(self, conn_or_cur, table: str, task: str, direction: str, cols: dict[str, Any]) -> None:
        """INSERT or UPDATE the (task_name, direction) row of ``table`` with ``cols`` and a fresh updated_at."""
        names = [quote_ident(n) for n in cols]
        assign = ", ".join(f"{n}=VALUES({n})" for n in names)
        self._exec(
            conn_or_cur,
            f"INSERT INTO {self.table(table)} (task_name, direction, {', '.join(names)}, updated_at) "
            f"VALUES (%s, %s, {', '.join(['%s'] * len(names))}, UTC_TIMESTAMP(6)) "
            f"ON DUPLICATE KEY UPDATE {assign}, updated_at=VALUES(updated_at)",
            (task, direction, *cols.values()),
        )

    @staticmethod
    def _exec(conn_or_cur, sql: str, args: tuple) -> None:
        if hasattr(conn_or_cur, "cursor"):
            with conn_or_cur.cursor() as cur:
                cur.execute(sql, args)
        else:
            conn_or_cur.execute(sql, args)


def to_json(value: Any) -> str | None:
    """JSON for log columns: bytes as hex, dates as ISO, Decimals as strings."""
    if value is None:
        return None
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + bytes(v).hex()
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)
