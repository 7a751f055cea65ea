"""DTS's "switch direction" on a running pair (issue 13, engine/ddl_owner.py): DDL made before the switch on the old
owner's side still arrives, DDL on the new owner's side arrives afterwards (with the inverted mapping), DDL on the
old owner's side after the switch does not (logged as skipped), rows written on both sides throughout stay equal,
and the owner survives a restart. The CLI command runs as the README prints it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest
from helpers import wait_until
from syncing import Sync, make_direction, sql
from test_ddl import columns

from airflow_provider_dts.engine import incremental
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.ddl_owner import DONE, SWITCHING, SwitchRefused, read_switches, switch_direction

COLS = "id, side, n"


def directions(task: str):
    """Task one: shop on A -> shop_copy on B (DDL on); task two: the other way, mapping inverted."""
    fwd = make_direction(task, mapping={"shop": "shop_copy"})
    rev = make_direction(task, "reverse", objects=["shop_copy"], mapping={"shop_copy": "shop"})
    return fwd, rev


def setup_tables(pair) -> None:
    sql(pair.a, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, side VARCHAR(8), n INT)")
    sql(pair.b, "CREATE DATABASE shop_copy", "CREATE TABLE shop_copy.t (id INT PRIMARY KEY, side VARCHAR(8), n INT)")


def start_both(pair, task: str) -> tuple[Sync, Sync]:
    fwd, rev = directions(task)
    return Sync(fwd, pair.a, pair.b).start(), Sync(rev, pair.b, pair.a).start()


class Writers:
    """Rows written on both sides all along (inserts and updates of each side's own rows, never the same key)."""

    def __init__(self, pair, first_a: int = 1, first_b: int = 100000):
        self.pair = pair
        self.stop = threading.Event()
        self.hold = threading.Event()  # set: the writers pause (see ddl)
        self.idle = [threading.Event(), threading.Event()]
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._write, args=(pair.a, "shop", "A", first_a, self.idle[0]), daemon=True),
            threading.Thread(target=self._write, args=(pair.b, "shop_copy", "B", first_b, self.idle[1]), daemon=True),
        ]

    def _write(self, server, db: str, side: str, first: int, idle: threading.Event) -> None:
        try:
            conn = server.root_connect(database=db)
            i = first
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    if self.hold.is_set():
                        idle.set()
                        self.stop.wait(0.05)
                        continue
                    idle.clear()
                    cur.execute(f"INSERT INTO t ({COLS}) VALUES (%s, %s, %s)", (i, side, i % 7))
                    if i > first + 2:
                        cur.execute("UPDATE t SET n = n + 1 WHERE id = %s", (i - 2,))
                    i += 1
                    self.stop.wait(0.02)
            conn.close()
        except BaseException as e:  # reported by finish()
            self.errors.append(e)

    def ddl(self, server, statement: str, db: str | None = None) -> None:
        """A user's DDL, run while the writers pause and both directions have applied their rows: a direction that
        reads a destination table's definition at the very moment a user's ALTER changes it can find no table
        (MariaDB's information_schema skips a table it cannot lock at once), which is not what this test is about."""
        self.hold.set()
        try:
            for e in self.idle:
                e.clear()
            for e in self.idle:
                assert e.wait(10), "writers did not pause"
            pair = self.pair
            wait_until(lambda: rows(pair.a, "shop", COLS) == rows(pair.b, "shop_copy", COLS), 60, "caught up")
            sql(server, statement, db=db)
        finally:
            self.hold.clear()

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        assert not self.errors, self.errors

    def __exit__(self, *exc) -> None:
        self.finish()


def wait_flowing(pair, at_least: int = 3) -> None:
    """Rows of each side have reached the other: both appliers have read their table before the test runs DDL on
    it (a table definition read while a user's ALTER runs on the same server can find no table: not this test's
    subject)."""

    def count(server, db: str, side: str) -> int:
        return int(sql(server, f"SELECT COUNT(*) FROM `{db}`.t WHERE side = '{side}'")[0][0])

    wait_until(
        lambda: count(pair.a, "shop", "B") >= at_least and count(pair.b, "shop_copy", "A") >= at_least,
        30,
        "rows flowing both ways",
    )


def rows(server, db: str, cols: str = "*") -> list[tuple]:
    return sql(server, f"SELECT {cols} FROM `{db}`.t ORDER BY id")


def assert_equal(pair) -> None:
    wait_until(lambda: rows(pair.a, "shop") == rows(pair.b, "shop_copy"), 60, "rows equal on both sides")
    assert len(rows(pair.a, "shop")) > 20
    assert sql(pair.a, "CHECKSUM TABLE shop.t")[0][1] == sql(pair.b, "CHECKSUM TABLE shop_copy.t")[0][1]


def ddl_log(server, task: str, role: str) -> list[tuple]:
    return sql(
        server,
        f"SELECT outcome, source_statement, applied_statement FROM dts_meta.ddl_log WHERE task_name='{task}' "
        f"AND direction='{role}' ORDER BY id",
    )


