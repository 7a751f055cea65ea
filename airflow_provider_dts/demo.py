"""The demo: two local MySQL-compatible servers, a sample ``shop`` database, Airflow, the two-way DAG.

    .venv/bin/python -m airflow_provider_dts.demo start [--reset]  # (make demo [RESET=1]) everything up
    .venv/bin/python -m airflow_provider_dts.demo status           # (make demo-status) both directions
    .venv/bin/python -m airflow_provider_dts.demo stop             # (make demo-stop) all down in < 15 s

State lives in the repository's ``.dts-local/`` (``$DTS_DEMO_DIR`` or ``--dir`` to move it; the commands work
from any directory): the pair, Airflow's home with its SQLite database and logs. ``start`` keeps an existing
demo (its servers, data, Airflow runs: the sync resumes from its checkpoints); ``--reset`` starts over from
scratch. Processes are started in their own sessions and stopped by the pids recorded there, never by name.

The Airflow helpers here (``AirflowStandalone``) and the sample data / convergence helpers are also used by
the end-to-end test (tests/e2e).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from airflow_provider_dts.localpair import LocalPair, LocalServer, free_port

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags"
DAG_ID = "dts_two_way_sync"
DEFAULT_STATE_DIR = Path(os.environ.get("DTS_DEMO_DIR") or REPO / ".dts-local")
SHOP_TABLES = ("customers", "orders")


# --------------------------------------------------------------------------- Airflow standalone


def _cmdline(pid: int) -> str:
    try:
        return f"{pid} " + Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:80]
    except OSError:
        return str(pid)


def _live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (Linux /proc; else: whether the group exists)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except ProcessLookupError:
            return []
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            out.append(int(entry.name))
    return out


class AirflowStandalone:
    """``airflow standalone`` (scheduler, dag-processor, triggerer, api-server; SQLite; LocalExecutor)
    in its own AIRFLOW_HOME and process group. ``env`` adds variables (connections, settings)."""

    def __init__(
        self,
        home: Path,
        *,
        port: int = 8080,
        env: dict[str, str] | None = None,
        dags_folder: Path = DAGS_FOLDER,
        python: str | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.extra_env = dict(env or {})
        self.dags_folder = Path(dags_folder).resolve()
        self.bin_dir = Path(python or sys.executable).parent
        self.proc: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        return self.home / "standalone.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                # log servers on free ports, so several Airflows (tests, demo) can run on one machine
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "airflow"), "standalone"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(self.home),
            )
        self.pid_file.write_text(str(self.proc.pid))

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        return pid in _live_group_members(pid)  # the leader's pid is its group id (own session)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=3) as r:
                return json.loads(r.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Until the api-server answers and scheduler, dag-processor and triggerer are healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"airflow standalone exited at start; see {self.log_file}:\n{self.log_tail()}")
            h = self.health()
            if h and all(
                (h.get(c) or {}).get("status") == "healthy"
                for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ):
                return
            time.sleep(1)
        raise RuntimeError(f"Airflow was not ready after {timeout:.0f}s; see {self.log_file}:\n{self.log_tail()}")

    def cli(self, *args: str, timeout: float = 180.0, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.bin_dir / "airflow"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.home),
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"`airflow {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def stop(self, timeout: float = 8.0) -> None:
        """The triggerer first (SIGTERM: it cancels the sync triggers, whose engines stop and record Stopped
        with their checkpoints), then Ctrl-C for standalone itself, then TERM and KILL for whatever is left in
        its process group. Only the pids of this standalone's own process group are signalled.

        Measured here: standalone's own Ctrl-C path sometimes left the scheduler and executor workers running
        for 90 s and more; with the triggerer already stopped nothing of value is lost by not waiting for it.
        """
        pid = self.pid()
        if pid is None:
            return
        pgid: int | None
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid if _live_group_members(pid) else None
        if pgid is not None:
            self._stop_triggerer(pgid, timeout)
            self._signal_group(pid, pgid)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.pid_file.unlink(missing_ok=True)

    def _signal_group(self, pid: int, pgid: int) -> None:
        """Ctrl-C for standalone (``pid``), then TERM and KILL for its process group, until the group is gone."""
        steps = (
            (lambda s: os.kill(pid, s), signal.SIGINT, 2.0),
            (lambda s: os.killpg(pgid, s), signal.SIGTERM, 2.0),
            (lambda s: os.killpg(pgid, s), signal.SIGKILL, 5.0),
        )
        for send, sig, wait in steps:
            try:
                send(sig)
            except ProcessLookupError:
                if sig == signal.SIGINT:  # the leader is gone; its group may not be
                    continue
                break
            started = time.monotonic()
            gone = self._wait_group_gone(pgid, pid, wait)
            left = "" if gone else ": " + "; ".join(_cmdline(p) for p in _live_group_members(pgid))
            self._note(
                f"sent {sig.name}: process group {pgid} "
                f"{'stopped' if gone else 'still running'} after {time.monotonic() - started:.1f}s{left}"
            )
            if gone:
                break

    def _stop_triggerer(self, pgid: int, timeout: float) -> None:
        triggerers = [p for p in _live_group_members(pgid) if "airflow triggerer" in _cmdline(p)]
        if not triggerers:
            return
        started = time.monotonic()
        for p in triggerers:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = started + timeout
        while time.monotonic() < deadline and any(p in _live_group_members(pgid) for p in triggerers):
            time.sleep(0.2)
        left = [p for p in triggerers if p in _live_group_members(pgid)]
        self._note(
            f"sent SIGTERM to the triggerer {triggerers}: "
            f"{'still running' if left else 'stopped'} after {time.monotonic() - started:.1f}s"
        )

    def _note(self, text: str) -> None:
        try:
            with open(self.log_file, "a") as f:
                f.write(f"[dts demo] {time.strftime('%H:%M:%S')} {text}\n")
        except OSError:
            pass

    def _wait_group_gone(self, pgid: int, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()  # reap the leader so it does not linger as a zombie
            if not _live_group_members(pgid):
                return True
            time.sleep(0.2)
        return False

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- metadata database (SQLite) reads, for waiting and for diagnostics

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=10)

    def dag_known(self, dag_id: str = DAG_ID) -> bool:
        try:
            with self._db() as db:
                return db.execute("SELECT COUNT(*) FROM dag WHERE dag_id=?", (dag_id,)).fetchone()[0] > 0
        except sqlite3.Error:
            return False

    def import_errors(self) -> list[str]:
        try:
            with self._db() as db:
                return [f"{r[0]}: {r[1]}" for r in db.execute("SELECT filename, stacktrace FROM import_error")]
        except sqlite3.Error:
            return []

    def task_states(self, dag_id: str = DAG_ID, run_id: str | None = None) -> dict[str, str | None]:
        """Task states of the latest run (or of ``run_id``)."""
        try:
            with self._db() as db:
                if run_id is None:
                    row = db.execute(
                        "SELECT run_id FROM dag_run WHERE dag_id=? ORDER BY id DESC LIMIT 1", (dag_id,)
                    ).fetchone()
                    if row is None:
                        return {}
                    run_id = row[0]
                return dict(
                    db.execute("SELECT task_id, state FROM task_instance WHERE dag_id=? AND run_id=?", (dag_id, run_id))
                )
        except sqlite3.Error:
            return {}

    def wait_dag(self, dag_id: str = DAG_ID, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dag_known(dag_id):
                return
            time.sleep(1)
        raise RuntimeError(f"DAG {dag_id} was not parsed within {timeout:.0f}s; import errors: {self.import_errors()}")

    def admin_password(self) -> str | None:
        try:
            data = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
            return data.get("admin")
        except (OSError, ValueError):
            return None

    def client(self):
        """The provider CLI's REST client (airflow_provider_dts.cli.AirflowApi), as the generated admin."""
        if getattr(self, "_client", None) is None:
            from airflow_provider_dts.cli import AirflowApi

            self._client = AirflowApi(
                f"http://127.0.0.1:{self.port}", user="admin", password=self.admin_password() or ""
            )
        return self._client

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the REST API (``/api/v2/...``) as the admin user (a token from ``/auth/token``)."""
        return self.client().call(method, path, body)

    def run_ids(self, dag_id: str = DAG_ID) -> list[str]:
        try:
            with self._db() as db:
                return [r[0] for r in db.execute("SELECT run_id FROM dag_run WHERE dag_id=? ORDER BY id", (dag_id,))]
        except sqlite3.Error:
            return []

    def set_task_state(self, task_id: str, state: str, dag_id: str = DAG_ID) -> Any:
        """What "Mark success" / "Mark failed" does in the UI."""
        return self.client().set_state(dag_id, self.run_ids(dag_id)[-1], task_id, state)

    def clear_task(self, task_id: str, dag_id: str = DAG_ID) -> Any:
        """What "Clear" does in the UI (only that task)."""
        return self.client().clear(dag_id, self.run_ids(dag_id)[-1], [task_id])

    def task_logs(self, dag_id: str = DAG_ID) -> str:
        """Every task log of the DAG concatenated (diagnostics)."""
        out = []
        root = self.home / "logs" / f"dag_id={dag_id}"
        for path in sorted(root.rglob("*.log")) if root.exists() else []:
            out.append(f"===== {path.relative_to(root)}\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(out)


# --------------------------------------------------------------------------- sample data and checks


def sql(server: LocalServer, *statements: str, args: Iterable[tuple] | None = None) -> list[tuple]:
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            out: list[tuple] = []
            for s in statements:
                cur.execute(s)
                out = list(cur.fetchall())
            return out
    finally:
        conn.close()


def load_sample_shop(server: LocalServer, *, customers: int = 200, orders: int = 1000, seed: int = 7) -> None:
    """Create the sample ``shop`` database (customers, orders) with rows on ``server``."""
    rnd = random.Random(seed)
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS shop.customers (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, "
                "email VARCHAR(120) NOT NULL, city VARCHAR(40) NULL, created_at DATETIME(6) NOT NULL, "
                "UNIQUE KEY email (email)) ENGINE=InnoDB"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, "
                "item VARCHAR(60) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, "
                "status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new', "
                "updated_at DATETIME(6) NOT NULL, KEY customer (customer_id)) ENGINE=InnoDB"
            )
            cities = ["Hangzhou", "Berlin", "Lima", "Oslo", "Pune", "Austin", None]
            cur.executemany(
                "INSERT INTO shop.customers VALUES (%s, %s, %s, %s, '2026-01-01 00:00:00.000000' + INTERVAL %s SECOND)",
                [
                    (i, f"Customer {i} \u00e9\u4e2d", f"c{i}@example.com", rnd.choice(cities), i)
                    for i in range(1, customers + 1)
                ],
            )
            items = ["tea", "coffee", "mug", "kettle", "filter", "grinder", "\U0001f375 matcha"]
            cur.executemany(
                "INSERT INTO shop.orders VALUES (%s, %s, %s, %s, %s, %s, '2026-02-01 00:00:00' + INTERVAL %s SECOND)",
                [
                    (
                        i,
                        rnd.randint(1, customers),
                        rnd.choice(items),
                        rnd.randint(1, 9),
                        f"{rnd.randint(100, 99999) / 100:.2f}",
                        rnd.choice(["new", "paid", "shipped"]),
                        i,
                    )
                    for i in range(1, orders + 1)
                ],
            )
    finally:
        conn.close()


def write_orders(
    server: LocalServer,
    first_id: int,
    count: int,
    *,
    seed: int = 1,
    stop: Callable[[], bool] | None = None,
    note: bool = False,
) -> dict[str, int]:
    """A small OLTP load on ``shop.orders`` using only ids in [first_id, first_id + count): inserts, then
    updates and deletes of those rows, a few per transaction, including a rolled-back transaction."""
    rnd = random.Random(seed)
    done = {"inserted": 0, "updated": 0, "deleted": 0, "transactions": 0}
    conn = server.root_connect()
    conn.autocommit(False)
    try:
        with conn.cursor() as cur:
            ids = list(range(first_id, first_id + count))
            for start in range(0, len(ids), 5):
                if stop is not None and stop():
                    break
                batch = ids[start : start + 5]
                for i in batch:
                    cur.execute(
                        "INSERT INTO shop.orders (id, customer_id, item, qty, price, status, updated_at) "
                        "VALUES (%s, %s, %s, %s, %s, 'new', UTC_TIMESTAMP(6))",
                        (i, rnd.randint(1, 50), f"item {i}", rnd.randint(1, 5), f"{rnd.randint(100, 9999) / 100:.2f}"),
                    )
                    done["inserted"] += 1
                conn.commit()
                done["transactions"] += 1
                upd = rnd.choice(batch)
                cur.execute(
                    "UPDATE shop.orders SET qty = qty + 1, status = 'paid', updated_at = UTC_TIMESTAMP(6) "
                    "WHERE id = %s",
                    (upd,),
                )
                done["updated"] += cur.rowcount
                if rnd.random() < 0.3:
                    cur.execute("DELETE FROM shop.orders WHERE id = %s", (batch[0],))
                    done["deleted"] += cur.rowcount
                conn.commit()
                done["transactions"] += 1
                if rnd.random() < 0.1:  # a rolled-back transaction must never arrive anywhere
                    cur.execute("UPDATE shop.orders SET qty = -999 WHERE id = %s", (batch[-1],))
                    conn.rollback()
                time.sleep(0.01)
    finally:
        conn.close()
    return done


def table_digest(server: LocalServer, db: str, table: str) -> tuple[int, str, list[str]]:
    """(row count, digest of every row in key order, column names)."""
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone='+00:00'")
            cur.execute(f"SELECT * FROM `{db}`.`{table}` ORDER BY 1")
            cols = [c[0] for c in cur.description]
            h = hashlib.sha256()
            n = 0
            for row in cur.fetchall():
                h.update(repr(row).encode())
                n += 1
            return n, h.hexdigest(), cols
    finally:
        conn.close()


def compare_shop(a: LocalServer, b: LocalServer, tables: Iterable[str] = SHOP_TABLES) -> dict[str, dict[str, Any]]:
    out = {}
    for t in tables:
        na, da, ca = table_digest(a, "shop", t)
        nb, db_, cb = table_digest(b, "shop", t)
        out[t] = {"rows_a": na, "rows_b": nb, "columns_equal": ca == cb, "equal": (na, da, ca) == (nb, db_, cb)}
    return out


def user_binlog_events(server: LocalServer, db: str = "shop") -> int:
    """Row-event table maps on ``db`` in the server's binlogs: grows with every transaction written to it.
    Once writes stop it must stop growing (an echo would keep it growing)."""
    conn = server.root_connect(use_unicode=False)  # event texts can hold any bytes (statements in any charset)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            files = [r[0].decode() for r in cur.fetchall()]
            count = 0
            needle = f"({db}.".encode()
            for f in files:
                cur.execute(f"SHOW BINLOG EVENTS IN '{f}'")
                for row in cur.fetchall():
                    if row[2] == b"Table_map" and needle in (row[5] or b""):
                        count += 1
            return count
    finally:
        conn.close()


def direction_status(pair: LocalPair, task_name: str, control_schema: str = "dts_meta") -> dict[str, Any]:
    """Both directions' status: forward lives on B (its destination), reverse on A."""
    from airflow_provider_dts.engine.status import DirectionStatus, read_status

    out = {}
    for role, server in (("forward", pair.b), ("reverse", pair.a)):
        try:
            out[role] = read_status(server.settings(), control_schema, task_name, role)
        except Exception as e:
            out[role] = DirectionStatus(task_name, role, "unreachable", str(e))
    return out


