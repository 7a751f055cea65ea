"""Conflict detection and resolution: the DTS spec's cases, DTS's column policies, and answers (issue 12).

Cases (``conflict_type`` in the conflict log):

- ``insert_duplicate``: an INSERT whose primary or unique key already exists at the destination;
- ``update_conflict``: an UPDATE whose before-image differs from the destination's current row (both sides
  updated the row; compared by the destination server, ``col <=> value``, on the non-generated columns both
  sides have; FLOAT as FLOAT, JSON as JSON on MySQL). Logged with both source images (``{"before", "after"}``);
- ``update_missing``: an UPDATE whose row does not exist at the destination. DTS converts it into an INSERT
  (decision ``UpdateToInsert``), which may itself hit a uniqueness conflict (``update_insert_duplicate``);
- ``update_duplicate``: an UPDATE whose new key values collide with another destination row;
- ``delete_missing``: a DELETE whose row does not exist (a no-op, see below);
- ``delete_conflict``: a DELETE whose before-image differs from the destination's current row (one side deleted
  the row while the other changed it; compared by the destination server as for ``update_conflict``). Logged
  with the DELETE's before-image as the source image and the destination row. The source row "wins" by being
  deleted: Overwrite and TakeSource (answer take_source) delete the destination row; Ignore, KeepDestination /
  Skipped keep it; TaskFailed stops. UseMax / UseMin keep it (``UseMax:dest`` / ``UseMin:dest``): a delete has
  no after-image, so the destination row is the only row with a value of the column, and it wins; the other
  direction converts its UPDATE of the row deleted there into an INSERT (``update_missing``), so both servers
  end with that row. Strict mode only: in a catch-up window a DELETE removes the row of its key whatever it
  holds.

A row that already matches is not a conflict, whatever the policy: an INSERT whose row equals the destination
row, an UPDATE whose after-image equals it (whatever the before-image), a DELETE of a missing row. Each is a
no-op, logged with decision ``AlreadyEqual`` (status ``logged``) and not counted in ``checkpoint.conflicts``.

Policies: the direction's ``conflict_policy`` (``ConflictPolicy``), or the table's entry of
``table_conflict_policies`` (``config.TableConflictPolicy``):

- TaskFailed: the direction fails, nothing of the source transaction is applied, the checkpoint stays before
  it; the conflict is logged ``open`` (its own transaction after the rollback; ``ConflictFailure.conflict_id``)
  and waits for an answer (``ANSWERS``). A restart that meets the same conflict again reuses that row.
- Ignore: the destination row stays. Overwrite: the destination row is replaced by the source row.
- UseMax / UseMin (per table, on a named column): the row with the larger (smaller) value of the column wins,
  compared by the destination server. UseMax falls back to Overwrite, UseMin to Ignore, when the column cannot
  be compared (destination row missing or not one row, NULL on either side, a type that is not a number,
  decimal, temporal or string). Equal values: the row of task one's source (server A) wins on both servers
  (forward: source, reverse: destination), so both sides end with the same winner.

Ignore and Overwrite on both tasks can leave the two servers different after simultaneous writes (each side
keeps its own row, or takes the other's): UseMax / UseMin, or TaskFailed with an answer, converge.

Answers (``status`` answered, written by ``engine.resolve``): when the applier meets a conflict whose
destination table and key match an answered row, and the change's transaction ends at the row's
``source_position`` (or at or before its ``applies_through``), the answer decides that row change:
take_source -> the source row wins (``TakeSource``); keep_destination / skip -> not applied
(``KeepDestination`` / ``Skipped``). The row becomes ``resolved`` in the destination transaction that carries
the checkpoint (exactly once). An answer with ``applies_through`` (a mirrored answer recorded before its
direction met the change) decides every change of its key in its range: ``applied_at`` and the decision are set
at its first use, and it becomes ``resolved`` once the checkpoint passes ``applies_through``. An answered or open
row whose position the checkpoint passes without meeting its conflict again (the rows were made equal by hand)
becomes ``superseded`` in that transaction.

Every conflict is written to ``conflict_log``: decided by a policy in the same transaction as the data, for
TaskFailed in its own transaction after the rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_dts.engine.config import COLUMN_POLICIES, ConflictPolicy
from airflow_provider_dts.engine.control import to_json
from airflow_provider_dts.engine.errors import ConflictError
from airflow_provider_dts.engine.model import position_le
from airflow_provider_dts.engine.sqltext import qualified, quote_ident

INSERT_DUPLICATE = "insert_duplicate"
UPDATE_MISSING = "update_missing"
UPDATE_INSERT_DUPLICATE = "update_insert_duplicate"
UPDATE_DUPLICATE = "update_duplicate"
UPDATE_CONFLICT = "update_conflict"
DELETE_MISSING = "delete_missing"
DELETE_CONFLICT = "delete_conflict"

# conflict_log.decision (VARCHAR(16))
DECISION_FAILED = "TaskFailed"
DECISION_IGNORED = "Ignored"
DECISION_OVERWRITTEN = "Overwritten"
DECISION_CONVERTED = "UpdateToInsert"
DECISION_ALREADY_EQUAL = "AlreadyEqual"  # the destination already holds the change's outcome: a no-op
DECISION_USE_MAX_SOURCE = "UseMax:source"
DECISION_USE_MAX_DEST = "UseMax:dest"
DECISION_USE_MIN_SOURCE = "UseMin:source"
DECISION_USE_MIN_DEST = "UseMin:dest"
DECISION_TAKE_SOURCE = "TakeSource"  # an answer applied
DECISION_KEEP_DESTINATION = "KeepDestination"
DECISION_SKIPPED = "Skipped"
# the decisions that write the source row over the destination row
SOURCE_WINS = frozenset({DECISION_OVERWRITTEN, DECISION_USE_MAX_SOURCE, DECISION_USE_MIN_SOURCE, DECISION_TAKE_SOURCE})

# How the policy column of a UseMax / UseMin table compares, source value against destination value (asked of
# the destination server); CMP_NONE: it cannot be compared (no single destination row, NULL, type).
CMP_SOURCE_LARGER = "larger"
CMP_SOURCE_SMALLER = "smaller"
CMP_EQUAL = "equal"
CMP_NONE: str | None = None
# ColumnInfo.kind values UseMax / UseMin compare (numbers, decimals, temporals, strings)
COMPARABLE_KINDS = frozenset(
    {"integer", "decimal", "float", "double", "year", "timestamp", "temporal", "text", "binary"}
)

# conflict_log.status (control migration 5)
STATUS_LOGGED = "logged"  # decided by a policy, nothing to answer
STATUS_OPEN = "open"  # TaskFailed: the direction stopped before the transaction and waits for an answer
STATUS_ANSWERED = "answered"  # an answer is recorded; the applier applies it when it meets the change again
STATUS_RESOLVED = "resolved"  # the answer was applied with the checkpoint (exactly once)
STATUS_SUPERSEDED = "superseded"  # the change no longer conflicted when applied again (e.g. fixed by hand)

# The answers a person can give to an open conflict (conflict_log.answer), and their labels in Airflow's
# human-in-the-loop request. "stop" leaves the direction stopped (Failed) with the conflict open.
ANSWER_TAKE_SOURCE = "take_source"
ANSWER_KEEP_DESTINATION = "keep_destination"
ANSWER_SKIP = "skip"
ANSWER_STOP = "stop"
ANSWER_LABELS = {
    ANSWER_TAKE_SOURCE: "Take the source row",
    ANSWER_KEEP_DESTINATION: "Keep the destination row",
    ANSWER_SKIP: "Skip this change",
    ANSWER_STOP: "Stop the direction",
}
ANSWERS = tuple(ANSWER_LABELS)
# what the applier does with an answer (``stop`` is not applied: the direction stays stopped)
ANSWER_DECISIONS = {
    ANSWER_TAKE_SOURCE: DECISION_TAKE_SOURCE,
    ANSWER_KEEP_DESTINATION: DECISION_KEEP_DESTINATION,
    ANSWER_SKIP: DECISION_SKIPPED,
}
# The same key conflicting on both sides: an answer for one direction is the mirrored answer for the other.
# Skipping the change here leaves the destination row here, so the other direction must take it (its source
# row): mirrored as take_source, or the two servers would each keep their own row.
MIRRORED_ANSWER = {
    ANSWER_TAKE_SOURCE: ANSWER_KEEP_DESTINATION,
    ANSWER_KEEP_DESTINATION: ANSWER_TAKE_SOURCE,
    ANSWER_SKIP: ANSWER_TAKE_SOURCE,
    ANSWER_STOP: ANSWER_STOP,
}


@dataclass
class Conflict:
    conflict_type: str
    policy: str
    decision: str
    source: tuple[str, str]
    dest: tuple[str, str]
    key: dict[str, Any]
    source_image: Any
    dest_image: Any
    position: str

    def describe(self) -> str:
        return (
            f"{self.conflict_type.replace('_', ' ')} conflict on {self.dest[0]}.{self.dest[1]} "
            f"(source table {self.source[0]}.{self.source[1]}) key {to_json(self.key)}: "
            f"source row {to_json(self.source_image)}; destination row {to_json(self.dest_image)}; "
            f"source transaction ending at {self.position}"
        )


class ConflictFailure(ConflictError):
    """A conflict under the TaskFailed policy. ``txn_index`` is the failing transaction in its group;
    ``conflict_id`` the ``conflict_log`` row (status open) once it is logged."""

    def __init__(self, conflict: Conflict, txn_index: int = 0):
        self.conflict = conflict
        self.txn_index = txn_index
        self.conflict_id: int | None = None
        super().__init__(
            f"{conflict.describe()}. Policy TaskFailed: the direction stopped before this transaction and "
            "applied none of it. Fix: answer the conflict (Airflow's Required actions of the direction's "
            "incremental task, or the CLI): take the source row, keep the destination row or skip the change; "
            "or make the destination row equal to the source row (or delete it), then restart "
            "the direction; or choose another conflict policy (Ignore, Overwrite, or UseMax / UseMin per table)"
        )


def decide(policy: str, conflict_type: str, comparison: str | None = None, *, forward: bool = True) -> str:
    """The decision for a conflict under ``policy`` (a ``ConflictPolicy`` value, ``UseMax`` or ``UseMin``).

    ``comparison`` (UseMax / UseMin only): how the policy column compares, source against destination
    (``CMP_*``). ``forward``: the direction is task one's (its source is server A, which wins ties).
    """
    if conflict_type == DELETE_MISSING:
        return DECISION_ALREADY_EQUAL
    if conflict_type == UPDATE_MISSING:
        return DECISION_CONVERTED
    if policy == ConflictPolicy.TASK_FAILED:
        return DECISION_FAILED
    if policy == ConflictPolicy.IGNORE:
        return DECISION_IGNORED
    if conflict_type == DELETE_CONFLICT and compares_column(policy):  # the only row with a value wins
        return DECISION_USE_MAX_DEST if policy == "UseMax" else DECISION_USE_MIN_DEST
    if policy == "UseMax":
        return _by_column(comparison, CMP_SOURCE_LARGER, forward, DECISION_USE_MAX_SOURCE, DECISION_USE_MAX_DEST)
    if policy == "UseMin":
        return _by_column(comparison, CMP_SOURCE_SMALLER, forward, DECISION_USE_MIN_SOURCE, DECISION_USE_MIN_DEST)
    return DECISION_OVERWRITTEN


def _by_column(comparison: str | None, source_wins: str, forward: bool, source: str, dest: str) -> str:
    if comparison is None:  # fallback: UseMax -> Overwrite, UseMin -> Ignore
        return DECISION_OVERWRITTEN if source == DECISION_USE_MAX_SOURCE else DECISION_IGNORED
    if comparison == CMP_EQUAL:
        return source if forward else dest
    return source if comparison == source_wins else dest


def compares_column(policy: str) -> bool:
    """Whether ``policy`` decides by a column's values (UseMax / UseMin)."""
    return policy in COLUMN_POLICIES


