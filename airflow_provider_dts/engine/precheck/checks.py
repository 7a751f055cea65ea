"""The checks: one ``check_<item>(ctx) -> CheckResult`` per item of ``config.PRECHECK_ITEMS``, in ``CHECKS``
(same order, asserted below), and ``ITEM_DOCS`` (one line per item). Checks only read ``ctx`` (facts gathered by
``facts._gather``) and query the servers; they never write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pymysql

from airflow_provider_dts.engine.catalog import load_table
from airflow_provider_dts.engine.config import (
    COLUMN_POLICIES,
    PRECHECK_ITEMS,
    ConflictPolicy,
    ExistingTableMode,
    skips_initial,
    split_object_name,
)
from airflow_provider_dts.engine.conflicts import COMPARABLE_KINDS
from airflow_provider_dts.engine.precheck.facts import _Context, _in, _query, _Side
from airflow_provider_dts.engine.precheck.grants import (
    CONTROL_PRIVILEGES,
    SOURCE_DB,
    SOURCE_TABLE,
    Grants,
    _obj,
    _req,
    _source_global_requirements,
    account_sql,
    destination_privilege_gaps,
    guarded_trigger_gaps,
    routine_visibility_gap,
)
from airflow_provider_dts.engine.precheck.results import FAIL, PASS, WARN, CheckResult
from airflow_provider_dts.engine.schema_sync import system_versioned_refusal
from airflow_provider_dts.engine.servers import ServerInfo
from airflow_provider_dts.engine.sqltext import as_text, quote_ident

MIN_RETENTION_SECONDS = 24 * 3600
TRANSACTIONAL_ENGINES = {"innodb", "rocksdb", "tokudb", "ndbcluster", "ndb"}
_LIST_LIMIT = 20  # objects named in one reason before "... and N more"


class _NotChecked(Exception):
    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def _need(side: _Side) -> ServerInfo:
    """The side's server facts; raises ``_NotChecked`` (the item FAILs) when it is not connected."""
    if not side.ok or side.info is None:
        item = f"{side.role}_connectivity"
        raise _NotChecked(
            f"not checked: cannot connect to the {side.label} (see {item}).",
            f"fix {item} first, then run the precheck again",
        )
    return side.info


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown += f" ... and {len(items) - _LIST_LIMIT} more"
    return shown


# --------------------------------------------------------------------------- the checks

# connectivity and version


def check_source_connectivity(ctx: _Context) -> CheckResult:
    return _connectivity("source_connectivity", ctx.src)


def check_destination_connectivity(ctx: _Context) -> CheckResult:
    return _connectivity("destination_connectivity", ctx.dst)


def _connectivity(name: str, side: _Side) -> CheckResult:
    if side.ok and side.info is not None:
        return CheckResult(name, PASS, f"connected and logged in to the {side.label} as {side.info.current_user}.")
    return CheckResult(
        name,
        FAIL,
        side.error or f"cannot connect to the {side.label}.",
        side.fix or "check host, port, login and password of the Airflow connection",
    )


def check_source_version(ctx: _Context) -> CheckResult:
    return _version("source_version", ctx.src)


def check_destination_version(ctx: _Context) -> CheckResult:
    return _version("destination_version", ctx.dst)


def _version(name: str, side: _Side) -> CheckResult:
    info = _need(side)
    ok, why = info.supported()
    if ok:
        return CheckResult(
            name, PASS, f"the {side.label} runs {info.label} ({info.version_string}), which is supported."
        )
    return CheckResult(
        name,
        FAIL,
        f"the {side.label} runs {info.version_string}: {why}.",
        "upgrade the server to MySQL 5.7, 8.0 or 8.4+ or MariaDB 10.4+ (MariaDB 10.5+ for binlog_row_metadata)",
    )


# source binlog settings


def check_source_binlog_enabled(ctx: _Context) -> CheckResult:
    name = "source_binlog_enabled"
    src_info = _need(ctx.src)
    value = src_info.var("log_bin")
    if value.upper() in ("ON", "1"):
        return CheckResult(name, PASS, f"log_bin=ON on the {ctx.src.label}.")
    return CheckResult(
        name,
        FAIL,
        f"the binary log is off on the {ctx.src.label} (log_bin={value or 'OFF'}); incremental sync "
        "reads changes from it.",
        "start the server with --log-bin=mysql-bin (log_bin=mysql-bin under [mysqld] in my.cnf) and a non-zero "
        "--server-id, then restart it; log_bin cannot be changed with SET GLOBAL",
    )


def _variable_check(ctx: _Context, name: str, variable: str, wanted: str, fix: str, why: str) -> CheckResult:
    info = _need(ctx.src)
    if variable not in info.variables:
        return CheckResult(
            name,
            FAIL,
            f"the {ctx.src.label} ({info.label}) has no {variable} variable; {why}.",
            "upgrade to MySQL 8.0+ or MariaDB 10.5+ and " + fix,
        )
    value = info.var(variable)
    if value.upper() == wanted:
        return CheckResult(name, PASS, f"{variable}={value} on the {ctx.src.label}.")
    return CheckResult(name, FAIL, f"{variable}={value} on the {ctx.src.label}; it must be {wanted}: {why}.", fix)


def check_source_binlog_format(ctx: _Context) -> CheckResult:
    return _variable_check(
        ctx,
        "source_binlog_format",
        "binlog_format",
        "ROW",
        "start the server with --binlog-format=ROW (binlog_format=ROW under [mysqld] in my.cnf) and restart it; "
        "SET GLOBAL binlog_format='ROW' affects only new sessions, so reconnect every client afterwards",
        "only row events carry the changed rows",
    )