def status_lines(pair: LocalPair, task_name: str) -> list[str]:
    lines = []
    for role, st in direction_status(pair, task_name).items():
        label = "task one (A -> B)" if role == "forward" else "task two (B -> A)"
        lag = "-" if st.lag_seconds is None else f"{st.lag_seconds:5.1f}s"
        rows = st.rows_inserted + st.rows_updated + st.rows_deleted
        lines.append(
            f"  {label:18} {st.state:15} lag {lag:>7}  rows applied {rows:6} "
            f"(+{st.rows_inserted} ~{st.rows_updated} -{st.rows_deleted})  conflicts {st.conflicts}"
        )
        if st.state in ("Failed", "PrecheckFailed", "InitializeFailed") and st.message:
            lines.append(f"      {st.message}")
    return lines


# --------------------------------------------------------------------------- the demo


def _say(text: str = "") -> None:
    print(text, flush=True)


def _server_running(server: LocalServer) -> bool:
    pid = server.pid()
    return pid is not None and pid in _live_group_members(pid)  # mariadbd leads its own session


def _port_file(home: Path) -> Path:
    return home / "demo-port"


def demo_start(state_dir: Path, port: int, reset: bool = False) -> int:
    state_dir = state_dir.resolve()
    pair_dir, home = state_dir / "pair", state_dir / "airflow"
    if not reset and _port_file(home).exists():  # a kept demo answers where it was
        port = int(_port_file(home).read_text().strip() or port)
    airflow = AirflowStandalone(home, port=port)
    if airflow.running() and not reset:
        _say(f"The demo is already running (Airflow at {airflow.url}); kept as it is.")
        _say("Status: make demo-status   Stop: make demo-stop   Start over: make demo RESET=1")
        return 0
    kept = not reset and (pair_dir / "pair.json").exists() and home.exists()
    if reset or not kept:
        if airflow.pid() is not None:
            airflow.stop()
        import shutil

        if (pair_dir / "pair.json").exists():
            LocalPair.load(pair_dir).stop()
        shutil.rmtree(pair_dir, ignore_errors=True)
        # a fresh Airflow home: no run of an earlier demo resumes against the new servers
        shutil.rmtree(home, ignore_errors=True)
    if kept:
        return _demo_resume(pair_dir, airflow)
    _say("1/6  Starting two MySQL-compatible servers (A = source, B = destination) ...")
    pair = LocalPair.create(pair_dir).start()
    _say(f"     A: 127.0.0.1:{pair.a.port}   B: 127.0.0.1:{pair.b.port}   (user dts_admin, state in {pair_dir})")
    _say("2/6  Loading the sample database `shop` (customers, orders) on A ...")
    load_sample_shop(pair.a)
    _say(f"     A has {sql(pair.a, 'SELECT COUNT(*) FROM shop.orders')[0][0]} orders; B is empty.")

    _say(f"3/6  Starting Airflow (airflow standalone) on {airflow.url}; this takes about 30-60 s ...")
    airflow.extra_env.update(pair.env())
    if not _start_airflow(airflow):
        return 1
    task_name = "dts_two_way_sync"
    _say(f'4/6  Triggering DAG {DAG_ID} with {{"objects": ["shop"]}} ...')
    airflow.cli("dags", "unpause", DAG_ID)
    airflow.cli("dags", "trigger", DAG_ID, "--conf", json.dumps({"objects": ["shop"]}))
    _say("     precheck -> schema sync -> full data sync -> task one incremental; then task two")
    deadline = time.monotonic() + 600
    last = None
    while time.monotonic() < deadline:
        statuses = direction_status(pair, task_name)
        states = {r: s.state for r, s in statuses.items()}
        failed = [t for t, s in airflow.task_states().items() if s in ("failed", "upstream_failed")]
        line = " | ".join(status_lines(pair, task_name))
        if line != last:
            _say("\n".join(status_lines(pair, task_name)))
            last = line
        if failed:
            _say(f"     Airflow tasks failed: {failed}. See the task logs at {airflow.url} or in {home / 'logs'}.")
            break
        if all(s == "Synchronizing" for s in states.values()):
            break
        time.sleep(3)
    else:
        _say("     Not synchronizing after 10 minutes; see the task logs in the UI.")
    _say("5/6  Writing on both sides at once (A: orders 100000.., B: orders 200000..) and altering a table on A ...")
    import threading

    results: dict[str, dict] = {}
    threads = [
        threading.Thread(target=lambda: results.__setitem__("A", write_orders(pair.a, 100000, 200, seed=11))),
        threading.Thread(target=lambda: results.__setitem__("B", write_orders(pair.b, 200000, 200, seed=22))),
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)
    sql(pair.a, "ALTER TABLE shop.customers ADD COLUMN loyalty_points INT NOT NULL DEFAULT 0")
    while any(t.is_alive() for t in threads):
        _say("\n".join(status_lines(pair, task_name)))
        time.sleep(2)
    for t in threads:
        t.join()
    _say(f"     written on A: {results.get('A')}\n     written on B: {results.get('B')}")
    _say("6/6  Convergence check (both sides compared row by row) ...")
    verdict = None
    for _ in range(60):
        verdict = compare_shop(pair.a, pair.b)
        if all(v["equal"] for v in verdict.values()):
            break
        time.sleep(1)
    _say("\n".join(status_lines(pair, task_name)))
    final = verdict or {}
    for table, v in final.items():
        _say(
            f"     shop.{table:10} A {v['rows_a']:6} rows   B {v['rows_b']:6} rows   "
            f"{'EQUAL' if v['equal'] else 'DIFFERENT'}"
        )
    ok = bool(final) and all(v["equal"] for v in final.values())
    _say("")
    _say("Both sides are equal." if ok else "The sides differ: look at the task logs and the control schema.")
    _say("")
    password = airflow.admin_password()
    _say(f"Airflow UI:  {airflow.url}   login: admin / {password or '(see ' + str(home) + ')'}")
    _say("Status:      make demo-status      Stop: make demo-stop      Start over: make demo RESET=1")
    _say(
        f"MySQL:       mariadb -h127.0.0.1 -P{pair.a.port} -udts_admin -p (A)   -P{pair.b.port} (B); "
        f"passwords in {pair_dir / 'pair.json'}"
    )
    return 0 if ok else 2


