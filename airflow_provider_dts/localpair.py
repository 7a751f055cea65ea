"""Two throwaway MySQL-compatible servers configured for two-way sync, for tests and the demo.

    python -m airflow_provider_dts.localpair start [--dir DIR] [--extra-a "--flag=x"] [--extra-b ...]
    python -m airflow_provider_dts.localpair env   [--dir DIR]      # prints the AIRFLOW_CONN_* exports
    python -m airflow_provider_dts.localpair stop  [--dir DIR]

Uses ``mariadbd`` (Debian's MariaDB) or Oracle ``mysqld``, whichever is installed. Each server gets its own
data directory, a free port on 127.0.0.1, binlog in ROW format with FULL row image and row metadata, and
its own ``server_id`` / ``gtid_domain_id``. A user ``dts_admin`` with a random password is created on
both. Servers are stopped by their pid files, never by process name.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from airflow_provider_dts.engine.servers import ConnectionSettings

ADMIN_USER = "dts_admin"
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
DEFAULT_CONN_IDS = ("dts_source", "dts_destination")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find_server_binary() -> tuple[str, str]:
    for name in ("mariadbd", "mysqld"):
        path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            return path, ("mariadb" if "mariadb" in out.lower() else "mysql")
    raise RuntimeError(
        "no MySQL-compatible server is installed. Fix: run `make deps` (installs Debian's mariadb-server)"
    )


def _alive(pid: int) -> bool:
    """True while ``pid`` runs. Reaps it when it is our own exited child (a zombie answers kill(pid, 0))."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class LocalServer:
    """One throwaway server. ``extra_args`` are appended to the command line (later flags win)."""

    datadir: Path
    server_id: int
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    password: str = ""
    binary: str = ""
    flavour: str = ""

    @property
    def socket_path(self) -> Path:
        return self.datadir / "s.sock"

    def __post_init__(self) -> None:
        self.datadir = Path(self.datadir).resolve()  # the bootstrap and the server need absolute paths

    @property
    def tmpdir(self) -> Path:
        # beside the data directory: a folder inside it would show up as a database
        return self.datadir.parent / f"{self.datadir.name}-tmp"

    @property
    def pid_file(self) -> Path:
        return self.datadir / "p.pid"

    @property
    def error_log(self) -> Path:
        return self.datadir / "err.log"

    def settings(self, *, user: str = ADMIN_USER, password: str | None = None, name: str = "") -> ConnectionSettings:
        return ConnectionSettings(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            name=name,
        )

    def root_connect(self, **kw) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=str(self.socket_path), user="root", password="", autocommit=True, **kw)

    # ------------------------------------------------------------------ lifecycle

    def initialize(self) -> None:
        if not self.binary:
            self.binary, self.flavour = _find_server_binary()
        if (self.datadir / "mysql").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.flavour == "mariadb":
            installer = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
            cmd = [
                installer,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                f"--tmpdir={self.tmpdir}",
            ]
        else:
            cmd = [
                self.binary,
                "--no-defaults",
                "--initialize-insecure",
                f"--datadir={self.datadir}",
                "--user=root",
                f"--tmpdir={self.tmpdir}",
            ]
        for _attempt in range(3):
            self.tmpdir.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode == 0:
                return
            # a failed bootstrap leaves a half-made data directory: start again from empty
            for child in self.datadir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise RuntimeError(f"initializing {self.datadir} failed:\n{r.stdout}\n{r.stderr}")

    def command(self) -> list[str]:
        d = self.datadir
        cmd = [
            self.binary,
            "--no-defaults",
            "--user=root",
            f"--datadir={d}",
            f"--port={self.port}",
            f"--socket={self.socket_path}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--server-id={self.server_id}",
            f"--log-bin={d}/binlog",
            f"--tmpdir={self.tmpdir}",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--binlog-row-metadata=FULL",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
            "--max-connections=300",
            "--local-infile=1",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ]
        if self.flavour == "mariadb":
            cmd += [
                f"--gtid-domain-id={self.server_id}",
                "--log-slave-updates",
                "--gtid-strict-mode=ON",  # a failover to a replica can resume by GTID (engine/gtid.py)
                "--skip-name-resolve",
            ]
        else:
            cmd += [
                "--gtid-mode=ON",
                "--enforce-gtid-consistency=ON",
                "--log-replica-updates",
                "--mysqlx=OFF",
                "--skip-name-resolve",
            ]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = 60.0) -> None:
        self.initialize()
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        with open(self.datadir / "stdout.log", "ab") as log:  # the server keeps its own copy of the descriptor
            proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server on port {self.port} exited at start:\n{self._log_tail()}")
            try:
                conn = self.root_connect(connect_timeout=2)
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server on port {self.port} did not answer in {timeout}s:\n{self._log_tail()}"
                    ) from None
                time.sleep(0.1)
        with conn, conn.cursor() as cur:
            if not self.password:
                self.password = secrets.token_urlsafe(12)
            cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (ADMIN_USER, self.password))
            cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED BY %s", (ADMIN_USER, self.password))
            for host in ("%", "localhost"):
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}' WITH GRANT OPTION")

    def _log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no error log)"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 60.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server (crash simulation)."""
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(200):
                if not _alive(pid):
                    break
                time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class LocalPair:
    """Server A (the usual source, ``dts_source``) and server B (``dts_destination``)."""

    base: Path
    a: LocalServer
    b: LocalServer

    @classmethod
    def create(
        cls, base: str | Path | None = None, *, extra_a: list[str] | None = None, extra_b: list[str] | None = None
    ) -> LocalPair:
        base_path = Path(base).resolve() if base else Path(tempfile.mkdtemp(prefix="dts-pair-"))
        base_path.mkdir(parents=True, exist_ok=True)
        a = LocalServer(base_path / "a", server_id=1, extra_args=list(extra_a or []))
        b = LocalServer(base_path / "b", server_id=2, extra_args=list(extra_b or []))
        return cls(base_path, a, b)

    def start(self) -> LocalPair:
        self.a.start()
        self.b.start()
        self.save()
        return self

    def stop(self) -> None:
        for s in (self.a, self.b):
            s.stop()

    def save(self) -> None:
        state = {
            name: {
                "datadir": str(s.datadir),
                "server_id": s.server_id,
                "port": s.port,
                "password": s.password,
                "extra_args": s.extra_args,
            }
            for name, s in (("a", self.a), ("b", self.b))
        }
        path = self.base / "pair.json"
        path.write_text(json.dumps(state))
        path.chmod(0o600)

    @classmethod
    def load(cls, base: str | Path) -> LocalPair:
        base_path = Path(base)
        state = json.loads((base_path / "pair.json").read_text())
        servers = {}
        for name in ("a", "b"):
            s = state[name]
            srv = LocalServer(
                Path(s["datadir"]),
                server_id=s["server_id"],
                port=s["port"],
                extra_args=s["extra_args"],
                password=s["password"],
            )
            srv.binary, srv.flavour = _find_server_binary()
            servers[name] = srv
        return cls(base_path, servers["a"], servers["b"])

    def env(self, conn_ids: tuple[str, str] = DEFAULT_CONN_IDS) -> dict[str, str]:
        out = {}
        for conn_id, s in zip(conn_ids, (self.a, self.b)):
            out[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "mysql", "host": "127.0.0.1", "port": s.port, "login": ADMIN_USER, "password": s.password}
            )
        return out


