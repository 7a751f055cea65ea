"""DDL synchronization, one way (spec: "Limits on DDL synchronization direction").

One direction applies DDL: the DDL owner (``ddl_owner.applies_ddl``). That is the forward direction with
``exclude_ddl`` off, unless DTS's "switch direction" (``ddl_owner.switch_direction``) made the reverse direction
the owner from a binlog position on (the rule is in ``ddl_owner``'s docstring); the other direction skips. The
statements of the spec's list are applied when they touch selected objects: ALTER TABLE, ALTER VIEW,
CREATE FUNCTION / INDEX / PROCEDURE / TABLE / VIEW, DROP INDEX, DROP TABLE, RENAME TABLE, TRUNCATE TABLE.
Object name mapping is applied (every table reference of the statement is rewritten fully qualified, and
qualified references to a mapped database anywhere in the statement - view and routine bodies - too); the
statement runs with the mapped default database. Anything else (GRANT, CREATE USER, CREATE DATABASE, DDL on
unselected objects, temporary tables) is skipped and the position still advances.

DDL commits implicitly, so it cannot share a transaction with the checkpoint. Crash safety:
1. checkpoint.ddl_pending = {position after the DDL, statement} is committed (position unchanged);
2. the statement runs;
3. the checkpoint moves past the DDL, ddl_pending is cleared and ``ddl_log`` gets a row, in one transaction.
A crash between 1 and 3 replays the DDL on restart; the replay tolerates "already exists" / "doesn't exist" /
"duplicate column or key" errors, because the first run may have executed it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pymysql

from airflow_provider_dts.engine import ddl_owner
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import Checkpoint, Transaction, format_position
from airflow_provider_dts.engine.sqltext import Token, dotted_name, qualified, rewrite_names, tokenize

log = logging.getLogger(__name__)

# Errors a replayed DDL may hit because its first run already took effect.
REPLAY_TOLERATED = {
    1050,  # table already exists
    1051,  # unknown table
    1060,  # duplicate column name
    1061,  # duplicate key name
    1091,  # can't drop; check that it exists
    1146,  # table doesn't exist
    1304,  # routine already exists
    1305,  # routine does not exist
    1359,  # trigger already exists
    1022,  # duplicate key (constraint)
    1826,  # duplicate foreign key constraint name
    1054,  # unknown column (a replayed DROP/CHANGE COLUMN)
}


@dataclass
class NameRef:
    db: str | None
    name: str
    start: int  # character span in the statement
    end: int


def _name_at(toks: list[Token], i: int) -> tuple[NameRef | None, int]:
    parts, j = dotted_name(toks, i, max_parts=2)
    if not parts:
        return None, i
    names = [p.ident or "" for p in parts]
    db = names[0] if len(names) == 2 else None
    return NameRef(db, names[-1], parts[0].start, parts[-1].end), j


def _skip_clauses(toks: list[Token], i: int) -> int:
    """Skip OR REPLACE, ALGORITHM=x, DEFINER=x, SQL SECURITY x, TEMPORARY, ONLINE/OFFLINE, IGNORE, etc."""
    while i < len(toks):
        t = toks[i]
        if t.kw("OR") and i + 1 < len(toks) and toks[i + 1].kw("REPLACE"):
            i += 2
        elif t.kw("ALGORITHM", "DEFINER", "LOCK") and i + 1 < len(toks) and toks[i + 1].text == "=":
            i += 3
            # DEFINER=`u`@`h` / CURRENT_USER[()]
            while i < len(toks) and (toks[i].text == "@" or (i > 0 and toks[i - 1].text == "@")):
                i += 1
            if i + 1 < len(toks) and toks[i].text == "(" and toks[i + 1].text == ")":
                i += 2
        elif t.kw("SQL") and i + 2 < len(toks) and toks[i + 1].kw("SECURITY"):
            i += 3
        elif t.kw("TEMPORARY", "ONLINE", "OFFLINE", "IGNORE", "UNIQUE", "FULLTEXT", "SPATIAL", "AGGREGATE"):
            i += 1
        else:
            break
    return i


def _skip_if(toks: list[Token], i: int) -> int:
    if i + 1 < len(toks) and toks[i].kw("IF"):
        if toks[i + 1].kw("EXISTS"):
            return i + 2
        if i + 2 < len(toks) and toks[i + 1].kw("NOT") and toks[i + 2].kw("EXISTS"):
            return i + 3
    return i


@dataclass
class ParsedDdl:
    kind: str  # e.g. "ALTER TABLE"
    tables: list[NameRef]  # table/view references to map (selected-ness decided on these)
    routine: NameRef | None = None
    temporary: bool = False


def parse_ddl(sql: str) -> ParsedDdl | None:
    """Recognise the spec's DDL statements; None for anything else."""
    toks = tokenize(sql)
    if not toks:
        return None
    first = toks[0].text.upper()
    temporary = any(t.kw("TEMPORARY") for t in toks[:4])
    if first == "ALTER":
        i = _skip_clauses(toks, 1)
        if i < len(toks) and toks[i].kw("TABLE", "VIEW"):
            kind = "ALTER " + toks[i].text.upper()
            ref, _ = _name_at(toks, _skip_if(toks, i + 1))
            return ParsedDdl(kind, [ref] if ref else [])
        return None
    if first == "CREATE":
        i = _skip_clauses(toks, 1)
        if i >= len(toks):
            return None
        word = toks[i].text.upper()
        if word in ("TABLE", "VIEW"):
            ref, j = _name_at(toks, _skip_if(toks, i + 1))
            refs = [ref] if ref else []
            if word == "TABLE":  # CREATE TABLE a LIKE b / (LIKE b)
                k = j
                while k < len(toks) and toks[k].text == "(":
                    k += 1
                if k < len(toks) and toks[k].kw("LIKE"):
                    other, _ = _name_at(toks, k + 1)
                    if other:
                        refs.append(other)
            return ParsedDdl("CREATE " + word, refs, temporary=temporary)
        if word == "INDEX":
            j = i + 1
            j = _skip_if(toks, j)
            j += 1  # index name
            while j < len(toks) and not toks[j].kw("ON"):
                j += 1
            ref, _ = _name_at(toks, j + 1)
            return ParsedDdl("CREATE INDEX", [ref] if ref else [])
        if word in ("FUNCTION", "PROCEDURE"):
            ref, _ = _name_at(toks, _skip_if(toks, i + 1))
            return ParsedDdl("CREATE " + word, [], routine=ref)
        return None
    if first == "DROP":
        i = _skip_clauses(toks, 1)
        if i < len(toks) and toks[i].kw("TABLE", "TABLES"):
            j = _skip_if(toks, i + 1)
            refs = []
            while True:
                ref, j = _name_at(toks, j)
                if ref is None:
                    break
                refs.append(ref)
                if j < len(toks) and toks[j].text == ",":
                    j += 1
                    continue
                break
            return ParsedDdl("DROP TABLE", refs, temporary=temporary)
        if i < len(toks) and toks[i].kw("INDEX"):
            j = _skip_if(toks, i + 1) + 1
            while j < len(toks) and not toks[j].kw("ON"):
                j += 1
            ref, _ = _name_at(toks, j + 1)
            return ParsedDdl("DROP INDEX", [ref] if ref else [])
        return None
    if first == "RENAME":
        if len(toks) < 2 or not toks[1].kw("TABLE", "TABLES"):
            return None
        j, refs = 2, []
        while True:
            ref, j = _name_at(toks, j)
            if ref is None:
                break
            refs.append(ref)
            if j < len(toks) and toks[j].kw("TO", "WAIT", "NOWAIT"):
                j += 1
                continue
            if j < len(toks) and toks[j].text == ",":
                j += 1
                continue
            break
        return ParsedDdl("RENAME TABLE", refs)
    if first == "TRUNCATE":
        j = 2 if len(toks) > 1 and toks[1].kw("TABLE") else 1
        ref, _ = _name_at(toks, j)
        return ParsedDdl("TRUNCATE TABLE", [ref] if ref else [])
    return None