def _start_airflow(airflow: AirflowStandalone) -> bool:
    try:
        airflow.home.mkdir(parents=True, exist_ok=True)
        _port_file(airflow.home).write_text(str(airflow.port))
        airflow.start()
        airflow.wait_ready()
        airflow.wait_dag()
        return True
    except Exception as e:
        _say(f"     Airflow did not come up: {e}")
        _say("     Run `make demo-stop` to clean up.")
        return False


def _demo_resume(pair_dir: Path, airflow: AirflowStandalone) -> int:
    """Restart a kept demo: same servers and data, same Airflow home; the triggerer re-creates the deferred
    incremental syncs, which resume from their checkpoints (nothing is copied again)."""
    pair = LocalPair.load(pair_dir)
    _say(
        f"1/2  Keeping the existing demo in {pair_dir.parent} (start over: make demo RESET=1); starting its servers ..."
    )
    for server in (pair.a, pair.b):
        if not _server_running(server):
            server.start()
    airflow.extra_env.update(pair.env())
    _say(f"2/2  Starting Airflow on {airflow.url}; the sync resumes from its checkpoints ...")
    if not _start_airflow(airflow):
        return 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(s.state == "Synchronizing" for s in direction_status(pair, "dts_two_way_sync").values()):
            break
        time.sleep(2)
    _say("\n".join(status_lines(pair, "dts_two_way_sync")))
    _say(f"Airflow UI:  {airflow.url}   login: admin / {airflow.admin_password() or '(see ' + str(airflow.home) + ')'}")
    _say("Status:      make demo-status      Stop: make demo-stop      Start over: make demo RESET=1")
    return 0