def check_source_binlog_row_image(ctx: _Context) -> CheckResult:
    return _variable_check(
        ctx,
        "source_binlog_row_image",
        "binlog_row_image",
        "FULL",
        "start the server with --binlog-row-image=FULL (binlog_row_image=FULL in my.cnf); "
        "SET GLOBAL binlog_row_image='FULL' affects only new sessions, so reconnect every client afterwards",
        "conflict detection and updates need every column of the before and after images",
    )


def check_source_binlog_row_metadata(ctx: _Context) -> CheckResult:
    return _variable_check(
        ctx,
        "source_binlog_row_metadata",
        "binlog_row_metadata",
        "FULL",
        "start the server with --binlog-row-metadata=FULL (binlog_row_metadata=FULL in my.cnf); "
        "SET GLOBAL binlog_row_metadata='FULL' takes effect for new binlog events",
        "without it the binlog carries no column names or primary keys and rows cannot be mapped to columns",
    )


def check_source_binlog_compression(ctx: _Context) -> CheckResult:
    name = "source_binlog_compression"
    info = _need(ctx.src)
    variable = "log_bin_compress" if info.is_mariadb else "binlog_transaction_compression"
    if variable not in info.variables:
        return CheckResult(
            name, PASS, f"the {ctx.src.label} ({info.label}) has no binlog compression ({variable} does not exist)."
        )
    value = info.var(variable)
    if value.upper() in ("OFF", "0", ""):
        return CheckResult(name, PASS, f"{variable}={value or 'OFF'} on the {ctx.src.label}.")
    return CheckResult(
        name,
        FAIL,
        f"{variable}={value} on the {ctx.src.label}: compressed binlog transactions cannot be decoded "
        "by the binlog reader and would be silently lost.",
        f"SET GLOBAL {variable}=OFF and set {variable}=OFF under [mysqld] in my.cnf; then run the initial "
        "synchronization again so that no compressed transaction has to be read",
    )


def check_source_server_id(ctx: _Context) -> CheckResult:
    name = "source_server_id"
    src_info = _need(ctx.src)
    value = src_info.var("server_id", "0")
    try:
        sid = int(value)
    except ValueError:
        sid = 0
    if sid == 0:
        return CheckResult(
            name,
            FAIL,
            f"server_id={value} on the {ctx.src.label}; a server with server_id 0 refuses binlog clients.",
            "start the server with a unique non-zero --server-id (server_id=N under [mysqld] in my.cnf) or "
            "SET GLOBAL server_id=N",
        )
    if sid == ctx.direction.reader_server_id:
        return CheckResult(
            name,
            FAIL,
            f"server_id={sid} on the {ctx.src.label} equals the id the binlog reader of "
            f"{ctx.direction.key} registers with.",
            "give the server another server_id",
        )
    return CheckResult(name, PASS, f"server_id={sid} on the {ctx.src.label}.")


def check_source_gtid_resume(ctx: _Context) -> CheckResult:
    """Whether the direction can resume by GTID after its source fails over to a replica (engine/gtid.py)."""
    from airflow_provider_dts.engine.gtid import resume_available

    name = "source_gtid_resume"
    info = _need(ctx.src)
    ok, off = resume_available(info)
    if ok:
        needs = (
            "gtid_strict_mode=ON, log_slave_updates=ON" if info.is_mariadb else "gtid_mode=ON, log_replica_updates=ON"
        )
        return CheckResult(
            name,
            PASS,
            f"GTID resume is available on the {ctx.src.label} ({needs} on): after a failover to a replica with the "
            "same settings the direction continues there by GTID.",
        )
    if info.is_mariadb:
        fix = (
            "SET GLOBAL gtid_strict_mode=ON and start the source and every replica it may fail over to with "
            "--log-slave-updates (and gtid_strict_mode=ON under [mysqld] in my.cnf)"
        )
    else:
        fix = (
            "enable GTIDs (gtid_mode=ON, enforce_gtid_consistency=ON) and log_replica_updates=ON on the source and "
            "every replica it may fail over to"
        )
    return CheckResult(
        name,
        WARN,
        f"GTID resume is not available on the {ctx.src.label} ({off} off): if the source fails over to another "
        "server the direction stops and must be re-initialized.",
        fix,
    )


def check_source_binlog_retention(ctx: _Context) -> CheckResult:
    name = "source_binlog_retention"
    info = _need(ctx.src)
    secs_text = info.var("binlog_expire_logs_seconds", "")
    days_text = info.var("expire_logs_days", "")
    try:
        secs = float(secs_text or 0)
        days = float(days_text or 0)
    except ValueError:
        secs, days = 0.0, 0.0
    effective = secs if secs > 0 else days * 86400
    purged = _checkpoint_purged(ctx)
    if purged:
        return CheckResult(
            name,
            FAIL,
            purged,
            "re-initialize the direction: run the initial schema and full data "
            "synchronization again (the DAG with a fresh task, or after "
            "resetting this direction's checkpoint)",
        )
    if effective <= 0:
        return CheckResult(
            name,
            PASS,
            f"binary logs on the {ctx.src.label} are never purged automatically "
            f"(binlog_expire_logs_seconds={secs_text or 'n/a'}, "
            f"expire_logs_days={days_text or 'n/a'}).",
        )
    hours = effective / 3600
    if effective < MIN_RETENTION_SECONDS:
        return CheckResult(
            name,
            WARN,
            f"binary logs on the {ctx.src.label} are kept only {hours:g} h "
            f"(binlog_expire_logs_seconds={secs_text or 'n/a'}, expire_logs_days={days_text or 'n/a'}); "
            "if the sync stops for longer, the binlog it needs is gone and the direction must be "
            "re-initialized.",
            "keep binary logs at least 24 h, better 7 days: SET GLOBAL binlog_expire_logs_seconds=604800 and "
            "binlog_expire_logs_seconds=604800 under [mysqld] in my.cnf",
        )
    return CheckResult(name, PASS, f"binary logs on the {ctx.src.label} are kept {hours:g} h (>= 24 h).")


