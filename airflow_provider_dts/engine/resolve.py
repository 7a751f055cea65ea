"""Answers to open conflicts (issue 12): reading the conflict log and recording a person's answer.

Under the TaskFailed policy the applier logs a conflict with ``status='open'`` on the direction's home (its
destination) and the direction stops before the transaction. Someone answers it (Airflow's human-in-the-loop
request of the direction's incremental task, ``cli.py answer``, or DTS itself when the conflict no longer
holds); ``record_answer`` writes the answer there, and the applier (``engine/apply.py``) applies it exactly
once when the direction runs again, setting ``resolved`` or ``superseded``.

The same key written on both servers at once makes BOTH directions stop on it. One answer settles both: the
other direction (same ``task_name``, other role; its home is this direction's source) gets the mirrored answer
(``conflicts.MIRRORED_ANSWER``: take the source row here = keep the destination row there; keep the destination
row or skip the change here = take the source row there) on its own open
conflict of that key, or, when it has not met that change yet, a new ``answered`` row whose ``applies_through``
(the other direction's source position now, i.e. this direction's destination binlog position) covers its
stale change of that key. Both rows point at each other (``linked_id``). The first answer wins on both sides:
``record_answer`` holds one named lock on both servers (A, then B) while it reads the other side and writes both
answers; a conflict whose key the other direction was answered for first takes the mirror of that answer.

"stop" keeps the conflict ``open`` with the answer recorded, so the direction stays stopped (its task fails)
and a later restart asks again (``reopen`` clears a recorded stop before asking).

Plain Python (PyMySQL); nothing here imports Airflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pymysql

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine.catalog import read_table
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ConfigError, DtsError
from airflow_provider_dts.engine.model import format_position, position_le
from airflow_provider_dts.engine.servers import ConnectionSettings, NamedLock, binlog_position, server_info
from airflow_provider_dts.engine.sqltext import quote_ident

OTHER_ROLE = {"forward": "reverse", "reverse": "forward"}
ROLE_LABEL = {"forward": "task one", "reverse": "task two"}
# the decision column of a row written for the other direction (the applier sets the real one when it applies)
DECISION_MIRRORED = "Mirrored"
RECENT_LIMIT = 50
LOCK_WAIT_SECONDS = 30  # record_answer's lock on both servers (held for a few statements)

_COLUMNS = (
    "id, task_name, direction, detected_at, conflict_type, policy, decision, source_db, source_table, dest_db, "
    "dest_table, key_json, source_image, dest_image, source_position, status, answer, answered_by, answered_at, "
    "applied_at, applies_through, linked_id, note"
)


class ConflictNotFound(DtsError):
    """No such conflict in this direction's conflict log."""


@dataclass(frozen=True)
class Recorded:
    """What ``record_answer`` did. ``recorded`` is False when the conflict already had an answer, or when the
    other direction's conflict of that key was answered first (``superseded_by``: its id; this conflict then took
    the mirror of that answer). The first answer wins; ``conflict`` shows the answer that stands."""

    recorded: bool
    conflict: dict[str, Any]
    mirrored_id: int | None = None
    mirror: str | None = None  # "answered" (the other direction's open conflict) | "inserted" | None
    superseded_by: int | None = None

    def describe(self) -> str:
        c = self.conflict
        who = c.get("answered_by") or "?"
        text = f"conflict {c['id']} of {c['task_name']}/{c['direction']}: answer {c.get('answer')!r} by {who}"
        other = OTHER_ROLE.get(str(c["direction"]), "?")
        if self.superseded_by is not None:
            return text + (
                f" (the mirror of the answer given first to {c['task_name']}/{other}'s conflict "
                f"{self.superseded_by}; this answer was not applied)"
            )
        if not self.recorded:
            return text + " (answered before; this answer was not recorded)"
        if self.mirror == "answered":
            text += f"; mirrored to {c['task_name']}/{other}'s open conflict {self.mirrored_id} on the same key"
        elif self.mirror == "inserted":
            text += f"; recorded for {c['task_name']}/{other} as conflict {self.mirrored_id} (same key, not met yet)"
        return text


# --------------------------------------------------------------------------- readers


