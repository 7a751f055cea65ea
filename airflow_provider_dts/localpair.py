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
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from airflow_provider_dts.engine.servers import ConnectionSettings

ADMIN_USER = "dts_admin"
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
