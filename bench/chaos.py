"""Fault-injection suite: two-way sync under a concurrent write load on both sides, with faults injected.

    .venv/bin/python bench/chaos.py                 # the full suite (20 SIGKILLs, 30 s outage, ...)
    .venv/bin/python bench/chaos.py --quick         # the short version that `make test` also runs

Both directions run as separate runner processes (``python -m airflow_provider_dts.engine.runner``), task one
A -> B and task two B -> A, over a `shop` schema. Two writers commit transactions on A and on B at the same time
with disjoint keys; each transaction inserts an account and ledger rows, updates and deletes older accounts of
its own side and bumps its side's counter row, so a transaction lost or applied twice shows on the other side.

Each round: writers run -> a fault is injected -> writers stop -> wait until both sides converge (the recovery
time is measured from the end of the fault) -> count:
- converge s: seconds from the end of the fault round's writes until both sides hold the same rows;
- rows lost: rows of a side's key range missing or stale on the other side, or a counter behind;
- rows doubled: rows of a side's key range present only on the other side, a counter ahead, or an insert the
  sync applied more than once (from the destination binlog);
- echoes: rows the sync applied on a server whose key belongs to that server's own writer (a change that
  went out and came back), read from the binlogs with ``mariadb-binlog --verbose``.

Faults: SIGKILL of a sync process at a random moment; restart of server A and of server B; a server
unreachable (SIGSTOP of its process, then SIGCONT); lock-wait timeouts and deadlock attempts on the
destination; two appliers started for the same direction; the trigger host restarted (an
IncrementalSyncTrigger run in its own process like a triggerer runs it, killed, and rebuilt from its
``serialize()`` kwargs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from airflow_provider_dts.engine.config import SyncDirection  # noqa: E402
from airflow_provider_dts.engine.control import ControlSchema, State  # noqa: E402
from airflow_provider_dts.localpair import LocalPair, LocalServer  # noqa: E402

TABLES = (
    "CREATE TABLE shop.acct (id BIGINT PRIMARY KEY, owner CHAR(1), balance BIGINT, note VARCHAR(100))",
    "CREATE TABLE shop.ledger (id BIGINT PRIMARY KEY, acct BIGINT, amount INT, KEY (acct))",
    "CREATE TABLE shop.counter (side CHAR(1) PRIMARY KEY, n BIGINT NOT NULL)",
)
KEY_SPAN = 10**12
BASES = {"A": 1 * KEY_SPAN, "B": 2 * KEY_SPAN}


def sql(server: LocalServer, stmt: str, args=None):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(stmt, args)
        return cur.fetchall()


# --------------------------------------------------------------------------- the write load


class Writer:
    def __init__(self, server: LocalServer, side: str, seed: int):
        self.server, self.side = server, side
        self.rnd = random.Random(seed)
        self.next_acct = BASES[side] + 1
        self.next_ledger = BASES[side] + 1
        self.live: list[int] = []
        self.txns = 0
        self.rows = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.conn: pymysql.connections.Connection | None = None

    def setup(self) -> None:
        sql(self.server, "INSERT INTO shop.counter VALUES (%s, 0)", (self.side,))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(120)

    def _connect(self):
        if self.conn is None or not self.conn.open:
            self.conn = self.server.root_connect(connect_timeout=5, read_timeout=30, write_timeout=30)
        return self.conn

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._one()
            except pymysql.err.MySQLError:
                # server restarting / stopped: this transaction did not commit; try again
                self.errors += 1
                try:
                    if self.conn is not None:
                        self.conn.close()
                except Exception:
                    pass
                self.conn = None
                time.sleep(0.2)
            time.sleep(0.003)

    def _one(self) -> None:
        conn = self._connect()
        rnd = self.rnd
        acct, ledger = self.next_acct, self.next_ledger
        rows = 0
        deleted = updated = None
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("INSERT INTO shop.acct VALUES (%s, %s, %s, %s)", (acct, self.side, 0, f"n{acct}"))
            rows += 1
            n_ledger = rnd.randint(1, 3)
            cur.executemany(
                "INSERT INTO shop.ledger VALUES (%s, %s, %s)",
                [(ledger + i, acct, rnd.randint(-9, 9)) for i in range(n_ledger)],
            )
            rows += n_ledger
            if self.live:
                updated = rnd.choice(self.live)
                cur.execute(
                    "UPDATE shop.acct SET balance = balance + %s, note = %s WHERE id = %s",
                    (rnd.randint(1, 100), f"u{self.txns}", updated),
                )
                rows += 1
            if len(self.live) > 50 and rnd.random() < 0.5:
                deleted = self.live[rnd.randrange(len(self.live) - 10)]
                cur.execute("DELETE FROM shop.acct WHERE id = %s", (deleted,))
                rows += 1
            cur.execute("UPDATE shop.counter SET n = n + 1 WHERE side = %s", (self.side,))
            rows += 1
            cur.execute("COMMIT")
        # only after the commit answered: the transaction is known to be durable
        self.next_acct += 1
        self.next_ledger += n_ledger
        self.live.append(acct)
        if deleted is not None:
            self.live.remove(deleted)
        self.txns += 1
        self.rows += rows


# --------------------------------------------------------------------------- sync processes


class SyncProcess:
    """One direction in its own process: the engine runner, or an IncrementalSyncTrigger run like a triggerer."""

    def __init__(self, direction: SyncDirection, env: dict[str, str], log: Path, kind: str = "runner"):
        self.direction, self.env, self.log_path, self.kind = direction, env, log, kind
        self.proc: subprocess.Popen | None = None

    def start(self) -> SyncProcess:
        if self.kind == "runner":
            cmd = [sys.executable, "-m", "airflow_provider_dts.engine.runner", "--log-level", "WARNING"]
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--host-trigger"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log, cwd=str(REPO))
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None

    @property
    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


def _host_trigger() -> int:
    """Run IncrementalSyncTrigger the way the triggerer does: rebuilt from serialize() kwargs, until killed."""
    from airflow_provider_dts.triggers.incremental import IncrementalSyncTrigger

    kwargs = json.loads(os.environ["DTS_TRIGGER_KWARGS"])
    trigger = IncrementalSyncTrigger(**kwargs)

    async def main() -> None:
        task = asyncio.ensure_future(_first_event(trigger))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            event = await task
            print(json.dumps(event.payload, default=str), flush=True)
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    return 0


async def _first_event(trigger):
    async for event in trigger.run():
        return event


# --------------------------------------------------------------------------- the cluster


@dataclass
class RoundResult:
    fault: str
    count: int
    rows_written: int
    lost: int
    doubled: int
    echoes: int
    recover_seconds: float
    note: str = ""


class Chaos:
    def __init__(self, base: Path, seed: int = 11, quiet: bool = False):
        self.base = base
        self.rnd = random.Random(seed)
        self.quiet = quiet
        self.pair = LocalPair.create(base / "pair", extra_b=["--innodb-lock-wait-timeout=2"])
        self.task = "chaos"
        self.results: list[RoundResult] = []
        self.procs: dict[str, SyncProcess] = {}
        self.timings: list[tuple] = []
        self.last_measure = (0, 0, 0)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # ------------------------------------------------------------------ setup / teardown

    def start(self) -> None:
        self.pair.start()
        for s in (self.pair.a, self.pair.b):
            sql(s, "CREATE DATABASE shop")
            for t in TABLES:
                sql(s, t)
        common = {
            "task_name": self.task,
            "objects": ["shop"],
            "initial_full_data_sync": False,
            "initial_schema_sync": False,
            "retry_minutes": 10,
        }
        self.directions = {
            "forward": SyncDirection.from_dict(
                {**common, "role": "forward", "source_conn_id": "dts_source", "destination_conn_id": "dts_destination"}
            ),
            "reverse": SyncDirection.from_dict(
                {
                    **common,
                    "role": "reverse",
                    "source_conn_id": "dts_destination",
                    "destination_conn_id": "dts_source",
                    "exclude_ddl": True,
                }
            ),
        }
        for role in ("forward", "reverse"):
            self.procs[role] = self.new_process(role).start()
        for role in ("forward", "reverse"):
            self.wait_state(role, State.SYNCHRONIZING, 60)
        self.writers = {"A": Writer(self.pair.a, "A", 1), "B": Writer(self.pair.b, "B", 2)}
        for w in self.writers.values():
            w.setup()

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        self.pair.stop()

    def server_for(self, role: str, side: str) -> LocalServer:
        src, dst = (self.pair.a, self.pair.b) if role == "forward" else (self.pair.b, self.pair.a)
        return src if side == "source" else dst

    def env_for(self, role: str, kind: str = "runner") -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.pair.env())
        d = self.directions[role]
        env["DTS_DIRECTION"] = d.to_json()
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        for var, server in (
            ("DTS_SOURCE", self.server_for(role, "source")),
            ("DTS_DESTINATION", self.server_for(role, "destination")),
        ):
            st = server.settings()
            env[var] = json.dumps({"host": st.host, "port": st.port, "user": st.user, "password": st.password})
        if kind == "trigger":
            env["DTS_TRIGGER_KWARGS"] = json.dumps({"direction": d.to_json(), "max_runtime": None})
            env.setdefault("AIRFLOW_HOME", str(self.base / "airflow-home"))
        return env

    def new_process(self, role: str, kind: str = "runner") -> SyncProcess:
        return SyncProcess(self.directions[role], self.env_for(role, kind), self.base / f"{role}.log", kind)

    def state(self, role: str) -> dict | None:
        try:
            with self.server_for(role, "destination").root_connect(connect_timeout=3) as conn:
                return ControlSchema().get_state(conn, self.task, role)
        except pymysql.err.MySQLError:
            return None

    def wait_state(self, role: str, state: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            row = self.state(role)
            if row and row["state"] == state:
                return
            if row and row["state"] == State.FAILED:
                raise RuntimeError(f"{role} failed: {row['message']}")
            time.sleep(0.2)
        raise TimeoutError(f"{role} not {state} after {timeout}s: {self.state(role)}")

    # ------------------------------------------------------------------ measuring

    def converge(self, timeout: float = 180.0) -> float:
        """Wait until both sides hold the same rows; returns the seconds it took."""
        started = time.monotonic()
        while True:
            for role in ("forward", "reverse"):
                row = self.state(role)
                if row and row["state"] == State.FAILED:
                    raise RuntimeError(f"direction {role} failed: {row['message']}")
            if self.snapshot(self.pair.a) == self.snapshot(self.pair.b):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the two sides did not converge within {timeout}s")
            time.sleep(0.2)

    @staticmethod
    def snapshot(server: LocalServer) -> tuple:
        try:
            with server.root_connect(connect_timeout=3) as conn, conn.cursor() as cur:
                out = []
                for t, cols in (
                    ("acct", "id, owner, balance, note"),
                    ("ledger", "id, acct, amount"),
                    ("counter", "side, n"),
                ):
                    cur.execute(f"SELECT {cols} FROM shop.{t} ORDER BY 1")
                    out.append(cur.fetchall())
                return tuple(out)
        except pymysql.err.MySQLError:
            return (None, server.port)

    def losses(self) -> tuple[int, int]:
        """(lost, doubled) over everything written so far, from each origin's point of view."""
        lost = doubled = 0
        for side, origin, other in (("A", self.pair.a, self.pair.b), ("B", self.pair.b, self.pair.a)):
            lo, hi = BASES[side], BASES[side] + KEY_SPAN
            for t in ("acct", "ledger"):
                q = f"SELECT * FROM shop.{t} WHERE id >= %s AND id < %s"
                a = {r[0]: r for r in sql(origin, q, (lo, hi))}
                b = {r[0]: r for r in sql(other, q, (lo, hi))}
                lost += sum(1 for k in a if k not in b or a[k] != b[k])
                doubled += sum(1 for k in b if k not in a)
            na = sql(origin, "SELECT n FROM shop.counter WHERE side=%s", (side,))[0][0]
            nb = sql(other, "SELECT n FROM shop.counter WHERE side=%s", (side,))[0][0]
            lost += max(0, na - nb)
            doubled += max(0, nb - na)
        return lost, doubled

    def _binlog_transactions(self, server: LocalServer):
        """Decoded transactions of a server's binlogs: (marked_by_sync, [(op, table, first column value)])."""
        exe = shutil.which("mariadb-binlog") or shutil.which("mysqlbinlog")
        files = sorted(p for p in server.datadir.glob("binlog.[0-9]*"))
        out = subprocess.run(
            [exe, "--base64-output=decode-rows", "--verbose", *map(str, files)],
            capture_output=True,
            text=True,
            errors="replace",
            check=True,
        ).stdout
        txns, current, marked = [], [], False
        op = None
        for line in out.splitlines():
            if line.startswith("START TRANSACTION") or line.startswith("BEGIN"):
                current, marked, op = [], False, None
            elif line.startswith("COMMIT"):
                txns.append((marked, current))
                current, marked, op = [], False, None
            elif line.startswith("### "):
                m = re.match(r"### (INSERT INTO|UPDATE|DELETE FROM) `([^`]*)`\.`([^`]*)`", line)
                if m:
                    if m.group(2) == "dts_meta" and m.group(3) == "checkpoint":
                        marked = True
                    op = (m.group(1).split()[0], m.group(2), m.group(3))
                    continue
                m = re.match(r"###\s+@1=(.*)$", line)
                if m and op is not None:
                    current.append((op[0], f"{op[1]}.{op[2]}", m.group(1).strip().strip("'")))
                    op = None
        return txns

    def binlog_damage(self) -> tuple[int, int]:
        """(echoes, double applies) from one pass over both servers' binlogs.

        echo: a row the sync applied on a server whose key belongs to that server's own writer (it went out
        and came back). double apply: an insert the sync applied more than once for the same key.
        """
        echoes = doubles = 0
        for side, server in (("A", self.pair.a), ("B", self.pair.b)):
            lo, hi = BASES[side], BASES[side] + KEY_SPAN
            inserted: dict[tuple[str, str], int] = {}
            for marked, rows in self._binlog_transactions(server):
                if not marked:
                    continue
                for op, table, key in rows:
                    if table in ("shop.acct", "shop.ledger"):
                        if key.lstrip("-").isdigit() and lo <= int(key) < hi:
                            echoes += 1
                        if op == "INSERT":
                            inserted[(table, key)] = inserted.get((table, key), 0) + 1
                    elif table == "shop.counter" and key == side:
                        echoes += 1
            doubles += sum(n - 1 for n in inserted.values() if n > 1)
        return echoes, doubles

    def measure(self) -> tuple[int, int, int]:
        """(lost, doubled, echoes) over everything written so far."""
        lost, doubled = self.losses()
        echoes, doubles = self.binlog_damage()
        return lost, doubled + doubles, echoes

    # ------------------------------------------------------------------ a round

    def round(self, fault: str, inject, count: int, load_seconds: float = 1.0) -> RoundResult:
        t0 = time.monotonic()
        before = {s: (w.rows) for s, w in self.writers.items()}
        lost0, doubled0, echoes0 = self.last_measure
        t1 = time.monotonic()
        for w in self.writers.values():
            w.start()
        time.sleep(load_seconds)
        note = inject() or ""
        time.sleep(load_seconds)  # the load goes on after the fault
        for w in self.writers.values():
            w.stop()
        self.ensure_running()
        t2 = time.monotonic()
        recover = self.converge()  # seconds from the last write until both sides are equal
        lost, doubled, echoes = self.last_measure = self.measure()
        self.timings.append((fault, round(t1 - t0, 2), round(t2 - t1, 2), round(time.monotonic() - t2, 2)))
        written = sum(w.rows - before[s] for s, w in self.writers.items())
        r = RoundResult(
            fault, count, written, lost - lost0, doubled - doubled0, echoes - echoes0, round(recover, 2), note
        )
        self.results.append(r)
        self.say(
            f"  {fault:<28} x{count:<3} rows={written:<7} lost={r.lost} doubled={r.doubled} "
            f"echoes={r.echoes} recover={r.recover_seconds}s {note}"
        )
        return r

    def ensure_running(self) -> None:
        for role, p in self.procs.items():
            if not p.alive:
                self.procs[role] = self.new_process(role).start()

    # ------------------------------------------------------------------ faults

    def sigkill(self, times: int) -> None:
        def inject():
            for _ in range(times):
                role = self.rnd.choice(("forward", "reverse"))
                time.sleep(self.rnd.uniform(0.2, 1.5))
                self.procs[role].kill()
                time.sleep(self.rnd.uniform(0.0, 0.5))
                self.procs[role] = self.new_process(role).start()

        self.round("SIGKILL sync process", inject, times)

    def restart_server(self, name: str) -> None:
        server = self.pair.a if name == "A" else self.pair.b

        def inject():
            server.restart()

        self.round(f"restart server {name}", inject, 1)

    def unreachable(self, name: str, seconds: float) -> None:
        server = self.pair.a if name == "A" else self.pair.b

        def inject():
            pid = server.pid()
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                os.kill(pid, signal.SIGCONT)
            return f"({seconds:g} s)"

        self.round(f"server {name} unreachable", inject, 1)

    def lock_contention(self, times: int) -> None:
        """On B (task one's destination): hold row and gap locks on A's key range past the lock wait timeout,
        and take locks in descending order while the applier takes them ascending (deadlock attempts)."""
        outcome = {"lock_wait_holds": 0, "deadlocks_seen_by_locker": 0}

        def inject():
            lo, hi = BASES["A"], BASES["A"] + KEY_SPAN
            for i in range(times):
                conn = self.pair.b.root_connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute("START TRANSACTION")
                        if i % 2 == 0:  # hold everything of A's range for longer than innodb_lock_wait_timeout
                            cur.execute(
                                "SELECT COUNT(*) FROM shop.acct WHERE id >= %s AND id < %s FOR UPDATE", (lo, hi)
                            )
                            cur.execute("SELECT n FROM shop.counter WHERE side='A' FOR UPDATE")
                            outcome["lock_wait_holds"] += 1
                            time.sleep(3.0)
                        else:  # descending order, row by row, against the applier's ascending order
                            cur.execute(
                                "SELECT id FROM shop.acct WHERE id >= %s AND id < %s ORDER BY id DESC LIMIT 30",
                                (lo, hi),
                            )
                            for (k,) in cur.fetchall():
                                cur.execute("SELECT id FROM shop.acct WHERE id=%s FOR UPDATE", (k,))
                                time.sleep(0.02)
                            cur.execute("SELECT n FROM shop.counter WHERE side='A' FOR UPDATE")
                            time.sleep(0.5)
                        cur.execute("ROLLBACK")
                except pymysql.err.OperationalError as e:
                    if e.args and e.args[0] == 1213:
                        outcome["deadlocks_seen_by_locker"] += 1
                    elif not (e.args and e.args[0] == 1205):
                        raise
                finally:
                    conn.close()
            return (
                f"({outcome['lock_wait_holds']} long lock holds, {times - outcome['lock_wait_holds']} "
                f"descending-order lockers, {outcome['deadlocks_seen_by_locker']} deadlock victim(s) on the "
                f"locker side)"
            )

        self.round("lock waits / deadlocks on B", inject, times)

    def two_appliers(self, seconds: float) -> None:
        def inject():
            second = self.new_process("forward").start()
            time.sleep(seconds)
            self.procs["forward"].kill()  # the first dies: the second must take over
            self.procs["forward"] = second
            return "(second applier waited for the lease, then took over)"

        self.round("two appliers, one direction", inject, 1)

    def trigger_restart(self, times: int) -> None:
        def inject():
            role = "reverse"
            self.procs[role].terminate()
            self.procs[role] = self.new_process(role, "trigger").start()
            self.wait_state(role, State.SYNCHRONIZING, 60)
            for _ in range(times):
                time.sleep(self.rnd.uniform(0.5, 1.5))
                self.procs[role].kill()
                self.procs[role] = self.new_process(role, "trigger").start()
            return "(IncrementalSyncTrigger rebuilt from serialize() kwargs)"

        self.round("trigger host restarted", inject, times)

    # ------------------------------------------------------------------ report

    def table(self) -> str:
        head = f"{'fault':<30}{'count':>6}{'rows written':>14}{'lost':>6}{'doubled':>9}{'echoes':>8}{'converge s':>11}"
        lines = [head, "-" * len(head)]
        for r in self.results:
            lines.append(
                f"{r.fault:<30}{r.count:>6}{r.rows_written:>14}{r.lost:>6}{r.doubled:>9}{r.echoes:>8}"
                f"{r.recover_seconds:>11.2f}"
            )
        tot = [sum(getattr(r, f) for r in self.results) for f in ("count", "rows_written", "lost", "doubled", "echoes")]
        lines.append("-" * len(head))
        lines.append(f"{'total':<30}{tot[0]:>6}{tot[1]:>14}{tot[2]:>6}{tot[3]:>9}{tot[4]:>8}")
        return "\n".join(lines)