# --------------------------------------------------------------------------- external servers (tests)

EXTERNAL_ENV = ("DTS_TEST_EXTERNAL_A", "DTS_TEST_EXTERNAL_B")
EXTERNAL_CONFIRM_ENV = "DTS_TEST_EXTERNAL_DROP_DATABASES"


class ExternalServerError(RuntimeError):
    """An external server is misconfigured, or a test asked it to do what only a throwaway server can."""


@dataclass
class ExternalServer:
    """An existing server the test suite uses instead of starting one (``DTS_TEST_EXTERNAL_A`` / ``_B``).

    It offers what tests use of ``LocalServer``: ``root_connect`` (the administrative account of the URL),
    ``settings()`` / ``password`` / ``port`` (the ``dts_admin`` account ``prepare`` creates, with a new random
    password every run, as a local server has), ``server_id``, ``flavour``. It cannot be started, stopped,
    killed or reached by its socket: tests that need that are marked ``own_servers`` and skipped.
    ``prepare`` refuses a server that already has a ``dts_admin`` account (it never takes one over); ``cleanup``
    drops every account created since ``prepare`` (``dts_admin`` and the tests' own), leaving the others alone.
    The administrative password never appears in ``repr``, messages or a command line."""

    name: str  # the environment variable it came from, for messages
    host: str
    port: int
    admin_user: str
    admin_password: str = field(default="", repr=False)
    password: str = field(default="", repr=False)  # dts_admin's, set by prepare()
    server_id: int = 0
    flavour: str = ""
    version: str = ""
    # (user, host) of the accounts present when prepare() ran: cleanup() drops only the others
    accounts_before: frozenset[tuple[str, str]] | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, name: str, url: str) -> ExternalServer:
        """``mysql://USER[:PASSWORD]@HOST[:PORT][?password_file=PATH]`` (user and password percent-encoded).
        ``password_file`` keeps the password out of the environment: its first line is the password."""
        parsed = urlsplit(url.strip())
        where = f"{name} (mysql://USER[:PASSWORD]@HOST[:PORT][?password_file=PATH])"
        if parsed.scheme not in ("mysql", "mariadb") or not parsed.hostname or not parsed.username:
            raise ExternalServerError(
                f"{where} is not a server URL with a user and a host. Fix: set it like "
                f"mysql://root@127.0.0.1:3307?password_file=/run/secrets/mysql_a"
            )
        try:
            port = parsed.port or 3306
        except ValueError:
            raise ExternalServerError(f"{where} has a port that is not a number. Fix: mysql://USER@HOST:3306") from None
        query = parse_qs(parsed.query)
        unknown = set(query) - {"password_file"}
        if unknown:
            raise ExternalServerError(f"{where} has unknown parameters {sorted(unknown)}; only password_file is read")
        password = unquote(parsed.password or "")
        if "password_file" in query:
            path = Path(query["password_file"][-1])
            try:
                password = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
            except OSError as e:
                raise ExternalServerError(f"{name}: the password_file {path} cannot be read ({e.strerror})") from None
        return cls(name, parsed.hostname, port, unquote(parsed.username), password)

    def describe(self) -> str:
        return f"{self.name} ({self.admin_user}@{self.host}:{self.port})"

    def __str__(self) -> str:  # never a password
        return self.describe()

    def root_connect(self, **kw) -> pymysql.connections.Connection:
        kw.setdefault("connect_timeout", 10)
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.admin_user,
            password=self.admin_password.encode("utf-8"),
            autocommit=True,
            **kw,
        )

    def settings(self, *, user: str = ADMIN_USER, password: str | None = None, name: str = "") -> ConnectionSettings:
        return ConnectionSettings(
            host=self.host,
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            name=name,
        )

    def prepare(self) -> ExternalServer:
        """Check the server can be a sync's source and destination and holds no ``dts_admin`` account yet, read
        its identity and its accounts, and create ``dts_admin`` (``'%'`` and ``localhost``) with a new random
        password and every privilege, as a local server has it. ``cleanup`` drops it again."""
        try:
            conn = self.root_connect()
        except pymysql.err.MySQLError as e:
            raise ExternalServerError(
                f"{self.describe()}: cannot connect: {e}. Fix: check the URL and that the server is running"
            ) from None
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT @@server_id, VERSION(), @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, "
                "@@character_set_server, @@local_infile"
            )
            server_id, version, log_bin, fmt, image, metadata, charset, local_infile = cur.fetchone()
            self.server_id, self.version = int(server_id), str(version)
            self.flavour = "mariadb" if "mariadb" in self.version.lower() else "mysql"
            wrong = [
                f"{k}={v}"
                for k, v, want in (
                    ("log_bin", log_bin, 1),
                    ("binlog_format", fmt, "ROW"),
                    ("binlog_row_image", image, "FULL"),
                    ("binlog_row_metadata", metadata, "FULL"),
                    ("character_set_server", charset, "UTF8MB4"),
                    ("local_infile", local_infile, 1),
                )
                if str(v).upper() != str(want)
            ]
            if wrong:
                raise ExternalServerError(
                    f"{self.describe()} has {', '.join(wrong)}; the suite needs log_bin=ON, binlog_format=ROW, "
                    "binlog_row_image=FULL, binlog_row_metadata=FULL, character_set_server=utf8mb4, local_infile=ON. "
                    "Fix: start it with --log-bin --binlog-format=ROW --binlog-row-image=FULL "
                    "--binlog-row-metadata=FULL --character-set-server=utf8mb4 --local-infile=1"
                )
            accounts = self._accounts(cur)
            taken = sorted(host for user, host in accounts if user == ADMIN_USER)
            if taken:
                names = ", ".join(f"'{ADMIN_USER}'@'{h}'" for h in taken)
                raise ExternalServerError(
                    f"{self.describe()} already has the account {names}: the suite creates its own {ADMIN_USER} "
                    f"(every privilege, a new password) and drops it at the end, so it never takes over an existing "
                    f"one. Fix: if it is left from an interrupted test run, DROP USER {names}; otherwise use a "
                    "throwaway server without that account"
                )
            self.accounts_before = frozenset(accounts)
            self.password = secrets.token_urlsafe(12)
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (ADMIN_USER, host, self.password))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}' WITH GRANT OPTION")
        return self

    def _accounts(self, cur) -> set[tuple[str, str]]:
        cur.execute("SELECT User, Host FROM mysql.user")
        return {(str(user), str(host)) for user, host in cur.fetchall()}

    def drop_databases(self) -> None:
        """Drop every database but the system ones (what the suite does before each test)."""
        with self.root_connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            for (name,) in cur.fetchall():
                if name not in SYSTEM_DATABASES:
                    cur.execute("DROP DATABASE `" + name.replace("`", "``") + "`")

    def cleanup(self) -> list[str]:
        """Drop every account (and MariaDB role) that did not exist when ``prepare`` ran: ``dts_admin`` and the
        accounts tests created. Returns the ``'user'@'host'`` names dropped. Nothing before ``prepare``."""
        if self.accounts_before is None:
            return []
        dropped = []
        with self.root_connect() as conn, conn.cursor() as cur:
            roles: set[str] = set()
            if self.flavour == "mariadb":
                cur.execute("SELECT User FROM mysql.user WHERE is_role = 'Y'")
                roles = {str(r) for (r,) in cur.fetchall()}
            for user, host in sorted(self._accounts(cur) - self.accounts_before):
                if user in roles and host == "":
                    cur.execute("DROP ROLE IF EXISTS %s", (user,))
                else:
                    cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
                dropped.append(f"'{user}'@'{host}'")
        self.accounts_before = None
        return dropped

    def _refuse(self, what: str) -> ExternalServerError:
        return ExternalServerError(
            f"{self.describe()} is an external server: the test suite cannot {what} it. Fix: mark the test "
            "@pytest.mark.own_servers (it then runs only on the servers the suite starts itself)"
        )

    @property
    def socket_path(self) -> Path:
        raise self._refuse("reach the socket file of")

    def start(self, timeout: float = 60.0) -> None:
        raise self._refuse("start")

    def stop(self, timeout: float = 60.0) -> None:
        raise self._refuse("stop")

    def kill(self) -> None:
        raise self._refuse("kill")

    def restart(self) -> None:
        raise self._refuse("restart")

    def pid(self) -> int | None:
        raise self._refuse("find the process of")


