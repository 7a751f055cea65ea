"""Data verification against the real pair: finds one-row and one-value drift, repairs it, tolerates lag."""

import threading
import time

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.verify import Verifier, verify_direction

ROWS = [(i, f"name {i}", i * 1.5, None if i % 7 == 0 else f"note ✓ {i} 😀") for i in range(1, 2501)]


def setup_tables(pair, src_db="vshop", dst_db="vshop"):
    for server, db in ((pair.a, src_db), (pair.b, dst_db)):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE `{db}`.items (id INT PRIMARY KEY, name VARCHAR(50), price DOUBLE, note TEXT)")
            cur.execute(f"CREATE TABLE `{db}`.pairs (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b))")
            cur.executemany(f"INSERT INTO `{db}`.items VALUES (%s, %s, %s, %s)", ROWS)
            cur.executemany(f"INSERT INTO `{db}`.pairs VALUES (%s, %s, %s)", [(i % 50, f"k{i}", i) for i in range(600)])


def direction(task, src_db="vshop", mapping=None):
    return SyncDirection.from_dict(
        {
            "task_name": task,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": [src_db],
            "mapping": mapping or {},
        }
    )


def sql(server, stmt, args=None):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(stmt, args)
        return cur.fetchall()


def test_equal_data_reports_no_drift_and_is_recorded(clean_pair, task_name):
    setup_tables(clean_pair)
    d = direction(task_name)
    report = verify_direction(
        d, clean_pair.a.settings(), clean_pair.b.settings(), run_id="r1", chunk_size=300, recheck_delay=0.1
    )
    assert report.equal, report.summary()
    items = next(t for t in report.tables if t.source == ("vshop", "items"))
    assert items.rows_source == items.rows_destination == 2500
    assert items.chunks == 9  # 8 full chunks of 300 + the open-ended last one
    rows = sql(
        clean_pair.b,
        "SELECT source_table, equal, rows_source FROM dts_meta.verify_result "
        "WHERE task_name=%s AND run_id='r1' ORDER BY source_table",
        (task_name,),
    )
    assert rows == (("vshop.items", 1, 2500), ("vshop.pairs", 1, 600))


def test_finds_missing_extra_and_changed_value_then_repairs(clean_pair, task_name):
    setup_tables(clean_pair)
    sql(clean_pair.b, "DELETE FROM vshop.items WHERE id=1234")  # missing at destination
    sql(clean_pair.b, "INSERT INTO vshop.items VALUES (99999, 'ghost', 0, NULL)")  # extra, beyond source max key
    sql(clean_pair.b, "UPDATE vshop.items SET note='changed' WHERE id=2000")  # one column value
    sql(clean_pair.b, "UPDATE vshop.items SET note=NULL WHERE id=10")  # value -> NULL
    sql(clean_pair.b, "UPDATE vshop.pairs SET v=v+1 WHERE a=3 AND b='k53'")  # composite key
    d = direction(task_name)
    report = Verifier(
        d, clean_pair.a.settings(), clean_pair.b.settings(), chunk_size=500, recheck_delay=0.1, rechecks=1
    ).run()
    assert not report.equal
    items = next(t for t in report.tables if t.source == ("vshop", "items"))
    found = {(x.kind, x.key, x.columns) for x in items.diffs}
    assert found == {
        ("missing", (1234,), ()),
        ("extra", (99999,), ()),
        ("different", (2000,), ("note",)),
        ("different", (10,), ("note",)),
    }
    pairs = next(t for t in report.tables if t.source == ("vshop", "pairs"))
    assert [(x.kind, x.key, x.columns) for x in pairs.diffs] == [("different", (3, "k53"), ("v",))]
    assert "drift found" in report.summary()

    fixed = Verifier(
        d, clean_pair.a.settings(), clean_pair.b.settings(), chunk_size=500, recheck_delay=0.1, rechecks=0
    ).run(repair="to_destination")
    assert sum(t.repaired for t in fixed.tables) == 5
    again = Verifier(d, clean_pair.a.settings(), clean_pair.b.settings(), chunk_size=500, recheck_delay=0.1).run()
    assert again.equal, again.summary()
    assert sql(clean_pair.b, "SELECT note FROM vshop.items WHERE id=2000") == (("note ✓ 2000 😀",),)
    # the repair transaction carries the sync's mark, so the opposite direction's reader drops it
    marks = sql(
        clean_pair.b,
        "SELECT COUNT(*) FROM dts_meta.checkpoint WHERE task_name=%s AND direction=%s",
        (task_name, "verify-repair"),
    )
    assert marks == ((1,),)


