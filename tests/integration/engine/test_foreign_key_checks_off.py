"""Source sessions that write with foreign_key_checks=0 (dump restores, bulk loaders, a child before its parent,
a parent deleted while its children stay) are applied as native replication applies them: with the source
session's setting, read from each rows event's NO_FOREIGN_KEY_CHECKS_F flag (issue 9, cause 2 follow-up).

Both directions run; every test ends with both servers equal row by row and by CHECKSUM TABLE, both directions
Synchronizing, no conflict logged."""

from __future__ import annotations

import subprocess

import pytest
from syncing import create_both, make_direction, sql
from test_real_world_schemas import (
    FK_SCHEMA,
    FK_TABLES,
    _fill,
    assert_equal_eventually,
    both_synchronizing,
    conflicts,
    two_way,
)

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine.apply import Applier
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.model import Checkpoint, RowChange, Transaction
from airflow_provider_dts.engine.reader_process import ReaderProcess


def count(server, query: str) -> int:
    return sql(server, query)[0][0]


def test_foreign_key_checks_off_on_the_source_is_honoured_both_ways(clean_pair, task_name, monkeypatch):
    # large transactions cross the reader pipe in pieces: the ranges of changes written with checks off must
    # survive that too
    monkeypatch.setattr(ReaderProcess, "part_rows", 3)
    pair = clean_pair
    create_both(pair, *FK_SCHEMA)
    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        _fill(pair.a, 100, 6)  # customers 100..105 with orders, lines, tags
        _fill(pair.b, 200, 6)  # customers 200..205
        assert_equal_eventually(pair, FK_TABLES)
        # A, checks off, as a dump restore does: children before their parents, in one transaction and alone
        sql(
            pair.a,
            "SET SESSION foreign_key_checks=0",
            "START TRANSACTION",
            "INSERT INTO shop.line VALUES (70000, 7000, 1), (70001, 7000, 2), (70010, 7001, 3)",
            "INSERT INTO shop.tag VALUES (7000, 7000)",
            "INSERT INTO shop.orders VALUES (7000, 'c700', 'restored'), (7001, 'c700', 'restored')",
            "INSERT INTO shop.customer VALUES (700, 'c700', 'restored')",
            "COMMIT",
            "INSERT INTO shop.orders VALUES (7100, 'c710', 'child first')",  # autocommit: parent comes next
            "INSERT INTO shop.customer VALUES (710, 'c710', 'parent later')",
            # a parent deleted while its children stay (no cascade on A: checks are off)
            "DELETE FROM shop.customer WHERE id=100",
            "UPDATE shop.customer SET code='c101new' WHERE id=101",
        )  # orders keep 'c101' (no cascade)
        # A, one transaction switching the setting: only the changes made with checks off skip them
        sql(
            pair.a,
            "START TRANSACTION",
            "SET SESSION foreign_key_checks=0",
            "INSERT INTO shop.orders VALUES (7200, 'c720', 'orphan first')",
            "SET SESSION foreign_key_checks=1",
            "DELETE FROM shop.customer WHERE id=102",  # cascades on A: its orders and lines go, tags set NULL
            "SET SESSION foreign_key_checks=0",
            "INSERT INTO shop.customer VALUES (720, 'c720', 'late parent')",
            "DELETE FROM shop.orders WHERE id=1030",  # checks off: its lines stay, its tag keeps the id
            "COMMIT",
        )
        # B, a normal session: the cascade must happen on A too
        sql(pair.b, "DELETE FROM shop.customer WHERE id=200", "UPDATE shop.customer SET code='c201x' WHERE id=201")
        assert_equal_eventually(pair, FK_TABLES)
        # what the source's settings did, now on both servers
        for s in (pair.a, pair.b):
            assert count(s, "SELECT COUNT(*) FROM shop.orders WHERE customer_code='c100'") == 3  # stayed
            assert count(s, "SELECT COUNT(*) FROM shop.orders WHERE customer_code='c101'") == 3  # not renamed
            assert count(s, "SELECT COUNT(*) FROM shop.orders WHERE customer_code='c102'") == 0  # cascaded
            assert count(s, "SELECT COUNT(*) FROM shop.line WHERE order_id=1030") == 2  # parent gone, stayed
            assert count(s, "SELECT COUNT(*) FROM shop.tag WHERE order_id=1030") == 1
            assert count(s, "SELECT COUNT(*) FROM shop.orders WHERE customer_code='c200'") == 0  # cascaded
            assert count(s, "SELECT COUNT(*) FROM shop.orders WHERE customer_code='c201x'") == 3  # followed
            assert count(s, "SELECT COUNT(*) FROM shop.line WHERE order_id IN (7000, 7001)") == 3
        both_synchronizing(pair, task_name)
    assert conflicts(pair.a, task_name) + conflicts(pair.b, task_name) == []