@dataclass
class ExternalPair:
    """Servers A and B named by ``DTS_TEST_EXTERNAL_A`` and ``DTS_TEST_EXTERNAL_B``, used as ``LocalPair``."""

    a: ExternalServer
    b: ExternalServer

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExternalPair | None:
        """The pair the environment names, or None when neither variable is set."""
        env = os.environ if environ is None else environ
        urls = [env.get(n, "").strip() for n in EXTERNAL_ENV]
        if not any(urls):
            return None
        if not all(urls):
            missing = [n for n, u in zip(EXTERNAL_ENV, urls) if not u]
            raise ExternalServerError(f"set both {' and '.join(EXTERNAL_ENV)} (missing: {', '.join(missing)})")
        if env.get(EXTERNAL_CONFIRM_ENV, "") != "1":
            raise ExternalServerError(
                f"the test suite DROPS EVERY DATABASE (except mysql, sys, information_schema, performance_schema) on "
                f"the servers {' and '.join(EXTERNAL_ENV)} name. It also rotates their binary logs (FLUSH BINARY "
                f"LOGS; it never purges them), changes global settings while a test runs (each put back afterwards), "
                f"and creates accounts ({ADMIN_USER} and test accounts, dropped at the end; it refuses a server that "
                f"already has a {ADMIN_USER}). Fix: use throwaway servers only, and confirm with "
                f"{EXTERNAL_CONFIRM_ENV}=1"
            )
        a, b = (ExternalServer.from_url(n, u) for n, u in zip(EXTERNAL_ENV, urls))
        if (a.host, a.port) == (b.host, b.port):
            raise ExternalServerError(f"{EXTERNAL_ENV[0]} and {EXTERNAL_ENV[1]} name the same server {a.host}:{a.port}")
        return cls(a, b)

    def start(self) -> ExternalPair:
        try:
            self.a.prepare()
            self.b.prepare()
            if self.a.server_id == self.b.server_id:
                raise ExternalServerError(
                    f"{self.a.describe()} and {self.b.describe()} have the same server_id {self.a.server_id}. Fix: "
                    "give each its own --server-id"
                )
        except BaseException:
            for s in (self.a, self.b):  # a dts_admin made on A before B was refused must not stay behind
                s.cleanup()
            raise
        return self

    def stop(self) -> None:
        """The servers belong to whoever started them: only the accounts made since ``start`` are dropped
        (``dts_admin``, whose password was in this process's environment, and the tests' accounts), after the
        last test's databases (MySQL 8.0.22+ refuses to drop the DEFINER of a view, routine, trigger or event).
        Tries both servers, then raises naming any it could not clean up."""
        failed = []
        for s in (self.a, self.b):
            if s.accounts_before is None:
                continue  # never prepared: nothing of ours there
            try:
                s.drop_databases()
                s.cleanup()
            except pymysql.err.MySQLError as e:
                failed.append(f"{s.describe()}: {e}")
        if failed:
            raise ExternalServerError(
                f"could not drop the accounts the test run created ({'; '.join(failed)}). Fix: DROP USER "
                f"'{ADMIN_USER}'@'%', '{ADMIN_USER}'@'localhost' (and the test accounts) on it by hand"
            )

    def env(self, conn_ids: tuple[str, str] = DEFAULT_CONN_IDS) -> dict[str, str]:
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(
                {"conn_type": "mysql", "host": s.host, "port": s.port, "login": ADMIN_USER, "password": s.password}
            )
            for conn_id, s in zip(conn_ids, (self.a, self.b))
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_dts.localpair",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("start", "stop", "env"))
    parser.add_argument("--dir", default=".dts-local/pair", help="state directory of the pair")
    parser.add_argument("--extra-a", default="", help="extra server flags for server A (source)")
    parser.add_argument("--extra-b", default="", help="extra server flags for server B (destination)")
    args = parser.parse_args(argv)
    base = Path(args.dir)
    if args.action == "start":
        if (base / "pair.json").exists():
            pair = LocalPair.load(base)
            if pair.a.pid() and pair.b.pid():
                print(f"# pair already running in {base}", file=sys.stderr)
            else:
                pair.start()
        else:
            pair = LocalPair.create(base, extra_a=shlex.split(args.extra_a), extra_b=shlex.split(args.extra_b))
            pair.start()
        print(f"# MySQL pair running: A on 127.0.0.1:{pair.a.port}, B on 127.0.0.1:{pair.b.port}", file=sys.stderr)
        for k, v in pair.env().items():
            print(f"export {k}={shlex.quote(v)}")
        return 0
    if not (base / "pair.json").exists():
        print(f"no pair in {base}", file=sys.stderr)
        return 0 if args.action == "stop" else 1
    pair = LocalPair.load(base)
    if args.action == "env":
        for k, v in pair.env().items():
            print(f"export {k}={shlex.quote(v)}")
    else:
        pair.stop()
        print(f"# pair in {base} stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
