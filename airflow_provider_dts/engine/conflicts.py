"""Conflict detection and resolution, exactly as the DTS spec describes.

Cases (``conflict_type`` in the conflict log):

- ``insert_duplicate``: an INSERT whose primary or unique key already exists at the destination;
- ``update_missing``: an UPDATE whose row does not exist at the destination. DTS converts it into an INSERT
  (decision ``UpdateToInsert``), which may itself hit a uniqueness conflict (``update_insert_duplicate``);
- ``update_duplicate``: an UPDATE whose new key values collide with another destination row;
- ``delete_missing``: a DELETE whose row does not exist: ignored whatever the policy (decision ``Ignored``).

Policies (``ConflictPolicy``): TaskFailed - the direction fails, nothing of the source transaction is applied
and the checkpoint stays before it; Ignore - the destination row stays; Overwrite - the destination row is
replaced by the source row. Every conflict is written to ``conflict_log``: for Ignore/Overwrite in the same
transaction as the data, for TaskFailed in its own transaction after the rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_dts.engine.config import ConflictPolicy
from airflow_provider_dts.engine.control import to_json
from airflow_provider_dts.engine.errors import ConflictError

INSERT_DUPLICATE = "insert_duplicate"
UPDATE_MISSING = "update_missing"
UPDATE_INSERT_DUPLICATE = "update_insert_duplicate"
UPDATE_DUPLICATE = "update_duplicate"
DELETE_MISSING = "delete_missing"

DECISION_FAILED = "TaskFailed"
DECISION_IGNORED = "Ignored"
DECISION_OVERWRITTEN = "Overwritten"
DECISION_CONVERTED = "UpdateToInsert"

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
# The same key conflicting on both sides: an answer for one direction is the mirrored answer for the other.
MIRRORED_ANSWER = {
    ANSWER_TAKE_SOURCE: ANSWER_KEEP_DESTINATION,
    ANSWER_KEEP_DESTINATION: ANSWER_TAKE_SOURCE,
    ANSWER_SKIP: ANSWER_SKIP,
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
    """A conflict under the TaskFailed policy. ``txn_index`` is the failing transaction in its group."""

    def __init__(self, conflict: Conflict, txn_index: int = 0):
        self.conflict = conflict
        self.txn_index = txn_index
        super().__init__(
            f"{conflict.describe()}. Policy TaskFailed: the direction stopped before this transaction and "
            "applied none of it. Fix: make the destination row consistent (or delete it), then restart "
            "the direction; or choose the Ignore / Overwrite conflict policy"
        )


def decide(policy: ConflictPolicy, conflict_type: str) -> str:
    """The decision for a uniqueness conflict (insert/update duplicates) under ``policy``."""
    if conflict_type == DELETE_MISSING:
        return DECISION_IGNORED
    if conflict_type == UPDATE_MISSING:
        return DECISION_CONVERTED
    if policy == ConflictPolicy.TASK_FAILED:
        return DECISION_FAILED
    if policy == ConflictPolicy.IGNORE:
        return DECISION_IGNORED
    return DECISION_OVERWRITTEN
