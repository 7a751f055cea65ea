"""Crash, restart, concurrency: the runner SIGKILLed ten times, both directions at once (no echo),
a server restarted, two runs of one direction (the lease)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pymysql
import pytest
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows, wait_until

from airflow_provider_dts.engine import incremental
from airflow_provider_dts.engine.control import ControlSchema, State

TABLES = (
    "CREATE TABLE shop.acct (id INT PRIMARY KEY, owner VARCHAR(20), balance BIGINT, note VARCHAR(100))",
    "CREATE TABLE shop.ledger (id BIGINT PRIMARY KEY, acct INT, amount INT, KEY (acct))",
    "CREATE TABLE shop.counter (name VARCHAR(10) PRIMARY KEY, n BIGINT NOT NULL)",
)


class Writer:
    """A write load on one server: every transaction touches several tables and bumps a counter row, so a
    transaction applied twice (or lost) shows up as a different counter on the other side."""

    def __init__(self, server, side: str, key_base: int, pause: float = 0.002):
        self.server, self.side, self.base, self.pause = server, side, key_base, pause
        self.stop = threading.Event()
        self.txns = 0
        self.deadlocks = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        sql(self.server, f"INSERT INTO shop.counter VALUES ('{self.side}', 0)")
        self.thread.start()
        return self

    def _run(self) -> None:
        rnd = random.Random(self.base)
        conn = self.server.root_connect()
        live: list[int] = []
        ledger = self.base * 10
        try:
            with conn.cursor() as cur:
                i = 0
                while not self.stop.is_set():
                    i += 1
                    try:
                        self._transaction(cur, rnd, i, live, ledger)
                    except pymysql.err.OperationalError as e:
                        # a deadlock with the applier's transaction (1213: the server rolled ours back) or a lock
                        # wait timeout (1205): like any application, roll back and go on
                        if not (e.args and e.args[0] in (1205, 1213)):
                            raise
                        cur.execute("ROLLBACK")
                        self.deadlocks += 1
                    ledger += 3
                    time.sleep(self.pause)
        except BaseException as e:
            self.error = e
        finally:
            conn.close()

    def _transaction(self, cur, rnd: random.Random, i: int, live: list[int], ledger: int) -> None:
        """One transaction: ledger ids ledger+1 .. ledger+3 at most (the caller moves on by 3 either way)."""
        cur.execute("START TRANSACTION")
        acct = self.base + i
        cur.execute("INSERT INTO shop.acct VALUES (%s, %s, %s, %s)", (acct, self.side, i, f"n{i}"))
        live.append(acct)
        for _ in range(rnd.randint(1, 3)):
            ledger += 1
            cur.execute("INSERT INTO shop.ledger VALUES (%s, %s, %s)", (ledger, acct, rnd.randint(-9, 9)))
        if len(live) > 3:
            target = rnd.choice(live[:-1])
            cur.execute("UPDATE shop.acct SET balance = balance + 1, note = %s WHERE id = %s", (f"u{i}", target))
        if len(live) > 10 and rnd.random() < 0.3:
            victim = live.pop(rnd.randrange(len(live) - 1))
            cur.execute("DELETE FROM shop.acct WHERE id = %s", (victim,))
            cur.execute("DELETE FROM shop.ledger WHERE acct = %s", (victim,))
        cur.execute("UPDATE shop.counter SET n = n + 1 WHERE name = %s", (self.side,))
        if rnd.random() < 0.1:
            cur.execute("ROLLBACK")
        else:
            cur.execute("COMMIT")
            self.txns += 1

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(10)
        assert self.error is None, self.error
        return self.txns


def assert_converged(pair, timeout: float = 60) -> None:
    def same():
        return all(table_rows(pair.a, t) == table_rows(pair.b, t) for t in ("acct", "ledger", "counter"))

    try:
        wait_until(same, timeout, "both sides equal")
    except AssertionError:
        for t in ("acct", "ledger", "counter"):
            a, b = set(table_rows(pair.a, t)), set(table_rows(pair.b, t))
            if a != b:
                raise AssertionError(f"{t}: only at A {sorted(a - b)[:10]}; only at B {sorted(b - a)[:10]}") from None
        raise


def runner_env(pair, direction) -> dict[str, str]:
    env = dict(os.environ)
    env["DTS_DIRECTION"] = direction.to_json()
    src, dst = (pair.a, pair.b) if direction.role == "forward" else (pair.b, pair.a)
    for var, s in (("DTS_SOURCE", src), ("DTS_DESTINATION", dst)):
        st = s.settings()
        env[var] = json.dumps({"host": st.host, "port": st.port, "user": st.user, "password": st.password})
    return env


def reader_processes() -> list[int]:
    """Pids of binlog reader child processes (engine/reader_process.py) of this test session: alive on this
    machine and, when the suite runs in parallel (pytest-xdist), started by this worker (children inherit its
    PYTEST_XDIST_WORKER variable, orphans included)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    mark = f"PYTEST_XDIST_WORKER={worker}".encode() if worker else None
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            if b"airflow_provider_dts.engine.reader_process" not in cmdline:
                continue
            if mark is not None:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if mark not in f.read().split(b"\0"):
                        continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def test_a_killed_reader_process_is_replaced_and_nothing_is_lost(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *TABLES)
    assert incremental.READER_MODE == "process"
    with Sync(make_direction(task_name), pair.a, pair.b):
        writer = Writer(pair.a, "A", 1_000_000).start()
        killed = set()
        try:
            for _ in range(3):
                time.sleep(1.0)
                pids = wait_until(lambda: [p for p in reader_processes() if p not in killed], 15, "a reader process")
                assert len(pids) == 1
                os.kill(pids[0], signal.SIGKILL)
                killed.add(pids[0])
        finally:
            n = writer.finish()
        assert_converged(pair, 60)
        (counter,) = sql(pair.b, "SELECT n FROM shop.counter WHERE name='A'")
        assert counter[0] == n
        assert state_row(pair.b, task_name, "forward")["state"] == State.SYNCHRONIZING
    wait_until(lambda: not reader_processes(), 10, "no reader process left after the stop")


