"""Connections to MySQL-compatible servers, what kind of server they are, and named locks held on them.

``ConnectionSettings`` is what the Airflow layer hands the engine. It never shows its password:
not in ``repr``, not in ``str``, not in ``describe()``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import ssl as _ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.cursors

from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.sqltext import as_text

log = logging.getLogger(__name__)

SESSION_INIT = "SET time_zone='+00:00'"


@dataclass(frozen=True)
class ConnectionSettings:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = field(default="", repr=False)
    database: str | None = None
    unix_socket: str | None = None
    # TLS: {"ca": path, "cert": path, "key": path, "verify_cert": bool, "verify_identity": bool}
    ssl: dict[str, Any] | None = None
    charset: str = "utf8mb4"
    connect_timeout: int = 10
    name: str = ""  # the Airflow connection id, for messages

    def describe(self) -> str:
        where = self.unix_socket or f"{self.host}:{self.port}"
        label = f"{self.name} " if self.name else ""
        return f"{label}({self.user}@{where})"

    def __str__(self) -> str:  # never the password
        return self.describe()

    def pymysql_kwargs(self, **overrides: Any) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "host": self.host,
            "port": int(self.port),
            "user": self.user,
            # UTF-8, as the mariadb/mysql clients send it (PyMySQL would encode a str as latin-1: a correct
            # non-ASCII password was refused, one outside latin-1 raised UnicodeEncodeError)
            "password": self.password.encode("utf-8"),
            "charset": self.charset,
            "connect_timeout": self.connect_timeout,
            "init_command": SESSION_INIT,
            "autocommit": True,
        }
        if self.database:
            kw["database"] = self.database
        if self.unix_socket:
            kw["unix_socket"] = self.unix_socket
        if self.ssl:
            kw["ssl"] = _ssl_context(self.ssl)
        kw.update(overrides)
        return kw

    def connect(self, **overrides: Any) -> pymysql.connections.Connection:
        """Open a PyMySQL connection (autocommit on, UTC session time zone, utf8mb4)."""
        try:
            return pymysql.connect(**self.pymysql_kwargs(**overrides))
        except pymysql.err.OperationalError as e:
            raise ServerError(_connect_message(self, e)) from None


def _ssl_context(opts: dict[str, Any]) -> _ssl.SSLContext:
    ctx = _ssl.create_default_context(cafile=opts.get("ca") or None)
    verify_cert = bool(opts.get("verify_cert", bool(opts.get("ca"))))
    ctx.check_hostname = bool(opts.get("verify_identity", False)) and verify_cert
    if not verify_cert:
        ctx.verify_mode = _ssl.CERT_NONE
    if opts.get("cert"):
        ctx.load_cert_chain(opts["cert"], opts.get("key") or None)
    return ctx


def _connect_message(settings: ConnectionSettings, e: pymysql.err.OperationalError) -> str:
    code = e.args[0] if e.args else None
    text = str(e.args[1]) if len(e.args) > 1 else str(e)
    if settings.password:
        text = text.replace(settings.password, "***")
    if code == 1045:
        fix = "check the login and password of the Airflow connection"
    elif code in (2003, 2002, 2005):
        fix = "check host and port of the Airflow connection and that the server is running and reachable"
    elif code == 1049:
        fix = "the connection's default database does not exist; clear the schema field or create it"
    else:
        fix = "check the connection settings and the server's error log"
    return f"cannot connect to {settings.describe()}: [{code}] {text}. Fix: {fix}"


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that a reconnect may cure (server gone, network lost, restarts)."""
    if isinstance(exc, ServerError):
        return True
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        code = exc.args[0] if exc.args else None
        return code in (
            0,
            2003,
            2006,
            2013,
            2055,
            1053,
            1077,
            1152,
            1156,
            1160,
            1161,
            2002,
            2005,
            1927,
            4031,
        ) or isinstance(exc, pymysql.err.InterfaceError)
    return isinstance(exc, (ConnectionError, OSError, EOFError))


# --------------------------------------------------------------------------- server facts


@dataclass(frozen=True)
class ServerInfo:
    flavour: str  # "mysql" | "mariadb"
    version: tuple[int, int, int]
    version_string: str
    variables: dict[str, str]
    current_user: str

    @property
    def is_mariadb(self) -> bool:
        return self.flavour == "mariadb"

    @property
    def label(self) -> str:
        name = "MariaDB" if self.is_mariadb else "MySQL"
        return f"{name} {'.'.join(map(str, self.version))}"

    def var(self, name: str, default: str = "") -> str:
        return self.variables.get(name.lower(), default)

    def supported(self) -> tuple[bool, str]:
        """Whether this flavour/version is supported, and a reason when it is not."""
        if self.is_mariadb:
            if self.version >= (10, 4, 0):
                return True, ""
            return False, f"{self.label} is older than MariaDB 10.4"
        if (5, 7, 0) <= self.version < (5, 8, 0) or self.version >= (8, 0, 0):
            return True, ""
        return False, f"{self.label} is not MySQL 5.7, 8.0 or 8.4+"

    @property
    def has_binlog_snapshot_status(self) -> bool:
        return self.is_mariadb

    @property
    def binlog_status_sql(self) -> str:
        if not self.is_mariadb and self.version >= (8, 2, 0):
            return "SHOW BINARY LOG STATUS"
        return "SHOW MASTER STATUS"

    @property
    def gtid_enabled(self) -> bool:
        if self.is_mariadb:
            return True  # MariaDB always writes GTIDs
        return self.var("gtid_mode").upper() == "ON"