def _checkpoint_purged(ctx: _Context) -> str | None:
    cp = ctx.initialized
    if cp is None or not cp.binlog_file:
        return None
    try:
        files = [str(r[0]) for r in _query(ctx.src.conn, "SHOW BINARY LOGS")]
    except pymysql.err.MySQLError:
        return None  # privileges are reported by source_privileges
    if files and cp.binlog_file not in files:
        return (
            f"the direction's checkpoint is at {cp.binlog_file}:{cp.binlog_pos}, but that binary log is no longer "
            f"on the {ctx.src.label} (it has {files[0]} to {files[-1]}): the changes since the checkpoint were "
            "purged and cannot be synced."
        )
    return None


# privileges


def _grants(side: _Side, info: ServerInfo) -> Grants:
    """The account's grants on ``side``; raises ``_NotChecked`` (the item FAILs) when they cannot be read."""
    if side.grants is None:
        raise _NotChecked(
            f"cannot read the grants of {info.current_user} on the {side.label}: {side.grants_error}.",
            "allow the account to run SHOW GRANTS",
        )
    return side.grants


def _grant_target(db: str, table: str | None) -> str:
    """``db``.* for a whole database, ``db``.``table`` for one table."""
    return f"{_obj(db)}.*" if table is None else _obj(db, table)


class _Lacking:
    """What an account lacks (one reason part each) and the GRANT statements that fix it."""

    def __init__(self, side: _Side, info: ServerInfo):
        self.side, self.info = side, info
        self.account = account_sql(info.current_user)
        self.problems: list[str] = []
        self.fixes: list[str] = []

    def add(self, miss: list[str], target: str, why: str = "") -> None:
        self.problems.append(f"{', '.join(miss)} on {target}{why}")
        self.fixes.append(f"GRANT {', '.join(miss)} ON {target} TO {self.account};")

    def reason(self) -> str:
        return f"the account {self.info.current_user} on the {self.side.label} lacks: {'; '.join(self.problems)}."

    def fix(self) -> str:
        return f"run as an administrator on the {self.side.role}: " + " ".join(self.fixes)


def check_source_privileges(ctx: _Context) -> CheckResult:
    name = "source_privileges"
    src_info = _need(ctx.src)
    side = ctx.src
    grants = _grants(side, src_info)
    lacking = _Lacking(side, src_info)
    miss = grants.missing(_source_global_requirements(src_info, ctx.direction))
    if miss:
        why = "needed to read the binary log" + (
            " and, RELOAD, to take the initial snapshot (FLUSH TABLES WITH READ LOCK)" if "RELOAD" in miss else ""
        )
        lacking.add(miss, "*.*", f" ({why})")
    miss = grants.missing(_req(CONTROL_PRIVILEGES), ctx.direction.control_schema)
    if miss:
        lacking.add(
            miss,
            _grant_target(ctx.direction.control_schema, None),
            " (the control schema, where incremental sync writes its heartbeat on the source)",
        )
    routine_gap = routine_visibility_gap(ctx.direction, src_info, grants)
    if routine_gap:
        lacking.problems.append(routine_gap[0])
        lacking.fixes.append(routine_gap[1].format(account=lacking.account))
    for db, table in ctx.direction.selected:
        reqs = SOURCE_DB if table is None else SOURCE_TABLE
        miss = grants.missing(reqs, db, table)
        if miss:
            lacking.add(miss, _grant_target(db, table))
    if lacking.problems:
        return CheckResult(name, FAIL, lacking.reason(), lacking.fix())
    reader = [label for label, _ in _source_global_requirements(src_info, ctx.direction)]
    return CheckResult(
        name,
        PASS,
        f"{src_info.current_user} on the {side.label} has {', '.join(reader)}, "
        "SELECT/SHOW VIEW on the selected objects and owns the control schema "
        f"{quote_ident(ctx.direction.control_schema)} there.",
    )


def check_destination_privileges(ctx: _Context) -> CheckResult:
    name = "destination_privileges"
    dst_info = _need(ctx.dst)
    side = ctx.dst
    gaps = destination_privilege_gaps(ctx.direction, _grants(side, dst_info))
    functions = _function_blockers(ctx)
    if functions and not gaps:
        return CheckResult(name, FAIL, functions[0], functions[1])
    if not gaps:
        return CheckResult(
            name,
            PASS,
            f"{dst_info.current_user} on the {side.label} can create and alter the "
            "target objects, write rows and own the control schema "
            f"{quote_ident(ctx.direction.control_schema)}.",
        )
    lacking = _Lacking(side, dst_info)
    for db, table, miss in gaps:
        what = " (control schema)" if table is None and db == ctx.direction.control_schema else ""
        lacking.add(miss, _grant_target(db, table), what)
    reason, fix = lacking.reason(), lacking.fix()
    if functions:
        reason, fix = f"{reason} Also: {functions[0]}", f"{fix}; and {functions[1]}"
    return CheckResult(name, FAIL, reason, fix)


