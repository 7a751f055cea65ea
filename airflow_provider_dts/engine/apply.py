"""Applier: source transactions -> destination, exactly once.

A group of consecutive source transactions is applied in ONE destination transaction which also writes the
direction's checkpoint row (position after the last transaction of the group, counters). Data and position
commit together, so after any crash the replay starts exactly after the last applied transaction; and the
checkpoint write is the loop mark the opposite direction's reader drops.

Rows are applied by column NAME (columns missing at the destination are left out, generated columns are never
written) and batched: consecutive changes of the same kind on the same table become one multi-row INSERT,
DELETEs (strict: each row's key and before-image OR-ed, ``CHECK_BATCH_ROWS`` rows per statement; catch-up:
``WHERE key IN (...)``), or - for updates on tables whose only unique key is the primary key - existence checks
(``CHECK_BATCH_ROWS`` rows each) plus one multi-row upsert. Everything
else is applied row by row, in order.

Strict mode (after the catch-up window) detects the spec's conflicts (see ``conflicts``): an UPDATE or a DELETE is
applied only to the row its before-image describes (compared by the destination server in the statement's WHERE,
or in the batch's one statement), so a row both sides changed is an UPDATE/UPDATE conflict, a row one side
deleted and the other changed a ``delete_conflict``; a change whose outcome the
destination already holds is a logged no-op (``AlreadyEqual``); a conflict is decided by an answer recorded for it
(``conflicts.Answer``, resolved in the group's transaction), else by the table's policy. In the catch-up
window after a snapshot (transactions ending at or before ``catchup_file/pos``) changes apply idempotently:
insert -> replace, update of a missing row -> replace, delete of a missing row -> nothing, no conflicts.
A table added to an initialized direction (``engine.modify``) has its own catch-up position (its copy's
snapshot, ``table_progress.catchup_file/pos``): its changes in transactions ending at or before it apply
idempotently too.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine import gtid as gtid_mod
from airflow_provider_dts.engine.catalog import TableInfo, load_table
from airflow_provider_dts.engine.config import SyncDirection, TableConflictPolicy, skips_initial
from airflow_provider_dts.engine.control import ControlSchema, to_json
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import Checkpoint, RowChange, Transaction, format_position, position_le
from airflow_provider_dts.engine.servers import ConnectionSettings, lock_name
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident
from airflow_provider_dts.engine.values import make_literal

log = logging.getLogger(__name__)

# The session of every applier. ``@dts_applying`` marks it for guarded triggers (they do nothing in it).
# Foreign key checks stay ON, as on a native replica: cascades (ON DELETE / ON UPDATE CASCADE, SET NULL) are
# not in the binlog, so the destination must perform them itself (see ``Applier._order`` for the order).
# Changes the source session wrote with foreign_key_checks=0 are applied with them off, as a native replica
# does (``Applier._apply_items``).
APPLY_SESSION_SQL = (
    "SET SESSION foreign_key_checks=1, "
    "sql_mode='STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
    "innodb_lock_wait_timeout=30, @dts_applying=1"
)
MAX_BATCH_ROWS = 1000
# Rows per statement whose condition ORs each row's key and before-image (strict deletes, the update batches'
# existence check). The server tests every row it reads against the OR-ed list, so such a statement costs the
# square of its rows: 1,000 rows took 120 ms, 20 statements of 50 rows 40 ms (bench/incremental.py, deletes).
CHECK_BATCH_ROWS = 50
MAX_STATEMENT_BYTES = 1 << 20

ER_DUP_ENTRY = 1062
_BINARY_WIDTH = re.compile(r"\((\d+)\)")
ER_NET_PACKET_TOO_LARGE = 1153
ER_NO_SUCH_TABLE = 1146
ER_BAD_FIELD = 1054
ER_ROW_IS_REFERENCED = (1217, 1451)  # cannot delete or update a parent row
ER_NO_REFERENCED_ROW = (1216, 1452)  # cannot add or update a child row


def lease_name(direction: SyncDirection) -> str:
    return lock_name("dts", direction.control_schema, direction.key)


# --------------------------------------------------------------------------- destination tables


def read_destination_table(cur, db: str, table: str) -> TableInfo:
    """The destination table's definition (``catalog.load_table``); a missing table stops the direction.

    information_schema can pass over a table whose definition is being changed right now (a user's ALTER on the
    destination): before calling it missing, a plain read of the table waits for that change (metadata lock)
    and says whether it exists (error 1146 when it does not); then its definition is read again."""
    info = load_table(cur, db, table)
    if info is None:
        try:
            cur.execute(f"SELECT 1 FROM {qualified(db, table)} LIMIT 0")
            cur.fetchall()
            info = load_table(cur, db, table)
        except pymysql.err.ProgrammingError as e:
            if not (e.args and e.args[0] == 1146):
                raise
    if info is None:
        raise SyncFailed(
            f"table {db}.{table} does not exist at the destination, so its changes cannot be applied. Fix: "
            "create it (initial schema sync, or let DDL sync create it), then restart the direction"
        )
    return info


# --------------------------------------------------------------------------- the applier


@dataclass(frozen=True)
class _Mode:
    """How the applier applies one change of the group at hand (its own record, never set on the change)."""

    index: int  # the change's transaction in the group (conflict positions, ConflictFailure.txn_index)
    idempotent: bool  # in a catch-up window: insert = replace, no conflicts


_STRICT = _Mode(0, False)  # a change that is not part of a group being applied (ordering tests)


@dataclass(frozen=True)
class _ComparePlan:
    """How the applier writes conditions on one table definition (``Applier._plan``), so that a row's condition
    is only its values' literals joined to ready-made text."""

    info: TableInfo  # the definition it was made for (a re-read table gets a new plan)
    casts: dict[str, str]  # column -> the type its values are compared as (``Applier._casts_of``)
    same: dict[str, tuple[str, str | None]]  # writable column -> ("`c` <=> ", cast or None): ``_same_as``
    key: tuple[str, ...]  # "`k`=" per key column, or "`c` <=> " per column of a table without a key: ``_where_key``


@dataclass(frozen=True)
class DdlLogEntry:
    """A ``ddl_log`` row written in the same transaction as the checkpoint that moves past the statement."""

    statement: str  # as the source ran it
    applied: str | None  # as run at the destination (None: not run)
    outcome: str  # applied | replayed | skipped


def _not_connected(value: Any) -> str:
    raise RuntimeError("the applier is not connected: call Applier.connect() first")


@dataclass
class GroupStats:
    transactions: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    logged: list[C.Conflict] = field(default_factory=list)