def rewrite_ddl(direction, sql: str, default_db: str) -> tuple[ParsedDdl | None, str | None, str]:
    """(parsed, rewritten statement or None when it must be skipped, reason)."""
    parsed = parse_ddl(sql)
    if parsed is None:
        return None, None, "not a DDL statement that DTS synchronizes"
    if parsed.temporary:
        return parsed, None, "temporary table"
    edits: list[tuple[int, int, str]] = []
    for ref in parsed.tables:
        db = ref.db or default_db
        if not db or not direction.selects_table(db, ref.name):
            return parsed, None, f"{db}.{ref.name} is not a selected object"
        mdb, mt = direction.map_table(db, ref.name)
        edits.append((ref.start, ref.end, qualified(mdb, mt)))
    if parsed.routine is not None:
        db = parsed.routine.db or default_db
        if not db or not direction.whole_database(db):
            return parsed, None, f"routine in {db} which is not a selected database"
        routine = qualified(direction.map_database(db), parsed.routine.name)
        edits.append((parsed.routine.start, parsed.routine.end, routine))
    if not parsed.tables and parsed.routine is None:
        return parsed, None, "no object name found"

    def body_name(db: str, name: str) -> tuple[str, str] | None:
        # qualified references to selected objects elsewhere (view and routine bodies)
        if direction.selects_table(db, name) or direction.selects_database(db):
            return direction.map_table(db, name)
        return None

    return parsed, rewrite_names(sql, body_name, edits=edits), ""