FULL = {
    "sigkill": 20,
    "unreachable_seconds": 30,
    "locks": 6,
    "two_appliers_seconds": 5,
    "trigger_restarts": 5,
    "sigkill_after": 5,
}
QUICK = {
    "sigkill": 5,
    "unreachable_seconds": 5,
    "locks": 2,
    "two_appliers_seconds": 2,
    "trigger_restarts": 2,
    "sigkill_after": 2,
}


def run_suite(base: Path, plan: dict, *, quiet: bool = False, keep_running: bool = False) -> Chaos:
    """Run every fault round of ``plan``; with ``keep_running`` the caller stops the cluster (``chaos.stop()``)."""
    chaos = Chaos(base, quiet=quiet)
    chaos.start()
    try:
        chaos.sigkill(plan["sigkill"])
        chaos.restart_server("A")
        chaos.restart_server("B")
        chaos.unreachable("B", plan["unreachable_seconds"])
        chaos.lock_contention(plan["locks"])
        chaos.two_appliers(plan["two_appliers_seconds"])
        chaos.trigger_restart(plan["trigger_restarts"])
        chaos.sigkill(plan["sigkill_after"])  # back on the runner after the trigger rounds
    except BaseException:
        chaos.stop()
        raise
    if not keep_running:
        chaos.stop()
    return chaos


def main() -> int:
    if "--host-trigger" in sys.argv:
        return _host_trigger()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the short version run by the test suite")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dts-chaos-"))
    started = time.monotonic()
    chaos = run_suite(base, QUICK if args.quick else FULL)
    print()
    print(chaos.table())
    print(f"\n{time.monotonic() - started:.0f} s in all; logs in {base}")
    if not args.keep:
        shutil.rmtree(base / "pair", ignore_errors=True)
    bad = sum(r.lost + r.doubled + r.echoes for r in chaos.results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