def _function_blockers(ctx: _Context) -> tuple[str, str] | None:
    """Stored functions the destination will refuse to create: with the binary log on and
    log_bin_trust_function_creators=0, CREATE FUNCTION needs SUPER (error 1419) and a DETERMINISTIC /
    NO SQL / READS SQL DATA declaration (error 1418)."""
    d = ctx.direction
    if not (d.initial_schema_sync or not d.exclude_ddl) or not ctx.src.ok:
        return None
    dst_info = _need(ctx.dst)  # checked by the caller
    if dst_info.var("log_bin").upper() not in ("ON", "1"):
        return None
    whole = sorted({db for db, t in d.selected if t is None})
    if not whole:
        return None
    trust = _query(ctx.dst.conn, "SELECT @@GLOBAL.log_bin_trust_function_creators")[0][0]
    if str(trust) in ("1", "ON"):
        return None
    ph, args = _in(whole)
    rows = _query(
        ctx.src.conn,
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, IS_DETERMINISTIC, SQL_DATA_ACCESS FROM "
        f"information_schema.ROUTINES WHERE ROUTINE_TYPE='FUNCTION' AND ROUTINE_SCHEMA IN "
        f"({ph}) ORDER BY 1, 2",
        args,
    )
    if not rows:
        return None
    has_super = ctx.dst.grants is not None and ctx.dst.grants.has("SUPER")
    undeclared = [
        _obj(db, fn) for db, fn, det, access in rows if det == "NO" and access in ("CONTAINS SQL", "MODIFIES SQL DATA")
    ]
    if has_super and not undeclared:
        return None
    names = _names([_obj(db, fn) for db, fn, _, _ in rows])
    why = []
    if not has_super:
        why.append(
            f"without SUPER the account {dst_info.current_user} cannot create stored functions there (error 1419)"
        )
    if undeclared:
        why.append(f"{_names(undeclared)} declare none of DETERMINISTIC, NO SQL, READS SQL DATA (error 1418)")
    reason = (
        f"the source has stored function(s) {names} to create on the {ctx.dst.label}, which has the binary log "
        f"on and log_bin_trust_function_creators=0: {'; '.join(why)}."
    )
    fix = (
        "SET GLOBAL log_bin_trust_function_creators=1 on the destination and log_bin_trust_function_creators=1 "
        "under [mysqld] in its my.cnf"
    )
    return reason, fix


# objects


def check_objects_exist(ctx: _Context) -> CheckResult:
    name = "objects_exist"
    src_info = _need(ctx.src)
    if ctx.inventory_error:
        return CheckResult(
            name,
            FAIL,
            f"cannot list the selected objects on the {ctx.src.label}: {ctx.inventory_error}.",
            "grant SELECT on the selected objects",
        )
    if ctx.missing_objects:
        return CheckResult(
            name,
            FAIL,
            f"selected object(s) not found on the {ctx.src.label}: {_names(ctx.missing_objects)} "
            f"(or the account {src_info.current_user} has no privilege on them).",
            "create them on the source, correct the names in `objects` (names are case-sensitive; quote names "
            "with dots in backticks), or grant the account SELECT on them",
        )
    n = len(_selected_tables(ctx))
    return CheckResult(
        name,
        PASS,
        f"all {len(ctx.direction.objects)} selected object(s) exist on the "
        f"{ctx.src.label} ({n} table(s)/view(s)): {_names(list(ctx.direction.objects))}.",
    )


def _selected_tables(ctx: _Context, base_only: bool = False) -> list[tuple[str, str]]:
    out = []
    for (db, table), meta in sorted(ctx.source_tables.items()):
        if ctx.direction.selects_table(db, table) and (not base_only or meta["type"] == "BASE TABLE"):
            out.append((db, table))
    return out


def check_destination_name_clash(ctx: _Context) -> CheckResult:
    name = "destination_name_clash"
    _need(ctx.src)
    _need(ctx.dst)
    d = ctx.direction
    if ctx.initialized is not None:
        return CheckResult(
            name,
            PASS,
            f"already initialized by this task: {d.key} has a checkpoint at "
            f"{ctx.initialized.binlog_file}:{ctx.initialized.binlog_pos} in "
            f"{quote_ident(d.control_schema)} on the {ctx.dst.label}.",
        )
    if not d.initial_schema_sync and not d.initial_full_data_sync:
        return CheckResult(
            name,
            PASS,
            "initial schema and full data synchronization are off: existing tables at "
            f"the {ctx.dst.label} are used as they are.",
        )
    clashes, skipped, own = [], 0, 0
    if ctx.forward_overlap:
        d = replace(d, skip_initial_tables=tuple(dict.fromkeys(d.skip_initial_tables + ctx.forward_overlap)))
    for db, table in _selected_tables(ctx):
        target = d.map_table(db, table)
        if target in ctx.dest_tables:
            if skips_initial(d, db, table):
                skipped += 1
                continue
            if target in ctx.own_tables:  # created by this task's earlier, interrupted run: it resumes there
                own += 1
                continue
            label = _obj(*target)
            if target != (db, table):
                label += f" (from {_obj(db, table)})"
            clashes.append(label)
    if not clashes:
        extra = (
            (f" ({skipped} table(s) that task one (the forward direction) synchronizes are not initially synced here)")
            if skipped
            else ""
        )
        if own:
            extra += (
                f" ({own} table(s) were created by this task's earlier, interrupted run; the initialization "
                "resumes there)"
            )
        return CheckResult(
            name,
            PASS,
            f"no selected table or view has a same-name object at the {ctx.dst.label} after name mapping{extra}.",
        )
    reason = f"the {ctx.dst.label} already has object(s) with the target name(s): {_names(clashes)}."
    if d.existing_table_mode is ExistingTableMode.IGNORE:
        return CheckResult(
            name,
            WARN,
            reason + " existing_table_mode=Ignore: their existing rows are kept; rows with the same "
            "primary key are not copied initially and data consistency is not guaranteed; "
            "if the schemas differ, initial sync may copy only some columns or fail.",
            "make sure the destination tables have the same schema as the source, or map the objects to other names",
        )
    return CheckResult(
        name,
        FAIL,
        reason + " existing_table_mode=PrecheckAndIntercept refuses to write into existing tables.",
        "drop or rename those objects at the destination, map the selected objects to other names with `mapping` "
        '(e.g. {"shop": "shop_copy"}), or set existing_table_mode to Ignore (keeps existing rows; consistency '
        "is not guaranteed"
        + (
            "; that is the mode to use when you created the destination tables yourself, as initial_schema_sync is off)"
            if not d.initial_schema_sync
            else ")"
        ),
    )


