"""Grants: ``SHOW GRANTS`` parsing, privilege evaluation, and the privileges each side of a direction needs
(with the least-privilege GRANT statements). Pure logic except ``read_grants``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.servers import ServerInfo
from airflow_provider_dts.engine.sqltext import qualified, quote_ident

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
    parts: list[str] = []
    buf: list[str] = []
    depth, in_tick = 0, False
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
    reqs: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("REPLICATION SLAVE", ("REPLICATION SLAVE",)),
        ("REPLICATION CLIENT", ("REPLICATION CLIENT",)),
    )
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
    major, minor, patch = version
    info = ServerInfo(flavour=flavour, version=(major, minor, patch), version_string="", variables={}, current_user="")
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


def _obj(db: str, table: str | None = None) -> str:
    return quote_ident(db) if table is None else qualified(db, table)


def guarded_trigger_requirements(info: ServerInfo) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Privileges the sync account needs on a database whose triggers ``guard_triggers`` rewrites
    (``triggers._replace_trigger``). TRIGGER everywhere. MySQL has no ``CREATE OR REPLACE TRIGGER``: the
    rewrite runs ``LOCK TABLES t WRITE``, DROP TRIGGER, CREATE TRIGGER, ``UNLOCK TABLES``, and LOCK TABLES
    needs "the LOCK TABLES privilege, and the SELECT privilege for each object to be locked"
    (https://dev.mysql.com/doc/refman/8.4/en/lock-tables.html); LOCK TABLES is a global or database privilege.
    MariaDB replaces the trigger in one ``CREATE OR REPLACE TRIGGER`` and needs TRIGGER only."""
    if info.is_mariadb:
        return (("TRIGGER", ("TRIGGER",)),)
    return (("TRIGGER", ("TRIGGER",)), ("LOCK TABLES", ("LOCK TABLES",)), ("SELECT", ("SELECT",)))


def guarded_trigger_gaps(info: ServerInfo, grants: Grants, dbs: Iterable[str]) -> list[tuple[str, list[str], str]]:
    """(database, missing privileges, the GRANT statement that fixes it) for every database of ``dbs`` where
    the account of ``info`` cannot rewrite the triggers (``guarded_trigger_requirements``)."""
    reqs = guarded_trigger_requirements(info)
    account = account_sql(info.current_user)
    gaps = []
    for db in dbs:
        miss = grants.missing(reqs, db)
        if miss:
            gaps.append((db, miss, f"GRANT {', '.join(miss)} ON {_obj(db)}.* TO {account};"))
    return gaps
