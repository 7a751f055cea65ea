"""Issue 15 item 3: a source that fails over. The source P has a replica R (GTID replication, log_slave_updates,
gtid_strict_mode); both directions of a two-way sync P <-> D run under writes on both sides; P is SIGKILLed and R
promoted (STOP SLAVE; RESET SLAVE ALL); the directions are pointed at R and the forward direction resumes there
by GTID (no re-initialization): R and D end equal row by row and by CHECKSUM TABLE, with every acknowledged write
exactly once. And the negative case: R lacks transactions D already has -> a clear failure, nothing applied."""

from __future__ import annotations

import logging
import random
import threading
import time

import pymysql
import pytest
from helpers import wait_until
from syncing import Sync, make_direction, sql, state_row

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.gtid import MariadbPosition
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.localpair import LocalServer

TABLES = (
    "CREATE TABLE shop.events (id INT PRIMARY KEY, side VARCHAR(4) NOT NULL, v INT NOT NULL)",
    "CREATE TABLE shop.counter (id INT PRIMARY KEY, n INT NOT NULL)",
    "INSERT INTO shop.counter VALUES (1, 0), (2, 0)",
)


def _replicate(replica: LocalServer, primary: LocalServer) -> None:
    sql(
        replica,
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, MASTER_USER='dts_admin', "
        f"MASTER_PASSWORD='{primary.password}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
        "START SLAVE",
    )


def _caught_up(replica: LocalServer, primary: LocalServer, timeout: int = 30) -> None:
    pos = sql(primary, "SELECT @@gtid_binlog_pos")[0][0]
    assert sql(replica, f"SELECT MASTER_GTID_WAIT('{pos}', {timeout})")[0][0] == 0, "the replica did not catch up"


def _promote(replica: LocalServer) -> None:
    sql(replica, "STOP SLAVE", "RESET SLAVE ALL")


@pytest.fixture
def trio(tmp_path):
    """P (primary, the forward direction's source), R (P's replica), D (the destination)."""
    p = LocalServer(tmp_path / "p", server_id=41)
    r = LocalServer(tmp_path / "r", server_id=42)
    d = LocalServer(tmp_path / "d", server_id=43)
    started = []
    try:
        for s in (p, r, d):
            s.start()
            started.append(s)
        _replicate(r, p)
        yield p, r, d
    finally:
        for s in started:
            s.stop()


class Writer(threading.Thread):
    """Writes to one server until stopped or it fails; keeps what each acknowledged write left behind."""

    def __init__(self, server: LocalServer, side: str, base: int, counter_id: int):
        super().__init__(daemon=True)
        self.server, self.side, self.base, self.counter_id = server, side, base, counter_id
        self.rows: dict[int, int] = {}  # id -> v, acknowledged
        self.count = 0  # acknowledged counter increments
        self.next_id = base
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.rng = random.Random(base)

    def run(self) -> None:
        try:
            conn = pymysql.connect(
                host="127.0.0.1",
                port=self.server.port,
                user="dts_admin",
                password=self.server.password,
                autocommit=True,
                read_timeout=60,
            )
        except BaseException as e:
            self.error = e
            return
        try:
            with conn.cursor() as cur:
                while not self.halt.is_set():
                    op = self.rng.random()
                    if op < 0.5 or len(self.rows) < 5:
                        self.next_id += 1
                        i = self.next_id
                        cur.execute("INSERT INTO shop.events VALUES (%s, %s, %s)", (i, self.side, 0))
                        self.rows[i] = 0
                    elif op < 0.7:
                        i = self.rng.choice(list(self.rows))
                        cur.execute("UPDATE shop.events SET v=v+1 WHERE id=%s", (i,))
                        self.rows[i] += 1
                    elif op < 0.8:
                        i = self.rng.choice(list(self.rows))
                        cur.execute("DELETE FROM shop.events WHERE id=%s", (i,))
                        del self.rows[i]
                    else:
                        cur.execute("UPDATE shop.counter SET n=n+1 WHERE id=%s", (self.counter_id,))
                        self.count += 1
                    time.sleep(0.003)
        except BaseException as e:  # the server was killed under it: that write was not acknowledged
            self.error = e
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def expected(self) -> list[tuple]:
        return [(i, self.side, v) for i, v in sorted(self.rows.items())]