def switches(server, task: str):
    conn = server.root_connect()
    try:
        return read_switches(conn, ControlSchema(), task)
    finally:
        conn.close()


# Without MariaDB's skip_replication fast path every DDL a direction applies reaches the other direction's reader
# (as on MySQL): the owner rule alone must keep it from being applied back.
FAST_PATH = pytest.mark.parametrize("fast_path", [False, True], ids=["echoes-arrive", "with-skip_replication"])


@FAST_PATH
def test_switch_on_a_running_pair(clean_pair, task_name, caplog, fast_path, monkeypatch):
    monkeypatch.setattr(incremental, "SKIP_FLAGGED_FAST_PATH", fast_path)
    pair = clean_pair
    setup_tables(pair)
    caplog.set_level(logging.INFO)
    fwd, rev = start_both(pair, task_name)
    with Writers(pair) as w:
        wait_flowing(pair)
        # before the switch: task one owns DDL, A's ALTER reaches B
        w.ddl(pair.a, "ALTER TABLE t ADD COLUMN c1 INT NOT NULL DEFAULT 1", db="shop")
        wait_until(lambda: "c1" in columns(pair.b, "shop_copy", "t"), 30, "A's ALTER on B")

        result = switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="reverse", who="test")
        assert result.state == DONE and result.previous == "forward" and result.owner == "reverse", result
        assert "task two (reverse) now applies DDL" in result.describe()

        # after: B's ALTER (unqualified, in B's default database) reaches A with the inverted mapping
        w.ddl(pair.b, "ALTER TABLE t ADD COLUMN c2 INT NOT NULL DEFAULT 2", db="shop_copy")
        wait_until(lambda: "c2" in columns(pair.a, "shop", "t"), 30, "B's ALTER on A")
        applied = wait_until(
            lambda: [r[2] for r in ddl_log(pair.a, task_name, "reverse") if r[0] == "applied"], 30, "ddl_log row"
        )
        assert applied == ["ALTER TABLE `shop`.`t` ADD COLUMN c2 INT NOT NULL DEFAULT 2"]

        # A's ALTER after the switch does not reach B; it is logged as skipped, with a warning
        w.ddl(pair.a, "ALTER TABLE shop.t ADD COLUMN only_a INT NULL")
        wait_until(
            lambda: any("only_a" in r[1] and r[0] == "skipped" for r in ddl_log(pair.b, task_name, "forward")),
            30,
            "A's later ALTER logged as skipped by task one",
        )
        assert "only_a" not in columns(pair.b, "shop_copy", "t")
        warned = [r for r in caplog.records if r.levelno == logging.WARNING and "only_a" in r.getMessage()]
        assert warned and "task two (reverse) owns DDL since switch 1 (by test" in warned[0].getMessage()
        wait_until(
            lambda: rows(pair.a, "shop", f"{COLS}, c1, c2") == rows(pair.b, "shop_copy", f"{COLS}, c1, c2"),
            60,
            "rows equal while the columns differ",
        )
        w.ddl(pair.a, "ALTER TABLE shop.t DROP COLUMN only_a")  # skipped too: the tables are alike again
    assert fwd.result is None and rev.result is None
    assert columns(pair.a, "shop", "t") == columns(pair.b, "shop_copy", "t") == ["id", "side", "n", "c1", "c2"]
    assert_equal(pair)
    fwd.stop()
    rev.stop()

    # the owner is on both servers and survives a restart of both directions
    for server in (pair.a, pair.b):
        (sw,) = switches(server, task_name)
        assert (sw.owner, sw.state, sw.switched_by) == ("reverse", DONE, "test")
        assert sw.a is not None and sw.b is not None
    fwd, rev = start_both(pair, task_name)
    with Writers(pair, 50000, 150000) as w:
        wait_flowing(pair, 50 + len(rows(pair.b, "shop_copy")) // 2)
        w.ddl(pair.b, "ALTER TABLE shop_copy.t ADD COLUMN c3 VARCHAR(5) NULL")
        wait_until(lambda: "c3" in columns(pair.a, "shop", "t"), 30, "B's ALTER on A after the restart")
    assert fwd.result is None and rev.result is None
    assert_equal(pair)
    fwd.stop()
    rev.stop()


def test_switch_completes_after_the_old_owner_catches_up(clean_pair, task_name, caplog, monkeypatch):
    """Task one is stopped with A's DDL not yet applied: the switch stays incomplete (B's DDL meanwhile is not
    applied, with a warning); once task one has applied A's DDL to B, the switch completes, and task two does not
    apply that statement back to A when it reads it in B's binlog."""
    monkeypatch.setattr(incremental, "SKIP_FLAGGED_FAST_PATH", False)
    caplog.set_level(logging.INFO)
    pair = clean_pair
    setup_tables(pair)
    fwd, rev = start_both(pair, task_name)
    fwd.stop()
    sql(pair.a, "ALTER TABLE shop.t ADD COLUMN early INT NULL")
    sql(pair.a, f"INSERT INTO shop.t ({COLS}, early) VALUES (1, 'A', 1, 11)")
    first = switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="reverse", wait=1, poll=0.2)
    assert (
        first.state == SWITCHING
        and "is not complete" in first.describe()
        and "run the same command again" in (first.describe().lower())
    )
    with pytest.raises(SwitchRefused, match="still completing"):
        switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="forward")
    sql(pair.b, "CREATE TABLE shop_copy.made_meanwhile (id INT PRIMARY KEY)")
    wait_until(
        lambda: any("made_meanwhile" in r[1] and r[0] == "skipped" for r in ddl_log(pair.a, task_name, "reverse")),
        30,
        "B's DDL during the switch skipped",
    )
    assert any(r.levelno == logging.WARNING and "still completing" in r.getMessage() for r in caplog.records)
    fwd = Sync(directions(task_name)[0], pair.a, pair.b).start()
    with Writers(pair, 10) as w:
        wait_flowing(pair)
        done = switch_direction(task_name, pair.a.settings(), pair.b.settings(), wait=30)
        assert done.state == DONE and done.owner == "reverse", done.describe()
        assert "early" in columns(pair.b, "shop_copy", "t")  # applied by task one before the switch completed
        w.ddl(pair.b, "ALTER TABLE shop_copy.t ADD COLUMN late INT NULL")
        wait_until(lambda: "late" in columns(pair.a, "shop", "t"), 30, "B's ALTER on A")
    # task one's ALTER arrived in task two's stream (no fast path) before P_new: skipped, not applied back
    assert any("early" in r[1] and r[0] == "skipped" for r in ddl_log(pair.a, task_name, "reverse"))
    assert fwd.result is None and rev.result is None
    assert columns(pair.a, "shop", "t") == columns(pair.b, "shop_copy", "t") == ["id", "side", "n", "early", "late"]
    assert_equal(pair)
    fwd.stop()
    rev.stop()