def demo_status(state_dir: Path) -> int:
    pair_dir = state_dir.resolve() / "pair"
    if not (pair_dir / "pair.json").exists():
        _say(
            f"No demo in {state_dir.resolve()} (`make demo` creates one; --dir or DTS_DEMO_DIR if it lives elsewhere)."
        )
        return 1
    pair = LocalPair.load(pair_dir)
    _say("\n".join(status_lines(pair, "dts_two_way_sync")))
    try:
        for t, v in compare_shop(pair.a, pair.b).items():
            _say(f"  shop.{t:10} A {v['rows_a']} rows, B {v['rows_b']} rows: {'equal' if v['equal'] else 'different'}")
    except Exception as e:
        _say(f"  cannot compare: {e}")
    return 0


def demo_stop(state_dir: Path) -> int:
    state_dir = state_dir.resolve()
    airflow = AirflowStandalone(state_dir / "airflow")
    if airflow.pid() is not None:
        _say("Stopping Airflow ...")
        airflow.stop()
    pair_dir = state_dir / "pair"
    if (pair_dir / "pair.json").exists():
        _say("Stopping the MySQL pair ...")
        LocalPair.load(pair_dir).stop()
    _say("Demo stopped.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_dts.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("start", "status", "stop"))
    parser.add_argument("--reset", action="store_true", help="start: wipe an existing demo and start over")
    parser.add_argument("--dir", default=str(DEFAULT_STATE_DIR), help="state directory (default .dts-local)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("DTS_DEMO_PORT", "8080")),
        help="Airflow UI/API port (default 8080)",
    )
    args = parser.parse_args(argv)
    state_dir = Path(args.dir)
    if args.action == "start":
        return demo_start(state_dir, args.port, reset=args.reset)
    if args.action == "status":
        return demo_status(state_dir)
    return demo_stop(state_dir)


if __name__ == "__main__":
    sys.exit(main())