def _system_versioned(ctx: _Context, tables: list[tuple[str, str]]) -> list[str]:
    """The MariaDB system-versioned tables among ``tables`` on the source (``schema_sync.system_versioned_refusal``)."""
    ph, args = _in(sorted({db for db, _ in tables}))
    rows = _query(
        ctx.src.conn,
        f"SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({ph}) "
        "AND TABLE_TYPE='SYSTEM VERSIONED' ORDER BY TABLE_SCHEMA, TABLE_NAME",
        args,
    )
    wanted = set(tables)
    return [_obj(db, t) for db, t in ((as_text(a), as_text(b)) for a, b in rows) if (db, t) in wanted]


def check_primary_keys(ctx: _Context) -> CheckResult:
    name = "primary_keys"
    _need(ctx.src)
    tables = _selected_tables(ctx, base_only=True)
    if not tables:
        return CheckResult(name, PASS, f"no selected base table on the {ctx.src.label} to check.")
    versioned = _system_versioned(ctx, tables)
    if versioned:
        problem, fix = system_versioned_refusal(versioned)
        return CheckResult(name, FAIL, problem + ".", fix)
    without = []
    with ctx.src.conn.cursor() as cur:
        for db, table in tables:
            info = load_table(cur, db, table)  # the row-key rule lives in engine.catalog
            if info is None or info.row_key_problem() is not None:
                without.append(_obj(db, table))
    if without:
        return CheckResult(
            name,
            FAIL,
            f"table(s) without a PRIMARY KEY or a UNIQUE key on NOT NULL columns on the {ctx.src.label}: "
            f"{_names(without)}; their rows cannot be matched at the destination, so updates and "
            "deletes cannot be applied exactly.",
            f"add a primary key to each, e.g. ALTER TABLE {without[0]} ADD PRIMARY KEY (<column>) (or ALTER TABLE "
            f"{without[0]} ADD COLUMN id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY), or remove the table(s) from "
            "`objects`",
        )
    return CheckResult(
        name,
        PASS,
        f"all {len(tables)} selected table(s) on the {ctx.src.label} have a primary key or a NOT NULL unique key.",
    )


# Ignore / Overwrite do not converge when both servers write the same row (issue 12)
DIVERGING_POLICIES_WARNING = (
    "Ignore and Overwrite decide each direction on its own: when both servers change the same row at about the "
    "same time, Ignore on both tasks leaves each server with its own row and Overwrite on both tasks swaps "
    "them, and both directions keep reporting Synchronizing while the servers differ (every such conflict is "
    "logged in conflict_log)."
)


def check_conflict_policies(ctx: _Context) -> CheckResult:
    """UseMax / UseMin columns exist on both sides (and compare); WARN for Ignore / Overwrite (may diverge)."""
    name = "conflict_policies"
    _need(ctx.src)
    d = ctx.direction
    missing, uncomparable = [], []
    for obj, entry in sorted(d.table_conflict_policies.items()):
        if entry.get("policy") not in COLUMN_POLICIES:
            continue
        db, table = split_object_name(obj)
        if table is None:
            continue
        column = entry["column"]
        target = d.map_table(db, table)
        sides = [(ctx.src, db, table)]
        if ctx.dst.ok and target in ctx.dest_tables:  # else schema sync creates it from the source table
            sides.append((ctx.dst, *target))
        for side, sdb, stable in sides:
            with side.conn.cursor() as cur:
                info = load_table(cur, sdb, stable)
            if info is None:
                continue  # a missing source table is reported by objects_exist
            col = next((c for c in info.column_info if c.name == column), None)
            where = f"{_obj(sdb, stable)} on the {side.label}"
            if col is None or col.generated:
                missing.append(f"{entry['policy']} column {quote_ident(column)} of {where}")
            elif col.kind not in COMPARABLE_KINDS:
                uncomparable.append(f"{quote_ident(column)} of {where} ({col.column_type or col.data_type})")
    if missing:
        return CheckResult(
            name,
            FAIL,
            f"table_conflict_policies names column(s) that do not exist (or are generated): {_names(missing)}; "
            "UseMax / UseMin compare that column's values on both servers.",
            'correct the "column" of the entry in table_conflict_policies (a stored column of the table on both '
            "servers, e.g. an updated_at or version column), or add the column on both servers",
        )
    warnings, fixes = [], []
    if uncomparable:
        warnings.append(
            f"UseMax / UseMin column(s) that cannot be compared: {_names(uncomparable)}; they always fall back "
            "(UseMax to Overwrite, UseMin to Ignore)."
        )
        fixes.append("name a number, decimal, date/time or string column in table_conflict_policies")
    used = {d.conflict_policy.value} | {e["policy"] for e in d.table_conflict_policies.values()}
    diverging = [p.value for p in (ConflictPolicy.IGNORE, ConflictPolicy.OVERWRITE) if p.value in used]
    if diverging:
        warnings.append(f"{d.key} uses {' and '.join(diverging)}. " + DIVERGING_POLICIES_WARNING)
        fixes.append(
            "where both servers write the same rows, use UseMax / UseMin on a column such as updated_at "
            '(table_conflict_policies, e.g. {"shop.orders": {"policy": "UseMax", "column": "updated_at"}}) or '
            "TaskFailed (a person answers each conflict); compare the servers with dts_verify"
        )
    if warnings:
        return CheckResult(name, WARN, " ".join(warnings), "; ".join(fixes))
    n = sum(1 for e in d.table_conflict_policies.values() if e.get("policy") in COLUMN_POLICIES)
    return CheckResult(
        name,
        PASS,
        f"conflict policy {d.conflict_policy.value}"
        + (f"; {n} UseMax / UseMin column(s) exist on both servers and compare" if n else "")
        + ": conflicts stop the direction or converge to one winner on both servers.",
    )