@pytest.mark.own_servers
def test_a_mariadb_dump_restored_on_a_running_sync(clean_pair, task_name):
    """``mariadb-dump | mariadb`` into a synced database: the dump turns foreign key checks off and writes the
    tables in name order, here children before their parents, as mysqldump-style restores do."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.plain (id INT PRIMARY KEY, v INT)")
    sql(
        pair.a,
        "CREATE DATABASE staging",  # not selected: only its dump reaches the sync
        "CREATE TABLE staging.c_customer (id INT PRIMARY KEY, name VARCHAR(40))",
        "CREATE TABLE staging.b_order (id INT PRIMARY KEY, customer_id INT NOT NULL, "
        " FOREIGN KEY (customer_id) REFERENCES c_customer (id) ON DELETE CASCADE)",
        "CREATE TABLE staging.a_line (id INT PRIMARY KEY, order_id INT NOT NULL, qty INT, "
        " FOREIGN KEY (order_id) REFERENCES b_order (id) ON DELETE CASCADE)",
        "INSERT INTO staging.c_customer SELECT seq, CONCAT('n', seq) FROM staging.seq_1_to_40",
        "INSERT INTO staging.b_order SELECT seq, 1 + seq % 40 FROM staging.seq_1_to_120",
        "INSERT INTO staging.a_line SELECT seq, 1 + seq % 120, seq FROM staging.seq_1_to_360",
    )
    fwd, rev = two_way(pair, task_name)
    with fwd, rev:
        client = ["--no-defaults", f"--socket={pair.a.socket_path}", "--user=root"]
        dump = subprocess.run(["mariadb-dump", *client, "staging"], capture_output=True, check=True, timeout=60)
        assert dump.stdout.index(b"INSERT INTO `a_line`") < dump.stdout.index(b"INSERT INTO `c_customer`")
        assert b"FOREIGN_KEY_CHECKS=0" in dump.stdout
        # mariadb-dump staging | mariadb shop
        dumper = subprocess.Popen(["mariadb-dump", *client, "staging"], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["mariadb", *client, "shop"], stdin=dumper.stdout, capture_output=True, timeout=60, check=False
        )
        dumper.stdout.close()
        assert dumper.wait(timeout=60) == 0 and loaded.returncode == 0, loaded.stderr
        tables = ["c_customer", "b_order", "a_line", "plain"]
        assert_equal_eventually(pair, tables)
        assert count(pair.b, "SELECT COUNT(*) FROM shop.a_line") == 360
        # a normal session on B deletes parents: A must cascade as B did
        sql(pair.b, "DELETE FROM shop.c_customer WHERE id <= 10", "INSERT INTO shop.plain VALUES (1, 1)")
        assert_equal_eventually(pair, tables)
        assert count(pair.a, "SELECT COUNT(*) FROM shop.b_order") == 120 - 30
        assert count(pair.a, "SELECT COUNT(*) FROM shop.a_line") == 360 - 90
        both_synchronizing(pair, task_name)
    assert conflicts(pair.a, task_name) + conflicts(pair.b, task_name) == []


def _change(kind: str, table: str, image: dict) -> RowChange:
    return RowChange(
        kind,
        "shop",
        table,
        "shop",
        table,
        image if kind == "delete" else None,
        image if kind != "delete" else None,
        ("id",),
    )


def test_the_applier_session_is_back_to_checks_on_after_each_group_even_a_failed_one(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, *FK_SCHEMA)
    sql(pair.b, "INSERT INTO shop.plain VALUES (1, 0)")
    d = make_direction(task_name)
    ap = Applier(d, pair.b.settings(name="dst"))
    conn = ap.connect()
    ControlSchema(d.control_schema).ensure(conn)
    cp = Checkpoint(binlog_file="binlog.000001", binlog_pos=4)

    def txn(end: int, changes: list[RowChange], off=()) -> Transaction:
        return Transaction(("binlog.000001", end - 1), ("binlog.000001", end), None, 0.0, changes, fk_checks_off=off)

    def session_checks() -> int:
        with ap.conn.cursor() as cur:
            cur.execute("SELECT @@session.foreign_key_checks")
            return cur.fetchone()[0]

    orphan = {"id": 10, "customer_code": "c9", "note": "orphan"}
    # checks off for both changes; the second clashes with a row B already holds (policy TaskFailed)
    with pytest.raises(C.ConflictFailure):
        ap.apply_group(
            [
                txn(
                    10,
                    [_change("insert", "orders", orphan), _change("insert", "plain", {"id": 1, "v": 5})],
                    off=((0, 2),),
                )
            ],
            cp,
        )
    assert session_checks() == 1
    assert count(pair.b, "SELECT COUNT(*) FROM shop.orders") == 0  # nothing of the failed group stayed
    assert cp.binlog_pos == 4
    # the same orphan written with checks on at the source is refused here
    with pytest.raises(Exception, match="parent row does not exist"):
        ap.apply_group([txn(20, [_change("insert", "orders", orphan)])], cp)
    assert session_checks() == 1
    # checks off, then on, in one transaction: the orphan goes in, then a checked delete cascades
    sql(pair.b, "INSERT INTO shop.customer VALUES (5, 'c5', 'x')", "INSERT INTO shop.orders VALUES (50, 'c5', 'y')")
    ap.apply_group(
        [
            txn(
                30,
                [
                    _change("insert", "orders", orphan),
                    _change("delete", "customer", {"id": 5, "code": "c5", "name": "x"}),
                ],
                off=((0, 1),),
            )
        ],
        cp,
    )
    assert session_checks() == 1
    assert sql(pair.b, "SELECT id, customer_code FROM shop.orders ORDER BY id") == [(10, "c9")]
    assert cp.binlog_pos == 30
    ap.close()
