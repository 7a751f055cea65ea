"""Hostile input against the real pair: odd identifiers end to end, rows near max_allowed_packet, a selected
database dropped on the source. Each works or gets a clear error; nothing is half-applied."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import wait_until as wait_for

from airflow_provider_dts.engine.config import SyncDirection, TwoWayTask
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.precheck import run_precheck
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.engine.sqltext import qualified, quote_ident
from airflow_provider_dts.engine.verify import Verifier

ODD_DB = "we`ird db ☃"
ODD_TABLE = "select"  # a reserved word
ODD_TABLE2 = "tab le'\"x"  # space and both quote characters
COLS = ("`id`", "`order`", "`col ``tick```", "`naïve ✓`", "`key`")


def sql(server, stmt, args=None):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(stmt, args)
        return cur.fetchall()


class Running:
    """Both directions of a two-way task running in threads (the engine, as the trigger runs it)."""

    def __init__(self, task: TwoWayTask, pair):
        self.task, self.pair = task, pair
        self.stop = threading.Event()
        self.results = {}
        self.threads = [
            threading.Thread(target=self._run, args=(task.forward, pair.a, pair.b), daemon=True),
            threading.Thread(target=self._run, args=(task.reverse, pair.b, pair.a), daemon=True),
        ]

    def _run(self, d, src, dst):
        self.results[d.role] = run_direction(d, src.settings(), dst.settings(), stop=self.stop)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def initialize(task: TwoWayTask, pair):
    fwd, rev = task.forward, task.reverse
    report = run_precheck(fwd, pair.a.settings(), pair.b.settings())
    assert report.passed, [r.line() for r in report.failed]
    sync_schema(fwd, pair.a.settings(), pair.b.settings())
    full_data_sync(fwd, pair.a.settings(), pair.b.settings())
    report = run_precheck(rev, pair.b.settings(), pair.a.settings())
    assert report.passed, [r.line() for r in report.failed]
    full_data_sync(rev, pair.b.settings(), pair.a.settings())  # covered by task one: records the start only


def two_way(task_name, objects, **forward):
    return TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": objects,
                **forward,
            },
        }
    )


def test_odd_identifiers_end_to_end(clean_pair, task_name):
    pair = clean_pair
    db = quote_ident(ODD_DB)
    sql(pair.a, f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    cols = ", ".join(f"{c} {'INT PRIMARY KEY' if i == 0 else 'VARCHAR(40)'}" for i, c in enumerate(COLS))
    sql(pair.a, f"CREATE TABLE {qualified(ODD_DB, ODD_TABLE)} ({cols})")
    sql(pair.a, f"CREATE TABLE {qualified(ODD_DB, ODD_TABLE2)} (`k k` VARCHAR(20) PRIMARY KEY, `v` TEXT)")
    for i in range(1, 51):
        sql(
            pair.a,
            f"INSERT INTO {qualified(ODD_DB, ODD_TABLE)} VALUES (%s, %s, %s, %s, %s)",
            (i, f"o{i}", f"t`{i}", f"n'{i}\"", f"k{i} 😀"),
        )
    sql(pair.a, f"INSERT INTO {qualified(ODD_DB, ODD_TABLE2)} VALUES ('a `b` \\'c\\'', 'v ✓')")
    task = two_way(
        task_name, [f"`{ODD_DB.replace('`', '``')}`"], mapping={f"`{ODD_DB.replace('`', '``')}`": "mapped ☃ `db`"}
    )
    initialize(task, pair)
    dst_t = qualified("mapped ☃ `db`", ODD_TABLE)
    assert sql(pair.b, f"SELECT COUNT(*) FROM {dst_t}") == ((50,),)

    with Running(task, pair):
        wait_for(
            lambda: all(
                (ControlSchema().get_state(s.root_connect(), task_name, r) or {}).get("state") == State.SYNCHRONIZING
                for s, r in ((pair.b, "forward"), (pair.a, "reverse"))
            ),
            what="both directions synchronizing",
        )
        sql(pair.a, f"UPDATE {qualified(ODD_DB, ODD_TABLE)} SET `col ``tick``` = 'moved' , id = 1000 WHERE id = 1")
        sql(pair.a, f"DELETE FROM {qualified(ODD_DB, ODD_TABLE)} WHERE `order` = 'o2'")
        sql(pair.a, f"ALTER TABLE {qualified(ODD_DB, ODD_TABLE)} ADD COLUMN `new ``col`` ✓` INT DEFAULT 7")
        sql(pair.b, f"INSERT INTO {dst_t} (id, `order`, `key`) VALUES (5000, 'from B', 'k')")
        sql(pair.b, f"UPDATE {qualified('mapped ☃ `db`', ODD_TABLE2)} SET v = 'changed on B'")

        def converged():
            a = sql(pair.a, f"SELECT * FROM {qualified(ODD_DB, ODD_TABLE)} ORDER BY id")
            b = sql(pair.b, f"SELECT * FROM {dst_t} ORDER BY id")
            a2 = sql(pair.a, f"SELECT * FROM {qualified(ODD_DB, ODD_TABLE2)}")
            return a == b and len(a) == 50 and len(a[0]) == 6 and a2 == (("a `b` 'c'", "changed on B"),)

        wait_for(converged, what="both sides equal")
        report = Verifier(task.forward, pair.a.settings(), pair.b.settings(), recheck_delay=0.5).run()
        assert report.equal, report.summary()
    assert sql(pair.a, f"SELECT `order` FROM {qualified(ODD_DB, ODD_TABLE)} WHERE id=5000") == (("from B",),)


def test_rows_near_max_allowed_packet(clean_pair, task_name):
    """A row of several MB (just under the 16 MB max_allowed_packet once written as a statement) copies and
    replicates exactly; a row the destination cannot take fails the direction with a clear message and
    leaves the destination untouched."""
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE big")
    sql(pair.a, "CREATE TABLE big.blobs (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT)")
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO big.blobs VALUES (%s, %s, %s)",
            [(i, bytes([i % 256]) * 100, f"small {i}") for i in range(100, 3100)],
        )
    # mid-table, after chunks that went through LOAD DATA: too large for a LOAD DATA line, fine as INSERT
    sql(pair.a, "REPLACE INTO big.blobs VALUES (2500, %s, %s)", (bytes(range(256)) * 4096 * 6, "é" * 2_000_000))
    sql(pair.a, "DELETE FROM big.blobs WHERE id = 2501")
    sql(pair.a, "INSERT INTO big.blobs VALUES (2501, %s, NULL)", (b"\x01" * 1000,))
    task = two_way(task_name, ["big"])
    initialize(task, pair)
    checksum = "SELECT COUNT(*), SUM(CRC32(b)), SUM(CRC32(t)), MD5(GROUP_CONCAT(MD5(b) ORDER BY id)) FROM big.blobs"
    assert sql(pair.b, checksum) == sql(pair.a, checksum)
    with Running(task, pair) as run:
        wait_for(
            lambda: (
                (ControlSchema().get_state(pair.b.root_connect(), task_name, "forward") or {}).get("state")
                == State.SYNCHRONIZING
            ),
            what="task one synchronizing",
        )
        sql(pair.a, "INSERT INTO big.blobs VALUES (2, %s, NULL)", (b"\x00\xff" * 3_000_000,))
        wait_for(
            lambda: (
                sql(pair.b, "SELECT MD5(b) FROM big.blobs WHERE id=2")
                == sql(pair.a, "SELECT MD5(b) FROM big.blobs WHERE id=2")
            ),
            60,
            "6 MB row replicated",
        )
        del run


def test_selected_database_dropped_on_the_source(clean_pair, task_name):
    """DROP DATABASE is not in the DDL list DTS synchronizes: the destination keeps its data and the direction
    keeps running; the skip is visible in the DDL log."""
    pair = clean_pair
    sql(pair.a, "CREATE DATABASE gone")
    sql(pair.a, "CREATE TABLE gone.t (id INT PRIMARY KEY, v INT)")
    sql(pair.a, "INSERT INTO gone.t VALUES (1, 1), (2, 2)")
    task = two_way(task_name, ["gone"])
    initialize(task, pair)
    with Running(task, pair):
        wait_for(
            lambda: (
                (ControlSchema().get_state(pair.b.root_connect(), task_name, "forward") or {}).get("state")
                == State.SYNCHRONIZING
            ),
            what="task one synchronizing",
        )
        sql(pair.a, "INSERT INTO gone.t VALUES (3, 3)")
        wait_for(lambda: sql(pair.b, "SELECT COUNT(*) FROM gone.t") == ((3,),), what="row 3")
        sql(pair.a, "DROP DATABASE gone")
        sql(pair.a, "CREATE DATABASE other")
        time.sleep(3)
        state = ControlSchema().get_state(pair.b.root_connect(), task_name, "forward")
        assert state["state"] == State.SYNCHRONIZING, state
    assert sql(pair.b, "SELECT COUNT(*) FROM gone.t") == ((3,),)
    report = run_precheck(task.forward, pair.a.settings(), pair.b.settings())
    assert report.result("objects_exist").status == "FAIL"
    assert "gone" in report.result("objects_exist").reason


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("task_name", "", "task_name"),
        ("source_conn_id", 5, "source_conn_id"),
        ("destination_conn_id", None, "destination_conn_id"),
        ("objects", "a.b.c", "objects"),
        ("mapping", ["x"], "mapping"),
        ("dml_types", ["TRUNCATE"], "dml_types"),
        ("exclude_ddl", "maybe", "exclude_ddl"),
        ("conflict_policy", "LastWriterWins", "conflict_policy"),
        ("existing_table_mode", "Drop", "existing_table_mode"),
        ("initial_schema_sync", 3, "initial_schema_sync"),
        ("initial_full_data_sync", "perhaps", "initial_full_data_sync"),
        ("retry_minutes", -1, "retry_minutes"),
        ("ignore_precheck_items", ["everything"], "ignore_precheck_items"),
        ("sync_triggers", "on", "sync_triggers"),
        ("control_schema", "x" * 65, "control_schema"),
    ],
)
def test_each_malformed_field_is_named_and_nothing_is_written(clean_pair, field, value, needle):
    from airflow_provider_dts.engine.errors import ConfigError

    data = {
        "task_name": "t1",
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
        field: value,
    }
    with pytest.raises(ConfigError) as e:
        SyncDirection.from_dict(data)
    assert any(p.startswith(needle) or needle in p for p in e.value.problems), e.value.problems
    assert sql(clean_pair.b, "SHOW DATABASES LIKE 'dts_meta'") == ()