def check_triggers(ctx: _Context) -> CheckResult:
    name = "triggers"
    src_info = _need(ctx.src)
    d = ctx.direction
    found: list[str] = []
    drops: list[str] = []
    dbs = sorted({db for db, _ in d.selected})
    for db, trg, table in _triggers_in(ctx.src, dbs):
        if d.selects_table(db, table):
            found.append(f"{_obj(db, trg)} on {_obj(db, table)} (source)")
    if ctx.dst.ok:
        targets = {d.map_table(db, t): (db, t) for db, t in _selected_tables(ctx)}
        for db, trg, table in _triggers_in(ctx.dst, sorted({t[0] for t in targets})):
            if (db, table) in targets:
                found.append(f"{_obj(db, trg)} on {_obj(db, table)} (destination)")
                drops.append(f"DROP TRIGGER {_obj(db, trg)};")
    if found and d.guard_triggers:
        return _guarded_triggers_result(ctx, found, dbs)
    if found:
        fixes = []
        if drops:
            fixes.append(
                "drop the trigger copies at the destination before syncing the tables they write: "
                + " ".join(drops[:_LIST_LIMIT])
            )
        if d.sync_triggers and any(f.endswith("(source)") for f in found):
            fixes.append(
                "set sync_triggers off so that the schema sync does not create the source's triggers at the destination"
            )
        fixes.append(
            "keep each trigger on one server only (the initial schema sync does not copy triggers "
            "unless sync_triggers is on), or set guard_triggers on so that the triggers do nothing in "
            "the sync's own sessions (README: Triggers on both servers)"
        )
        return CheckResult(
            name,
            WARN,
            f"trigger(s) on selected tables: {_names(found)}. If a trigger writes another selected "
            "table, the data becomes inconsistent: its writes are replicated and fired again by the "
            "synced row on the other side (spec: delete the trigger at the destination before syncing "
            "the table it writes).",
            "; ".join(fixes),
        )
    g = ctx.src.grants
    if g is not None and not all(g.has("TRIGGER", db) for db in dbs):
        return CheckResult(
            name,
            WARN,
            f"no trigger visible on the selected tables, but the account {src_info.current_user} on "
            f"the {ctx.src.label} lacks the TRIGGER privilege, so information_schema hides triggers "
            "from it.",
            "check the triggers as an administrator (SELECT * FROM information_schema.TRIGGERS), or grant "
            "TRIGGER on the selected databases to the source account",
        )
    return CheckResult(name, PASS, f"no trigger on the selected tables on the {ctx.src.label} or the {ctx.dst.label}.")


def _triggers_in(side: _Side, dbs: list[str]) -> list[tuple]:
    """(schema, trigger, table) of every trigger on a table of ``dbs`` on ``side`` (none for no database)."""
    if not dbs:
        return []
    ph, args = _in(dbs)
    return _query(
        side.conn,
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM "
        f"information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA IN ({ph})",
        args,
    )


def _guarded_triggers_result(ctx: _Context, found: list[str], dbs: list[str]) -> CheckResult:
    """guard_triggers on: the triggers are fine on both servers once guarded; say what will be done."""
    name = "triggers"
    d = ctx.direction
    dst_dbs = sorted(
        {d.map_table(db, t)[0] for db, t in _selected_tables(ctx)}
        | {d.map_database(db) for db, t in d.selected if t is None}
    )
    lacking = []
    for side, side_dbs in ((ctx.src, dbs), (ctx.dst, dst_dbs)):
        g = side.grants
        if not side.ok or g is None or side.info is None:
            continue
        # TRIGGER; on MySQL also LOCK TABLES and SELECT (the rewrite locks the table for DROP + CREATE)
        gaps = guarded_trigger_gaps(side.info, g, side_dbs)
        if gaps:
            lacking.append(f"on the {side.label}: " + " ".join(grant for _, _, grant in gaps))
    what = (
        f"trigger(s) on selected tables: {_names(found)}. guard_triggers is on: before the first copy or "
        "apply, every trigger of the selected tables on both servers is rewritten to IF @dts_applying IS "
        "NULL THEN <body>; END IF (same name, table, timing, order, definer and sql_mode), so it fires for "
        "the users' writes only and never for the rows the sync writes"
    )
    if lacking:
        return CheckResult(
            name,
            WARN,
            what + ", but the sync account cannot rewrite triggers everywhere.",
            "; ".join(lacking) + " (a definer other than the sync account also needs SUPER or "
            "SET_USER_ID; with the binlog on, SUPER or log_bin_trust_function_creators=1)",
        )
    return CheckResult(
        name, PASS, what + ". Remove the guards with remove_trigger_guards (README: Triggers on both servers)."
    )


def check_storage_engines(ctx: _Context) -> CheckResult:
    name = "storage_engines"
    _need(ctx.src)
    bad, stmts = [], []
    for db, table in _selected_tables(ctx, base_only=True):
        engine = ctx.source_tables[(db, table)].get("engine") or ""
        if engine.lower() not in TRANSACTIONAL_ENGINES:
            bad.append(f"{_obj(db, table)} ({engine or 'unknown'})")
            stmts.append(f"ALTER TABLE {_obj(db, table)} ENGINE=InnoDB;")
    if bad:
        return CheckResult(
            name,
            WARN,
            f"non-transactional table(s) on the {ctx.src.label}: {_names(bad)}; the initial copy of "
            "them is not a consistent snapshot and a crash can leave them half-applied.",
            "convert them on the source: " + " ".join(stmts[:_LIST_LIMIT]),
        )
    return CheckResult(name, PASS, f"all selected tables on the {ctx.src.label} use a transactional engine.")


