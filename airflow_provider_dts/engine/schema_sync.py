"""Initial schema synchronization: the selected objects' definitions, created at the destination.

For each selected object, with object name mapping applied:

* databases with their default character set and collation;
* tables from ``SHOW CREATE TABLE`` (every column, key, index, AUTO_INCREMENT, table options, partitions),
  the table name and ``REFERENCES`` targets rewritten to the mapped names; created with
  ``FOREIGN_KEY_CHECKS=0`` so the order of tables never matters;
* views in dependency order (a view whose base view is not there yet is retried after the others), with
  the DEFINER clause dropped (the view is defined by the sync account, i.e. ``CURRENT_USER``; the
  ``SQL SECURITY`` characteristic is kept) and qualified names in the body mapped;
* functions and procedures, DEFINER dropped, created with their own ``sql_mode`` and character set;
* triggers only when ``direction.sync_triggers`` is set (the spec's trigger limit), and then only after the
  full data copy (``create_triggers``), so that copied rows do not fire them.
* with ``direction.guard_triggers`` on, every trigger of the selected tables on both servers is guarded so
  that it does nothing in the sync's sessions (``engine/triggers.py``), and triggers created here are
  created guarded.

Existing destination tables: ``PrecheckAndIntercept`` never touches one and refuses to start when one
exists that this sync did not create (nothing is created then); ``Ignore`` keeps them and creates the rest.
Existing views, functions, procedures and triggers are kept as they are in both modes.

Re-running after a partial failure ends in the same state: before each CREATE TABLE the table's
``table_progress`` row is written with status ``creating`` (``created`` after it), so a table this sync
created in an earlier, interrupted run is recognised as its own.

Tables listed in ``direction.skip_initial_tables`` (the opposite direction fills them) are skipped.

An initialized direction run again (same task, other settings: ``engine.modify``) creates only the objects
added since it was initialized or last modified; a change that cannot be applied in place raises
``ModifyRefused`` before anything is written.

Name mapping inside view bodies covers every qualified name (the server writes view bodies fully
qualified). Inside function, procedure and trigger bodies, qualified names ``db.table`` are mapped; an
unqualified reference to a *renamed table* inside such a body is not rewritten.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.config import (
    ExistingTableMode,
    SyncDirection,
    format_object_name,
    skips_initial,
)
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.modify import begin as begin_modification
from airflow_provider_dts.engine.modify import plan_modification
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import (
    SPACE,
    NameMapper,
    Token,
    as_text,
    backslash_escapes,
    dotted_name,
    qualified,
    quote_ident,
    rewrite_names,
    tokenize,
)
from airflow_provider_dts.engine.startfloor import record_reverse_floor_on
from airflow_provider_dts.engine.triggers import guard_create_sql, guard_triggers
from airflow_provider_dts.engine.values import READER_SQL_MODE

DDL_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

log = logging.getLogger(__name__)


class SchemaSyncError(DtsError):
    """The schema cannot be created at the destination (message says what and how to fix it)."""


# ----------------------------------------------------------------------------------------- what to copy


@dataclass(frozen=True)
class TableRef:
    src_db: str
    src_table: str
    dst_db: str
    dst_table: str

    @property
    def label(self) -> str:
        src = format_object_name(self.src_db, self.src_table)
        dst = format_object_name(self.dst_db, self.dst_table)
        return src if src == dst else f"{src} -> {dst}"


@dataclass
class SourceObjects:
    databases: list[tuple[str, str]] = field(default_factory=list)  # (src_db, dst_db)
    tables: list[TableRef] = field(default_factory=list)
    views: list[TableRef] = field(default_factory=list)
    routines: list[tuple[str, str, str, str]] = field(default_factory=list)  # (type, src_db, name, dst_db)
    triggers: list[tuple[str, str, str]] = field(default_factory=list)  # (src_db, trigger, table)
    skipped: list[str] = field(default_factory=list)


def _fetch(conn, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, tuple(args))
        return [tuple(as_text(v) for v in r) for r in cur.fetchall()]


def list_source_objects(conn, direction: SyncDirection) -> SourceObjects:
    """Resolve the direction's selection on the source into concrete objects (mapped names attached).

    Raises SchemaSyncError naming every selected object that does not exist.
    """
    out = SourceObjects()
    missing: list[str] = []
    versioned: list[str] = []  # MariaDB WITH SYSTEM VERSIONING: refused (SYSTEM_VERSIONED_REFUSAL)
    for db in direction.selected_databases:
        rows = _fetch(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
        if not rows:
            missing.append(format_object_name(db))
            continue
        out.databases.append((db, direction.map_database(db)))
    for db, table in direction.selected:
        if any(m == format_object_name(db) for m in missing):
            continue
        if table is None:
            kinds = _fetch(
                conn,
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                "ORDER BY TABLE_NAME",
                (db,),
            )
        else:
            kinds = _fetch(
                conn,
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                (db, table),
            )
            if not kinds:
                missing.append(format_object_name(db, table))
                continue
        for name, ttype in kinds:
            ref = TableRef(db, name, *direction.map_table(db, name))
            if ttype == "VIEW":
                out.views.append(ref)
            elif ttype == "SYSTEM VERSIONED":
                versioned.append(format_object_name(db, name))
            elif ttype == "BASE TABLE":
                if skips_initial(direction, db, name):
                    out.skipped.append(format_object_name(db, name))
                    continue
                out.tables.append(ref)
        if table is None:
            for rtype, name in _fetch(
                conn,
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA=%s "
                "AND ROUTINE_TYPE IN ('FUNCTION','PROCEDURE') ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
                (db,),
            ):
                out.routines.append((rtype, db, name, direction.map_database(db)))
            trig_rows = _fetch(
                conn,
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA=%s ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
                (db,),
            )
        else:
            trig_rows = _fetch(
                conn,
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA=%s AND EVENT_OBJECT_TABLE=%s ORDER BY ACTION_ORDER",
                (db, table),
            )
        for trig, ttable in trig_rows:
            if not skips_initial(direction, db, ttable):
                out.triggers.append((db, trig, ttable))
    if missing:
        raise SchemaSyncError(
            f"selected objects do not exist on the source: {', '.join(missing)}. "
            "Fix: create them on the source or remove them from the task's objects"
        )
    if versioned:
        problem, fix = system_versioned_refusal(versioned)
        raise SchemaSyncError(f"{problem}. Fix: {fix}")
    return out


def system_versioned_refusal(tables: list[str]) -> tuple[str, str]:
    """(problem, fix) for selected MariaDB system-versioned tables (``WITH SYSTEM VERSIONING``), which cannot
    be synchronized: MariaDB logs the history rows it keeps as row changes of the table (an UPDATE's old
    values arrive as an inserted row with ``row_end`` set), which the destination would apply to its current
    rows (a duplicate key), while it keeps its own history anyway. The schema sync, the full data sync and the
    precheck (``primary_keys``) refuse them."""
    return (
        f"selected table(s) are system-versioned (WITH SYSTEM VERSIONING): {', '.join(tables)}; MariaDB logs "
        "the history rows it keeps on UPDATE and DELETE as row changes of the table (an UPDATE's old values "
        "as an inserted row with row_end set), which the destination would apply as current rows, so they "
        "cannot be synchronized",
        "remove them from the task's objects (list the other tables of the database one by one), or drop the "
        "versioning on the source: ALTER TABLE <table> DROP SYSTEM VERSIONING",
    )


# ----------------------------------------------------------------------------------------- SQL rewriting


def mapper_for(databases: set[str], map_table: Callable[[str, str], tuple[str, str]]) -> NameMapper:
    """How names in a definition's body are mapped: qualified names whose database is one of ``databases``."""

    def map_name(db: str, name: str) -> tuple[str, str] | None:
        return map_table(db, name) if db in databases else None

    return map_name


