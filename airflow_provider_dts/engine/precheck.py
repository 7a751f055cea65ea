"""Precheck of one sync direction: every item of ``config.PRECHECK_ITEMS``, as DTS runs before a task starts.

Each check returns a ``CheckResult(name, status, reason, fix)``. The reason names the server (``describe()``,
never the password), the object or variable and its value; the fix says exactly what to run or set.

``run_checks`` only reads. ``run_precheck`` runs the checks and records them on the destination (the
direction's home): the control schema is created there if the destination is reachable and its user may,
``sync_state`` shows ``Prechecking`` while the checks run, ``PrecheckFailed`` (with the failed items) when
one fails, and on success the state the direction had before (``NotStarted`` if none, or if it was
``PrecheckFailed``). A direction that is ``Initializing`` or ``Synchronizing`` keeps that state: a re-run of
the DAG must not flip a live direction (its results are recorded all the same). Nothing but the
control schema is ever written, on either server, and a failed check never raises.

Checks of the "source" apply to the direction's source server: for the reverse direction (task two)
that is the other server, so its binlog settings are checked there automatically.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql

from airflow_provider_dts.engine.config import (
    PRECHECK_ITEMS,
    ExistingTableMode,
    SyncDirection,
    _overlap,
    format_object_name,
    skips_initial,
)
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import PrecheckFailed, ServerError
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, quote_ident, server_info

PASS = "PASS"
WARN = "WARN"
FAIL = "FAIL"
IGNORED = "IGNORED"
STATUSES = (PASS, WARN, FAIL, IGNORED)

MIN_RETENTION_SECONDS = 24 * 3600
# States of a direction that is (or was last seen) running: a precheck records its results but leaves these.
ACTIVE_STATES = (State.INITIALIZING, State.SYNCHRONIZING)
TRANSACTIONAL_ENGINES = {"innodb", "rocksdb", "tokudb", "ndbcluster", "ndb"}
_LIST_LIMIT = 20  # objects named in one reason before "... and N more"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    reason: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown precheck status {self.status!r}")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "fix": self.fix}

    def line(self) -> str:
        text = f"{self.status} {self.name}: {self.reason}"
        if self.fix and self.status in (FAIL, WARN):
            text += f" Fix: {self.fix}"
        return text


@dataclass(frozen=True)
class PrecheckReport:
    """All items of one precheck run, in ``PRECHECK_ITEMS`` order.

    ``passed`` is True when no item FAILed (ignored items never fail). ``failed`` / ``warnings`` /
    ``ignored`` list the results with that status.
    """

    task_name: str
    direction: str
    run_id: str
    results: tuple[CheckResult, ...]
    source: str = ""
    destination: str = ""
    recorded: bool = False
    record_error: str | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == WARN]

    @property
    def ignored(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == IGNORED]

    @property
    def passed(self) -> bool:
        return not self.failed

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def summary(self) -> str:
        counts = {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"precheck of {self.task_name}/{self.direction} ({self.source} -> {self.destination}) {verdict}: "
            f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed, {counts[IGNORED]} ignored"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_name": self.task_name,
            "direction": self.direction,
            "run_id": self.run_id,
            "source": self.source,
            "destination": self.destination,
            "passed": self.passed,
            "failed": [r.name for r in self.failed],
            "warnings": [r.name for r in self.warnings],
            "ignored": [r.name for r in self.ignored],
            "recorded": self.recorded,
            "record_error": self.record_error,
            "results": [r.to_dict() for r in self.results],
        }

    def raise_for_failures(self) -> None:
        if self.failed:
            raise PrecheckFailed(self.failed)


# --------------------------------------------------------------------------- grants (pure logic)

# Privileges that exist only globally (``ON *.*``).
GLOBAL_ONLY = {
    "REPLICATION SLAVE",
    "REPLICATION CLIENT",
    "BINLOG MONITOR",
    "SUPER",
    "PROCESS",
    "RELOAD",
    "SHUTDOWN",
    "FILE",
    "CREATE USER",
    "REPLICATION SLAVE ADMIN",
    "SLAVE MONITOR",
    "REPLICA MONITOR",
    "BINLOG ADMIN",
    "BINLOG REPLAY",
    "REPLICATION MASTER ADMIN",
    "CONNECTION ADMIN",
    "READ_ONLY ADMIN",
    "FEDERATED ADMIN",
    "SET USER",
    "CREATE TABLESPACE",
    "SHOW DATABASES",
}


@dataclass(frozen=True)
class Grant:
    """One ``GRANT <privileges> ON <db>.<table> TO ...`` line. ``db``/``table`` are ``"*"`` for wildcards."""

    privileges: frozenset[str]
    db: str
    table: str
    all_privileges: bool = False
    routine: str | None = None  # "FUNCTION" / "PROCEDURE" / "PACKAGE" grants on one routine

    @property
    def is_global(self) -> bool:
        return self.db == "*" and self.routine is None

    def grants(self, privilege: str) -> bool:
        return self.all_privileges or privilege in self.privileges


def _read_ident(text: str, i: int) -> tuple[str, int]:
    """Read a backtick-quoted or bare identifier (or ``*``) starting at ``text[i]``."""
    if i < len(text) and text[i] == "`":
        j, buf = i + 1, []
        while j < len(text):
            if text[j] == "`":
                if j + 1 < len(text) and text[j + 1] == "`":
                    buf.append("`")
                    j += 2
                    continue
                return "".join(buf), j + 1
            buf.append(text[j])
            j += 1
        raise ValueError("unterminated backtick")
    m = re.compile(r"[^\s.`]+").match(text, i)
    if not m:
        raise ValueError(f"no identifier at {i}")
    return m.group(0), m.end()


def parse_grant(line: str) -> Grant | None:
    """Parse one row of ``SHOW GRANTS``. Returns None for lines that grant no object privileges
    (role grants ``GRANT r TO u``, ``PROXY``, ``SET DEFAULT ROLE``, ``REVOKE``).

    Column-level privileges (``SELECT (col)``) are dropped: they never cover a whole table.
    """
    return _parse_privilege_line(line, "GRANT ", "TO ")


def parse_revoke(line: str) -> Grant | None:
    """Parse a MySQL partial revoke (``partial_revokes=ON``): ``REVOKE INSERT ON `db`.* FROM u`` in
    SHOW GRANTS removes a global privilege for that one database."""
    return _parse_privilege_line(line, "REVOKE ", "FROM ")


def _parse_privilege_line(line: str, keyword: str, target: str) -> Grant | None:
    text = line.strip()
    if not text.upper().startswith(keyword):
        return None
    i = len(keyword)
    depth = 0
    in_tick = False
    privs_end = None
    while i < len(text):
        ch = text[i]
        if ch == "`":
            in_tick = not in_tick
        elif not in_tick:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif depth == 0 and text[i : i + 4].upper() == " ON ":
                privs_end = i
                break
        i += 1
    if privs_end is None:
        return None  # GRANT role TO user
    priv_text = text[len(keyword) : privs_end]
    privileges: set[str] = set()
    all_privs = False
    for part in _split_top_level(priv_text):
        part = " ".join(part.split()).upper()
        if not part or "(" in part:
            continue  # column-level privilege
        if part in ("ALL", "ALL PRIVILEGES"):
            all_privs = True
        elif part == "PROXY":
            return None
        elif part == "USAGE":  # "no privileges"
            continue
        else:
            privileges.add(part)
    j = privs_end + 4
    while j < len(text) and text[j] == " ":
        j += 1
    routine = None
    for kind in ("FUNCTION ", "PROCEDURE ", "PACKAGE BODY ", "PACKAGE "):
        if text[j : j + len(kind)].upper() == kind:
            routine = kind.strip()
            j += len(kind)
            break
    try:
        db, j = _read_ident(text, j)
        if j < len(text) and text[j] == ".":
            table, j = _read_ident(text, j + 1)
        else:  # "GRANT ... ON tbl" means the default database; never shown by SHOW GRANTS
            return None
    except ValueError:
        return None
    if not text[j:].lstrip().upper().startswith(target):
        return None
    return Grant(frozenset(privileges), db, table, all_privs, routine)


def _split_top_level(text: str) -> list[str]:
    parts, depth, buf, in_tick = [], 0, [], False
    for ch in text:
        if ch == "`":
            in_tick = not in_tick
        if not in_tick:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append("".join(buf))
                buf = []
                continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def db_pattern_matches(pattern: str, name: str, *, case_insensitive: bool = False) -> bool:
    """Database-level grant patterns: ``%`` and ``_`` are wildcards unless escaped with a backslash."""
    if pattern == "*":
        return True
    rx, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            rx.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    return re.fullmatch("".join(rx), name, flags) is not None


class Grants:
    """The privileges of one account, from its ``SHOW GRANTS`` lines."""

    def __init__(self, lines: Iterable[str], *, case_insensitive: bool = False):
        self.lines = list(lines)
        self.grants = [g for g in (parse_grant(x) for x in self.lines) if g is not None]
        self.revokes = [
            r for r in (parse_revoke(x) for x in self.lines) if r is not None and r.table == "*" and r.routine is None
        ]
        self.case_insensitive = case_insensitive

    def _revoked(self, privilege: str, db: str | None) -> bool:
        """A partial revoke takes a global privilege away from one database (names are literal there)."""
        return db is not None and any(self._eq(r.db, db) and r.grants(privilege) for r in self.revokes)

    def _eq(self, a: str, b: str) -> bool:
        return a.lower() == b.lower() if self.case_insensitive else a == b

    def has(self, privilege: str, db: str | None = None, table: str | None = None) -> bool:
        """Whether ``privilege`` holds globally (db None), on database ``db``, or on table ``db.table``."""
        privilege = privilege.upper()
        for g in self.grants:
            if g.routine is not None:
                continue
            if g.is_global:
                if g.all_privileges and privilege in ("GRANT OPTION", "PROXY"):
                    continue
                if g.grants(privilege) and not self._revoked(privilege, db):
                    return True
                continue
            if db is None or privilege in GLOBAL_ONLY:
                continue
            if g.table == "*":
                if db_pattern_matches(g.db, db, case_insensitive=self.case_insensitive) and g.grants(privilege):
                    return True
            elif table is not None and self._eq(g.db, db) and self._eq(g.table, table) and g.grants(privilege):
                return True
        return False

    def has_any(self, alternatives: Iterable[str], db: str | None = None, table: str | None = None) -> bool:
        return any(self.has(p, db, table) for p in alternatives)

    def missing(
        self, requirements: Iterable[tuple[str, tuple[str, ...]]], db: str | None = None, table: str | None = None
    ) -> list[str]:
        """Labels of the requirements (label, alternatives) not met at the given scope."""
        return [label for label, alts in requirements if not self.has_any(alts, db, table)]


def account_sql(current_user: str) -> str:
    """``user@host`` (from CURRENT_USER()) as ``'user'@'host'`` for a GRANT statement."""
    user, _, host = current_user.rpartition("@")
    if not _:
        user, host = current_user, "%"
    return "'" + user.replace("'", "''") + "'@'" + host.replace("'", "''") + "'"


def read_grants(conn: pymysql.connections.Connection, info: ServerInfo) -> list[str]:
    """``SHOW GRANTS`` of the connected account, including its active roles' privileges."""
    with conn.cursor() as cur:
        lines: list[str] = []
        if not info.is_mariadb:
            try:
                cur.execute("SELECT CURRENT_ROLE()")
                roles = str(cur.fetchone()[0] or "NONE")
            except pymysql.err.MySQLError:
                roles = "NONE"
            if roles.upper() != "NONE":
                cur.execute(f"SHOW GRANTS FOR CURRENT_USER() USING {roles}")
                lines = [str(r[0]) for r in cur.fetchall()]
        if not lines:
            cur.execute("SHOW GRANTS")  # MariaDB includes the current role's grants
            lines = [str(r[0]) for r in cur.fetchall()]
    return lines