class Applier:
    """Applies transactions of one direction to its destination over one connection."""

    def __init__(
        self, direction: SyncDirection, destination: ConnectionSettings, *, logger: logging.Logger | None = None
    ):
        self.direction = direction
        self.destination = destination
        self.control = ControlSchema(direction.control_schema)
        self.log = logger or log
        self.conn: pymysql.connections.Connection | None = None
        self.tables: dict[tuple[str, str], TableInfo] = {}
        self._copied: dict[tuple[str, str], bool] = {}
        self._table_catchup: dict[tuple[str, str], tuple[str, int]] = {}  # added tables (engine.modify)
        self._known_differences: set[tuple] = set()
        self.policy = direction.conflict_policy
        self._table_policies: dict[tuple[str, str], TableConflictPolicy] = {}  # by source table
        # answered (and open) conflicts of this direction, loaded at connect and again before a TaskFailed
        # conflict stops the direction (an answer may have been recorded meanwhile: ``conflicts.Answer``)
        self._answers: list[C.Answer] = []
        self._group_answers: dict[int, str] = {}  # answer id -> decision applied in the group at hand
        self._answers_reloaded = False  # in the group at hand
        # how the destination compares values (set by connect): FLOAT as FLOAT, JSON as JSON (MySQL)
        self._mariadb = False
        self._float_cast = False
        self._compare_kinds: dict[tuple[str, str], _ComparePlan] = {}
        self.max_statement = MAX_STATEMENT_BYTES
        self._fk_on = True  # the apply session's foreign_key_checks right now (see _apply_items)
        self.flag_skip_replication = True
        # how values are written: values.make_literal of the connection (set by connect)
        self.literal: Callable[[Any], str] = _not_connected
        # the group being applied: its transactions and each change's mode (keyed by id of the change)
        self._txns: list[Transaction] = []
        self._modes: dict[int, _Mode] = {}

    # ------------------------------------------------------------------ connection and lease

    def connect(self) -> pymysql.connections.Connection:
        self.close()
        conn = self.destination.connect(autocommit=False, client_flag=CLIENT.FOUND_ROWS)
        with conn.cursor() as cur:
            cur.execute(APPLY_SESSION_SQL)
            cur.execute("SELECT VERSION()")
            self._mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
            if self._mariadb and self.flag_skip_replication:
                # MariaDB fast path: readers asking for it never receive what this session writes. The
                # checkpoint row written in every transaction stays the loop protection that counts.
                cur.execute("SET SESSION skip_replication=1")
            try:
                self._table_catchup = self._load_table_catchup(cur)
                self._answers = self._load_answers(cur)
            except BaseException:
                conn.close()
                raise
            try:  # MariaDB 10.4.5+, MySQL 8.0.17+
                cur.execute("SELECT CAST(0 AS FLOAT)")
                cur.fetchall()
                self._float_cast = True
            except pymysql.err.MySQLError:
                self._float_cast = False
            cur.execute("SELECT @@max_allowed_packet")
            # statements stay well under the destination's limit; only a single larger row can exceed it. The
            # batches count characters (cheap); a character is at most 4 bytes in UTF-8, hence / 8 for half
            self.max_statement = max(512, min(MAX_STATEMENT_BYTES, int(cur.fetchone()[0]) // 8))
        conn.commit()
        self.conn = conn
        self.literal = make_literal(conn)
        self.tables.clear()
        self._known_differences.clear()
        self._compare_kinds.clear()
        return conn

    def _connected(self) -> pymysql.connections.Connection:
        if self.conn is None:
            raise RuntimeError("the applier is not connected: call Applier.connect() first")
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def try_lease(self, timeout: float = 1.0) -> bool:
        conn = self._connected()
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (lease_name(self.direction), timeout))
            got = cur.fetchone()[0]
        conn.commit()
        return got == 1

    def table(self, cur, db: str, table: str) -> TableInfo:
        info = self.tables.get((db, table))
        if info is None:
            info = self.tables[(db, table)] = read_destination_table(cur, db, table)
        return info

    def forget_tables(self) -> None:
        """Forget every cached table definition (the destination's schema may have changed): each is read
        again when next used."""
        self.tables.clear()

    # ------------------------------------------------------------------ group apply

    def apply_group(self, txns: list[Transaction], cp: Checkpoint) -> GroupStats:
        """Apply ``txns`` and advance ``cp`` in one destination transaction; commit.

        On a TaskFailed conflict raises ``ConflictFailure`` (with the failing transaction's index) after
        rolling back: nothing of the group is applied. ``cp`` is only changed when the commit succeeded.
        A destination table changed behind the applier's back (unknown column / table) is re-read once.
        """
        return self._apply_retrying(txns, cp, None)

    def advance_past(self, txn: Transaction, cp: Checkpoint, ddl_log: DdlLogEntry | None = None) -> None:
        """Advance ``cp`` past a standalone statement's transaction (no row changes) and write its
        ``ddl_log`` row, in one destination transaction (``ddl.apply_ddl``)."""
        self._apply_retrying([txn], cp, (txn, ddl_log) if ddl_log is not None else None)

    def write_checkpoint(self, cp: Checkpoint) -> None:
        """Write ``cp`` as the direction's checkpoint row, alone, and commit (e.g. ``ddl_pending`` before a
        statement that commits implicitly)."""
        conn = self._connected()
        with conn.cursor() as cur:
            self.control.write_checkpoint(cur, self.direction.task_name, self.direction.role, cp)
        conn.commit()

    def run_statement(self, statement: str, database: str | None = None) -> None:
        """Run one DDL statement at the destination, in ``database`` when given (``USE``; a database that
        does not exist is ignored: the statement names its objects fully) and without foreign key checks
        (DROP / TRUNCATE of a parent table, tables created in any order), as schema sync does. Row changes are
        applied with them on (``APPLY_SESSION_SQL``): they are back on afterwards while the connection is open.
        """
        conn = self._connected()
        with conn.cursor() as cur:
            if database:
                try:
                    cur.execute(f"USE {quote_ident(database)}")
                except pymysql.err.MySQLError:
                    pass
            cur.execute("SET SESSION foreign_key_checks=0")
            try:
                cur.execute(statement)
            finally:
                if conn.open:
                    cur.execute("SET SESSION foreign_key_checks=1")

    def _apply_retrying(
        self, txns: list[Transaction], cp: Checkpoint, ddl_log: tuple[Transaction, DdlLogEntry] | None
    ) -> GroupStats:
        try:
            return self._apply_group(txns, cp, ddl_log)
        except pymysql.err.MySQLError as e:
            if not (e.args and e.args[0] in (ER_BAD_FIELD, ER_NO_SUCH_TABLE)) or not self.tables:
                raise
            self.log.info("destination table definitions changed (%s); re-reading them", e)
            self.tables.clear()
            return self._apply_group(txns, cp, ddl_log)

    def _apply_group(
        self, txns: list[Transaction], cp: Checkpoint, ddl_log: tuple[Transaction, DdlLogEntry] | None
    ) -> GroupStats:
        conn = self._connected()
        stats = GroupStats(transactions=len(txns))
        catchup = cp.catchup_position
        try:
            with conn.cursor() as cur:
                # runs span transactions: the whole group commits at once, order inside a table is kept
                self._txns = txns
                self._modes = modes = {}
                items: list[RowChange] = []
                any_idempotent = False
                added = self._table_catchup
                for idx, txn in enumerate(txns):
                    if not txn.changes:
                        continue
                    in_window = catchup is not None and position_le(txn.end_position, catchup)
                    for c in txn.changes:
                        idem = in_window and self._copied_here(c)
                        if added and not idem:  # a table added later: its own catch-up window
                            tc = added.get((c.source_db, c.source_table))
                            idem = tc is not None and position_le(txn.end_position, tc)
                        modes[id(c)] = _Mode(idx, idem)
                        any_idempotent = any_idempotent or idem
                    items.extend(txn.changes)
                self._group_answers = {}
                self._answers_reloaded = False
                self._refresh_stale(cur, items)
                self._apply_items(cur, txns, items, stats, any_idempotent)
                new_cp = self._advanced(cp, txns, stats)
                settled = self._settle_answers(cur, new_cp)
                self.control.write_checkpoint(cur, self.direction.task_name, self.direction.role, new_cp)
                for conflict in stats.logged:
                    self._log_conflict(cur, conflict)
                if ddl_log is not None:
                    self._log_ddl(cur, *ddl_log)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:
                pass
            raise
        finally:
            self._modes = {}
            self._group_answers = {}
        if settled:
            self._answers = [a for a in self._answers if a.id not in settled]
        _copy_checkpoint(new_cp, cp)
        return stats

    def _mode(self, c: RowChange) -> _Mode:
        return self._modes.get(id(c), _STRICT)

    def _idempotent(self, c: RowChange) -> bool:
        return self._mode(c).idempotent

    def _position(self, c: RowChange) -> str:
        """The end position of the change's transaction (where a restart resumes before it)."""
        return format_position(self._txns[self._mode(c).index].end_position)

    def _log_ddl(self, cur, txn: Transaction, entry: DdlLogEntry) -> None:
        d = self.direction
        cur.execute(
            f"INSERT INTO {self.control.table('ddl_log')} (task_name, direction, source_position, "
            "source_statement, applied_statement, outcome, applied_at) VALUES (%s,%s,%s,%s,%s,%s,UTC_TIMESTAMP(6))",
            (d.task_name, d.role, format_position(txn.end_position), entry.statement, entry.applied, entry.outcome),
        )

    def _load_table_catchup(self, cur) -> dict[tuple[str, str], tuple[str, int]]:
        """Catch-up positions of tables added to the initialized direction (``engine.modify``), once per
        connect. A selected added table whose copy is not finished stops the direction: applying changes to a
        partly copied table would leave it different for good."""
        d = self.direction
        try:
            cur.execute(
                f"SELECT source_db, source_table, status, catchup_file, catchup_pos FROM "
                f"{self.control.table('table_progress')} WHERE task_name=%s AND direction=%s "
                "AND catchup_file IS NOT NULL",
                (d.task_name, d.role),
            )
        except pymysql.err.MySQLError as e:
            if e.args and e.args[0] in (ER_BAD_FIELD, ER_NO_SUCH_TABLE):
                return {}  # control schema not created or older than version 4: no table was added
            raise
        out = {}
        for db, table, status, file, pos in cur.fetchall():
            db, table, status, file = (as_text(v) for v in (db, table, status, file))
            if not d.selects_table(db, table):
                continue
            if status != "done":
                raise SyncFailed(
                    f"{d.key}: table {db}.{table} was added to the sync and its copy is not finished (status "
                    f"{status}). Fix: run the full data sync again (trigger the DAG with the same settings); it "
                    "resumes the copy, then the incremental sync can start"
                )
            out[(db, table)] = (file, int(pos))
        return out

    def _load_answers(self, cur) -> list[C.Answer]:
        """The direction's conflicts with an answer to apply (status answered) or waiting for one (open): at
        connect (``engine.resolve`` records answers, then restarts the direction) and before a TaskFailed conflict
        stops the direction (``_reload_answers``)."""
        d = self.direction
        try:
            cur.execute(
                f"SELECT id, status, answer, dest_db, dest_table, key_json, source_position, applies_through FROM "
                f"{self.control.table('conflict_log')} WHERE task_name=%s AND direction=%s AND status IN (%s, %s) "
                "ORDER BY id",
                (d.task_name, d.role, C.STATUS_ANSWERED, C.STATUS_OPEN),
            )
        except pymysql.err.MySQLError as e:
            if e.args and e.args[0] in (ER_BAD_FIELD, ER_NO_SUCH_TABLE):
                return []  # control schema not created yet, or older than version 5: nothing answered
            raise
        names = [col[0] for col in cur.description]
        out = []
        for row in cur.fetchall():
            try:
                out.append(C.Answer.from_row(dict(zip(names, row))))
            except (TypeError, ValueError) as e:
                self.log.warning("conflict_log row %s cannot be read as an answer (%s); left as it is", row[0], e)
        return out

    def _reload_answers(self) -> None:
        """Read the answers again, once per group, over a connection of its own: the group's transaction reads
        a snapshot that may predate an answer recorded while this direction runs (e.g. the mirrored answer of the
        other direction's conflict on the same key)."""
        self._answers_reloaded = True
        conn = self.destination.connect()
        try:
            with conn.cursor() as cur:
                self._answers = self._load_answers(cur)
        finally:
            conn.close()

    def _answer_for(self, change: RowChange, info: TableInfo, key: dict[str, Any]) -> C.Answer | None:
        """The answered conflict that decides this change's conflict (same destination table and key, its
        transaction at the answered position or within ``applies_through``), if any. An answer for one position
        is used once; a range answer (``applies_through``, a mirrored answer) decides every change it covers."""
        if not self._answers or not self._txns:
            return None
        end = self._txns[self._mode(change).index].end_position
        wanted = C.key_value(key)
        dest = (info.db, info.table)
        with self._connected().cursor() as cur:

            def same(a: Any, b: Any) -> bool:  # as the destination compares them (collation)
                return C.same_key(cur, dest, a, b)

            for a in self._answers:
                if (a.through is not None or a.id not in self._group_answers) and a.covers(dest, wanted, end, same):
                    return a
        return None

    def _settle_answers(self, cur, cp: Checkpoint) -> set[int]:
        """In the group's transaction: answers applied in it -> resolved (a range answer, ``applies_through``:
        ``applied_at`` and the decision at its first use, resolved once the checkpoint passes its range: it
        decides every change of its key up to there); answered or open conflicts whose position the checkpoint
        passes without meeting them again -> superseded. Returns the ids done with."""
        done: set[int] = set()
        if not self._answers:
            return done
        table = self.control.table("conflict_log")
        position = cp.position
        by_id = {a.id: a for a in self._answers}
        for answer_id, decision in self._group_answers.items():
            a = by_id.get(answer_id)
            if a is not None and a.through is not None and (position is None or not a.passed_by(position)):
                cur.execute(
                    f"UPDATE {table} SET applied_at=COALESCE(applied_at, UTC_TIMESTAMP(6)), decision=%s "
                    "WHERE id=%s AND status=%s",
                    (decision, answer_id, C.STATUS_ANSWERED),
                )
                continue  # still usable for the rest of its range
            cur.execute(
                f"UPDATE {table} SET status=%s, applied_at=COALESCE(applied_at, UTC_TIMESTAMP(6)), decision=%s "
                "WHERE id=%s AND status=%s",
                (C.STATUS_RESOLVED, decision, answer_id, C.STATUS_ANSWERED),
            )
            done.add(answer_id)
        if position is None:
            return done
        for a in self._answers:
            if a.id in done or not a.passed_by(position):
                continue
            # a range answer used in an earlier group is resolved (applied_at set at its first use), else superseded
            cur.execute(
                f"UPDATE {table} SET status=IF(status=%s AND applied_at IS NOT NULL, %s, %s), "
                "applied_at=COALESCE(applied_at, UTC_TIMESTAMP(6)) WHERE id=%s AND status IN (%s, %s)",
                (C.STATUS_ANSWERED, C.STATUS_RESOLVED, C.STATUS_SUPERSEDED, a.id, C.STATUS_ANSWERED, C.STATUS_OPEN),
            )
            done.add(a.id)
        return done

    def in_added_catchup(self, end_position: tuple[str, int]) -> bool:
        """Whether a transaction ends within the catch-up window of some table added to the direction (DDL
        there may already be in the added table's copied schema: ``ddl.apply_ddl`` tolerates it then)."""
        return any(position_le(end_position, tc) for tc in self._table_catchup.values())

    def _copied_here(self, c: RowChange) -> bool:
        """Whether this direction's own full data sync copied the change's table (its catch-up window then
        applies idempotently). Tables the opposite direction fills are applied strictly from the start: their
        rows here were never copied, so a clash is a real conflict."""
        key = (c.source_db, c.source_table)
        hit = self._copied.get(key)
        if hit is None:
            hit = self._copied[key] = not skips_initial(self.direction, c.source_db, c.source_table)
        return hit

    def _refresh_stale(self, cur, items: list[RowChange]) -> None:
        """Re-read a destination table whose cached definition is older than the rows to write.

        The destination can change behind this applier (the opposite direction applies DDL there; a user runs
        ALTER). A source row with a column the cached definition lacks, or a different primary key, means the
        source table changed; the destination table is then read again, so a value is never left out because
        of a stale column list. A difference that persists after a fresh read (the tables really differ) is
        remembered and not re-read for every group.
        """
        for c in items:
            info = self.tables.get((c.db, c.table))
            if info is None:
                continue  # read fresh when first used
            img = _image(c)
            if img.keys() <= info.colset and (not c.primary_key or c.primary_key == info.primary_key):
                continue
            sig = (c.db, c.table, frozenset(img), tuple(c.primary_key or ()))
            if sig in self._known_differences:
                continue
            fresh = self.tables[(c.db, c.table)] = read_destination_table(cur, c.db, c.table)
            if not img.keys() <= fresh.colset:
                self.log.warning(
                    "%s: source columns %s do not exist at the destination; their values are left out",
                    fresh.qname,
                    ", ".join(sorted(set(img) - fresh.colset)),
                )
            self._known_differences.add(sig)

    def write_position(self, txns: list[Transaction], cp: Checkpoint) -> None:
        """Advance the checkpoint over transactions that carry nothing to apply (own transaction)."""
        self.apply_group(txns, cp)

    def log_conflict_alone(self, conflict: C.Conflict) -> tuple[int, bool]:
        """Log a TaskFailed conflict as ``open`` in its own transaction and count it; returns (its id, whether
        it is new). The same conflict met again by a restart (same table, key, type and position, still open)
        keeps its row and is not counted twice."""
        conn = self._connected()
        d = self.direction
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT id FROM {self.control.table('conflict_log')} WHERE task_name=%s AND direction=%s "
                "AND status=%s AND conflict_type=%s AND dest_db=%s AND dest_table=%s AND source_position=%s "
                "AND key_json=%s ORDER BY id LIMIT 1",
                (
                    d.task_name,
                    d.role,
                    C.STATUS_OPEN,
                    conflict.conflict_type,
                    conflict.dest[0],
                    conflict.dest[1],
                    conflict.position,
                    to_json(conflict.key),
                ),
            )
            row = cur.fetchone()
            if row is not None:
                conn.commit()
                return int(row[0]), False
            conflict_id = self._log_conflict(cur, conflict, C.STATUS_OPEN)
            cur.execute(
                f"UPDATE {self.control.table('checkpoint')} SET conflicts=conflicts+1 "
                "WHERE task_name=%s AND direction=%s",
                (d.task_name, d.role),
            )
        conn.commit()
        return conflict_id, True

    def _log_conflict(self, cur, c: C.Conflict, status: str = C.STATUS_LOGGED) -> int:
        return self.control.log_conflict(
            cur,
            self.direction.task_name,
            self.direction.role,
            conflict_type=c.conflict_type,
            policy=c.policy,
            decision=c.decision,
            source=c.source,
            dest=c.dest,
            key=c.key,
            source_image=c.source_image,
            dest_image=c.dest_image,
            position=c.position,
            status=status,
        )

    def _advanced(self, cp: Checkpoint, txns: list[Transaction], stats: GroupStats) -> Checkpoint:
        last = txns[-1]
        new = Checkpoint(**cp.__dict__)
        new.binlog_file, new.binlog_pos = last.end_position
        new.gtid = next((t.gtid for t in reversed(txns) if t.gtid), cp.gtid)
        new.source_commit_at = _dt.datetime.fromtimestamp(last.commit_timestamp, _dt.UTC).replace(tzinfo=None)
        new.transactions_applied = int(cp.transactions_applied or 0) + sum(1 for t in txns if t.changes)
        new.rows_inserted = int(cp.rows_inserted or 0) + stats.inserted
        new.rows_updated = int(cp.rows_updated or 0) + stats.updated
        new.rows_deleted = int(cp.rows_deleted or 0) + stats.deleted
        new.conflicts = int(cp.conflicts or 0) + stats.conflicts
        if cp.ddl_pending is not None and txns and txns[-1].ddl is None:
            new.ddl_pending = cp.ddl_pending
        gtid_mod.advance(cp, new, txns)  # the source's GTID state at the new position (GTID resume)
        return new

    def _apply_items(
        self, cur, txns: list[Transaction], items: list[RowChange], stats: GroupStats, any_idempotent: bool
    ) -> None:
        """Apply a group's changes, those the source wrote with foreign_key_checks=0 with them off here too.

        A source session with foreign key checks off (a dump being restored, a bulk loader, a child inserted
        before its parent) was not refused and did no cascade there: applied with checks on here it would be
        refused or would cascade. So, as native replication does, each stretch of changes is applied with the
        source session's setting (``Transaction.fk_checks_off``), in binlog order, batched within a stretch,
        inside the one destination transaction. The session is back to checks on afterwards, even on error.
        """
        idem = self._idempotent if any_idempotent else None
        segments = _fk_segments(txns, items, idem)
        self._fk_on = True
        if len(segments) == 1 and segments[0][0]:  # the usual case: every change with checks on
            for run in _runs(self._order(cur, items), idem):
                self._apply_run(cur, run, self._idempotent(run[0]), stats)
            return
        try:
            for checks_on, changes in segments:
                cur.execute(f"SET SESSION foreign_key_checks={1 if checks_on else 0}")
                self._fk_on = checks_on
                for run in _runs(self._order(cur, changes), idem):
                    self._apply_run(cur, run, self._idempotent(run[0]), stats)
        except BaseException:
            try:
                cur.execute("SET SESSION foreign_key_checks=1")
            except BaseException:
                try:  # the session's setting is unknown now: its connection must not be used again
                    self._connected().close()
                except Exception:
                    pass
            raise
        finally:
            self._fk_on = True
        cur.execute("SET SESSION foreign_key_checks=1")

    # ------------------------------------------------------------------ ordering for batching

    def _order(self, cur, items: list[RowChange]) -> list[RowChange]:
        """Reorder a group's changes so that more of them batch, without changing the outcome.

        Tables without foreign keys are independent. Tables in a foreign key at the destination (as child or
        parent) keep the binlog order among themselves: the destination checks the constraints and performs the
        cascades the binlog does not carry, as the source did. Inside a table, changes of one key always keep
        their order (keys compared as loosely as any collation could: see ``_group_key``). On a table whose only
        unique key is the primary key, changes are leveled (the n-th change of each key is on level n) and
        each level is applied as deletes, updates, inserts. With other unique keys, reordering is limited to
        stretches where no key repeats, applied as deletes, updates, inserts: a value a later row takes is
        then never still held by an earlier row (see the notes in the module docstring).
        """
        by_table: dict[tuple, list[RowChange]] = {}
        for c in items:
            if self.table(cur, c.db, c.table).foreign_keys:
                by_table.setdefault((None, None, None), []).append(c)  # one bucket, binlog order
            else:
                by_table.setdefault((c.db, c.table, self._idempotent(c)), []).append(c)
        if len(by_table) == 1 and len(items) < 3:
            return items
        out: list[RowChange] = []
        rank = {"delete": 0, "update": 1, "insert": 2}
        for (db, table, _), changes in by_table.items():
            kind0 = changes[0].kind
            if db is None or len(changes) < 3 or all(c.kind == kind0 for c in changes):
                out.extend(changes)  # foreign keys, or one kind only: kept as they are
                continue
            info = self.table(cur, db, table)
            if info.match_all:
                out.extend(changes)
                continue
            if info.only_primary_unique:
                levels: dict[tuple, int] = {}
                buckets: dict[int, list[list[RowChange]]] = {}
                for c in changes:
                    keys = self._keys_touched(info, c)
                    lvl = max((levels.get(k, -1) for k in keys), default=-1) + 1
                    for k in keys:
                        levels[k] = lvl
                    buckets.setdefault(lvl, [[], [], []])[rank[c.kind]].append(c)
                for lvl in sorted(buckets):
                    for part in buckets[lvl]:
                        out.extend(part)
            else:
                seg: list[list[RowChange]] = [[], [], []]
                seen: set = set()
                for c in changes:
                    keys = self._keys_touched(info, c)
                    if seen.intersection(keys):
                        for part in seg:
                            out.extend(part)
                        seg, seen = [[], [], []], set()
                    seg[rank[c.kind]].append(c)
                    seen.update(keys)
                for part in seg:
                    out.extend(part)
        return out

    def _keys_touched(self, info: TableInfo, c: RowChange) -> list[tuple]:
        keys = []
        if c.before is not None:
            keys.append(_group_key(self._key_of(info, c.before)))
        if c.after is not None:
            k = _group_key(self._key_of(info, c.after))
            if not keys or keys[0] != k:
                keys.append(k)
        return keys

    # ------------------------------------------------------------------ runs

    def _apply_run(self, cur, run: list[RowChange], idempotent: bool, stats: GroupStats) -> None:
        try:
            self._apply_run_checked(cur, run, idempotent, stats)
        except pymysql.err.OperationalError as e:
            if not (e.args and e.args[0] == ER_NET_PACKET_TOO_LARGE):
                raise
            first = run[0]
            images = [_image(c) for c in run]
            info = self.table(cur, first.db, first.table)
            biggest = max(
                len(next(iter(self._values_sql(self._cols(info, i), [i]))).encode("utf-8", "surrogateescape"))
                for i in images
            )
            raise SyncFailed(
                f"a row of {qualified(first.db, first.table)} from {self._position(first)} "
                f"is about {biggest} bytes as SQL, more than the destination's max_allowed_packet allows "
                f"([{e.args[0]}] {e.args[1] if len(e.args) > 1 else e}). Fix: raise max_allowed_packet on the "
                f"destination above {2 * biggest} bytes (SET GLOBAL max_allowed_packet=...; in its config file too), "
                "then restart the direction: it resumes before this transaction"
            ) from None
        except pymysql.err.IntegrityError as e:
            code = e.args[0] if e.args else None
            if code not in ER_ROW_IS_REFERENCED + ER_NO_REFERENCED_ROW:
                raise
            first = run[0]
            what = (
                "a parent row is still referenced by child rows there"
                if code in ER_ROW_IS_REFERENCED
                else "the parent row does not exist there"
            )
            raise SyncFailed(
                f"a foreign key at the destination refused {first.kind}s of {qualified(first.db, first.table)} "
                f"from {self._position(first)}: {what} ([{code}] "
                f"{e.args[1] if len(e.args) > 1 else e}). The two sides differ in the related table. Fix: select "
                "every table of the foreign key for synchronization, make the related rows equal on both sides "
                "(dts_verify with repair), then restart the direction"
            ) from None

    def _apply_run_checked(self, cur, run: list[RowChange], idempotent: bool, stats: GroupStats) -> None:
        first = run[0]
        info = self.table(cur, first.db, first.table)
        kind = first.kind
        if kind == "insert":
            stats.inserted += len(run)
            if idempotent:
                self._replace_rows(cur, info, [_after(c) for c in run])
            else:
                self._insert_run(cur, info, run, stats)
        elif kind == "delete":
            stats.deleted += len(run)
            self._delete_run(cur, info, run, idempotent, stats)
        else:
            stats.updated += len(run)
            self._update_run(cur, info, run, idempotent, stats)

    # ---- helpers

    def _cols(self, info: TableInfo, image: dict[str, Any]) -> list[str]:
        return [c for c in image if c in info.writable]

    def _key_of(self, info: TableInfo, image: dict[str, Any]) -> tuple:
        cols = info.columns if info.match_all else info.match_key
        try:
            return tuple(image[c] for c in cols)
        except KeyError as e:
            raise SyncFailed(
                f"cannot match rows of {info.db}.{info.table}: key column {e.args[0]!r} is not in the source "
                "row image (the tables' columns differ). Fix: make the key columns the same on both sides"
            ) from None

    def _where_key(self, info: TableInfo, key: tuple) -> str:
        """``key`` (``_key_of``) as a condition: ``k=v`` per key column (``<=>`` on every column without a key)."""
        lit = self.literal
        return " AND ".join([prefix + lit(v) for prefix, v in zip(self._plan(info).key, key)])

    def _where_keys_in(self, info: TableInfo, keys: list[tuple]) -> str:
        lit = self.literal
        if info.match_all:
            return " OR ".join(f"({self._where_key(info, k)})" for k in keys)
        if len(info.match_key) == 1:
            return f"{quote_ident(info.match_key[0])} IN ({','.join(lit(k[0]) for k in keys)})"
        cols = ",".join(quote_ident(c) for c in info.match_key)
        return f"({cols}) IN ({','.join('(' + ','.join(lit(v) for v in k) + ')' for k in keys)})"

    def _values_sql(self, cols: list[str], rows: Iterable[dict[str, Any]]) -> Iterable[str]:
        lit = self.literal
        for r in rows:
            yield "(" + ",".join(lit(r.get(c)) for c in cols) + ")"

    def _multi(self, cur, head: str, cols: list[str], rows: list[dict[str, Any]], tail: str = "") -> None:
        parts: list[str] = []
        size = 0
        for v in self._values_sql(cols, rows):
            parts.append(v)
            size += len(v) + 1
            if len(parts) >= MAX_BATCH_ROWS or size >= self.max_statement:
                cur.execute(head + ",".join(parts) + tail)
                parts, size = [], 0
        if parts:
            cur.execute(head + ",".join(parts) + tail)

    def _replace_rows(self, cur, info: TableInfo, images: list[dict[str, Any]]) -> None:
        by_cols: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for img in images:
            by_cols.setdefault(tuple(self._cols(info, img)), []).append(img)
        for cols, rows in by_cols.items():
            if info.foreign_keys and self._fk_on and info.primary_key:
                # REPLACE deletes the old row first, which would cascade to its children: a row holding another
                # unique value of the image (another primary key) is removed, then the row with the image's
                # primary key is updated in place, so its children stay (an upsert alone could rewrite the
                # primary key of a row matched by a secondary unique key, taking that row's children along)
                for r in rows:
                    self._delete_other_holders(
                        cur, info, r, info.primary_key, tuple(r.get(c) for c in info.primary_key)
                    )
                qcols = [quote_ident(c) for c in cols]
                self._multi(
                    cur,
                    f"INSERT INTO {info.qname} ({','.join(qcols)}) VALUES ",
                    list(cols),
                    rows,
                    " ON DUPLICATE KEY UPDATE " + ",".join(f"{c}=VALUES({c})" for c in qcols),
                )
                continue
            head = f"REPLACE INTO {info.qname} ({','.join(map(quote_ident, cols))}) VALUES "
            if info.match_all:
                for r in rows:  # no key: REPLACE cannot find the old row; delete one identical row first
                    cur.execute(
                        f"DELETE FROM {info.qname} WHERE {self._where_key(info, self._key_of(info, r))} LIMIT 1"
                    )
            self._multi(cur, head, list(cols), rows)

    def _delete_other_holders(
        self, cur, info: TableInfo, image: dict[str, Any], key_cols: tuple[str, ...], keep: tuple
    ) -> None:
        """Delete the rows that hold one of ``image``'s unique values, other than the row whose ``key_cols`` are
        ``keep`` (compared by the server)."""
        mine = " AND ".join(f"{quote_ident(c)} <=> {self.literal(v)}" for c, v in zip(key_cols, keep))
        for key in info.unique_keys:
            if tuple(key) == tuple(key_cols) or any(image.get(c) is None for c in key):
                continue
            clash = " AND ".join(f"{quote_ident(c)}={self.literal(image[c])}" for c in key)
            cur.execute(f"DELETE FROM {info.qname} WHERE {clash} AND NOT ({mine})")

    def _clash_where(self, info: TableInfo, image: dict[str, Any]) -> str | None:
        """The rows that clash with ``image`` on the primary key or any unique key (None: no key to clash on)."""
        conds = []
        for key in info.unique_keys or [info.match_key]:
            if not key or any(image.get(c) is None for c in key):
                continue
            conds.append("(" + " AND ".join(f"{quote_ident(c)}={self.literal(image[c])}" for c in key) + ")")
        return " OR ".join(conds) if conds else None

    def _dest_rows(self, cur, info: TableInfo, image: dict[str, Any]) -> list[dict[str, Any]]:
        """Destination rows that clash with ``image`` on the primary key or any unique key."""
        where = self._clash_where(info, image)
        if where is None:
            return []
        return self._select_rows(info, where, 10)

    def _select_rows(self, info: TableInfo, where: str, limit: int) -> list[dict[str, Any]]:
        with self._connected().cursor(pymysql.cursors.DictCursor) as dcur:
            dcur.execute(f"SELECT * FROM {info.qname} WHERE {where} LIMIT {limit}")
            return list(dcur.fetchall())

    # ---- comparing with the destination row (by the server)

    def _plan(self, info: TableInfo) -> _ComparePlan:
        """The table's comparison text, built once per table definition (the conditions of every row of every
        batch are made of it: see ``_ComparePlan``)."""
        hit = self._compare_kinds.get((info.db, info.table))
        if hit is not None and hit.info is info:
            return hit
        casts = self._casts_of(info)
        same = {c: (f"{quote_ident(c)} <=> ", casts.get(c)) for c in info.writable}
        op = " <=> " if info.match_all else "="
        key = tuple(f"{quote_ident(c)}{op}" for c in (info.columns if info.match_all else info.match_key))
        plan = self._compare_kinds[(info.db, info.table)] = _ComparePlan(info, casts, same, key)
        return plan

    def _casts(self, info: TableInfo) -> dict[str, str]:
        """Columns of ``info`` whose values are compared through a cast: name -> the type cast to (``_casts_of``)."""
        return self._plan(info).casts

    def _casts_of(self, info: TableInfo) -> dict[str, str]:
        """Columns of ``info`` whose values are compared through a cast: name -> the type cast to. FLOAT as FLOAT
        (not as the double the binlog gives); JSON as JSON on MySQL (a string compares as a JSON string there);
        BINARY(n) as BINARY(n) (the binlog drops the trailing 0x00 bytes the column pads with)."""
        casts = {}
        for col in info.column_info:
            kind, data_type = col.kind, col.data_type.lower()
            if kind == "float" and self._float_cast:
                casts[col.name] = "FLOAT"
            elif kind == "json" and not self._mariadb:
                casts[col.name] = "JSON"
            elif data_type == "binary":
                width = _BINARY_WIDTH.search(col.column_type or "")
                casts[col.name] = f"BINARY({width.group(1) if width else 1})"
        return casts

    def _compare_literal(self, info: TableInfo, column: str, value: Any) -> str:
        """``value`` as the destination compares it with ``column`` (``_casts``)."""
        lit = self.literal(value)
        cast = self._casts(info).get(column)
        return lit if cast is None or value is None else f"CAST({lit} AS {cast})"

    def _same_as(self, info: TableInfo, image: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
        """A condition true when a row holds ``image``'s values on every non-generated column the destination
        has (``<=>``: NULL equals NULL; the server compares: collation, float width, temporal precision)."""
        same = self._plan(info).same
        lit = self.literal
        parts = []
        for c, v in image.items():
            how = same.get(c)
            if how is None or c in skip:
                continue
            prefix, cast = how
            parts.append(prefix + lit(v) if cast is None or v is None else f"{prefix}CAST({lit(v)} AS {cast})")
        return " AND ".join(parts) if parts else "1"

    def _row_state(self, cur, info: TableInfo, key: tuple, image: dict[str, Any]) -> bool | None:
        """Whether the destination row of ``key`` equals ``image`` (None: there is no such row). Locks it."""
        cur.execute(
            f"SELECT {self._same_as(info, image)} FROM {info.qname} WHERE {self._where_key(info, key)} "
            "LIMIT 1 FOR UPDATE"
        )
        row = cur.fetchone()
        return None if row is None else bool(row[0])

    def _holds(self, cur, info: TableInfo, image: dict[str, Any]) -> bool:
        """Whether the destination already holds ``image`` (the row of its key, equal on every column)."""
        if not info.match_key or info.match_all:
            return False
        return bool(self._row_state(cur, info, self._key_of(info, image), image))

    def _compare_column(
        self, cur, info: TableInfo, column: str | None, image: dict[str, Any], where: str
    ) -> str | None:
        """UseMax / UseMin: how ``image``'s value of ``column`` compares with the one destination row matching
        ``where`` (``conflicts.CMP_*``), asked of the destination server; CMP_NONE when it cannot be compared."""
        if column is None or column not in image or column not in info.colset:
            return C.CMP_NONE
        if image[column] is None or info.column(column).kind not in C.COMPARABLE_KINDS:
            return C.CMP_NONE
        q, lit = quote_ident(column), self._compare_literal(info, column, image[column])
        cur.execute(f"SELECT {q} IS NULL, {lit} < {q}, {lit} > {q} FROM {info.qname} WHERE {where} LIMIT 2")
        rows = cur.fetchall()
        if len(rows) != 1:
            return C.CMP_NONE
        return C.comparison_of(rows[0][0], False, rows[0][1], rows[0][2])

    # ---- deciding a conflict

    def _table_policy(self, change: RowChange) -> TableConflictPolicy:
        key = (change.source_db, change.source_table)
        tp = self._table_policies.get(key)
        if tp is None:
            tp = self._table_policies[key] = self.direction.conflict_policy_for(*key)
        return tp

    def _conflict(
        self,
        info: TableInfo,
        change: RowChange,
        ctype: str,
        key_image: dict[str, Any],
        source_image: Any,
        dest_image: Any,
        decision: str | None = None,
    ) -> C.Conflict:
        key_cols = info.match_key or tuple(key_image)
        policy = self._table_policy(change).policy
        return C.Conflict(
            conflict_type=ctype,
            policy=policy,
            decision=decision or C.decide(policy, ctype, forward=self.direction.role == "forward"),
            source=(change.source_db, change.source_table),
            dest=(info.db, info.table),
            key={c: key_image.get(c) for c in key_cols},
            source_image=source_image,
            dest_image=dest_image,
            position=self._position(change),
        )

    def _already_equal(
        self, info: TableInfo, change: RowChange, ctype: str, key_image: dict[str, Any], image: Any, stats: GroupStats
    ) -> None:
        """The destination already holds the change's outcome: a no-op, logged, not counted as a conflict."""
        stats.logged.append(self._conflict(info, change, ctype, key_image, image, image, C.DECISION_ALREADY_EQUAL))

    def _decide(
        self,
        cur,
        info: TableInfo,
        change: RowChange,
        ctype: str,
        key_image: dict[str, Any],
        source_image: Any,
        dest_image: Any,
        stats: GroupStats,
        compare: tuple[dict[str, Any], str | None] | None = None,
    ) -> str:
        """The decision for a real conflict: an answer to it (``conflicts.Answer``), else the table's policy
        (UseMax / UseMin compare ``compare`` = (source image, destination row condition)). Raises
        ``ConflictFailure`` under TaskFailed; otherwise logs and counts the conflict. The caller acts on the
        decision: ``conflicts.SOURCE_WINS`` -> the source row is written, anything else -> the row stays."""
        key_cols = info.match_key or tuple(key_image)
        key = {c: key_image.get(c) for c in key_cols}
        answered = self._answered(change, info, key)
        if answered is not None:
            return answered
        tp = self._table_policy(change)
        comparison = C.CMP_NONE
        if C.compares_column(tp.policy) and compare is not None and compare[1] is not None:
            comparison = self._compare_column(cur, info, tp.column, compare[0], compare[1])
        decision = C.decide(tp.policy, ctype, comparison, forward=self.direction.role == "forward")
        conflict = self._conflict(info, change, ctype, key_image, source_image, dest_image, decision)
        if decision == C.DECISION_FAILED:
            if not self._answers_reloaded:  # an answer may have been recorded since the answers were read
                self._reload_answers()
                answered = self._answered(change, info, key)
                if answered is not None:
                    return answered
            raise C.ConflictFailure(conflict, self._mode(change).index)
        stats.conflicts += 1
        stats.logged.append(conflict)
        return decision

    def _answered(self, change: RowChange, info: TableInfo, key: dict[str, Any]) -> str | None:
        """The decision of the answer to this change's conflict (``_answer_for``), noted for the group's
        ``_settle_answers``; None when there is none."""
        answer = self._answer_for(change, info, key)
        if answer is None or answer.decision is None:
            return None
        self._group_answers[answer.id] = answer.decision
        self.log.info("%s: conflict %s on %s answered: %s", self.direction.key, answer.id, info.qname, answer.decision)
        return answer.decision

    # ---- inserts

    def _insert_run(self, cur, info: TableInfo, run: list[RowChange], stats: GroupStats) -> None:
        images = [_after(c) for c in run]
        cols = self._cols(info, images[0])
        if all(len(i) == len(images[0]) for i in images):
            cur.execute("SAVEPOINT dts_batch")
            try:
                self._multi(cur, f"INSERT INTO {info.qname} ({','.join(map(quote_ident, cols))}) VALUES ", cols, images)
                return
            except pymysql.err.IntegrityError as e:
                if e.args[0] != ER_DUP_ENTRY:
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT dts_batch")
        for change in run:
            self._insert_one(cur, info, change, _after(change), C.INSERT_DUPLICATE, stats)

    def _insert_one(
        self, cur, info: TableInfo, change: RowChange, image: dict[str, Any], ctype: str, stats: GroupStats
    ) -> None:
        cols = self._cols(info, image)
        sql = f"INSERT INTO {info.qname} ({','.join(map(quote_ident, cols))}) VALUES " + next(
            iter(self._values_sql(cols, [image]))
        )
        try:
            cur.execute(sql)
            return
        except pymysql.err.IntegrityError as e:
            if e.args[0] != ER_DUP_ENTRY:
                raise
        dest = self._dest_rows(cur, info, image)
        if len(dest) == 1 and self._holds(cur, info, image):
            self._already_equal(info, change, ctype, image, image, stats)
            return
        decision = self._decide(
            cur,
            info,
            change,
            ctype,
            image,
            image,
            dest[0] if len(dest) == 1 else dest,
            stats,
            (image, self._clash_where(info, image)),
        )
        if decision in C.SOURCE_WINS:
            self._replace_rows(cur, info, [image])

    # ---- deletes

    def _delete_run(self, cur, info: TableInfo, run: list[RowChange], idempotent: bool, stats: GroupStats) -> None:
        """Deletes of a run. Catch-up window: by key. Strict: a row is deleted only as its before-image says it is
        (compared by the server, ``_same_as``): one statement per chunk deletes every row whose key and values
        match; a shortfall (a row missing, or changed at the destination) is sorted out row by row, in order
        (``_delete_one``)."""
        if idempotent or info.match_all:  # without a key the whole before-image is the key already
            self._delete_by_key(cur, info, run, idempotent, stats)
            return
        first_of: dict[tuple, RowChange] = {}
        for c in run:
            first_of.setdefault(self._key_of(info, _before(c)), c)
        firsts = list(first_of.items())
        for chunk, same in self._before_image_chunks(info, firsts):
            cur.execute("SAVEPOINT dts_batch")
            try:
                n = cur.execute(f"DELETE FROM {info.qname} WHERE {same}")
            except pymysql.err.IntegrityError as e:
                # the server deletes in index order, not binlog order: a child after its parent in a
                # self-referencing table is refused (RESTRICT). One by one, in binlog order, below.
                if not (e.args and e.args[0] in ER_ROW_IS_REFERENCED):
                    raise
                n = -1
            if n == len(chunk):
                continue
            # Some row is missing or differs at the destination. Which one only the server can say: it compares
            # keys and values by the column's type and collation, Python cannot. One by one, in order.
            cur.execute("ROLLBACK TO SAVEPOINT dts_batch")
            for k, c in chunk:
                self._delete_one(cur, info, c, k, stats)
        # a key deleted twice in one run (not produced by _order): the later deletes meet a missing row
        if len(firsts) < len(run):
            first_ids = {id(c) for _, c in firsts}
            for c in run:
                if id(c) not in first_ids:
                    self._delete_one(cur, info, c, self._key_of(info, _before(c)), stats)

    def _before_image_chunks(
        self, info: TableInfo, rows: list[tuple[tuple, RowChange]]
    ) -> Iterable[tuple[list[tuple[tuple, RowChange]], str]]:
        """``rows`` (key, change) in chunks of at most ``CHECK_BATCH_ROWS`` rows and about ``max_statement``
        characters, each with its condition: every row's key and before-image, OR-ed."""
        chunk: list[tuple[tuple, RowChange]] = []
        parts: list[str] = []
        size = 0
        for k, c in rows:
            part = f"({self._where_key(info, k)} AND {self._same_as(info, _before(c), info.match_key)})"
            if chunk and (len(chunk) >= CHECK_BATCH_ROWS or size + len(part) >= self.max_statement):
                yield chunk, " OR ".join(parts)
                chunk, parts, size = [], [], 0
            chunk.append((k, c))
            parts.append(part)
            size += len(part) + 4
        if chunk:
            yield chunk, " OR ".join(parts)

    def _delete_by_key(self, cur, info: TableInfo, run: list[RowChange], idempotent: bool, stats: GroupStats) -> None:
        """Deletes by key only: the catch-up window (whatever the row holds), and tables without a key (the
        before-image is the key: one identical row, ``LIMIT 1``)."""
        keys = list(dict.fromkeys(self._key_of(info, _before(c)) for c in run))
        for i in range(0, len(keys), MAX_BATCH_ROWS):
            chunk = keys[i : i + MAX_BATCH_ROWS]
            if idempotent:
                cur.execute(f"DELETE FROM {info.qname} WHERE {self._where_keys_in(info, chunk)}")
                continue
            for k in chunk:
                n = cur.execute(f"DELETE FROM {info.qname} WHERE {self._where_key(info, k)} LIMIT 1")
                if n == 0:
                    self._delete_missing(info, run, [k], stats)

    def _delete_one(self, cur, info: TableInfo, change: RowChange, key: tuple, stats: GroupStats) -> None:
        """One strict DELETE: applied to the row as its before-image says it is; a missing row is a no-op
        (``delete_missing``), a row that differs a ``delete_conflict``."""
        before = _before(change)
        where = self._where_key(info, key)
        if cur.execute(f"DELETE FROM {info.qname} WHERE {where} AND {self._same_as(info, before, info.match_key)}"):
            return
        if self._row_state(cur, info, key, before) is None:
            self._delete_missing(info, [change], [key], stats)
            return
        dest = self._select_rows(info, where, 1)
        decision = self._decide(cur, info, change, C.DELETE_CONFLICT, before, before, dest[0] if dest else None, stats)
        if decision in C.SOURCE_WINS:
            cur.execute(f"DELETE FROM {info.qname} WHERE {where}")

    def _delete_missing(self, info: TableInfo, run: list[RowChange], missing: list[tuple], stats: GroupStats) -> None:
        wanted = list(missing)
        for change in run:
            before = _before(change)
            k = self._key_of(info, before)
            if k in wanted:
                wanted.remove(k)  # already gone: a no-op, not a conflict
                stats.logged.append(self._conflict(info, change, C.DELETE_MISSING, before, before, None))

    # ---- updates

    def _update_run(self, cur, info: TableInfo, run: list[RowChange], idempotent: bool, stats: GroupStats) -> None:
        """Updates keeping the key go in batches of distinct keys; a key change or a repeated key flushes."""
        batch: list[RowChange] = []
        keys: list[tuple] = []
        seen: set = set()

        def flush():
            if not batch:
                return
            if idempotent:
                self._replace_rows(cur, info, [_after(c) for c in batch])
            elif (
                len(batch) > 1
                and info.only_primary_unique
                and all(len(_after(c)) == len(_after(batch[0])) for c in batch)
            ):
                self._update_batch(cur, info, batch, keys, stats)
            else:
                for c in batch:
                    self._update_one(cur, info, c, stats)
            batch.clear()
            keys.clear()
            seen.clear()

        for change in run:
            old, new = self._key_of(info, _before(change)), self._key_of(info, _after(change))
            if old != new:
                flush()
                if idempotent:
                    self._move_row(cur, info, old, _after(change))
                else:
                    self._update_one(cur, info, change, stats)
                continue
            if old in seen:
                flush()
            batch.append(change)
            keys.append(old)
            seen.add(old)
            if len(batch) >= MAX_BATCH_ROWS:
                flush()
        flush()

    def _move_row(self, cur, info: TableInfo, old: tuple, after: dict[str, Any]) -> None:
        """Catch-up window: a row whose key changed. On a table in a foreign key, while checks are on, the row
        is updated in place (delete + insert would cascade to its children); otherwise the old row is deleted
        and the new one replaces whatever holds its keys."""
        if info.foreign_keys and self._fk_on:
            cols = self._cols(info, after)
            assign = ",".join(f"{quote_ident(c)}={self.literal(after.get(c))}" for c in cols)
            if cur.execute(f"UPDATE {info.qname} SET {assign} WHERE {self._where_key(info, old)}"):
                return
        else:
            cur.execute(f"DELETE FROM {info.qname} WHERE {self._where_key(info, old)}")
        self._replace_rows(cur, info, [after])

    def _update_batch(self, cur, info: TableInfo, run: list[RowChange], keys: list[tuple], stats: GroupStats) -> None:
        for i in range(0, len(run), MAX_BATCH_ROWS):
            chunk, ckeys = run[i : i + MAX_BATCH_ROWS], keys[i : i + MAX_BATCH_ROWS]
            # Whether every row is there as its before-image says is asked of the server, which compares keys
            # and values by the column's type and collation. The keys are distinct and unique, so as many rows
            # as keys means every row is there unchanged (else an UPDATE/UPDATE conflict or a missing row).
            present = 0
            for part, same in self._before_image_chunks(info, list(zip(ckeys, chunk))):
                found = cur.execute(f"SELECT 1 FROM {info.qname} WHERE {same} FOR UPDATE")
                cur.fetchall()
                present += found
                if found != len(part):
                    break
            if present != len(ckeys):
                for c in chunk:  # one by one: each UPDATE says whether it found its row as it was
                    self._update_one(cur, info, c, stats)
                continue
            cols = self._cols(info, _after(chunk[0]))
            upd = ",".join(f"{quote_ident(c)}=VALUES({quote_ident(c)})" for c in cols if c not in info.match_key)
            if not upd:
                upd = f"{quote_ident(cols[0])}={quote_ident(cols[0])}"
            self._multi(
                cur,
                f"INSERT INTO {info.qname} ({','.join(map(quote_ident, cols))}) VALUES ",
                cols,
                [_after(c) for c in chunk],
                f" ON DUPLICATE KEY UPDATE {upd}",
            )

    def _update_one(self, cur, info: TableInfo, change: RowChange, stats: GroupStats, checked: bool = True) -> None:
        """One UPDATE. ``checked`` (strict mode): only applied to the row as the before-image says it was; a
        row that differs is an UPDATE/UPDATE conflict (``_update_conflict``); unchecked: the source row wins."""
        before, after = _before(change), _after(change)
        cols = self._cols(info, after)
        old = self._key_of(info, before)
        assign = ",".join(f"{quote_ident(c)}={self.literal(after.get(c))}" for c in cols)
        limit = " LIMIT 1" if info.match_all else ""
        where = self._where_key(info, old)
        check = checked and not info.match_all  # without a key the whole before-image is the key already
        if check:
            where += " AND " + self._same_as(info, before, info.match_key)
        try:
            n = cur.execute(f"UPDATE {info.qname} SET {assign} WHERE {where}{limit}")
        except pymysql.err.IntegrityError as e:
            if e.args[0] != ER_DUP_ENTRY:
                raise
            n = -1
        if n == -1:
            self._update_duplicate(cur, info, change, stats, old, assign, limit)
        elif n == 0:
            state = self._row_state(cur, info, old, after) if check else None
            if state is None:
                self._update_missing(cur, info, change, stats)
            elif state:  # the destination row already is the after-image
                self._already_equal(info, change, C.UPDATE_CONFLICT, before, {"before": before, "after": after}, stats)
            else:
                self._update_conflict(cur, info, change, stats, old)

    def _update_conflict(self, cur, info: TableInfo, change: RowChange, stats: GroupStats, old: tuple) -> None:
        """The destination row differs from the update's before-image: both sides changed it."""
        before, after = _before(change), _after(change)
        where = self._where_key(info, old)
        dest = self._select_rows(info, where, 1)
        decision = self._decide(
            cur,
            info,
            change,
            C.UPDATE_CONFLICT,
            before,
            {"before": before, "after": after},
            dest[0] if dest else None,
            stats,
            (after, where),
        )
        if decision in C.SOURCE_WINS:
            self._update_one(cur, info, change, stats, checked=False)

    def _update_duplicate(
        self, cur, info: TableInfo, change: RowChange, stats: GroupStats, old: tuple, assign: str, limit: str
    ) -> None:
        """The update's new key values are held by another destination row."""
        after = _after(change)
        dest = self._dest_rows(cur, info, after)
        clash = self._clash_where(info, after)
        others = None if clash is None else f"({clash}) AND NOT ({self._where_key(info, old)})"
        decision = self._decide(
            cur,
            info,
            change,
            C.UPDATE_DUPLICATE,
            after,
            after,
            dest[0] if len(dest) == 1 else dest,
            stats,
            (after, others),
        )
        if decision not in C.SOURCE_WINS:
            return
        if info.foreign_keys and self._fk_on and not info.match_all:
            # remove the other rows holding the new values, then update this row in place: its
            # children follow it (ON UPDATE CASCADE) instead of being deleted with it
            self._delete_other_holders(cur, info, after, info.match_key, old)
            cur.execute(f"UPDATE {info.qname} SET {assign} WHERE {self._where_key(info, old)}")
        else:
            cur.execute(f"DELETE FROM {info.qname} WHERE {self._where_key(info, old)}{limit}")
            self._replace_rows(cur, info, [after])

    def _update_missing(self, cur, info: TableInfo, change: RowChange, stats: GroupStats) -> None:
        after = _after(change)
        if self._holds(cur, info, after):  # the row is already there as the update leaves it
            self._already_equal(info, change, C.UPDATE_MISSING, _before(change), after, stats)
            return
        # the row was deleted here while the source changed it: the other direction's delete_conflict, when
        # answered, recorded its mirrored answer for this change (take_source there = keep no row here)
        before = _before(change)
        answered = self._answered(change, info, {col: before.get(col) for col in info.match_key or tuple(before)})
        stats.conflicts += 1
        stats.logged.append(self._conflict(info, change, C.UPDATE_MISSING, before, after, None, answered))
        if answered is not None and answered not in C.SOURCE_WINS:
            return
        self._insert_one(cur, info, change, after, C.UPDATE_INSERT_DUPLICATE, stats)


def _before(c: RowChange) -> dict[str, Any]:
    """The row image before an update or delete (the reader always gives one)."""
    if c.before is None:
        raise SyncFailed(f"a {c.kind} of {qualified(c.db, c.table)} without its before image")
    return c.before


def _after(c: RowChange) -> dict[str, Any]:
    """The row image after an insert or update (the reader always gives one)."""
    if c.after is None:
        raise SyncFailed(f"a {c.kind} of {qualified(c.db, c.table)} without its after image")
    return c.after


def _image(c: RowChange) -> dict[str, Any]:
    """The after image, else the before image (a delete)."""
    return c.after if c.after is not None else _before(c)


def _group_key(key: tuple) -> tuple:
    """A row key as loosely as any collation may compare it: letter case, accents and trailing spaces
    ignored. Used only to keep changes of possibly the same row in order (``Applier._order``): treating two
    keys as equal when the server would not costs batching, never correctness."""
    return tuple(_loose(v) if type(v) is str else v for v in key)


def _loose(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).rstrip(" ")


def _runs(changes: list[RowChange], idempotent: Callable[[RowChange], bool] | None = None) -> Iterable[list[RowChange]]:
    """Consecutive changes of the same kind on the same destination table (and the same apply mode:
    ``idempotent(change)``; None when no change of the group is idempotent)."""
    run: list[RowChange] = []
    mode = False
    for c in changes:
        m = idempotent(c) if idempotent is not None else False
        if run and (c.kind != run[0].kind or c.table != run[0].table or c.db != run[0].db or m != mode):
            yield run
            run = []
        if not run:
            mode = m
        run.append(c)
    if run:
        yield run


def _fk_segments(
    txns: list[Transaction], items: list[RowChange], idempotent: Callable[[RowChange], bool] | None = None
) -> list[tuple[bool, list[RowChange]]]:
    """A group's changes (``items``, in binlog order) as consecutive (foreign key checks on?, changes) stretches:
    off for changes the source wrote with checks off and for catch-up changes (``idempotent(change)``; None
    when the group has none); one stretch when there are none."""
    if idempotent is None and not any(t.fk_checks_off for t in txns):
        return [(True, items)]
    off = {id(c) for t in txns for start, end in t.fk_checks_off for c in t.changes[start:end]}
    out: list[tuple[bool, list[RowChange]]] = []
    for c in items:
        # a catch-up change replays history onto a snapshot that already holds what followed it (cascades
        # included): with checks on its intermediate states would be refused or would cascade again
        checks_on = id(c) not in off and not (idempotent is not None and idempotent(c))
        if out and out[-1][0] == checks_on:
            out[-1][1].append(c)
        else:
            out.append((checks_on, [c]))
    return out


def _copy_checkpoint(src: Checkpoint, dst: Checkpoint) -> None:
    for k, v in src.__dict__.items():
        setattr(dst, k, v)