# the words that end the header of a CREATE statement (a DEFINER clause comes before them)
_HEADER_END = ("VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "PACKAGE", "TABLE")


def drop_definer(create_sql: str, *, backslash_escapes: bool = True) -> str:
    """Remove the ``DEFINER = account`` clause from the header of a CREATE VIEW / TRIGGER / PROCEDURE / FUNCTION /
    EVENT statement, with the white space after it.

    ``account``: ``user@host`` (each part quoted with backticks or quotes, or not quoted), a user (a role) alone,
    ``CURRENT_USER`` or ``CURRENT_USER()``. Only the header is read, token by token (``sqltext.tokenize``): the word
    DEFINER in a comment, a string, ``SQL SECURITY DEFINER`` or the body is never touched; the code inside an
    executable comment (``/*!50013 DEFINER=... */``) is header. ``backslash_escapes``: how the statement's strings
    read (``sqltext.backslash_escapes`` of the ``sql_mode`` it was created under). Without a clause (or with one
    that names no account) the text is returned as it is."""
    tokens = tokenize(create_sql, backslash_escapes=backslash_escapes)
    for i, tok in enumerate(tokens):
        if tok.kw(*_HEADER_END):
            break
        if not (tok.kw("DEFINER") and i + 1 < len(tokens) and tokens[i + 1].text == "="):
            continue
        end = _account_end(tokens, i + 2)
        if end is None:
            break
        # the white space after the clause goes with it (the white space before may end a -- comment)
        start, end = tok.start, _skip_space(create_sql, end)
        if end == len(create_sql):  # nothing after it: the white space before goes
            start = len(create_sql[:start].rstrip(SPACE))
        return create_sql[:start] + create_sql[end:]
    return create_sql


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in SPACE:
        i += 1
    return i


def _account_end(tokens: list[Token], i: int) -> int | None:
    """Where the account named at ``tokens[i]`` (after ``DEFINER =``) ends in the text; None: no account there."""
    if i >= len(tokens):
        return None
    if tokens[i].kw("CURRENT_USER"):
        if i + 2 < len(tokens) and tokens[i + 1].text == "(" and tokens[i + 2].text == ")":
            return tokens[i + 2].end
        return tokens[i].end
    i, end = _account_part(tokens, i, "@")
    if end is None:
        return None
    if i + 1 < len(tokens) and tokens[i].text == "@":
        _, host_end = _account_part(tokens, i + 1, "(")
        if host_end is not None:
            return host_end
    return end


def _account_part(tokens: list[Token], i: int, stop: str) -> tuple[int, int | None]:
    """A user or host name at ``tokens[i]``: one quoted token, or unquoted text up to white space, a comment or
    ``stop``. Returns the index after it and where it ends in the text (None: no name there)."""
    if tokens[i].kind in ("backtick", "string"):
        return i + 1, tokens[i].end
    j = i
    while j < len(tokens) and tokens[j].text != stop and (j == i or tokens[j].start == tokens[j - 1].end):
        j += 1
    return j, (tokens[j - 1].end if j > i else None)


def _name_after(tokens: list[Token], keyword: str, start: int = 0) -> tuple[list[Token], int]:
    """The dotted name after the first ``keyword`` at or after ``tokens[start]`` and the index after it."""
    for i in range(start, len(tokens)):
        if tokens[i].kw(keyword):
            parts, j = dotted_name(tokens, i + 1, max_parts=2)
            if parts:
                return parts, j
            break
    raise SchemaSyncError(f"cannot find the name after {keyword} in a definition read from the source")


def _span(parts: list[Token]) -> tuple[int, int]:
    return parts[0].start, parts[-1].end


def _names(parts: list[Token]) -> list[str]:
    return [p.ident or "" for p in parts]


def rewrite_create_table(create_sql: str, ref: TableRef, map_table: Callable[[str, str], tuple[str, str]]) -> str:
    """SHOW CREATE TABLE text -> CREATE TABLE for the mapped name, REFERENCES targets mapped."""
    tokens = tokenize(create_sql)
    parts, i = _name_after(tokens, "TABLE")
    edits = [(*_span(parts), qualified(ref.dst_db, ref.dst_table))]
    while i < len(tokens):
        if not tokens[i].kw("REFERENCES"):
            i += 1
            continue
        parts, i = _name_after(tokens, "REFERENCES", i)
        names = _names(parts)
        db, table = (ref.src_db, names[0]) if len(names) == 1 else (names[0], names[1])
        ndb, ntable = map_table(db, table)
        new = quote_ident(ntable) if ndb == ref.dst_db and len(names) == 1 else qualified(ndb, ntable)
        edits.append((*_span(parts), new))
    return rewrite_names(create_sql, edits=edits)


def _without_definer(create_sql: str, sql_mode: str | None) -> tuple[str, list[Token]]:
    """A definition without its DEFINER clause and its tokens, its strings read as ``sql_mode`` reads them (None:
    the default, backslash escapes on: SHOW CREATE VIEW in the reader's session)."""
    escapes = backslash_escapes(sql_mode)
    sql = drop_definer(create_sql, backslash_escapes=escapes)
    return sql, tokenize(sql, backslash_escapes=escapes)


def _renamed(parts: list[Token], dst_db: str) -> tuple[int, int, str]:
    """The edit that puts the object named by ``parts`` (``[db.]name``) into ``dst_db``."""
    return (*_span(parts), qualified(dst_db, _names(parts)[-1]))


def rewrite_create_view(
    create_sql: str, ref: TableRef, databases: set[str], map_table: Callable[[str, str], tuple[str, str]]
) -> str:
    """SHOW CREATE VIEW text -> CREATE VIEW at the mapped name, without DEFINER, body names mapped."""
    sql, tokens = _without_definer(create_sql, None)
    parts, _ = _name_after(tokens, "VIEW")
    name = (*_span(parts), qualified(ref.dst_db, ref.dst_table))
    return rewrite_names(sql, mapper_for(databases, map_table), edits=[name], tokens=tokens)


def rewrite_create_routine(
    create_sql: str,
    rtype: str,
    dst_db: str,
    databases: set[str],
    map_table: Callable[[str, str], tuple[str, str]],
    sql_mode: str | None = None,
) -> str:
    """SHOW CREATE FUNCTION/PROCEDURE text -> CREATE at the mapped database, without DEFINER, body names mapped.
    ``sql_mode``: the routine's own (its strings are read as the server reads them)."""
    sql, tokens = _without_definer(create_sql, sql_mode)
    parts, _ = _name_after(tokens, rtype.upper())
    name = _renamed(parts, dst_db)
    return rewrite_names(sql, mapper_for(databases, map_table), edits=[name], tokens=tokens)


def rewrite_create_trigger(
    create_sql: str,
    src_db: str,
    dst_db: str,
    databases: set[str],
    map_table: Callable[[str, str], tuple[str, str]],
    sql_mode: str | None = None,
) -> str:
    """SHOW CREATE TRIGGER text -> CREATE at the mapped database and table, without DEFINER, body names mapped.
    ``sql_mode``: the trigger's own (its strings are read as the server reads them)."""
    sql, tokens = _without_definer(create_sql, sql_mode)
    parts, j = _name_after(tokens, "TRIGGER")
    name = _renamed(parts, dst_db)
    parts, _ = _name_after(tokens, "ON", j)
    names = _names(parts)
    db, table = (src_db, names[0]) if len(names) == 1 else (names[0], names[1])
    on = (*_span(parts), qualified(*map_table(db, table)))
    return rewrite_names(sql, mapper_for(databases, map_table), edits=[name, on], tokens=tokens)


# ----------------------------------------------------------------------------------------- the sync


@dataclass
class SchemaSyncResult:
    databases_created: list[str] = field(default_factory=list)
    tables_created: list[str] = field(default_factory=list)
    tables_kept: list[str] = field(default_factory=list)
    views_created: list[str] = field(default_factory=list)
    routines_created: list[str] = field(default_factory=list)
    triggers_created: list[str] = field(default_factory=list)
    triggers_guarded: list[str] = field(default_factory=list)
    kept_other: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    modification: list[str] = field(default_factory=list)  # an initialized sync re-run: what changed (modify.py)

    def summary(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self.__dict__.items()}


def _mapper(direction: SyncDirection) -> Callable[[str, str], tuple[str, str]]:
    return direction.map_table


def _dest_tables(conn, dbs: Iterable[str]) -> dict[tuple[str, str], str]:
    dbs = sorted(set(dbs))
    if not dbs:
        return {}
    rows = _fetch(
        conn,
        f"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({','.join(['%s'] * len(dbs))})",
        dbs,
    )
    return {(r[0], r[1]): r[2] for r in rows}


def _progress_status(conn, control: ControlSchema, direction: SyncDirection) -> dict[tuple[str, str], str]:
    rows = _fetch(
        conn,
        f"SELECT source_db, source_table, status FROM {control.table('table_progress')} "
        f"WHERE task_name=%s AND direction=%s",
        (direction.task_name, direction.role),
    )
    return {(r[0], r[1]): r[2] for r in rows}


def mark_table(
    cur, control: ControlSchema, direction: SyncDirection, ref: TableRef, status: str, rows_estimated: int = 0
) -> None:
    """Upsert the table's table_progress row with ``status`` (schema statuses: creating, created, kept)."""
    cur.execute(
        f"INSERT INTO {control.table('table_progress')} (task_name, direction, source_db, source_table, dest_db, "
        f"dest_table, status, rows_estimated, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,UTC_TIMESTAMP(6)) "
        f"ON DUPLICATE KEY UPDATE dest_db=VALUES(dest_db), dest_table=VALUES(dest_table), status=VALUES(status), "
        f"rows_done=IF(VALUES(status)='creating', 0, rows_done), "
        f"last_key=IF(VALUES(status)='creating', NULL, last_key), updated_at=VALUES(updated_at)",
        (
            direction.task_name,
            direction.role,
            ref.src_db,
            ref.src_table,
            ref.dst_db,
            ref.dst_table,
            status,
            rows_estimated,
        ),
    )


_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


def _charset_sql(charset: Any, collation: Any) -> str:
    """SET for the character set/collation an object was defined with (names checked, never injected)."""
    charset, collation = as_text(charset), as_text(collation)
    if not (_NAME_RE.match(str(charset)) and _NAME_RE.match(str(collation))):
        raise SchemaSyncError(f"unexpected character set {charset!r} / collation {collation!r} read from the source")
    return f"SET SESSION character_set_client={charset}, collation_connection={collation}"


def _exec_ddl(cur, sql: str, what: str) -> None:
    try:
        cur.execute(sql)
    except pymysql.err.MySQLError as e:
        code = e.args[0] if e.args else None
        text = e.args[1] if len(e.args) > 1 else str(e)
        fixes: dict[int | None, str] = {
            1418: "set log_bin_trust_function_creators=1 on the destination or grant the sync account SUPER",
            1227: "grant the destination account the privileges to create this object (see the README's GRANTs)",
            1044: "grant the destination account CREATE and the other DDL privileges on this database",
            1142: "grant the destination account CREATE and the other DDL privileges on this database",
            1286: "install the storage engine on the destination or change the table's engine on the source",
        }
        fix = fixes.get(code, "check the definition against the destination server's version and settings")
        raise SchemaSyncError(f"cannot create {what} at the destination: [{code}] {text}. Fix: {fix}") from None


def _exec_in_own_mode(cur, sql: str, what: str, show_create: list[Any]) -> None:
    """Create a routine or trigger under its own sql_mode and character set (columns 1, 3 and 4 of its SHOW
    CREATE row), then put the session back to ``DDL_SQL_MODE`` and utf8mb4."""
    try:
        cur.execute("SET SESSION sql_mode=%s", (show_create[1],))
        cur.execute(_charset_sql(show_create[3], show_create[4]))
        _exec_ddl(cur, sql, what)
    finally:
        cur.execute(f"SET NAMES utf8mb4, SESSION sql_mode='{DDL_SQL_MODE}'")


def sync_schema(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
    create_triggers_now: bool | None = None,
) -> SchemaSyncResult:
    """Create the selected objects at the destination (see module doc). Returns what was done.

    ``create_triggers_now``: default ``direction.sync_triggers and not direction.initial_full_data_sync``
    (with a data copy to come, ``create_triggers`` runs after it instead).
    """
    logger = logger or log
    control = ControlSchema(direction.control_schema)
    result = SchemaSyncResult()
    mapper = _mapper(direction)
    with source.connect() as src, destination.connect() as dst:
        with src.cursor() as cur, dst.cursor() as dcur:
            cur.execute(f"SET SESSION sql_quote_show_create=1, sql_mode='{READER_SQL_MODE}'")
            dcur.execute(f"SET SESSION sql_mode='{DDL_SQL_MODE}'")
        # An initialized direction: create only what is new (engine/modify.py); refused changes raise here,
        # before anything is written.
        mod = plan_modification(direction, src, dst, logger=logger)
        added = None
        if mod is not None:
            result.modification.append(mod.describe())
            logger.info("schema sync: %s is already initialized; %s", direction.key, mod.describe())
            added = mod.added_direction()
            if added is None:
                return result
        record_reverse_floor_on(direction, src, dst, logger=logger)  # task one: before it writes on B
        control.ensure(dst)
        if mod is not None and added is not None:
            begin_modification(mod, dst)
            direction = added
        objs = list_source_objects(src, direction)
        result.skipped = list(objs.skipped)
        for s in objs.skipped:
            logger.info("schema sync: %s skipped (the opposite direction already syncs it)", s)
        dst_dbs = {d for _, d in objs.databases} | {t.dst_db for t in objs.tables + objs.views}
        existing = _dest_tables(dst, dst_dbs)
        progress = _progress_status(dst, control, direction)
        ours = {"creating", "created", "copying", "done"}  # statuses of tables this sync created

        # 1. Decide about every table before writing anything.
        to_create: list[TableRef] = []
        kept: list[TableRef] = []
        finish: list[TableRef] = []
        clashes = []
        for ref in objs.tables:
            status = progress.get((ref.src_db, ref.src_table))
            if (ref.dst_db, ref.dst_table) not in existing:
                to_create.append(ref)
            elif status in ours:
                if status == "creating":  # created by an interrupted earlier run (CREATE TABLE is atomic)
                    finish.append(ref)
            elif direction.existing_table_mode == ExistingTableMode.PRECHECK_AND_INTERCEPT:
                clashes.append(format_object_name(ref.dst_db, ref.dst_table))
            else:
                kept.append(ref)
        if clashes:
            raise SchemaSyncError(
                f"destination tables already exist: {', '.join(clashes)} (mode PrecheckAndIntercept never touches "
                "them). Fix: drop or rename them at the destination, map the objects to other names, or use "
                "existing_table_mode Ignore"
            )

        with src.cursor() as scur, dst.cursor() as dcur:
            scur.execute(f"SET SESSION sql_quote_show_create=1, sql_mode='{READER_SQL_MODE}'")
            dcur.execute(f"SET SESSION sql_mode='{DDL_SQL_MODE}', FOREIGN_KEY_CHECKS=0")

            # 2. Databases.
            dst_have = {r[0] for r in _fetch(dst, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
            for src_db, dst_db in objs.databases:
                if dst_db in dst_have:
                    continue
                cs, coll = _fetch(
                    src,
                    "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME=%s",
                    (src_db,),
                )[0]
                _charset_sql(cs, coll)  # checks both names
                _exec_ddl(
                    dcur,
                    f"CREATE DATABASE IF NOT EXISTS {quote_ident(dst_db)} CHARACTER SET {cs} COLLATE {coll}",
                    f"database {dst_db!r}",
                )
                dst_have.add(dst_db)
                result.databases_created.append(dst_db)
                logger.info("schema sync: database %s created (%s, %s)", format_object_name(dst_db), cs, coll)
            for ref in objs.tables + objs.views:
                if ref.dst_db not in dst_have:  # a table mapped into another database
                    cs, coll = _fetch(
                        src,
                        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME=%s",
                        (ref.src_db,),
                    )[0]
                    _charset_sql(cs, coll)  # checks both names
                    _exec_ddl(
                        dcur,
                        f"CREATE DATABASE IF NOT EXISTS {quote_ident(ref.dst_db)} CHARACTER SET {cs} COLLATE {coll}",
                        f"database {ref.dst_db!r}",
                    )
                    dst_have.add(ref.dst_db)
                    result.databases_created.append(ref.dst_db)

            # 3. Tables.
            for ref in finish:
                mark_table(dcur, control, direction, ref, "created")
                result.tables_created.append(ref.label)
            for ref in kept:
                mark_table(dcur, control, direction, ref, "kept")
                result.tables_kept.append(ref.label)
                logger.info("schema sync: table %s exists at the destination, kept as it is", ref.label)
            for ref in to_create:
                scur.execute(f"SHOW CREATE TABLE {qualified(ref.src_db, ref.src_table)}")
                create = as_text(scur.fetchone()[1])
                sql = rewrite_create_table(create, ref, mapper)
                mark_table(dcur, control, direction, ref, "creating")
                _exec_ddl(dcur, sql, f"table {ref.label}")
                mark_table(dcur, control, direction, ref, "created")
                result.tables_created.append(ref.label)
                logger.info("schema sync: table %s created", ref.label)

            # 4. Views, in dependency order.
            databases = {d for d, _ in objs.databases} | {t.src_db for t in objs.tables + objs.views}
            pending = [v for v in objs.views if (v.dst_db, v.dst_table) not in existing]
            for v in objs.views:
                if (v.dst_db, v.dst_table) in existing:
                    result.kept_other.append(f"view {v.label}")
            while pending:
                failed: list[tuple[TableRef, Exception]] = []
                for v in pending:
                    scur.execute(f"SHOW CREATE VIEW {qualified(v.src_db, v.src_table)}")
                    row = scur.fetchone()
                    sql = rewrite_create_view(as_text(row[1]), v, databases, mapper)
                    try:
                        dcur.execute(_charset_sql(row[2], row[3]))
                        dcur.execute(sql)
                    except pymysql.err.MySQLError as e:
                        if e.args and e.args[0] in (1146, 1356):  # base table/view not there (yet)
                            failed.append((v, e))
                            continue
                        raise SchemaSyncError(
                            f"cannot create view {v.label} at the destination: {e.args}. "
                            "Fix: check the view's definition on the source"
                        ) from None
                    finally:
                        dcur.execute("SET NAMES utf8mb4")
                    result.views_created.append(v.label)
                    logger.info("schema sync: view %s created", v.label)
                if len(failed) == len(pending):
                    raise SchemaSyncError(
                        "cannot create views at the destination: "
                        + "; ".join(f"{v.label}: {e.args[1] if len(e.args) > 1 else e}" for v, e in failed)
                        + ". Fix: select the tables these views read, or create them at the destination"
                    )
                pending = [v for v, _ in failed]

            # 5. Functions and procedures.
            for rtype, src_db, name, dst_db in objs.routines:
                have = _fetch(
                    dst,
                    "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA=%s AND ROUTINE_NAME=%s "
                    "AND ROUTINE_TYPE=%s",
                    (dst_db, name, rtype),
                )
                label = f"{rtype.lower()} {format_object_name(dst_db, name)}"
                if have:
                    result.kept_other.append(label)
                    continue
                scur.execute(f"SHOW CREATE {rtype} {qualified(src_db, name)}")
                row = [as_text(x) for x in scur.fetchone()]
                if row[2] is None:
                    raise SchemaSyncError(
                        f"cannot read the definition of {rtype.lower()} {format_object_name(src_db, name)} on the "
                        "source. Fix: grant the source account SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE / "
                        "the routine's privileges (MySQL)"
                    )
                sql = rewrite_create_routine(row[2], rtype, dst_db, databases, mapper, row[1])
                _exec_in_own_mode(dcur, sql, label, row)
                result.routines_created.append(label)
                logger.info("schema sync: %s created", label)

        if create_triggers_now is None:
            create_triggers_now = direction.sync_triggers and not direction.initial_full_data_sync
        if create_triggers_now:
            result.triggers_created = create_triggers(
                direction, source, destination, logger=logger, _objects=objs, _conns=(src, dst)
            )
    if direction.guard_triggers:  # before the copy and the appliers write anything (engine/triggers.py)
        result.triggers_guarded = guard_triggers(direction, source, destination, logger=logger)
    return result


def create_triggers(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
    _objects: SourceObjects | None = None,
    _conns: tuple[Any, Any] | None = None,
) -> list[str]:
    """Create the selected tables' triggers at the destination (only when ``direction.sync_triggers``)."""
    logger = logger or log
    if not direction.sync_triggers:
        return []
    if _conns is None:
        with source.connect() as src, destination.connect() as dst:
            return create_triggers(direction, source, destination, logger=logger, _objects=_objects, _conns=(src, dst))
    src, dst = _conns
    mapper = _mapper(direction)
    with src.cursor() as cur:
        cur.execute(f"SET SESSION sql_quote_show_create=1, sql_mode='{READER_SQL_MODE}'")
    objs = _objects or list_source_objects(src, direction)
    databases = {d for d, _ in objs.databases}
    created = []
    with src.cursor() as scur, dst.cursor() as dcur:
        for src_db, trig, table in objs.triggers:
            dst_db = mapper(src_db, table)[0]
            label = f"trigger {format_object_name(dst_db, trig)}"
            if _fetch(
                dst,
                "SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s AND TRIGGER_NAME=%s",
                (dst_db, trig),
            ):
                continue
            scur.execute(f"SHOW CREATE TRIGGER {qualified(src_db, trig)}")
            row = [as_text(x) for x in scur.fetchone()]
            sql = rewrite_create_trigger(row[2], src_db, dst_db, databases, mapper, row[1])
            if direction.guard_triggers:  # created guarded: it never fires in the sync's own sessions
                sql = guard_create_sql(sql, row[1])
            _exec_in_own_mode(dcur, sql, label, row)
            created.append(label)
            logger.info("schema sync: %s created", label)
    return created