def test_lag_is_not_reported_as_drift(clean_pair, task_name):
    setup_tables(clean_pair)
    sql(clean_pair.a, "UPDATE vshop.items SET name='in flight' WHERE id=42")

    def late_apply():
        time.sleep(0.5)
        sql(clean_pair.b, "UPDATE vshop.items SET name='in flight' WHERE id=42")

    t = threading.Thread(target=late_apply)
    t.start()
    report = Verifier(
        direction(task_name),
        clean_pair.a.settings(),
        clean_pair.b.settings(),
        chunk_size=1000,
        recheck_delay=1.0,
        rechecks=2,
    ).run()
    t.join()
    assert report.equal, report.summary()


def test_mapped_names_and_schema_problems(clean_pair, task_name):
    setup_tables(clean_pair, dst_db="vshop_copy")
    d = direction(task_name, mapping={"vshop": "vshop_copy"})
    assert Verifier(d, clean_pair.a.settings(), clean_pair.b.settings()).run().equal
    sql(clean_pair.b, "ALTER TABLE vshop_copy.items DROP COLUMN note")
    sql(clean_pair.b, "DROP TABLE vshop_copy.pairs")
    report = Verifier(d, clean_pair.a.settings(), clean_pair.b.settings(), recheck_delay=0).run()
    problems = {t.source[1]: t.problem for t in report.tables}
    assert problems["items"] == "columns missing at the destination: note"
    assert problems["pairs"] == "table vshop_copy.pairs does not exist at the destination"


def test_bad_repair_value_is_refused(clean_pair, task_name):
    with pytest.raises(ValueError, match="to_destination"):
        Verifier(direction(task_name), clean_pair.a.settings(), clean_pair.b.settings()).run(repair="both")
    assert ControlSchema().exists(clean_pair.b.root_connect()) is False


# --------------------------------------------------------------------------- the dts_verify DAG under dag.test()


def run_verify_dag(conf):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "dags"))
    try:
        import dts_verify
    finally:
        sys.path.pop(0)
    dr = dts_verify.dag.test(run_conf=conf)
    return dr, {ti.task_id: ti for ti in dr.get_task_instances()}


def test_verify_dag_finds_one_row_and_one_value(clean_pair, airflow_db, task_name):
    setup_tables(clean_pair)
    conf = {"task_name": task_name, "objects": ["vshop.items"], "recheck_delay": 0.2}
    dr, tis = run_verify_dag(conf)
    assert dr.state == "success"
    sql(clean_pair.b, "DELETE FROM vshop.items WHERE id=7")
    sql(clean_pair.b, "UPDATE vshop.items SET price=price+1 WHERE id=8")
    dr, tis = run_verify_dag(conf)
    assert dr.state == "failed" and tis["verify"].state == "failed"
    rows = sql(
        clean_pair.b,
        "SELECT missing, different, diffs_json FROM dts_meta.verify_result WHERE task_name=%s ORDER BY id DESC LIMIT 1",
        (task_name,),
    )
    missing, different, diffs = rows[0]
    assert (missing, different) == (1, 1)
    assert '"key": [7]' in diffs and '"columns": ["price"]' in diffs
    dr, tis = run_verify_dag({**conf, "repair": "to_destination"})
    assert dr.state == "success"
    assert sql(clean_pair.b, "SELECT COUNT(*) FROM vshop.items") == ((2500,),)
