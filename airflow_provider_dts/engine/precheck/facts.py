"""Gathering the facts the checks read: connections to both servers, their versions, variables and grants,
the source inventory of the selected objects, and the destination's objects and control-schema rows.
Read only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.config import SyncDirection, _overlap, format_object_name
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.precheck.grants import Grants, read_grants
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, server_info


@dataclass
class _Side:
    role: str  # "source" / "destination"
    settings: ConnectionSettings
    conn: Any = None
    info: ServerInfo | None = None
    error: str | None = None
    fix: str | None = None
    grants: Grants | None = None
    grants_error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role} {self.settings.describe()}"

    @property
    def ok(self) -> bool:
        return self.conn is not None and self.info is not None


@dataclass
class _Context:
    direction: SyncDirection
    control: ControlSchema
    src: _Side
    dst: _Side
    # source inventory of the selected objects
    source_tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    source_schemata: dict[str, tuple[str, str]] = field(default_factory=dict)
    missing_objects: list[str] = field(default_factory=list)
    inventory_error: str | None = None
    # destination
    dest_tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    dest_schemata: dict[str, tuple[str, str]] = field(default_factory=dict)
    initialized: Any = None  # Checkpoint when the direction is initialized
    # destination tables an earlier, interrupted initialization of this direction created (table_progress)
    own_tables: set[tuple[str, str]] = field(default_factory=set)
    # reverse direction: selections task one (forward, whose home is our source) already syncs
    forward_overlap: tuple[str, ...] = ()


def _query(conn, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _in(values: Iterable[str]) -> tuple[str, tuple]:
    vals = tuple(values)
    return ",".join(["%s"] * len(vals)), vals


def _open(side: _Side) -> None:
    try:
        side.conn = side.settings.connect()
    except ServerError as e:
        text = str(e)
        reason, _, fix = text.partition(". Fix: ")
        side.error = f"{side.role}: {reason}."
        side.fix = fix or None
        return
    except Exception as e:  # TLS errors, DNS, ...: never let a check raise
        msg = str(e)
        if side.settings.password:
            msg = msg.replace(side.settings.password, "***")
        side.error = f"cannot connect to the {side.label}: {type(e).__name__}: {msg}."
        side.fix = "check host, port and the TLS settings (extras ssl / ssl_mode) of the Airflow connection"
        return
    try:
        side.info = server_info(side.conn)
    except Exception as e:
        side.error = f"connected to the {side.label} but cannot read its version and variables: {e}."
        side.fix = "allow the account to run SHOW GLOBAL VARIABLES and SELECT VERSION() (any login can by default)"
        _close(side)
        return
    try:
        lctn = side.info.var("lower_case_table_names", "0")
        side.grants = Grants(read_grants(side.conn, side.info), case_insensitive=lctn not in ("0", ""))
    except pymysql.err.MySQLError as e:
        side.grants_error = str(e)


def _close(side: _Side) -> None:
    if side.conn is not None:
        try:
            side.conn.close()
        except Exception:
            pass
    side.conn = None


def _schemata(conn, dbs: list[str]) -> dict[str, tuple[str, str]]:
    """Default character set and collation of each database of ``dbs`` that exists."""
    ph, args = _in(dbs)
    rows = _query(
        conn,
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        f"WHERE SCHEMA_NAME IN ({ph})",
        args,
    )
    return {db: (cs, coll) for db, cs, coll in rows}


def _tables(conn, dbs: list[str], columns: str) -> list[tuple]:
    """(database, table, *columns) of every table and view in ``dbs`` (``columns`` of information_schema.TABLES)."""
    ph, args = _in(dbs)
    return _query(
        conn,
        f"SELECT TABLE_SCHEMA, TABLE_NAME, {columns} FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({ph})",
        args,
    )


def _gather(ctx: _Context) -> None:
    d = ctx.direction
    if ctx.src.ok:
        try:
            dbs = sorted(set(d.selected_databases))
            ctx.source_schemata.update(_schemata(ctx.src.conn, dbs))
            for db, table, ttype, engine in _tables(ctx.src.conn, dbs, "TABLE_TYPE, ENGINE"):
                ctx.source_tables[(db, table)] = {"type": "VIEW" if ttype == "VIEW" else "BASE TABLE", "engine": engine}
            for db, table in d.selected:
                if db not in ctx.source_schemata:
                    ctx.missing_objects.append(
                        f"database {format_object_name(db)}"
                        if table is None
                        else f"{format_object_name(db, table)} (database {db!r} missing)"
                    )
                elif table is not None and (db, table) not in ctx.source_tables:
                    ctx.missing_objects.append(f"table {format_object_name(db, table)}")
        except pymysql.err.MySQLError as e:
            ctx.inventory_error = str(e)
    if ctx.dst.ok:
        targets = set()
        for db, table in d.selected:
            targets.add(d.map_database(db) if table is None else d.map_table(db, table)[0])
        for db, table in ctx.source_tables:
            if d.selects_table(db, table):
                targets.add(d.map_table(db, table)[0])
        if targets:
            try:
                ctx.dest_schemata.update(_schemata(ctx.dst.conn, sorted(targets)))
                for db, table, ttype in _tables(ctx.dst.conn, sorted(targets), "TABLE_TYPE"):
                    ctx.dest_tables[(db, table)] = {"type": ttype}
            except pymysql.err.MySQLError:
                pass
        ctx.initialized = read_initialized(ctx.dst.conn, ctx.control, d)
        ctx.own_tables = read_own_tables(ctx.dst.conn, ctx.control, d)
    if ctx.src.ok and d.role == "reverse":
        ctx.forward_overlap = forward_overlap(ctx.src.conn, ctx.control, d)


def forward_overlap(conn, control: ControlSchema, reverse: SyncDirection) -> tuple[str, ...]:
    """For task two: its selections that task one already synchronizes (spec: not initially synced again).

    Task one's home is task two's source; its configuration is in ``sync_state.config_json`` there
    (written by task one's precheck)."""
    try:
        if not control.exists(conn):
            return ()
        state = control.get_state(conn, reverse.task_name, "forward")
        if not state or not state.get("config_json"):
            return ()
        forward = SyncDirection.from_json(state["config_json"])
    except (pymysql.err.MySQLError, ValueError):
        return ()
    return _overlap(forward, reverse)


def read_own_tables(conn, control: ControlSchema, direction: SyncDirection) -> set[tuple[str, str]]:
    """Destination tables this direction's own schema sync or copy created or started to fill, in an earlier
    run that was interrupted (``table_progress`` rows of this task and direction)."""
    try:
        if not control.exists(conn):
            return set()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT dest_db, dest_table FROM {control.table('table_progress')} "
                "WHERE task_name=%s AND direction=%s",
                (direction.task_name, direction.role),
            )
            return {(str(a), str(b)) for a, b in cur.fetchall()}
    except pymysql.err.MySQLError:
        return set()


def read_initialized(conn, control: ControlSchema, direction: SyncDirection):
    """The direction's checkpoint when it is initialized (``binlog_file`` NOT NULL), else None."""
    try:
        if not control.exists(conn):
            return None
        cp = control.read_checkpoint(conn, direction.task_name, direction.role)
    except pymysql.err.MySQLError:
        return None
    return cp if cp is not None and cp.binlog_file else None