def _continue(old: Writer, server: LocalServer) -> Writer:
    """A writer on ``server`` that carries on from what ``old`` acknowledged."""
    w = Writer(server, old.side, old.base, old.counter_id)
    w.rows, w.count, w.next_id, w.rng = dict(old.rows), old.count, old.next_id, old.rng
    return w


def _checkpoint(server: LocalServer, task: str, role: str):
    with server.root_connect() as conn:
        return ControlSchema().read_checkpoint(conn, task, role)


def test_failover_to_a_promoted_replica_resumes_by_gtid(trio, task_name, caplog):
    p, r, d = trio
    for s in (p, d):
        sql(s, "CREATE DATABASE shop", *TABLES)
    _caught_up(r, p)
    fwd, rev = make_direction(task_name, "forward"), make_direction(task_name, "reverse")
    wa, wd = Writer(p, "a", 0, 1), Writer(d, "d", 1_000_000, 2)
    with Sync(fwd, p, d) as s_fwd, Sync(rev, d, p) as s_rev:
        wa.start()
        wd.start()
        wait_until(lambda: len(wa.rows) > 150 and len(wd.rows) > 150, 60, "writes on both sides")
        wait_until(lambda: (_checkpoint(d, task_name, "forward").transactions_applied or 0) > 100, 60, "applied")
        cp_before = _checkpoint(d, task_name, "forward")
        assert cp_before.source_server_id == 41 and cp_before.gtid_state, cp_before
        # the state the applier carried forward group by group is the server's own GTID position there
        server_says = sql(p, f"SELECT BINLOG_GTID_POS('{cp_before.binlog_file}', {cp_before.binlog_pos})")[0][0]
        assert str(MariadbPosition.parse(server_says)) == cp_before.gtid_state, (server_says, cp_before)
        assert cp_before.gtid_state_at == f"{cp_before.binlog_file}:{cp_before.binlog_pos}"
        # the primary dies with writers on it: no new commit after this lock, and R holds everything P committed
        # (as a semi-synchronous failover would); then SIGKILL
        lock = p.root_connect()
        with lock.cursor() as cur:
            cur.execute("FLUSH TABLES WITH READ LOCK")
        _caught_up(r, p)
        p.kill()
        wa.join(30)
        assert wa.error is not None and not wa.is_alive()
        time.sleep(1)  # both directions are retrying against a dead server now
        assert s_fwd.thread.is_alive() and s_rev.thread.is_alive()
    # the replica is promoted and the connections now point at it
    _promote(r)
    caplog.set_level(logging.WARNING)
    wa2 = _continue(wa, r)
    with Sync(fwd, r, d), Sync(rev, d, r):
        cp = _checkpoint(d, task_name, "forward")
        assert cp.source_server_id == 42, cp
        assert any("resumed by GTID" in rec.getMessage() for rec in caplog.records), caplog.text
        wa2.start()
        wait_until(lambda: len(wa2.rows) > len(wa.rows) + 100, 60, "writes on the promoted replica")
        wa2.halt.set()
        wd.halt.set()
        wa2.join(30)
        wd.join(30)
        assert wa2.error is None and wd.error is None, (wa2.error, wd.error)

        expected = sorted(wa2.expected() + wd.expected())
        expected_counter = [(1, wa2.count), (2, wd.count)]

        def equal():
            er, ed = sql(r, "SELECT * FROM shop.events ORDER BY id"), sql(d, "SELECT * FROM shop.events ORDER BY id")
            cr, cd = sql(r, "SELECT * FROM shop.counter ORDER BY id"), sql(d, "SELECT * FROM shop.counter ORDER BY id")
            return er == ed == expected and cr == cd == expected_counter

        try:
            wait_until(equal, 60, "R and D equal to every acknowledged write")
        except AssertionError:
            er, ed = sql(r, "SELECT * FROM shop.events ORDER BY id"), sql(d, "SELECT * FROM shop.events ORDER BY id")
            raise AssertionError(
                f"R rows {len(er)}, D rows {len(ed)}, expected {len(expected)}; "
                f"only on R {sorted(set(er) - set(ed))[:5]}; only on D {sorted(set(ed) - set(er))[:5]}; "
                f"missing {sorted(set(expected) - set(ed))[:5]}; counters R {sql(r, 'SELECT * FROM shop.counter')} "
                f"D {sql(d, 'SELECT * FROM shop.counter')} expected {expected_counter}"
            ) from None
        for t in ("events", "counter"):
            assert sql(r, f"CHECKSUM TABLE shop.{t}")[0][1] == sql(d, f"CHECKSUM TABLE shop.{t}")[0][1]
    after = _checkpoint(d, task_name, "forward")
    assert after.source_server_id == 42 and after.gtid_skip_until is None
    assert after.gtid_state_at == f"{after.binlog_file}:{after.binlog_pos}"
    # no conflict was met: nothing was applied twice
    assert (after.conflicts or 0) == 0 and (_checkpoint(r, task_name, "reverse").conflicts or 0) == 0