# server-level differences


def check_charset_collation(ctx: _Context) -> CheckResult:
    name = "charset_collation"
    src_info = _need(ctx.src)
    dst_info = _need(ctx.dst)
    diffs = []
    for var in ("character_set_server", "collation_server"):
        a, b = src_info.var(var), dst_info.var(var)
        if a.lower() != b.lower():
            diffs.append(f"{var}: {a} on the source, {b} on the destination")
    for db, (cs, coll) in sorted(ctx.source_schemata.items()):
        target = ctx.direction.map_database(db)
        if target in ctx.dest_schemata:
            dcs, dcoll = ctx.dest_schemata[target]
            if (cs.lower(), coll.lower()) != (dcs.lower(), dcoll.lower()):
                diffs.append(
                    f"database {_obj(db)} is {cs}/{coll} on the source, {_obj(target)} is {dcs}/{dcoll} on "
                    "the destination"
                )
    if diffs:
        return CheckResult(
            name,
            WARN,
            f"character set / collation differ between the {ctx.src.label} and the {ctx.dst.label}: "
            f"{'; '.join(diffs)}. Text may be converted or compare differently, and unique keys may "
            "clash on one side only.",
            "use the same character_set_server and collation_server on both servers (in my.cnf, e.g. "
            "character_set_server=utf8mb4, collation_server=utf8mb4_general_ci) and the same database defaults "
            "(ALTER DATABASE <db> CHARACTER SET ... COLLATE ...)",
        )
    return CheckResult(
        name,
        PASS,
        f"character_set_server={src_info.var('character_set_server')} and "
        f"collation_server={src_info.var('collation_server')} on both servers.",
    )


def check_sql_mode(ctx: _Context) -> CheckResult:
    name = "sql_mode"
    src_info = _need(ctx.src)
    dst_info = _need(ctx.dst)
    a = {m for m in src_info.var("sql_mode").upper().split(",") if m}
    b = {m for m in dst_info.var("sql_mode").upper().split(",") if m}
    if a == b:
        return CheckResult(name, PASS, f"sql_mode is the same on both servers ({','.join(sorted(a)) or 'empty'}).")
    return CheckResult(
        name,
        WARN,
        f"sql_mode differs: the {ctx.src.label} has {src_info.var('sql_mode') or '(empty)'}, the "
        f"{ctx.dst.label} has {dst_info.var('sql_mode') or '(empty)'} (only on the source: "
        f"{','.join(sorted(a - b)) or '-'}; only on the destination: {','.join(sorted(b - a)) or '-'}). "
        "Values one side accepts (zero dates, truncated text) may be refused by the other.",
        f"set the same sql_mode on both servers: SET GLOBAL sql_mode='{src_info.var('sql_mode')}' on the "
        "destination and sql_mode=... under [mysqld] in its my.cnf (or the other way round)",
    )


def check_lower_case_table_names(ctx: _Context) -> CheckResult:
    name = "lower_case_table_names"
    src_info = _need(ctx.src)
    dst_info = _need(ctx.dst)
    a, b = src_info.var("lower_case_table_names"), dst_info.var("lower_case_table_names")
    if a == b:
        return CheckResult(name, PASS, f"lower_case_table_names={a} on both servers.")
    return CheckResult(
        name,
        WARN,
        f"lower_case_table_names={a} on the {ctx.src.label} but {b} on the {ctx.dst.label}: tables "
        "whose names differ only in case may merge or not be found on one side.",
        "use the same lower_case_table_names on both servers (it can only be set when the data directory is "
        "initialized), or use only lower-case database and table names",
    )


def _effective_tz(info: ServerInfo) -> str:
    tz = info.var("time_zone")
    return f"SYSTEM ({info.var('system_time_zone')})" if tz.upper() == "SYSTEM" else tz


def check_time_zone(ctx: _Context) -> CheckResult:
    name = "time_zone"
    src_info = _need(ctx.src)
    dst_info = _need(ctx.dst)
    a, b = _effective_tz(src_info), _effective_tz(dst_info)
    skew, latency = _clock_skew(ctx)
    clock = f"their clocks agree within {max(abs(skew), latency):.2f} s"
    if a == b and abs(skew) <= MAX_CLOCK_SKEW_SECONDS + latency:
        return CheckResult(
            name,
            PASS,
            f"time zone {a} on both servers and {clock}; the sync itself always works in UTC (time_zone='+00:00').",
        )
    problems, fixes = [], []
    if a != b:
        problems.append(
            f"time zone differs: {a} on the {ctx.src.label}, {b} on the {ctx.dst.label}. The sync "
            "copies TIMESTAMP values exactly (its sessions use UTC), but NOW() and CURRENT_TIMESTAMP "
            "defaults, and applications reading DATETIME, give different local times on each side."
        )
        fixes.append(
            "use the same time zone on both servers: SET GLOBAL time_zone='+00:00' and "
            "default_time_zone='+00:00' under [mysqld] in my.cnf on each"
        )
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS + latency:
        problems.append(
            f"the {ctx.dst.label}'s clock is {skew:+.1f} s off the {ctx.src.label}'s: lag figures are "
            "wrong by that much and conflict detection that relies on time is unreliable."
        )
        fixes.append("synchronize both servers' clocks with NTP (chrony or systemd-timesyncd)")
    return CheckResult(name, WARN, " ".join(problems), "; ".join(fixes))


MAX_CLOCK_SKEW_SECONDS = 5.0