def apply_ddl(applier, txn: Transaction, cp: Checkpoint, *, logger: logging.Logger | None = None) -> str:
    """Apply (or skip) one standalone statement; always advances ``cp`` past it. Returns the outcome.

    ``applier`` is the direction's ``apply.Applier``: its destination session runs the statement
    (``run_statement``), records the intent (``write_checkpoint``) and advances past it with the ``ddl_log``
    row (``advance_past``).
    """
    from airflow_provider_dts.engine.apply import DdlLogEntry

    lg = logger or log
    d = applier.direction
    if txn.ddl is None:
        raise ValueError("apply_ddl needs a transaction with a standalone statement (Transaction.ddl)")
    schema, statement = txn.ddl
    _parsed, rewritten, _reason = rewrite_ddl(d, statement, schema)
    # which direction applies DDL ending at this position: ddl_owner (task one unless the owner was switched)
    owner = None if rewritten is None else ddl_owner.applies_ddl(applier.conn, d, txn.end_position)
    if rewritten is None or owner is None or not owner.applies:
        # not applied here, but the destination may have changed too (the other direction applied this DDL there,
        # or a user did): table definitions, foreign keys included, are read again
        applier.forget_tables()
        if owner is None:  # not interesting enough for the DDL log
            applier.advance_past(txn, cp)
            return "ignored"
        applier.advance_past(txn, cp, DdlLogEntry(statement, None, "skipped"))
        lg.log(
            logging.WARNING if owner.warn else logging.INFO,
            "DDL at %s skipped (%s): %s",
            format_position(txn.end_position),
            owner.reason,
            statement[:200],
        )
        return "skipped"
    end = list(txn.end_position)
    pending = json.loads(cp.ddl_pending) if cp.ddl_pending else None
    replay = bool(pending and pending.get("position") == end)
    # within the catch-up window of a table added to the sync, the DDL may already be in its copied schema
    replay = replay or applier.in_added_catchup(txn.end_position)
    # 1. record the intent
    marker = Checkpoint(**cp.__dict__)
    marker.ddl_pending = json.dumps({"position": end, "statement": rewritten})
    applier.write_checkpoint(marker)
    cp.ddl_pending = marker.ddl_pending
    # 2. run it (without foreign key checks, in the mapped default database: Applier.run_statement)
    outcome = "applied"
    mapped_db = d.map_database(schema) if schema and d.selects_database(schema) else None
    try:
        applier.run_statement(rewritten, mapped_db)
    except pymysql.err.MySQLError as e:
        code = e.args[0] if e.args else None
        if replay and code in REPLAY_TOLERATED:
            outcome = "replayed"
            lg.info("replayed DDL already in effect (%s): %s", e, rewritten[:200])
        else:
            from airflow_provider_dts.engine.servers import is_connection_error

            if is_connection_error(e):
                raise
            raise SyncFailed(
                f"DDL from the source failed at the destination at {format_position(txn.end_position)}: "
                f"{rewritten[:500]} -> [{code}] {e.args[1] if len(e.args) > 1 else e}. Fix: make the destination "
                "schema match the source (or apply the statement by hand), then restart the direction"
            ) from None
    applier.forget_tables()
    # 3. advance past it
    cp.ddl_pending = None
    try:
        applier.advance_past(txn, cp, DdlLogEntry(statement, rewritten, outcome))
    except BaseException:
        cp.ddl_pending = marker.ddl_pending
        raise
    lg.info("DDL %s: %s", outcome, rewritten[:200])
    return outcome