def test_failover_to_a_replica_missing_transactions_fails_and_applies_nothing(trio, task_name):
    p, r, d = trio
    for s in (p, d):
        sql(s, "CREATE DATABASE shop", *TABLES)
    _caught_up(r, p)
    fwd = make_direction(task_name, "forward")
    with Sync(fwd, p, d):
        sql(p, "INSERT INTO shop.events VALUES (1, 'a', 0), (2, 'a', 0)")
        _caught_up(r, p)
        sql(r, "STOP SLAVE")  # R falls behind: what P commits now never reaches it
        sql(p, "INSERT INTO shop.events VALUES (3, 'a', 0)", "UPDATE shop.counter SET n=5 WHERE id=1")
        wait_until(lambda: sql(d, "SELECT COUNT(*) FROM shop.events")[0][0] == 3, 30, "D has P's last rows")
        wait_until(lambda: sql(d, "SELECT n FROM shop.counter WHERE id=1")[0][0] == 5, 30, "D has P's update")
        p.kill()
    _promote(r)
    sql(r, "INSERT INTO shop.events VALUES (4, 'r', 0)")  # something R would have to send
    before_rows = sql(d, "SELECT * FROM shop.events ORDER BY id")
    cp_before = _checkpoint(d, task_name, "forward")
    result = run_direction(fwd, r.settings(name="r"), d.settings(name="d"), stop=threading.Event(), max_runtime=30)
    assert result.outcome == "failed", result
    assert "lacks transactions the destination already has" in result.message, result.message
    assert "41-41-" in result.message and "Fix: point the connection at a server that has all" in result.message
    assert "re-initialize" in result.message and r.password not in result.message
    assert sql(d, "SELECT * FROM shop.events ORDER BY id") == before_rows
    cp_after = _checkpoint(d, task_name, "forward")
    assert (cp_after.binlog_file, cp_after.binlog_pos, cp_after.source_server_id, cp_after.gtid_state) == (
        cp_before.binlog_file,
        cp_before.binlog_pos,
        41,
        cp_before.gtid_state,
    )


class MovingHost:
    """A TCP forwarder standing in for a host name that a failover moves: new connections go to ``target``;
    ``move`` points it at another server (the connections already open stay where they are)."""

    def __init__(self, target: LocalServer):
        import socket

        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def move(self, target: LocalServer) -> None:
        self.target = target

    def settings(self, target_for_password: LocalServer, name: str):
        import dataclasses

        return dataclasses.replace(target_for_password.settings(name=name), port=self.port)

    def _accept(self) -> None:
        import socket

        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target.port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