def test_switch_is_refused_while_ddl_is_pending(clean_pair, task_name):
    pair = clean_pair
    setup_tables(pair)
    with pytest.raises(SwitchRefused, match="never ran"):
        switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="reverse")
    for s in start_both(pair, task_name):
        s.stop()
    conn = pair.b.root_connect()
    control = ControlSchema()
    cp = control.read_checkpoint(conn, task_name, "forward")
    assert cp is not None
    cp.ddl_pending = json.dumps({"position": [cp.binlog_file, cp.binlog_pos], "statement": "ALTER TABLE x"})
    with conn.cursor() as cur:
        control.write_checkpoint(cur, task_name, "forward", cp)
    conn.close()
    with pytest.raises(SwitchRefused, match=r"has DDL pending \(.*ALTER TABLE x"):
        switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="reverse")
    assert switches(pair.a, task_name) == [] and switches(pair.b, task_name) == []
    unchanged = switch_direction(task_name, pair.a.settings(), pair.b.settings(), to="forward")
    assert unchanged.state == "unchanged" and "already owns DDL" in unchanged.describe()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_dts.cli", *args], capture_output=True, text=True, timeout=180
    )


def test_switch_direction_from_the_documented_command(clean_pair, task_name):
    """As the README prints it: switch to task two, then back (no --to: the other side)."""
    pair = clean_pair
    setup_tables(pair)
    fwd, rev = start_both(pair, task_name)
    try:
        out = cli("switch-direction", "--task-name", task_name, "--to", "reverse")
        assert out.returncode == 0, out.stderr + out.stdout
        assert "task two (reverse) now applies DDL" in out.stdout
        sql(pair.b, "ALTER TABLE shop_copy.t ADD COLUMN from_b INT NULL")
        wait_until(lambda: "from_b" in columns(pair.a, "shop", "t"), 30, "B's ALTER on A")

        out = cli("switch-direction", "--task-name", task_name)
        assert out.returncode == 0, out.stderr + out.stdout
        assert "task one (forward) now applies DDL" in out.stdout
        sql(pair.a, "ALTER TABLE shop.t ADD COLUMN from_a INT NULL")
        wait_until(lambda: "from_a" in columns(pair.b, "shop_copy", "t"), 30, "A's ALTER on B")
        sql(pair.b, "ALTER TABLE shop_copy.t ADD COLUMN b_only INT NULL")
        wait_until(
            lambda: any("b_only" in r[1] and r[0] == "skipped" for r in ddl_log(pair.a, task_name, "reverse")),
            30,
            "B's ALTER skipped by task two",
        )
        assert "b_only" not in columns(pair.a, "shop", "t")
        assert [s.owner for s in switches(pair.a, task_name)] == ["reverse", "forward"]
    finally:
        fwd.stop()
        rev.stop()