def test_stop_does_not_wait_for_a_frozen_reader_process(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *TABLES)
    sync = Sync(make_direction(task_name), pair.a, pair.b).start()
    (pid,) = wait_until(reader_processes, 15, "the reader process")
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot notice its stdin closing
    try:
        t0 = time.monotonic()
        result = sync.stop(timeout=15)
        assert result.outcome == "stopped" and time.monotonic() - t0 < 10
    finally:
        if pid in reader_processes():
            os.kill(pid, signal.SIGCONT)
    wait_until(lambda: not reader_processes(), 10, "the frozen reader killed")
    assert state_row(pair.b, task_name, "forward")["state"] == State.STOPPED


def test_runner_process_sigkilled_ten_times_loses_and_doubles_nothing(clean_pair, task_name, tmp_path):
    pair = clean_pair
    create_both(pair, *TABLES)
    d = make_direction(task_name)
    env = runner_env(pair, d)
    cmd = [sys.executable, "-m", "airflow_provider_dts.engine.runner", "--log-level", "WARNING"]
    log = open(tmp_path / "runner.log", "ab")  # noqa: SIM115 - shared by the ten runner processes below
    # the first run records the start position; then the load begins
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    wait_until(
        lambda: (r := state_row(pair.b, task_name, "forward")) and r["state"] == State.SYNCHRONIZING,
        30,
        "runner synchronizing",
    )
    writer = Writer(pair.a, "A", 1_000_000).start()
    rnd = random.Random(7)
    kills = 0
    try:
        for _ in range(10):
            time.sleep(rnd.uniform(0.3, 2.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            assert proc.returncode == -signal.SIGKILL
            time.sleep(rnd.uniform(0.0, 0.5))
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    finally:
        n = writer.finish()
    try:
        assert_converged(pair, 90)
        assert n > 20, "the load wrote too little to mean anything"
        (counter,) = sql(pair.b, "SELECT n FROM shop.counter WHERE name='A'")
        assert counter[0] == n
        conn = pair.b.root_connect()
        assert ControlSchema().conflicts(conn, task_name, "forward") == []  # a replayed insert would conflict
        conn.close()
        assert state_row(pair.b, task_name, "forward")["state"] == State.SYNCHRONIZING
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert kills == 10
    assert proc.returncode == 0
    assert state_row(pair.b, task_name, "forward")["state"] == State.STOPPED
    # each killed runner's binlog reader process exited with it (its stdin closed)
    wait_until(lambda: not reader_processes(), 10, "no orphaned reader process")


@pytest.mark.parametrize("fast_path", [False, True], ids=["checkpoint-mark-only", "with-skip_replication"])
def test_both_directions_at_once_converge_without_echo(clean_pair, task_name, fast_path, monkeypatch):
    """Without the MariaDB fast path the checkpoint mark alone must stop every echo."""
    monkeypatch.setattr(incremental, "SKIP_FLAGGED_FAST_PATH", fast_path)
    pair = clean_pair
    create_both(pair, *TABLES)
    fwd, rev = make_direction(task_name, "forward"), make_direction(task_name, "reverse")
    with Sync(fwd, pair.a, pair.b), Sync(rev, pair.b, pair.a):
        wa, wb = Writer(pair.a, "A", 1_000_000).start(), Writer(pair.b, "B", 2_000_000).start()
        time.sleep(6)
        na, nb = wa.finish(), wb.finish()
        assert_converged(pair, 60)
        (ca,) = sql(pair.b, "SELECT n FROM shop.counter WHERE name='A'")
        (cb,) = sql(pair.a, "SELECT n FROM shop.counter WHERE name='B'")
        assert (ca[0], cb[0]) == (na, nb)

        def applied():
            f = state_row(pair.b, task_name, "forward")
            r = state_row(pair.a, task_name, "reverse")
            return f["transactions_applied"], r["transactions_applied"]

        # each side applied exactly the other side's committed transactions (+1: the counter row insert)
        wait_until(lambda: applied() == (na + 1, nb + 1), 30, "applied counts")
        data_events_a = _user_row_events(pair.a)
        data_events_b = _user_row_events(pair.b)
        time.sleep(4)  # idle: heartbeats and idle checkpoints keep flowing, user data must not
        assert applied() == (na + 1, nb + 1)
        assert _user_row_events(pair.a) == data_events_a
        assert _user_row_events(pair.b) == data_events_b
        assert_converged(pair, 5)


def _user_row_events(server) -> int:
    """Number of row events on the user schema in the server's binlogs (grows with every echo)."""
    conn = server.root_connect(use_unicode=False)  # event texts may hold binary data
    total = 0
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            for name, _size, *_ in cur.fetchall():
                cur.execute(f"SHOW BINLOG EVENTS IN '{name.decode()}'")
                in_shop = False
                for ev in cur.fetchall():
                    kind, info = ev[2].decode(), (ev[5] or b"").decode("utf-8", "replace")
                    if kind == "Table_map":
                        in_shop = "`shop`." in info
                    elif kind.endswith("_rows_v1") or kind.endswith("_rows"):
                        total += 1 if in_shop else 0
    finally:
        conn.close()
    return total


@pytest.mark.own_servers
def test_server_restarts_are_survived(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *TABLES)
    d = make_direction(task_name, retry_minutes=2)
    with Sync(d, pair.a, pair.b) as sync:
        writer = Writer(pair.a, "A", 3_000_000, pause=0.01).start()
        time.sleep(1.5)
        pair.a.restart()  # the writer dies with the source; write again afterwards
        writer.stop.set()
        writer.thread.join(10)
        n = writer.txns
        wait_until(
            lambda: (
                "retrying since" in (state_row(pair.b, task_name, "forward")["message"] or "")
                or sync.result is not None
                or table_rows(pair.a, "counter") == table_rows(pair.b, "counter")
            ),
            30,
            "retry or catch-up",
        )
        sql(pair.a, "INSERT INTO shop.acct VALUES (1, 'after', 0, 'source restart')")
        assert_converged(pair, 60)
        pair.b.restart()  # the destination goes away too
        sql(pair.a, "INSERT INTO shop.acct VALUES (2, 'after', 0, 'destination restart')")
        assert_converged(pair, 60)
        assert sync.result is None, sync.result
        row = state_row(pair.b, task_name, "forward")
        assert row["state"] == State.SYNCHRONIZING
        assert n >= 1


def test_a_second_run_waits_for_the_lease_and_applies_nothing_twice(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)")
    d = make_direction(task_name)
    first = Sync(d, pair.a, pair.b).start()
    second = Sync(d, pair.a, pair.b).start(wait=False)
    sql(pair.a, "INSERT INTO shop.t VALUES (1, 1)", "UPDATE shop.t SET v = v + 1")
    wait_until(lambda: table_rows(pair.b, "t") == [(1, 2)], 20, "first run applies")
    time.sleep(1)
    assert second.result is None  # still waiting
    r1 = first.stop()
    assert r1.outcome == "stopped"
    # the second run takes over from the first one's checkpoint
    sql(pair.a, "INSERT INTO shop.t VALUES (2, 2)", "UPDATE shop.t SET v = v * 10")
    wait_until(lambda: table_rows(pair.b, "t") == [(1, 20), (2, 20)], 30, "second run applies after takeover")
    r2 = second.stop()
    assert r2.outcome == "stopped"
    assert r2.stats["conflicts"] == 0
    # a run that never got the lease stops without touching the state of the one holding it
    holder = Sync(d, pair.a, pair.b).start()
    waiter = Sync(d, pair.a, pair.b).start(wait=False)
    time.sleep(2)
    rw = waiter.stop()
    assert "waiting for the lease" in rw.message
    assert state_row(pair.b, task_name, "forward")["state"] == State.SYNCHRONIZING
    holder.stop()


def test_past_the_retry_window_the_direction_fails_clearly(clean_pair, make_server, task_name, monkeypatch):
    monkeypatch.setattr(incremental, "RETRY_MINUTE_SECONDS", 3)  # retry_minutes=1 -> a 3 s window
    pair = clean_pair
    src = make_server(server_id=12)
    for s in (src, pair.b):
        sql(s, "CREATE DATABASE IF NOT EXISTS shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    sync = Sync(make_direction(task_name, retry_minutes=1), src, pair.b).start()
    sql(src, "INSERT INTO shop.t VALUES (1)")
    wait_until(lambda: table_rows(pair.b, "t") == [(1,)], 20, "first row")
    src.stop()
    wait_until(
        lambda: "retrying since" in (state_row(pair.b, task_name, "forward")["message"] or ""), 20, "retrying state"
    )
    assert state_row(pair.b, task_name, "forward")["state"] == State.SYNCHRONIZING
    result = sync.wait_result(60)
    assert result.outcome == "failed" and result.state == State.FAILED
    assert "retry window of 1 minute" in result.message and "restart the direction" in result.message
    assert src.password not in result.message
    assert state_row(pair.b, task_name, "forward")["state"] == State.FAILED