_FACT_VARIABLES = (
    "version",
    "version_comment",
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "binlog_transaction_compression",
    "log_bin_compress",
    "server_id",
    "gtid_mode",
    "gtid_domain_id",
    "gtid_strict_mode",
    "binlog_expire_logs_seconds",
    "expire_logs_days",
    "character_set_server",
    "collation_server",
    "sql_mode",
    "lower_case_table_names",
    "time_zone",
    "system_time_zone",
    "max_allowed_packet",
    "local_infile",
    "log_slave_updates",
    "log_replica_updates",
    "binlog_checksum",
)


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text or "")
    if not m:
        raise ServerError(f"cannot read the server version from {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def server_info(conn: pymysql.connections.Connection) -> ServerInfo:
    """Read flavour, version and the global variables the engine relies on."""
    with conn.cursor() as cur:
        # SHOW GLOBAL VARIABLES works on every flavour and version: MySQL 8.0 has no
        # information_schema.GLOBAL_VARIABLES (error 1109) and 5.7 refuses it by default (3167)
        placeholders = ",".join(["%s"] * len(_FACT_VARIABLES))
        cur.execute(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({placeholders})", _FACT_VARIABLES)
        variables = {as_text(k).lower(): "" if v is None else as_text(v) for k, v in cur.fetchall()}
        cur.execute("SELECT VERSION(), CURRENT_USER()")
        version_string, current_user = cur.fetchone()
    flavour = "mariadb" if "mariadb" in (version_string + variables.get("version_comment", "")).lower() else "mysql"
    return ServerInfo(
        flavour=flavour,
        version=parse_version(version_string),
        version_string=version_string,
        variables=variables,
        current_user=current_user,
    )


def binlog_position(conn: pymysql.connections.Connection, info: ServerInfo) -> tuple[str, int]:
    """The server's current binlog file and position."""
    with conn.cursor() as cur:
        cur.execute(info.binlog_status_sql)
        row = cur.fetchone()
    if not row:
        raise ServerError("the binary log is off on this server. Fix: start it with log_bin enabled")
    return str(row[0]), int(row[1])


def binlog_files(conn: pymysql.connections.Connection) -> list[tuple[str, int]]:
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [(str(r[0]), int(r[1])) for r in cur.fetchall()]


# --------------------------------------------------------------------------- named locks on the servers of a sync

LOCK_NAME_LIMIT = 64  # MySQL 5.7+ refuses longer GET_LOCK names


def lock_name(prefix: str, *parts: str) -> str:
    """A ``GET_LOCK`` name ``prefix:part:...``; when that is over 64 characters, ``prefix:`` and its SHA-1."""
    raw = ":".join((prefix, *parts))
    if len(raw) <= LOCK_NAME_LIMIT:
        return raw
    return f"{prefix}:" + hashlib.sha1(raw.encode()).hexdigest()


@dataclass(frozen=True)
class NamedLock:
    """One kind of named lock (``GET_LOCK``) that an operation of a sync holds on one or both of its servers.

    ``label`` names it in messages ("DDL owner lock"), ``busy`` says who holds it and for how long, ``fix`` what to
    do when it cannot be taken within ``wait_seconds``."""

    prefix: str
    label: str
    busy: str
    fix: str
    wait_seconds: int = 30

    def name(self, control_schema: str, task_name: str) -> str:
        return lock_name(self.prefix, control_schema, task_name)

    @contextmanager
    def held(
        self,
        name: str,
        *,
        a: tuple[pymysql.connections.Connection, str] | None = None,
        b: tuple[pymysql.connections.Connection, str] | None = None,
    ) -> Iterator[None]:
        """Hold the lock ``name`` on server A's and/or server B's ``(connection, description)``.

        Always A first, then B, whoever calls: two holders never wait for each other in a circle. Raises
        ``ServerError`` (naming the lock, the server, the wait and the fix) when one cannot be taken in time; every
        lock taken is released on every way out (a release that fails is logged: the server drops a named lock
        with its session)."""
        held: list[pymysql.connections.Connection] = []
        try:
            for side in (a, b):
                if side is None:
                    continue
                conn, what = side
                with conn.cursor() as cur:
                    cur.execute("SELECT GET_LOCK(%s, %s)", (name, self.wait_seconds))
                    got = cur.fetchone()[0]
                if got != 1:
                    raise ServerError(
                        f"could not take the {self.label} {name!r} on {what} within {self.wait_seconds} s "
                        f"({self.busy}). Fix: {self.fix}"
                    )
                held.append(conn)
            yield
        finally:
            for conn in reversed(held):
                _release(conn, name)


def _release(conn: pymysql.connections.Connection, name: str) -> None:
    if not conn.open:
        return  # the server released it with the session
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
            cur.fetchall()
    except Exception as e:  # the session is broken: the server releases the lock when it ends
        log.warning("could not release the named lock %r: %s", name, e)
