"""The data model shared by the reader, the applier, DDL sync, the copy and the control schema.

Nothing here reads or writes a server: a ``Transaction`` of ``RowChange`` s is what the binlog reader
produces and the applier consumes (the narrow interface between them, like go-mysql canal's row / XID / DDL
events); a ``Position`` is a binlog file and offset taken only at a transaction boundary; a ``Checkpoint`` is
a direction's row in ``<control>.checkpoint`` (written in the same destination transaction as the rows it
describes, see ``control.ControlSchema.write_checkpoint``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

Position = tuple[str, int]
"""A binlog position: (file name, byte offset). Only ever a transaction boundary."""


# --------------------------------------------------------------------------- positions


def position_key(pos: tuple[str, int]) -> tuple[int, str, int]:
    """Sort key of a binlog position: numeric file suffix, then byte offset."""
    name, offset = pos
    suffix = name.rsplit(".", 1)[-1]
    return (int(suffix) if suffix.isdigit() else -1, name, int(offset))


def position_le(a: tuple[str, int], b: tuple[str, int]) -> bool:
    return position_key(a) <= position_key(b)


def format_position(pos: tuple[str, int] | None) -> str:
    return "-" if pos is None else f"{pos[0]}:{pos[1]}"


# --------------------------------------------------------------------------- data model


@dataclass
class RowChange:
    """One row change, with destination names already mapped."""

    kind: str  # "insert" | "update" | "delete"
    source_db: str
    source_table: str
    db: str  # destination database
    table: str  # destination table
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    primary_key: tuple[str, ...]

    def __reduce__(self):  # pickled as its fields only (the reader process sends many): about 1.5x faster
        return RowChange, (
            self.kind,
            self.source_db,
            self.source_table,
            self.db,
            self.table,
            self.before,
            self.after,
            self.primary_key,
        )


@dataclass
class Transaction:
    start_position: tuple[str, int]
    end_position: tuple[str, int]
    gtid: str | None
    commit_timestamp: float  # epoch seconds (second resolution from the binlog header)
    changes: list[RowChange] = field(default_factory=list)
    marked: bool = False  # written by the opposite direction's applier: drop whole
    ddl: tuple[str, str] | None = None  # (default schema, statement) of a standalone statement
    heartbeat_at: _dt.datetime | None = None  # our own heartbeat row's time (naive UTC), when seen
    # Ranges [start, end) of ``changes`` the source wrote with foreign_key_checks=0 (rows events flagged
    # NO_FOREIGN_KEY_CHECKS_F); empty when every change was written with checks on. A session may switch the
    # setting inside a transaction, so it is per change, kept as ranges: nothing per change to pickle.
    fk_checks_off: tuple[tuple[int, int], ...] = ()

    @property
    def row_count(self) -> int:
        return len(self.changes)

    def __reduce__(self):
        return Transaction, (
            self.start_position,
            self.end_position,
            self.gtid,
            self.commit_timestamp,
            self.changes,
            self.marked,
            self.ddl,
            self.heartbeat_at,
            self.fk_checks_off,
        )


# --------------------------------------------------------------------------- checkpoint


@dataclass
class Checkpoint:
    binlog_file: str | None = None
    binlog_pos: int | None = None
    gtid: str | None = None
    source_commit_at: Any = None
    snapshot_file: str | None = None
    snapshot_pos: int | None = None
    catchup_file: str | None = None
    catchup_pos: int | None = None
    ddl_pending: str | None = None
    transactions_applied: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    conflicts: int = 0
    # GTID-aware checkpoints (engine/gtid.py): the source's GTID state at gtid_state_at (valid when that is the
    # checkpoint's position), the server the position belongs to, and after a GTID resume the end of the new
    # source's transactions that were already applied (skipped up to there)
    gtid_state: str | None = None
    gtid_state_at: str | None = None
    source_server_id: int | None = None
    source_server_uuid: str | None = None
    gtid_skip_until: str | None = None

    @property
    def position(self) -> Position | None:
        """Where the direction's incremental sync resumes (None: not initialized)."""
        return _position(self.binlog_file, self.binlog_pos)

    @property
    def snapshot_position(self) -> Position | None:
        """The copy's snapshot position, or (with ``position`` None) task two's start floor (``startfloor``)."""
        return _position(self.snapshot_file, self.snapshot_pos)

    @property
    def catchup_position(self) -> Position | None:
        """The end of the catch-up window (changes up to it are applied idempotently)."""
        return _position(self.catchup_file, self.catchup_pos)


def _position(file: str | None, pos: int | None) -> Position | None:
    return None if file is None or pos is None else (file, int(pos))
