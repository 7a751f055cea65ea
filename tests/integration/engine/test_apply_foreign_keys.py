"""The applier with foreign keys at the destination, driven directly against a real server (found by review):
deletes in a self-referencing table, catch-up windows replaying history onto a snapshot, the Overwrite policy
on a parent with a second unique key, and a batch of multi-byte text near max_allowed_packet."""

from __future__ import annotations

import pytest
from helpers import global_variables, q

from airflow_provider_dts.engine.apply import Applier
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.model import Checkpoint, RowChange, Transaction

WINDOW = dict(catchup_file="binlog.000001", catchup_pos=10_000)  # every transaction below is in the window


def ch(kind, table, before=None, after=None):
    return RowChange(kind, "fk", table, "fk", table, before, after, ("id",))


def txn(end, *changes):
    return Transaction(("binlog.000001", end - 1), ("binlog.000001", end), None, 0.0, list(changes))


@pytest.fixture
def applier(clean_pair, task_name):
    made = []

    def make(*schema, policy="TaskFailed"):
        with clean_pair.b.root_connect() as conn:
            q(conn, "CREATE DATABASE fk")
            for stmt in schema:
                q(conn, stmt)
            ControlSchema().ensure(conn)
        d = SyncDirection.from_dict(
            dict(
                task_name=task_name,
                role="forward",
                source_conn_id="a",
                destination_conn_id="b",
                objects=["fk"],
                conflict_policy=policy,
            )
        )
        ap = Applier(d, clean_pair.b.settings())
        ap.connect()
        made.append(ap)
        return ap

    yield make
    for ap in made:
        ap.close()


def rows(pair, table):
    with pair.b.root_connect() as conn:
        return q(conn, f"SELECT * FROM fk.{table} ORDER BY id")


def test_children_then_parent_deleted_in_a_self_referencing_table(applier, clean_pair):
    ap = applier(
        "CREATE TABLE fk.cat (id INT PRIMARY KEY, parent_id INT NULL, FOREIGN KEY (parent_id) REFERENCES fk.cat (id))",
        "INSERT INTO fk.cat VALUES (1, NULL), (2, 1), (3, 1), (4, NULL)",
    )
    # the only legal order on the source: children first; the server would delete a batch in key order
    ap.apply_group(
        [
            txn(
                10,
                ch("delete", "cat", {"id": 3, "parent_id": 1}),
                ch("delete", "cat", {"id": 2, "parent_id": 1}),
                ch("delete", "cat", {"id": 1, "parent_id": None}),
            )
        ],
        Checkpoint(),
    )
    assert rows(clean_pair, "cat") == ((4, None),)


def test_catch_up_replays_history_without_foreign_key_refusals_or_cascades(applier, clean_pair):
    ap = applier(
        "CREATE TABLE fk.p (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE fk.c (id INT PRIMARY KEY, p_id INT NULL, FOREIGN KEY (p_id) REFERENCES fk.p (id) "
        "ON UPDATE CASCADE ON DELETE CASCADE)",
        # the snapshot: what the source held at the end of the window
        "INSERT INTO fk.p VALUES (1, 10), (2, 20)",
        "INSERT INTO fk.c VALUES (100, 2)",
    )
    cp = Checkpoint(binlog_file="binlog.000001", binlog_pos=4, **WINDOW)
    ap.apply_group(
        [
            txn(10, ch("insert", "c", after={"id": 5, "p_id": 7})),  # its parent 7 is gone by the snapshot
            txn(20, ch("delete", "c", before={"id": 5, "p_id": 7})),
            txn(30, ch("delete", "p", before={"id": 7, "v": 0})),
            txn(40, ch("update", "p", {"id": 1, "v": 1}, {"id": 2, "v": 20})),  # key change, old key inserted again
            txn(50, ch("insert", "p", after={"id": 1, "v": 10})),
            txn(60, ch("update", "p", {"id": 2, "v": 2}, {"id": 2, "v": 20})),  # must not cascade to c 100
        ],
        cp,
    )
    assert rows(clean_pair, "p") == ((1, 10), (2, 20))
    assert rows(clean_pair, "c") == ((100, 2),)


def test_catch_up_on_a_parent_with_a_second_unique_key_keeps_the_children(applier, clean_pair):
    ap = applier(
        "CREATE TABLE fk.u (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL UNIQUE)",
        "CREATE TABLE fk.o (id INT PRIMARY KEY, u_id INT NOT NULL, FOREIGN KEY (u_id) REFERENCES fk.u (id) "
        "ON UPDATE CASCADE ON DELETE CASCADE)",
        "INSERT INTO fk.u VALUES (1, 'a'), (2, 'c')",
        "INSERT INTO fk.o VALUES (100, 2)",
    )
    cp = Checkpoint(binlog_file="binlog.000001", binlog_pos=4, **WINDOW)
    ap.apply_group(
        [
            txn(10, ch("insert", "u", after={"id": 3, "email": "c"})),
            txn(20, ch("delete", "u", before={"id": 3, "email": "c"})),
            txn(30, ch("update", "u", {"id": 2, "email": "b"}, {"id": 2, "email": "c"})),
        ],
        cp,
    )
    assert rows(clean_pair, "u") == ((1, "a"), (2, "c"))
    assert rows(clean_pair, "o") == ((100, 2),)


def test_overwrite_of_a_unique_clash_keeps_the_updated_parents_children(applier, clean_pair):
    ap = applier(
        "CREATE TABLE fk.u (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL UNIQUE)",
        "CREATE TABLE fk.o (id INT PRIMARY KEY, u_id INT NOT NULL, FOREIGN KEY (u_id) REFERENCES fk.u (id) "
        "ON DELETE CASCADE ON UPDATE CASCADE)",
        "INSERT INTO fk.u VALUES (5, 'a'), (9, 'b')",
        "INSERT INTO fk.o VALUES (100, 5), (101, 5), (200, 9)",
        policy="Overwrite",
    )
    # the source changed user 5's email to 'b', which user 9 holds here: 5 wins, 9 (and its order) is overwritten
    stats = ap.apply_group([txn(10, ch("update", "u", {"id": 5, "email": "a"}, {"id": 5, "email": "b"}))], Checkpoint())
    assert stats.conflicts == 1
    assert rows(clean_pair, "u") == ((5, "b"),)
    assert rows(clean_pair, "o") == ((100, 5), (101, 5))


def test_multibyte_text_batches_fit_a_small_packet(applier, clean_pair):
    with global_variables(clean_pair.b, max_allowed_packet=65536):
        ap = applier("CREATE TABLE fk.t (id INT PRIMARY KEY, s TEXT) CHARSET utf8mb4")
        big = "😀" * 500  # 2,000 bytes, 500 characters
        ap.apply_group([txn(10, *(ch("insert", "t", after={"id": i, "s": big}) for i in range(100)))], Checkpoint())
        with clean_pair.b.root_connect() as conn:
            assert q(conn, "SELECT COUNT(*), SUM(LENGTH(s)) FROM fk.t") == ((100, 200_000),)


def test_an_interrupted_control_schema_upgrade_is_run_again(clean_pair):
    from airflow_provider_dts.engine.control import MIGRATIONS

    control = ControlSchema("dts_upgrade")
    with clean_pair.b.root_connect() as conn:
        control.ensure(conn)
        q(conn, "DELETE FROM dts_upgrade.schema_version WHERE version >= 3")  # 3's ALTER ran, its row did not
        assert control.ensure(conn) == MIGRATIONS[-1][0]