def comparison_of(dest_null: Any, source_null: bool, source_less: Any, source_greater: Any) -> str | None:
    """``CMP_*`` from the destination server's answers to ``col IS NULL``, ``lit < col``, ``lit > col``."""
    if source_null or dest_null is None or int(dest_null) or source_less is None or source_greater is None:
        return CMP_NONE
    if int(source_greater):
        return CMP_SOURCE_LARGER
    if int(source_less):
        return CMP_SOURCE_SMALLER
    return CMP_EQUAL


# --------------------------------------------------------------------------- answers


def parse_position(text: Any) -> tuple[str, int] | None:
    """``file:pos`` (``model.format_position``) -> (file, pos); None for anything else."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    if not isinstance(text, str) or ":" not in text:
        return None
    name, _, pos = text.rpartition(":")
    return (name, int(pos)) if name and pos.isdigit() else None


def key_value(key: Any) -> Any:
    """A conflict key as the log stores it, parsed back (keys compare this way: ``to_json`` then JSON, then
    ``same_key``)."""
    text = to_json(key)
    return None if text is None else json.loads(text)


def same_key(cur, table: tuple[str, str], a: Any, b: Any) -> bool:
    """Whether two keys (``key_value``) of ``table`` name the same row: equal as logged, or, when they differ
    only in text values, both matching one row of ``table`` on the server of ``cur`` (compared there with the
    key columns' collation: 'abc' and 'ABC' under a case-insensitive one). Keys of a row that server does not
    have compare as logged."""
    if a == b:
        return True
    if not isinstance(a, dict) or not isinstance(b, dict) or not a or set(a) != set(b):
        return False
    if any(a[k] != b[k] and not (isinstance(a[k], str) and isinstance(b[k], str)) for k in a):
        return False
    cols = list(a)
    where = " AND ".join(f"{quote_ident(c)} = %s" for c in cols)
    cur.execute(
        f"SELECT 1 FROM {qualified(*table)} WHERE {where} AND {where} LIMIT 1",
        [*(a[c] for c in cols), *(b[c] for c in cols)],
    )
    return bool(cur.fetchall())


@dataclass
class Answer:
    """A ``conflict_log`` row with an answer to apply (status answered), or an open one waiting for an answer.
    One with ``applies_through`` stays answered, usable for every change of its key in its range, until the
    checkpoint passes it (``Applier._settle_answers``)."""

    id: int
    status: str
    answer: str | None
    dest: tuple[str, str]
    key: Any  # key_json parsed
    position: tuple[str, int] | None  # source_position: the transaction the conflict stopped before
    through: tuple[str, int] | None  # applies_through (mirrored answers)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Answer:
        def text(v: Any) -> str:
            return bytes(v).decode() if isinstance(v, (bytes, bytearray)) else str(v)

        key = row.get("key_json")
        return cls(
            id=int(row["id"]),
            status=text(row["status"]),
            answer=text(row["answer"]) if row.get("answer") is not None else None,
            dest=(text(row["dest_db"]), text(row["dest_table"])),
            key=json.loads(text(key)) if key is not None else None,
            position=parse_position(row.get("source_position")),
            through=parse_position(row.get("applies_through")),
        )

    @property
    def decision(self) -> str | None:
        """The decision the answer makes, None when there is none to apply (open, or stop)."""
        if self.status not in (STATUS_ANSWERED, STATUS_RESOLVED) or self.answer is None:
            return None
        return ANSWER_DECISIONS.get(self.answer)

    @property
    def range_end(self) -> tuple[str, int] | None:
        """The last source position whose changes this answer covers."""
        return self.through or self.position

    def covers(
        self,
        dest: tuple[str, str],
        key: Any,
        end_position: tuple[str, int],
        same: Callable[[Any, Any], bool] | None = None,
    ) -> bool:
        """Whether this answer decides the conflict of a change of ``dest`` / ``key`` (``key_value``) in the
        transaction ending at ``end_position``. ``same(answer key, key)``: how keys that differ as logged are
        compared (``same_key`` on the destination server); without it they differ."""
        if self.decision is None or dest != self.dest:
            return False
        at = self.position is not None and tuple(self.position) == tuple(end_position)
        if not at and not (self.through is not None and position_le(end_position, self.through)):
            return False
        return key == self.key or (same is not None and same(self.key, key))

    def passed_by(self, checkpoint: tuple[str, int]) -> bool:
        """Whether the checkpoint is at or past the end of this answer's range."""
        end = self.range_end
        return end is not None and position_le(end, checkpoint)