def test_a_running_direction_follows_a_host_name_that_moves(trio, task_name, caplog):
    """No restart: the source's address stays the same and starts answering from the promoted replica; the
    running direction notices (the library reconnects to another server_id) and continues there by GTID."""
    p, r, d = trio
    for s in (p, d):
        sql(s, "CREATE DATABASE shop", *TABLES)
    _caught_up(r, p)
    host = MovingHost(p)
    # the replica shares the primary's dts_admin password, as a managed service's replicas do
    sql(r, f"SET PASSWORD FOR 'dts_admin'@'%' = PASSWORD('{p.password}')")
    r.password = p.password
    fwd = make_direction(task_name, "forward")
    caplog.set_level(logging.WARNING)
    result: dict = {}
    stop = threading.Event()

    def run() -> None:
        result["r"] = run_direction(fwd, host.settings(p, "src"), d.settings(name="dst"), stop=stop)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        wait_until(
            lambda: (row := state_row(d, task_name, "forward")) is not None and row["state"] == State.SYNCHRONIZING,
            60,
            "forward Synchronizing",
        )
        wa = Writer(p, "a", 0, 1)
        wa.start()
        wait_until(lambda: len(wa.rows) > 150, 60, "writes on the primary")
        wait_until(
            lambda: (c := _checkpoint(d, task_name, "forward")) is not None and (c.transactions_applied or 0) > 100,
            60,
            "applied",
        )
        lock = p.root_connect()
        with lock.cursor() as cur:
            cur.execute("FLUSH TABLES WITH READ LOCK")
        _caught_up(r, p)
        host.move(r)
        p.kill()
        wa.join(30)
        _promote(r)
        wa2 = _continue(wa, r)
        wa2.start()
        wait_until(lambda: len(wa2.rows) > len(wa.rows) + 100 or wa2.error, 60, "writes on the promoted replica")
        wa2.halt.set()
        wa2.join(30)
        assert wa2.error is None, wa2.error
        expected = wa2.expected()

        def equal():
            return (
                sql(d, "SELECT * FROM shop.events ORDER BY id") == expected
                and sql(d, "SELECT n FROM shop.counter WHERE id=1")[0][0] == wa2.count
            )

        try:
            wait_until(equal, 60, "D equal to every acknowledged write on P then R")
        except AssertionError:
            ed = sql(d, "SELECT * FROM shop.events ORDER BY id")
            raise AssertionError(
                f"D rows {len(ed)}, expected {len(expected)}; missing {sorted(set(expected) - set(ed))[:5]}; "
                f"extra {sorted(set(ed) - set(expected))[:5]}; result {result.get('r')}"
            ) from None
        assert runner.is_alive(), result.get("r")
        for t in ("events", "counter"):
            assert sql(r, f"CHECKSUM TABLE shop.{t}")[0][1] == sql(d, f"CHECKSUM TABLE shop.{t}")[0][1]
        cp = _checkpoint(d, task_name, "forward")
        assert cp.source_server_id == 42 and (cp.conflicts or 0) == 0, cp
        assert any("resumed by GTID" in rec.getMessage() for rec in caplog.records), caplog.text
    finally:
        stop.set()
        runner.join(30)
        host.close()