def _clock_skew(ctx: _Context) -> tuple[float, float]:
    """(destination clock - source clock, measurement uncertainty) in seconds."""
    t0 = time.monotonic()
    src = float(_query(ctx.src.conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
    dst = float(_query(ctx.dst.conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
    t2 = time.monotonic()
    # both reads happened within [t0, t2], the source's first: about half that span apart
    return dst - src - (t2 - t0) / 2, (t2 - t0)


CHECKS: dict[str, Callable[[_Context], CheckResult]] = {
    "source_connectivity": check_source_connectivity,
    "destination_connectivity": check_destination_connectivity,
    "source_version": check_source_version,
    "destination_version": check_destination_version,
    "source_binlog_enabled": check_source_binlog_enabled,
    "source_binlog_format": check_source_binlog_format,
    "source_binlog_row_image": check_source_binlog_row_image,
    "source_binlog_row_metadata": check_source_binlog_row_metadata,
    "source_binlog_compression": check_source_binlog_compression,
    "source_server_id": check_source_server_id,
    "source_binlog_retention": check_source_binlog_retention,
    "source_gtid_resume": check_source_gtid_resume,
    "source_privileges": check_source_privileges,
    "destination_privileges": check_destination_privileges,
    "objects_exist": check_objects_exist,
    "destination_name_clash": check_destination_name_clash,
    "primary_keys": check_primary_keys,
    "conflict_policies": check_conflict_policies,
    "triggers": check_triggers,
    "storage_engines": check_storage_engines,
    "charset_collation": check_charset_collation,
    "sql_mode": check_sql_mode,
    "lower_case_table_names": check_lower_case_table_names,
    "time_zone": check_time_zone,
}
assert tuple(CHECKS) == PRECHECK_ITEMS, "every precheck item needs exactly one check"

# One line per item: what it checks and its usual fix (for the README and the UI).
ITEM_DOCS: dict[str, str] = {
    "source_connectivity": "FAIL if the source cannot be reached or the login fails. Fix the Airflow connection "
    "(host, port, login, password, TLS extras).",
    "destination_connectivity": "FAIL if the destination cannot be reached or the login fails. Fix the Airflow "
    "connection.",
    "source_version": "FAIL unless the source is MySQL 5.7/8.0/8.4+ or MariaDB 10.4+.",
    "destination_version": "FAIL unless the destination is MySQL 5.7/8.0/8.4+ or MariaDB 10.4+.",
    "source_binlog_enabled": "FAIL if log_bin is OFF. Start the server with --log-bin and a non-zero --server-id.",
    "source_binlog_format": "FAIL unless binlog_format=ROW. --binlog-format=ROW (SET GLOBAL affects new sessions "
    "only).",
    "source_binlog_row_image": "FAIL unless binlog_row_image=FULL. --binlog-row-image=FULL.",
    "source_binlog_row_metadata": "FAIL unless binlog_row_metadata=FULL (MySQL 8.0+, MariaDB 10.5+). "
    "--binlog-row-metadata=FULL.",
    "source_binlog_compression": "FAIL if binlog_transaction_compression (MySQL) or log_bin_compress (MariaDB) is "
    "ON: compressed transactions cannot be read. SET GLOBAL ...=OFF.",
    "source_server_id": "FAIL if server_id is 0. --server-id=<unique non-zero>.",
    "source_binlog_retention": "WARN if binary logs are kept less than 24 h; FAIL if the direction's checkpoint "
    "is in a purged binlog (re-initialize). SET GLOBAL binlog_expire_logs_seconds=604800.",
    "source_gtid_resume": "WARN unless the direction can resume by GTID after the source fails over to a "
    "replica: MariaDB gtid_strict_mode=ON and log_slave_updates=ON; MySQL gtid_mode=ON and log_replica_updates=ON.",
    "source_privileges": "FAIL unless the source account has REPLICATION SLAVE, REPLICATION CLIENT (BINLOG "
    "MONITOR on MariaDB 10.5+), RELOAD on MySQL for the initial snapshot, SELECT and SHOW "
    "VIEW on the selected objects, can see their stored routines (SELECT on mysql.proc on "
    "MariaDB < 11.3) and owns the control schema. The fix gives the GRANT statements.",
    "destination_privileges": "FAIL unless the destination account can create and alter the target databases, "
    "tables, views and routines, write rows and own the control schema; also if stored "
    "functions cannot be created (binlog on, log_bin_trust_function_creators=0).",
    "objects_exist": "FAIL if a selected database or table does not exist on the source (or is invisible to "
    "the account).",
    "destination_name_clash": "FAIL (PrecheckAndIntercept) or WARN (Ignore) if a selected table already exists at "
    "the destination after name mapping; passes once the direction is initialized.",
    "primary_keys": (
        "FAIL for tables without a PRIMARY KEY or a NOT NULL UNIQUE key (add a primary key), and for MariaDB "
        "system-versioned tables (WITH SYSTEM VERSIONING), which cannot be synchronized."
    ),
    "conflict_policies": "FAIL if a UseMax / UseMin column of table_conflict_policies does not exist on either "
    "server; WARN if it cannot be compared (falls back), and for Ignore / Overwrite, which can leave the servers "
    "different after simultaneous writes of one row. Use UseMax / UseMin or TaskFailed.",
    "triggers": "WARN for triggers on selected tables (on either server): keep each trigger on one side, or set "
    "guard_triggers on (then PASS: the triggers are guarded on both servers; WARN without TRIGGER).",
    "storage_engines": "WARN for non-transactional tables (MyISAM, MEMORY, Aria). ALTER TABLE ... ENGINE=InnoDB.",
    "charset_collation": "WARN if the servers' or databases' character sets or collations differ.",
    "sql_mode": "WARN if sql_mode differs between the servers.",
    "lower_case_table_names": "WARN if lower_case_table_names differs between the servers.",
    "time_zone": "WARN if the servers' time zones differ or their clocks are more than 5 s apart.",
}
assert tuple(ITEM_DOCS) == PRECHECK_ITEMS