# --------------------------------------------------------------------------- requirements

_BINLOG_READ = ("REPLICATION CLIENT", "BINLOG MONITOR")
SOURCE_GLOBAL = (
    ("REPLICATION SLAVE", ("REPLICATION SLAVE",)),
    ("REPLICATION CLIENT (BINLOG MONITOR on MariaDB 10.5+)", _BINLOG_READ),
)
SOURCE_DB = (("SELECT", ("SELECT",)), ("SHOW VIEW", ("SHOW VIEW",)))
SOURCE_TABLE = (("SELECT", ("SELECT",)),)
DEST_DML = ("INSERT", "UPDATE", "DELETE", "SELECT")
DEST_DDL_TABLE = ("CREATE", "ALTER", "DROP", "INDEX", "CREATE VIEW", "TRIGGER", "REFERENCES")
DEST_DDL_DB = DEST_DDL_TABLE + ("CREATE ROUTINE", "ALTER ROUTINE")
CONTROL_PRIVILEGES = ("CREATE", "ALTER", "DROP", "INDEX", "INSERT", "UPDATE", "DELETE", "SELECT")


def _req(names: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((n, (n,)) for n in names)


def _source_global_requirements(
    info: ServerInfo, direction: SyncDirection | None = None
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Global privileges of the source account: read the binlog (REPLICATION SLAVE), its position and file
    list (REPLICATION CLIENT, called BINLOG MONITOR on MariaDB 10.5+), and on MySQL, whose snapshot needs a
    brief FLUSH TABLES WITH READ LOCK, RELOAD when the direction copies data initially."""
    if info.is_mariadb and info.version >= (10, 5, 0):
        return (("REPLICATION SLAVE", ("REPLICATION SLAVE",)), ("BINLOG MONITOR", _BINLOG_READ))
    if info.is_mariadb:
        return (("REPLICATION SLAVE", ("REPLICATION SLAVE",)), ("REPLICATION CLIENT", _BINLOG_READ))
    reqs = (("REPLICATION SLAVE", ("REPLICATION SLAVE",)), ("REPLICATION CLIENT", ("REPLICATION CLIENT",)))
    if direction is not None and direction.initial_full_data_sync:
        reqs += (("RELOAD", ("RELOAD",)),)
    return reqs


def routine_visibility_gap(direction: SyncDirection, info: ServerInfo, grants: Grants) -> tuple[str, str] | None:
    """(problem, GRANT template with ``{account}``) when the source account cannot see the stored functions
    and procedures of the selected databases: information_schema then hides them and the schema sync would
    silently skip them. MariaDB before 11.3 and MySQL 5.7 need SELECT on mysql.proc, MariaDB 11.3+ the
    SHOW CREATE ROUTINE privilege, MySQL 8.0.20+ SHOW_ROUTINE (or a global SELECT)."""
    whole = sorted({db for db, t in direction.selected if t is None})
    if not direction.initial_schema_sync or not whole:
        return None
    if grants.has("SELECT", "mysql", "proc") and (info.is_mariadb or info.version < (8, 0, 0)):
        return None
    if info.is_mariadb and info.version >= (11, 3, 0):
        blind = [db for db in whole if not grants.has("SHOW CREATE ROUTINE", db)]
        need, grant = (
            "SHOW CREATE ROUTINE",
            " ".join(f"GRANT SHOW CREATE ROUTINE ON {_obj(db)}.* TO {{account}};" for db in blind),
        )
    elif info.is_mariadb or info.version < (8, 0, 0):
        blind = whole
        need, grant = "SELECT on `mysql`.`proc`", "GRANT SELECT ON `mysql`.`proc` TO {account};"
    else:
        ok = grants.has("SELECT") or (info.version >= (8, 0, 20) and grants.has("SHOW_ROUTINE"))
        blind = [] if ok else whole
        need, grant = (
            ("SHOW_ROUTINE", "GRANT SHOW_ROUTINE ON *.* TO {account};")
            if info.version >= (8, 0, 20)
            else ("SELECT on *.*", "GRANT SELECT ON *.* TO {account};")
        )
    if not blind:
        return None
    return (
        f"{need} (without it the stored functions and procedures of {', '.join(_obj(d) for d in blind)} are "
        "invisible and the schema sync would silently skip them)",
        grant,
    )


def required_grants(
    direction: SyncDirection,
    side: str,
    *,
    flavour: str = "mariadb",
    version: tuple[int, int, int] = (10, 11, 0),
    account: str = "'dts'@'%'",
) -> list[str]:
    """The least-privilege GRANT statements this precheck requires of the ``side`` ("source" or
    "destination") account of one direction. ``two_way_grants`` merges both directions per server."""
    return _render_grants(_grant_map(direction, side, flavour, version), account)


def two_way_grants(
    forward: SyncDirection,
    reverse: SyncDirection,
    server: str,
    *,
    flavour: str = "mariadb",
    version: tuple[int, int, int] = (10, 11, 0),
    account: str = "'dts'@'%'",
) -> list[str]:
    """GRANT statements for the one sync account on ``server`` ("a": task one's source, "b": its destination):
    what it needs as the source of one direction and the destination of the other."""
    if server not in ("a", "b"):
        raise ValueError("server must be 'a' (task one's source) or 'b' (task one's destination)")
    parts = (
        [(forward, "source"), (reverse, "destination")]
        if server == "a"
        else [(forward, "destination"), (reverse, "source")]
    )
    merged: dict[str, list[str]] = {}
    for direction, side in parts:
        for target, privs in _grant_map(direction, side, flavour, version).items():
            have = merged.setdefault(target, [])
            have.extend(p for p in privs if p not in have)
    return _render_grants(merged, account)


def _grant_map(
    direction: SyncDirection, side: str, flavour: str, version: tuple[int, int, int]
) -> dict[str, list[str]]:
    info = ServerInfo(flavour=flavour, version=tuple(version), version_string="", variables={}, current_user="")
    out: dict[str, list[str]] = {}

    def add(target: str, privs: Iterable[str]) -> None:
        have = out.setdefault(target, [])
        have.extend(p for p in privs if p not in have)

    if side == "source":
        add("*.*", [label.split(" (")[0] for label, _ in _source_global_requirements(info, direction)])
        for db, table in direction.selected:
            if table is None:
                add(f"{_obj(db)}.*", [label for label, _ in SOURCE_DB])
            else:
                add(_obj(db, table), [label for label, _ in SOURCE_TABLE])
        gap = routine_visibility_gap(direction, info, Grants([]))
        if gap:
            for stmt in gap[1].split(";"):
                m = re.match(r"\s*GRANT (.+) ON (.+) TO \{account\}", stmt)
                if m:
                    add(m.group(2), [m.group(1)])
    elif side == "destination":
        for db, table in direction.selected:
            target = (direction.map_database(db), None) if table is None else direction.map_table(db, table)
            name = f"{_obj(target[0])}.*" if target[1] is None else _obj(*target)
            add(name, destination_requirements(direction, whole_database=target[1] is None))
    else:
        raise ValueError("side must be 'source' or 'destination'")
    add(f"{_obj(direction.control_schema)}.*", CONTROL_PRIVILEGES)
    return out


def _render_grants(grants: dict[str, list[str]], account: str) -> list[str]:
    order = sorted(grants, key=lambda t: (t != "*.*", t))
    return [f"GRANT {', '.join(grants[t])} ON {t} TO {account};" for t in order if grants[t]]


def destination_requirements(direction: SyncDirection, *, whole_database: bool) -> tuple[str, ...]:
    """Privileges the destination account needs on one target database (or table)."""
    needs_ddl = direction.initial_schema_sync or not direction.exclude_ddl
    privs = list(DEST_DML)
    if needs_ddl:
        privs += list(DEST_DDL_DB if whole_database else DEST_DDL_TABLE)
    return tuple(privs)


def destination_privilege_gaps(direction: SyncDirection, grants: Grants) -> list[tuple[str, str | None, list[str]]]:
    """(database, table-or-None, missing privileges) for every target object and the control schema."""
    gaps: list[tuple[str, str | None, list[str]]] = []
    seen: set[tuple[str, str | None]] = set()
    for db, table in direction.selected:
        if table is None:
            target: tuple[str, str | None] = (direction.map_database(db), None)
        else:
            target = direction.map_table(db, table)
        if target in seen:
            continue
        seen.add(target)
        privs = destination_requirements(direction, whole_database=target[1] is None)
        miss = grants.missing(_req(privs), target[0], target[1])
        if miss:
            gaps.append((target[0], target[1], miss))
    miss = grants.missing(_req(CONTROL_PRIVILEGES), direction.control_schema)
    if miss:
        gaps.append((direction.control_schema, None, miss))
    return gaps


# --------------------------------------------------------------------------- run context


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


class _NotChecked(Exception):
    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def _need(side: _Side) -> None:
    if not side.ok:
        item = f"{side.role}_connectivity"
        raise _NotChecked(
            f"not checked: cannot connect to the {side.label} (see {item}).",
            f"fix {item} first, then run the precheck again",
        )


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown += f" ... and {len(items) - _LIST_LIMIT} more"
    return shown


def _obj(db: str, table: str | None = None) -> str:
    return quote_ident(db) if table is None else f"{quote_ident(db)}.{quote_ident(table)}"


def _query(conn, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _in(values: Iterable[str]) -> tuple[str, tuple]:
    vals = tuple(values)
    return ",".join(["%s"] * len(vals)), vals


# --------------------------------------------------------------------------- the checks

# connectivity and version


def check_source_connectivity(ctx: _Context) -> CheckResult:
    return _connectivity("source_connectivity", ctx.src)


def check_destination_connectivity(ctx: _Context) -> CheckResult:
    return _connectivity("destination_connectivity", ctx.dst)


def _connectivity(name: str, side: _Side) -> CheckResult:
    if side.ok:
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
    _need(side)
    ok, why = side.info.supported()
    if ok:
        return CheckResult(
            name, PASS, f"the {side.label} runs {side.info.label} ({side.info.version_string}), which is supported."
        )
    return CheckResult(
        name,
        FAIL,
        f"the {side.label} runs {side.info.version_string}: {why}.",
        "upgrade the server to MySQL 5.7, 8.0 or 8.4+ or MariaDB 10.4+ (MariaDB 10.5+ for binlog_row_metadata)",
    )


# source binlog settings


def check_source_binlog_enabled(ctx: _Context) -> CheckResult:
    name = "source_binlog_enabled"
    _need(ctx.src)
    value = ctx.src.info.var("log_bin")
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
    _need(ctx.src)
    info = ctx.src.info
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
    _need(ctx.src)
    info = ctx.src.info
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
    _need(ctx.src)
    value = ctx.src.info.var("server_id", "0")
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


def check_source_binlog_retention(ctx: _Context) -> CheckResult:
    name = "source_binlog_retention"
    _need(ctx.src)
    info = ctx.src.info
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


def check_source_privileges(ctx: _Context) -> CheckResult:
    name = "source_privileges"
    _need(ctx.src)
    side = ctx.src
    if side.grants is None:
        return CheckResult(
            name,
            FAIL,
            f"cannot read the grants of {side.info.current_user} on the {side.label}: {side.grants_error}.",
            "allow the account to run SHOW GRANTS",
        )
    problems, fixes = [], []
    account = account_sql(side.info.current_user)
    miss = side.grants.missing(_source_global_requirements(side.info, ctx.direction))
    if miss:
        why = "needed to read the binary log" + (
            " and, RELOAD, to take the initial snapshot (FLUSH TABLES WITH READ LOCK)" if "RELOAD" in miss else ""
        )
        problems.append(f"{', '.join(miss)} on *.* ({why})")
        fixes.append(f"GRANT {', '.join(miss)} ON *.* TO {account};")
    miss = side.grants.missing(_req(CONTROL_PRIVILEGES), ctx.direction.control_schema)
    if miss:
        problems.append(
            f"{', '.join(miss)} on {_obj(ctx.direction.control_schema)}.* (the control schema, where "
            "incremental sync writes its heartbeat on the source)"
        )
        fixes.append(f"GRANT {', '.join(miss)} ON {_obj(ctx.direction.control_schema)}.* TO {account};")
    routine_gap = routine_visibility_gap(ctx.direction, side.info, side.grants)
    if routine_gap:
        problems.append(routine_gap[0])
        fixes.append(routine_gap[1].format(account=account))
    for db, table in ctx.direction.selected:
        reqs = SOURCE_DB if table is None else SOURCE_TABLE
        miss = side.grants.missing(reqs, db, table)
        if miss:
            problems.append(f"{', '.join(miss)} on {_obj(db, table)}{'.*' if table is None else ''}")
            target = f"{_obj(db)}.*" if table is None else _obj(db, table)
            fixes.append(f"GRANT {', '.join(miss)} ON {target} TO {account};")
    if problems:
        return CheckResult(
            name,
            FAIL,
            f"the account {side.info.current_user} on the {side.label} lacks: {'; '.join(problems)}.",
            "run as an administrator on the source: " + " ".join(fixes),
        )
    reader = [label for label, _ in _source_global_requirements(side.info, ctx.direction)]
    return CheckResult(
        name,
        PASS,
        f"{side.info.current_user} on the {side.label} has {', '.join(reader)}, "
        "SELECT/SHOW VIEW on the selected objects and owns the control schema "
        f"{quote_ident(ctx.direction.control_schema)} there.",
    )


def check_destination_privileges(ctx: _Context) -> CheckResult:
    name = "destination_privileges"
    _need(ctx.dst)
    side = ctx.dst
    if side.grants is None:
        return CheckResult(
            name,
            FAIL,
            f"cannot read the grants of {side.info.current_user} on the {side.label}: {side.grants_error}.",
            "allow the account to run SHOW GRANTS",
        )
    gaps = destination_privilege_gaps(ctx.direction, side.grants)
    functions = _function_blockers(ctx)
    if functions and not gaps:
        return CheckResult(name, FAIL, functions[0], functions[1])
    if not gaps:
        return CheckResult(
            name,
            PASS,
            f"{side.info.current_user} on the {side.label} can create and alter the "
            "target objects, write rows and own the control schema "
            f"{quote_ident(ctx.direction.control_schema)}.",
        )
    account = account_sql(side.info.current_user)
    problems, fixes = [], []
    for db, table, miss in gaps:
        target = f"{_obj(db)}.*" if table is None else _obj(db, table)
        what = " (control schema)" if table is None and db == ctx.direction.control_schema else ""
        problems.append(f"{', '.join(miss)} on {target}{what}")
        fixes.append(f"GRANT {', '.join(miss)} ON {target} TO {account};")
    reason = f"the account {side.info.current_user} on the {side.label} lacks: {'; '.join(problems)}."
    fix = "run as an administrator on the destination: " + " ".join(fixes)
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
    if ctx.dst.info.var("log_bin").upper() not in ("ON", "1"):
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
            f"without SUPER the account {ctx.dst.info.current_user} cannot create stored functions there (error 1419)"
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
    _need(ctx.src)
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
            f"(or the account {ctx.src.info.current_user} has no privilege on them).",
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


def check_primary_keys(ctx: _Context) -> CheckResult:
    name = "primary_keys"
    _need(ctx.src)
    tables = _selected_tables(ctx, base_only=True)
    if not tables:
        return CheckResult(name, PASS, f"no selected base table on the {ctx.src.label} to check.")
    dbs = sorted({db for db, _ in tables})
    ph, args = _in(dbs)
    nullable = {
        (r[0], r[1], r[2]): r[3] == "YES"
        for r in _query(
            ctx.src.conn,
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, IS_NULLABLE FROM "
            f"information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({ph})",
            args,
        )
    }
    keys: dict[tuple[str, str], dict[str, list[str]]] = {}
    for db, table, index, col in _query(
        ctx.src.conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
        f"WHERE NON_UNIQUE=0 AND TABLE_SCHEMA IN ({ph}) ORDER BY SEQ_IN_INDEX",
        args,
    ):
        keys.setdefault((db, table), {}).setdefault(index, []).append(col)
    without = []
    for db, table in tables:
        idx = keys.get((db, table), {})
        ok = "PRIMARY" in idx or any(all(not nullable.get((db, table, c), True) for c in cols) for cols in idx.values())
        if not ok:
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


def check_triggers(ctx: _Context) -> CheckResult:
    name = "triggers"
    _need(ctx.src)
    d = ctx.direction
    found: list[str] = []
    drops: list[str] = []
    dbs = sorted({db for db, _ in d.selected})
    ph, args = _in(dbs)
    for db, trg, table in _query(
        ctx.src.conn,
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM "
        f"information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA IN ({ph})",
        args,
    ):
        if d.selects_table(db, table):
            found.append(f"{_obj(db, trg)} on {_obj(db, table)} (source)")
    if ctx.dst.ok:
        targets = {d.map_table(db, t): (db, t) for db, t in _selected_tables(ctx)}
        tdbs = sorted({t[0] for t in targets})
        if tdbs:
            ph, args = _in(tdbs)
            for db, trg, table in _query(
                ctx.dst.conn,
                "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM "
                "information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA IN "
                f"({ph})",
                args,
            ):
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
            f"no trigger visible on the selected tables, but the account {ctx.src.info.current_user} on "
            f"the {ctx.src.label} lacks the TRIGGER privilege, so information_schema hides triggers "
            "from it.",
            "check the triggers as an administrator (SELECT * FROM information_schema.TRIGGERS), or grant "
            "TRIGGER on the selected databases to the source account",
        )
    return CheckResult(name, PASS, f"no trigger on the selected tables on the {ctx.src.label} or the {ctx.dst.label}.")


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
        missing = [db for db in side_dbs if side.ok and g is not None and not g.has("TRIGGER", db)]
        if missing:
            lacking.append(
                f"on the {side.label}: "
                + " ".join(f"GRANT TRIGGER ON {_obj(db)}.* TO {account_sql(side.info.current_user)};" for db in missing)
            )
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
    _need(ctx.src)
    _need(ctx.dst)
    diffs = []
    for var in ("character_set_server", "collation_server"):
        a, b = ctx.src.info.var(var), ctx.dst.info.var(var)
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
        f"character_set_server={ctx.src.info.var('character_set_server')} and "
        f"collation_server={ctx.src.info.var('collation_server')} on both servers.",
    )


def check_sql_mode(ctx: _Context) -> CheckResult:
    name = "sql_mode"
    _need(ctx.src)
    _need(ctx.dst)
    a = {m for m in ctx.src.info.var("sql_mode").upper().split(",") if m}
    b = {m for m in ctx.dst.info.var("sql_mode").upper().split(",") if m}
    if a == b:
        return CheckResult(name, PASS, f"sql_mode is the same on both servers ({','.join(sorted(a)) or 'empty'}).")
    return CheckResult(
        name,
        WARN,
        f"sql_mode differs: the {ctx.src.label} has {ctx.src.info.var('sql_mode') or '(empty)'}, the "
        f"{ctx.dst.label} has {ctx.dst.info.var('sql_mode') or '(empty)'} (only on the source: "
        f"{','.join(sorted(a - b)) or '-'}; only on the destination: {','.join(sorted(b - a)) or '-'}). "
        "Values one side accepts (zero dates, truncated text) may be refused by the other.",
        f"set the same sql_mode on both servers: SET GLOBAL sql_mode='{ctx.src.info.var('sql_mode')}' on the "
        "destination and sql_mode=... under [mysqld] in its my.cnf (or the other way round)",
    )


def check_lower_case_table_names(ctx: _Context) -> CheckResult:
    name = "lower_case_table_names"
    _need(ctx.src)
    _need(ctx.dst)
    a, b = ctx.src.info.var("lower_case_table_names"), ctx.dst.info.var("lower_case_table_names")
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
    _need(ctx.src)
    _need(ctx.dst)
    a, b = _effective_tz(ctx.src.info), _effective_tz(ctx.dst.info)
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
    "source_privileges": check_source_privileges,
    "destination_privileges": check_destination_privileges,
    "objects_exist": check_objects_exist,
    "destination_name_clash": check_destination_name_clash,
    "primary_keys": check_primary_keys,
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
    "primary_keys": "FAIL for tables without a PRIMARY KEY or a NOT NULL UNIQUE key. Add a primary key.",
    "triggers": "WARN for triggers on selected tables (on either server): keep each trigger on one side, or set "
    "guard_triggers on (then PASS: the triggers are guarded on both servers; WARN without TRIGGER).",
    "storage_engines": "WARN for non-transactional tables (MyISAM, MEMORY, Aria). ALTER TABLE ... ENGINE=InnoDB.",
    "charset_collation": "WARN if the servers' or databases' character sets or collations differ.",
    "sql_mode": "WARN if sql_mode differs between the servers.",
    "lower_case_table_names": "WARN if lower_case_table_names differs between the servers.",
    "time_zone": "WARN if the servers' time zones differ or their clocks are more than 5 s apart.",
}
assert tuple(ITEM_DOCS) == PRECHECK_ITEMS


# --------------------------------------------------------------------------- gathering facts (read only)


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
        side.fix = "allow the account to read information_schema.GLOBAL_VARIABLES (any login can by default)"
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


def _gather(ctx: _Context) -> None:
    d = ctx.direction
    if ctx.src.ok:
        try:
            dbs = sorted(set(d.selected_databases))
            ph, args = _in(dbs)
            for db, cs, coll in _query(
                ctx.src.conn,
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, "
                "DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME IN ({ph})",
                args,
            ):
                ctx.source_schemata[db] = (cs, coll)
            for db, table, ttype, engine in _query(
                ctx.src.conn,
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE "
                "FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                f"IN ({ph})",
                args,
            ):
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
            ph, args = _in(sorted(targets))
            try:
                for db, cs, coll in _query(
                    ctx.dst.conn,
                    "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, "
                    "DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                    f"WHERE SCHEMA_NAME IN ({ph})",
                    args,
                ):
                    ctx.dest_schemata[db] = (cs, coll)
                for db, table, ttype in _query(
                    ctx.dst.conn,
                    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM "
                    f"information_schema.TABLES WHERE TABLE_SCHEMA IN ({ph})",
                    args,
                ):
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


def _apply_ignores(direction: SyncDirection, results: list[CheckResult]) -> list[CheckResult]:
    out = []
    for r in results:
        if r.name in direction.ignore_precheck_items and r.status != IGNORED:
            out.append(
                CheckResult(
                    r.name, IGNORED, f"ignored by ignore_precheck_items (result was {r.status}: {r.reason})", r.fix
                )
            )
        else:
            out.append(r)
    return out


def _run_all(ctx: _Context) -> list[CheckResult]:
    results = []
    for name, fn in CHECKS.items():
        try:
            r = fn(ctx)
        except _NotChecked as e:
            r = CheckResult(name, FAIL, e.reason, e.fix)
        except Exception as e:  # a check must never raise: report it as that item's failure
            msg = str(e)
            for s in (ctx.src.settings, ctx.dst.settings):
                if s.password:
                    msg = msg.replace(s.password, "***")
            r = CheckResult(
                name,
                FAIL,
                f"the check could not be completed: {type(e).__name__}: {msg}.",
                "fix the error above (often a missing privilege) and run the precheck again",
            )
        results.append(r)
    return _apply_ignores(ctx.direction, results)


def run_checks(
    direction: SyncDirection,
    source_settings: ConnectionSettings,
    dest_settings: ConnectionSettings,
    control: ControlSchema | None = None,
) -> list[CheckResult]:
    """Run every check and return the results (``PRECHECK_ITEMS`` order). Reads only; never raises for a
    failed check."""
    ctx = _Context(
        direction,
        control or ControlSchema(direction.control_schema),
        _Side("source", source_settings),
        _Side("destination", dest_settings),
    )
    try:
        _open(ctx.src)
        _open(ctx.dst)
        _gather(ctx)
        return _run_all(ctx)
    finally:
        _close(ctx.src)
        _close(ctx.dst)


# --------------------------------------------------------------------------- precheck with recording


def run_precheck(
    direction: SyncDirection,
    source_settings: ConnectionSettings,
    dest_settings: ConnectionSettings,
    control: ControlSchema | None = None,
    *,
    run_id: str | None = None,
    logger: logging.Logger | None = None,
) -> PrecheckReport:
    """Run the precheck of one direction and record it in the destination's control schema.

    Never raises because a check failed: read ``report.passed`` / ``report.failed`` (or call
    ``report.raise_for_failures()``).
    """
    logger = logger or log
    control = control or ControlSchema(direction.control_schema)
    run_id = run_id or uuid.uuid4().hex
    task, role = direction.task_name, direction.role
    ctx = _Context(direction, control, _Side("source", source_settings), _Side("destination", dest_settings))
    recorded, record_error, previous = False, None, None
    try:
        _open(ctx.src)
        _open(ctx.dst)
        # Nothing is written on either server before the precheck passes: the checks run first; the results
        # are recorded in the destination's control schema when they pass, or when that schema already exists
        # (a sync that ran before keeps its history). A failed first precheck leaves both servers untouched.
        logger.info(
            "precheck %s of %s: %s -> %s", run_id, direction.key, source_settings.describe(), dest_settings.describe()
        )
        _gather(ctx)
        results = _run_all(ctx)
        report = PrecheckReport(
            task, role, run_id, tuple(results), source_settings.describe(), dest_settings.describe()
        )
        can_record = False
        if not ctx.dst.ok:
            record_error = f"the {ctx.dst.label} is unreachable; results not recorded"
        elif report.failed and not _control_exists(ctx.dst.conn, control):
            record_error = (
                "results not recorded: nothing is written on either server before the precheck passes; "
                "the results are in this report and the task log"
            )
        elif ctx.dst.grants is not None and not ctx.dst.grants.missing(_req(CONTROL_PRIVILEGES), control.schema):
            can_record = True
        else:
            record_error = (
                f"the account on the {ctx.dst.label} may not create or write the control schema "
                f"{quote_ident(control.schema)} (see destination_privileges); results not recorded"
            )
        if can_record:
            try:
                control.ensure(ctx.dst.conn)
                previous = control.get_state(ctx.dst.conn, task, role)
                if (previous or {}).get("state") in ACTIVE_STATES:
                    # a running direction keeps its live state; the results are still recorded
                    logger.info(
                        "precheck %s: %s is %s; its state is left as it is", run_id, direction.key, previous["state"]
                    )
                else:
                    control.set_state(
                        ctx.dst.conn,
                        task,
                        role,
                        State.PRECHECKING,
                        f"precheck {run_id} done",
                        config_json=direction.to_json(),
                    )
                control.record_precheck(ctx.dst.conn, task, role, run_id, results)
                _finish_state(ctx.dst.conn, control, report, previous)
                recorded = True
            except pymysql.err.MySQLError as e:
                record_error = f"cannot write the control schema on the {ctx.dst.label}: {e}"
        if record_error:
            logger.warning("precheck %s: %s", run_id, record_error)
        return PrecheckReport(
            task,
            role,
            run_id,
            tuple(results),
            source_settings.describe(),
            dest_settings.describe(),
            recorded,
            record_error,
        )
    finally:
        _close(ctx.src)
        _close(ctx.dst)


def _control_exists(conn, control: ControlSchema) -> bool:
    try:
        return control.exists(conn) and control.version(conn) > 0
    except pymysql.err.MySQLError:
        return False


def _finish_state(conn, control: ControlSchema, report: PrecheckReport, previous: dict | None) -> None:
    task, role = report.task_name, report.direction
    if (previous or {}).get("state") in ACTIVE_STATES:
        return
    if report.failed:
        lines = "; ".join(f"{r.name}: {r.reason}" for r in report.failed)
        message = f"precheck {report.run_id} failed ({len(report.failed)} item(s)): {lines}"
        control.set_state(conn, task, role, State.PRECHECK_FAILED, message[:60000])
        return
    prev_state = (previous or {}).get("state")
    if prev_state in (None, State.PRECHECKING, State.PRECHECK_FAILED):
        state, message = State.NOT_STARTED, f"precheck {report.run_id} passed"
    else:
        state, message = prev_state, (previous or {}).get("message")
    # Restore only if nobody changed the state meanwhile (e.g. a running direction that failed).
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {control.table('sync_state')} SET state=%s, message=%s, updated_at=UTC_TIMESTAMP(6) "
            f"WHERE task_name=%s AND direction=%s AND state=%s",
            (state, message, task, role, State.PRECHECKING),
        )