def test_precheck_says_whether_gtid_resume_is_available(clean_pair, make_server, task_name):
    from airflow_provider_dts.engine.precheck import PASS, WARN, run_precheck

    d = make_direction(task_name, "forward")
    sql(clean_pair.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    ok = run_precheck(d, clean_pair.a.settings(), clean_pair.b.settings()).result("source_gtid_resume")
    assert ok.status == PASS and "GTID resume is available" in ok.reason, ok.line()
    loose = make_server("--gtid-strict-mode=OFF", "--log-slave-updates=OFF", server_id=13)
    sql(loose, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    report = run_precheck(d, loose.settings(name="src_loose"), clean_pair.b.settings())
    r = report.result("source_gtid_resume")
    assert r.status == WARN, r.line()
    assert "gtid_strict_mode, log_slave_updates off" in r.reason and f"127.0.0.1:{loose.port}" in r.reason
    assert "must be re-initialized" in r.reason and "SET GLOBAL gtid_strict_mode=ON" in r.fix
    assert report.passed, [
        x.line() for x in report.failed
    ]  # a warning: the sync itself works, only a failover would need a re-initialization


def test_failover_within_one_domain_after_a_binlog_rotation(trio, task_name):
    """MariaDB's usual layout: one replication domain for the cluster. After the promoted replica writes and
    rotates its binlog, its Gtid_list holds two servers of the same domain ([41-41-n,41-42-m]); the direction
    still resumes there by GTID."""
    p, r, d = trio
    sql(r, "SET GLOBAL gtid_domain_id=41")  # the replica writes in the primary's domain once promoted
    try:
        for s in (p, d):
            sql(s, "CREATE DATABASE shop", *TABLES)
        _caught_up(r, p)
        fwd = make_direction(task_name, "forward")
        with Sync(fwd, p, d):
            sql(p, "INSERT INTO shop.events VALUES (1, 'a', 0), (2, 'a', 0)")
            _caught_up(r, p)
            wait_until(lambda: sql(d, "SELECT COUNT(*) FROM shop.events")[0][0] == 2, 30, "D has P's rows")
            p.kill()
        _promote(r)
        sql(r, "INSERT INTO shop.events VALUES (3, 'r', 0)")
        sql(r, "FLUSH BINARY LOGS")  # a rotation on the new primary (restart, max_binlog_size, FLUSH LOGS)
        sql(r, "INSERT INTO shop.events VALUES (4, 'r', 0)")
        last = sql(r, "SHOW BINARY LOGS")[-1][0]
        header = next(e[5] for e in sql(r, f"SHOW BINLOG EVENTS IN '{last}' LIMIT 3") if e[2] == "Gtid_list")
        assert "41-41-" in header and "41-42-" in header, header  # two servers of domain 41
        result = run_direction(fwd, r.settings(name="r"), d.settings(name="d"), stop=threading.Event(), max_runtime=20)
        assert result.outcome == "max_runtime", result
        assert sql(d, "SELECT * FROM shop.events ORDER BY id") == sql(r, "SELECT * FROM shop.events ORDER BY id")
        assert [i for (i,) in sql(d, "SELECT id FROM shop.events ORDER BY id")] == [1, 2, 3, 4]
        cp = _checkpoint(d, task_name, "forward")
        assert cp.source_server_id == 42 and cp.rows_inserted == 4 and (cp.conflicts or 0) == 0, cp
    finally:
        sql(r, "SET GLOBAL gtid_domain_id=42")


def test_checkpoint_from_before_migration_8_read_first_at_another_server(trio, task_name):
    """An existing checkpoint (no identity, no GTID state: as migration 8 leaves it) first started against a
    server that does not have its file: that server's identity must not be recorded; pointed back at the
    server that wrote it, the direction continues."""
    p, r, d = trio
    for s in (p, d):
        sql(s, "CREATE DATABASE shop", *TABLES)
    _caught_up(r, p)
    fwd = make_direction(task_name, "forward")
    sql(p, "FLUSH BINARY LOGS", "FLUSH BINARY LOGS", "FLUSH BINARY LOGS")  # P's file names run ahead of R's
    with Sync(fwd, p, d):
        sql(p, "INSERT INTO shop.events VALUES (1, 'a', 0)")
        wait_until(lambda: sql(d, "SELECT COUNT(*) FROM shop.events")[0][0] == 1, 30, "D has P's row")
    sql(
        d,
        "UPDATE dts_meta.checkpoint SET gtid_state=NULL, gtid_state_at=NULL, source_server_id=NULL, "
        "source_server_uuid=NULL",
    )
    wrong = run_direction(fwd, r.settings(name="r"), d.settings(name="d"), stop=threading.Event(), max_runtime=15)
    assert wrong.outcome == "failed", wrong
    assert _checkpoint(d, task_name, "forward").source_server_id is None  # nothing learnt from the wrong server
    sql(p, "INSERT INTO shop.events VALUES (2, 'a', 0)")
    back = run_direction(fwd, p.settings(name="p"), d.settings(name="d"), stop=threading.Event(), max_runtime=15)
    assert back.outcome == "max_runtime", back.message
    assert [i for (i,) in sql(d, "SELECT id FROM shop.events ORDER BY id")] == [1, 2]
    assert _checkpoint(d, task_name, "forward").source_server_id == 41