def conflict(conn, control: ControlSchema, conflict_id: int) -> dict[str, Any] | None:
    """One conflict_log row (a dict), or None."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM {control.table('conflict_log')} WHERE id=%s", (int(conflict_id),))
        row = cur.fetchone()
    return dict(row) if row else None


def open_conflicts(
    conn, control: ControlSchema, task_name: str | None = None, direction: str | None = None
) -> list[dict[str, Any]]:
    """The conflicts waiting for an answer (``status='open'``), oldest first."""
    where, args = ["status=%s"], [C.STATUS_OPEN]
    if task_name is not None:
        where.append("task_name=%s")
        args.append(task_name)
    if direction is not None:
        where.append("direction=%s")
        args.append(direction)
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {control.table('conflict_log')} WHERE {' AND '.join(where)} ORDER BY id", args
        )
        return [dict(r) for r in cur.fetchall()]


def recent_conflicts(
    conn, control: ControlSchema, task_name: str | None = None, limit: int = RECENT_LIMIT
) -> list[dict[str, Any]]:
    """Open conflicts first (oldest first), then the latest others; at most ``limit`` rows."""
    where, args = "", []
    if task_name is not None:
        where, args = "WHERE task_name=%s", [task_name]
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {control.table('conflict_log')} {where} "
            f"ORDER BY status='open' DESC, CASE WHEN status='open' THEN id END, id DESC LIMIT %s",
            [*args, int(limit)],
        )
        return [dict(r) for r in cur.fetchall()]


def is_answered(row: dict[str, Any]) -> bool:
    """True once someone answered (status answered/resolved/superseded, or a recorded stop)."""
    return row.get("status") not in (C.STATUS_OPEN, C.STATUS_LOGGED) or row.get("answer") is not None


def _loads(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def source_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """The source row image a conflict would write (the after-image), as logged."""
    image = _loads(row.get("source_image"))
    if isinstance(image, dict) and set(image) == {"before", "after"}:
        image = image["after"]
    return image if isinstance(image, dict) else None


def conflict_holds(dest_conn, row: dict[str, Any]) -> bool:
    """False when the destination row of the conflict's key now equals the source row image (compared by the
    server, ``col <=> value``, on the columns both have, generated ones left out), or, for a ``delete_conflict``
    (source image: the DELETE's before-image), when the row is gone: then applying the change again is not a
    conflict and nobody needs to answer. True otherwise, and whenever that cannot be told."""
    image, key = source_row(row), _loads(row.get("key_json"))
    if not image or not isinstance(key, dict) or not key:
        return True
    info = read_table(dest_conn, row["dest_db"], row["dest_table"])
    if info is None:
        return True
    cols = [c.name for c in info.column_info if not c.generated and c.name in image]
    if not cols or any(k not in cols for k in key):
        return True
    for v in image.values():
        if isinstance(v, (dict, list)) or (isinstance(v, str) and v.startswith("0x")):
            return True  # JSON documents, binary shown as hex: not comparable as logged
    table = f"{quote_ident(row['dest_db'])}.{quote_ident(row['dest_table'])}"
    keys = " AND ".join(f"{quote_ident(k)} <=> %s" for k in key)
    same = " AND ".join(f"{quote_ident(c)} <=> %s" for c in cols)
    with dest_conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {keys} AND {same}", [*key.values(), *(image[c] for c in cols)])
        (n,) = cur.fetchone()
        if int(n) == 0 and row.get("conflict_type") == C.DELETE_CONFLICT:  # a delete whose row is gone: done
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {keys}", list(key.values()))
            (n,) = cur.fetchone()
            return int(n) != 0
    return int(n) == 0


# --------------------------------------------------------------------------- writers


def reopen(conn, control: ControlSchema, conflict_id: int) -> bool:
    """Clear a recorded "stop" of an open conflict before asking again (it stays in ``note``)."""
    with conn.cursor() as cur:
        n = cur.execute(
            f"UPDATE {control.table('conflict_log')} SET answer=NULL, answered_by=NULL, answered_at=NULL "
            "WHERE id=%s AND status=%s AND answer=%s",
            (int(conflict_id), C.STATUS_OPEN, C.ANSWER_STOP),
        )
        cur.execute("COMMIT")
    return bool(n)


def _note(answer: str, answered_by: str, note: str | None) -> str:
    text = f"{answer} by {answered_by}"
    return f"{text}: {note}" if note else text


def _answer_row(cur, control: ControlSchema, conflict_id: int, answer: str, answered_by: str, note: str | None) -> int:
    status = C.STATUS_OPEN if answer == C.ANSWER_STOP else C.STATUS_ANSWERED
    return int(
        cur.execute(
            f"UPDATE {control.table('conflict_log')} SET status=%s, answer=%s, answered_by=%s, "
            "answered_at=UTC_TIMESTAMP(6), note=CONCAT_WS(CHAR(10 USING utf8mb4), note, %s) "
            "WHERE id=%s AND status=%s AND answer IS NULL",
            (status, answer, answered_by[:255], _note(answer, answered_by, note), int(conflict_id), C.STATUS_OPEN),
        )
    )


def _same_key(conn, table: tuple[Any, Any], a: Any, b: Any) -> bool:
    """Whether two logged keys (``key_json``) of ``table`` name the same row as the server of ``conn`` compares
    them (``conflicts.same_key``: collation)."""
    if a == b:
        return True
    with conn.cursor() as cur:
        return C.same_key(cur, (str(table[0]), str(table[1])), _loads(a), _loads(b))


ANSWER_LOCK = NamedLock(
    "dts_answer",
    "answer lock",
    "another answer to a conflict of this sync holds it for a moment only",
    "answer again",
    LOCK_WAIT_SECONDS,
)


def answer_lock_name(control_schema: str, task_name: str) -> str:
    """The named lock ``record_answer`` holds on both servers of a sync (``GET_LOCK``, at most 64 characters)."""
    return ANSWER_LOCK.name(control_schema, task_name)


@dataclass(frozen=True)
class _First:
    """An answer given first on the other direction for a key: ``conflict_id`` (the other direction's conflict),
    ``what`` (that answer, as text for the note), ``mirrored`` (the answer this direction takes from it), ``by``."""

    conflict_id: int
    what: str
    mirrored: str
    by: str


def _first_answer(row: dict[str, Any], control: ControlSchema, conn, src_conn) -> _First | None:
    """An answer given first, on the other direction, for the key of the open conflict ``row`` and not applied
    yet. Looked for on the other direction's home (``src_conn``: its answered conflict of that key), then here
    (its mirrored answer recorded in advance for this direction, ``applies_through`` at or past this conflict's
    position)."""
    other = OTHER_ROLE[str(row["direction"])]
    table = control.table("conflict_log")
    if control.exists(src_conn):
        with src_conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM {table} WHERE task_name=%s AND direction=%s AND status=%s "
                "AND dest_db=%s AND dest_table=%s AND answer IN (%s, %s, %s) ORDER BY answered_at, id",
                (
                    row["task_name"],
                    other,
                    C.STATUS_ANSWERED,
                    row["source_db"],
                    row["source_table"],
                    *C.ANSWER_DECISIONS,
                ),
            )
            for c in cur.fetchall():
                if _same_key(src_conn, (c["dest_db"], c["dest_table"]), c["key_json"], row["key_json"]):
                    by = str(c["answered_by"])
                    return _First(int(c["id"]), f"{c['answer']} by {by}", C.MIRRORED_ANSWER[str(c["answer"])], by)
    position = C.parse_position(row.get("source_position"))
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {table} WHERE task_name=%s AND direction=%s AND status=%s AND id<>%s "
            "AND dest_db=%s AND dest_table=%s AND applies_through IS NOT NULL AND linked_id IS NOT NULL "
            "ORDER BY id",
            (row["task_name"], row["direction"], C.STATUS_ANSWERED, row["id"], row["dest_db"], row["dest_table"]),
        )
        for c in cur.fetchall():
            through = C.parse_position(c["applies_through"])
            covers = position is None or (through is not None and position_le(position, through))
            if (
                covers
                and c["answer"] in C.ANSWER_DECISIONS
                and _same_key(conn, (c["dest_db"], c["dest_table"]), c["key_json"], row["key_json"])
            ):
                what = f"mirrored here as conflict {c['id']}: {c['answer']}"  # the answer it mirrors
                return _First(int(c["linked_id"]), what, str(c["answer"]), str(c["answered_by"]))
    return None


def _take_first(cur, control: ControlSchema, row: dict[str, Any], first: _First, answer: str, by: str) -> None:
    """The other direction was answered first: this conflict takes the mirror of that answer; this one is kept in
    the note as superseded by it."""
    note = (
        f"{answer} by {by}: superseded by the answer given first to {row['task_name']}/"
        f"{OTHER_ROLE[str(row['direction'])]}'s conflict {first.conflict_id} ({first.what}); "
        f"applied here: {first.mirrored}"
    )
    cur.execute(
        f"UPDATE {control.table('conflict_log')} SET status=%s, answer=%s, answered_by=%s, "
        "answered_at=UTC_TIMESTAMP(6), linked_id=%s, note=CONCAT_WS(CHAR(10 USING utf8mb4), note, %s) "
        "WHERE id=%s AND status=%s AND answer IS NULL",
        (C.STATUS_ANSWERED, first.mirrored, first.by[:255], first.conflict_id, note, int(row["id"]), C.STATUS_OPEN),
    )


def _mirror(
    row: dict[str, Any], control: ControlSchema, conn, dest_conn, answer: str, answered_by: str, note: str | None
) -> tuple[int | None, str | None]:
    """Write the mirrored answer for the other direction on its home (``conn``: this direction's source);
    ``dest_conn``: this direction's destination (its binlog position bounds an answer recorded in advance)."""
    other = OTHER_ROLE[str(row["direction"])]
    mirrored = C.MIRRORED_ANSWER[answer]
    by = f"{answered_by} (via {ROLE_LABEL.get(str(row['direction']), row['direction'])}, conflict {row['id']})"
    if not control.exists(conn):
        return None, None  # the other direction was never set up on that server
    candidates = [
        c
        for c in open_conflicts(conn, control, row["task_name"], other)
        if c["dest_db"] == row["source_db"]
        and c["dest_table"] == row["source_table"]
        and c.get("answer") is None
        and _same_key(conn, (c["dest_db"], c["dest_table"]), c["key_json"], row["key_json"])
    ]
    with conn.cursor() as cur:
        for c in candidates:
            if _answer_row(cur, control, c["id"], mirrored, by, note):
                cur.execute(
                    f"UPDATE {control.table('conflict_log')} SET linked_id=%s WHERE id=%s", (row["id"], c["id"])
                )
                cur.execute("COMMIT")
                return int(c["id"]), "answered"
            cur.execute("ROLLBACK")
    if answer == C.ANSWER_STOP:
        return None, None  # nothing to stop on the other side
    # the other direction has not met its change of this key yet: its answer is recorded in advance, for its
    # changes of that key up to its source's (this direction's destination's) current position
    through = format_position(binlog_position(dest_conn, server_info(dest_conn)))
    with conn.cursor() as cur:
        new_id = control.log_conflict(
            cur,
            row["task_name"],
            other,
            conflict_type=row["conflict_type"],
            policy=row["policy"],
            decision=DECISION_MIRRORED,
            source=(row["dest_db"], row["dest_table"]),
            dest=(row["source_db"], row["source_table"]),
            key=_loads(row["key_json"]),
            source_image=_loads(row["dest_image"]),
            dest_image=_loads(row["source_image"]),
            position="",
            status=C.STATUS_ANSWERED,
        )
        cur.execute(
            f"UPDATE {control.table('conflict_log')} SET answer=%s, answered_by=%s, answered_at=UTC_TIMESTAMP(6), "
            "source_position=NULL, applies_through=%s, linked_id=%s, note=%s WHERE id=%s",
            (mirrored, by[:255], through, row["id"], _note(mirrored, by, note), new_id),
        )
        cur.execute("COMMIT")
    return new_id, "inserted"


def record_answer(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    conflict_id: int,
    answer: str,
    answered_by: str,
    note: str | None = None,
) -> Recorded:
    """Record ``answer`` (one of ``conflicts.ANSWERS``) to the open conflict ``conflict_id`` of ``direction``
    on its home, and the mirrored answer for the other direction on the same key. Idempotent: a conflict
    that already has an answer keeps it (``Recorded.recorded`` False).

    The first answer wins, also across the two directions: the answer lock (``answer_lock_name``) is held on both
    servers, A then B, while the other side is read and both answers are written. When the other direction was
    answered first for that key (``_first_answer``), this conflict takes the mirror of that answer, this one is
    kept in its note, and nothing is written on the other side (``Recorded.superseded_by``)."""
    if answer not in C.ANSWERS:
        raise ConfigError([f"answer: {answer!r} is not one of {', '.join(C.ANSWERS)}"])
    control = ControlSchema(direction.control_schema)
    with destination.connect() as conn, source.connect() as src_conn:
        src, dst = (src_conn, source.describe()), (conn, destination.describe())
        a, b = (src, dst) if direction.role == "forward" else (dst, src)  # task one reads A, task two reads B
        with ANSWER_LOCK.held(answer_lock_name(direction.control_schema, direction.task_name), a=a, b=b):
            row = conflict(conn, control, conflict_id)
            if row is None or row["task_name"] != direction.task_name or row["direction"] != direction.role:
                raise ConflictNotFound(
                    f"no conflict {conflict_id} of {direction.key} in {direction.control_schema}.conflict_log on "
                    f"{destination.describe()}. Fix: list them with `python -m airflow_provider_dts.cli conflicts "
                    f"--task-name {direction.task_name}`"
                )
            first = None
            if row["status"] == C.STATUS_OPEN and row.get("answer") is None and answer != C.ANSWER_STOP:
                first = _first_answer(row, control, conn, src_conn)
            with conn.cursor() as cur:
                if first is not None:
                    _take_first(cur, control, row, first, answer, answered_by)
                    cur.execute("COMMIT")
                    row = conflict(conn, control, conflict_id) or row
                    return Recorded(False, row, superseded_by=first.conflict_id)
                done = _answer_row(cur, control, conflict_id, answer, answered_by, note)
                cur.execute("COMMIT")
            if not done:
                return Recorded(False, conflict(conn, control, conflict_id) or row)
            row = conflict(conn, control, conflict_id) or row
            mirrored_id, mirror = _mirror(row, control, src_conn, conn, answer, answered_by, note)
            if mirrored_id is not None:
                with conn.cursor() as cur:
                    cur.execute(
                        f"UPDATE {control.table('conflict_log')} SET linked_id=%s WHERE id=%s",
                        (mirrored_id, conflict_id),
                    )
                    cur.execute("COMMIT")
                row["linked_id"] = mirrored_id
    return Recorded(True, row, mirrored_id, mirror)


# --------------------------------------------------------------------------- text


def describe(row: dict[str, Any]) -> str:
    """A conflict in a few readable lines: table, key, both images, status and answer."""
    lines = [
        f"conflict {row['id']} of {row['task_name']}/{row['direction']} "
        f"({ROLE_LABEL.get(str(row['direction']), row['direction'])}): {str(row['conflict_type']).replace('_', ' ')} "
        f"on {row['dest_db']}.{row['dest_table']} (source table {row['source_db']}.{row['source_table']})",
        f"  key:              {row['key_json']}",
        f"  source row:       {row['source_image']}",
        f"  destination row:  {row['dest_image']}",
        f"  policy {row['policy']}, decision {row['decision']}, status {row['status']}, detected {row['detected_at']}"
        + (f", source transaction ending at {row['source_position']}" if row.get("source_position") else ""),
    ]
    if row.get("answer"):
        lines.append(
            f"  answer: {C.ANSWER_LABELS.get(str(row['answer']), row['answer'])} by {row.get('answered_by')} "
            f"at {row.get('answered_at')}" + (f", applied at {row['applied_at']}" if row.get("applied_at") else "")
        )
    if row.get("applies_through"):
        lines.append(f"  covers this direction's changes of that key up to {row['applies_through']}")
    if row.get("linked_id"):
        lines.append(f"  linked to the other direction's conflict {row['linked_id']}")
    return "\n".join(lines)
