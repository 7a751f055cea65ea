"""The precheck against real servers: a good pair passes every item, each failure provoked on a real server
names its item and its fix, and a failed precheck writes nothing but its own results."""

from __future__ import annotations

import time

import pytest
from helpers import global_variables

from airflow_provider_dts.engine.config import PRECHECK_ITEMS, SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import ConfigError, PrecheckFailed
from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.engine.precheck import FAIL, IGNORED, PASS, WARN, run_checks, run_precheck
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.localpair import free_port

CONTROL = ControlSchema("dts_meta")
SYSTEM = {"mysql", "information_schema", "performance_schema", "sys"}


def direction(task_name, role="forward", **over) -> SyncDirection:
    src, dst = ("dts_source", "dts_destination") if role == "forward" else ("dts_destination", "dts_source")
    d = {
        "task_name": task_name,
        "role": role,
        "source_conn_id": src,
        "destination_conn_id": dst,
        "objects": ["shop"],
        "exclude_ddl": role == "reverse",
    }
    d.update(over)
    return SyncDirection.from_dict(d)


def make_shop(server, db="shop"):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")
        cur.execute(f"CREATE TABLE IF NOT EXISTS `{db}`.orders (id INT PRIMARY KEY, item VARCHAR(40), qty INT)")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS `{db}`.customers (email VARCHAR(80) NOT NULL, name VARCHAR(40), "
            "UNIQUE KEY (email))"
        )
        cur.execute(f"INSERT IGNORE INTO `{db}`.orders VALUES (1, 'apple', 3), (2, 'pear', 5)")


def footprint(server, exclude=("dts_meta",), binlog=False):
    """Every user database and table with its checksum (and, for a source, the binlog position).

    The destination's binlog grows with the control schema rows the precheck records: compare it only for
    servers the precheck must not write to at all."""
    out = {}
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES")
        for db, table, ttype in cur.fetchall():
            if db in SYSTEM or db in exclude:
                continue
            if ttype == "BASE TABLE":
                cur.execute(f"CHECKSUM TABLE `{db}`.`{table}`")
                out[(db, table)] = cur.fetchone()[1]
            else:
                out[(db, table)] = ttype
        cur.execute("SHOW DATABASES")
        out["databases"] = sorted(d for (d,) in cur.fetchall() if d not in SYSTEM and d not in exclude)
        if binlog:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            out["binlog"] = row[:2] if row else None
    return out


def statuses(report):
    return {r.name: r.status for r in report.results}


def sql_rows(server, stmt):
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(stmt)
        return cur.fetchall()


def control_rows(server, task_name, role="forward"):
    with server.settings().connect() as conn:
        return CONTROL.precheck_results(conn, task_name, role), CONTROL.get_state(conn, task_name, role)


# --------------------------------------------------------------------------- the good pair


def test_well_configured_pair_passes_every_item_and_records_each(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    before_a = footprint(pair.a, exclude=(), binlog=True)
    d = direction(task_name)
    report = run_precheck(d, pair.a.settings(name="dts_source"), pair.b.settings(name="dts_destination"))
    assert [r.name for r in report.results] == list(PRECHECK_ITEMS)
    not_passed = [r.line() for r in report.results if r.status != PASS]
    assert not_passed == []
    assert report.passed and report.recorded and report.record_error is None
    rows, state = control_rows(pair.b, task_name)
    assert {r["item"]: r["status"] for r in rows} == dict.fromkeys(PRECHECK_ITEMS, PASS)
    assert all(r["run_id"] == report.run_id for r in rows)
    assert state["state"] == State.NOT_STARTED
    # the precheck never writes to the source: same data, same binlog position, no control schema there
    assert footprint(pair.a, exclude=(), binlog=True) == before_a
    # every reason names the server it looked at
    assert f"127.0.0.1:{pair.a.port}" in report.result("source_binlog_format").reason
    assert f"127.0.0.1:{pair.b.port}" in report.result("destination_privileges").reason
    assert pair.a.password not in str(report.to_dict()) and pair.b.password not in str(report.to_dict())


def test_passing_precheck_restores_the_previous_state(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.b.settings().connect() as conn:
        CONTROL.ensure(conn)
        CONTROL.set_state(conn, task_name, "forward", State.STOPPED, "stopped by the user")
    report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())
    assert report.passed
    _, state = control_rows(pair.b, task_name)
    assert (state["state"], state["message"]) == (State.STOPPED, "stopped by the user")

    # a previous PrecheckFailed is not restored: a pass leaves NotStarted
    with pair.b.settings().connect() as conn:
        CONTROL.set_state(conn, task_name, "forward", State.PRECHECK_FAILED, "old failure")
    assert run_precheck(direction(task_name), pair.a.settings(), pair.b.settings()).passed
    _, state = control_rows(pair.b, task_name)
    assert state["state"] == State.NOT_STARTED


# --------------------------------------------------------------------------- binlog settings on real servers


def _only_fail(report, item):
    r = report.result(item)
    assert r.status == FAIL, r.line()
    assert not report.passed
    assert item in [f.name for f in report.failed]
    return r


def test_binlog_off(clean_pair, make_server, task_name):
    bad = make_server("--skip-log-bin", server_id=11)
    make_shop(bad)
    before = footprint(clean_pair.b, exclude=(), binlog=True)
    report = run_precheck(direction(task_name), bad.settings(name="src_nolog"), clean_pair.b.settings())
    r = _only_fail(report, "source_binlog_enabled")
    assert "log_bin=OFF" in r.reason and f"127.0.0.1:{bad.port}" in r.reason
    assert "--log-bin" in r.fix
    # the failure message the operator raises names the item, its reason and its fix
    with pytest.raises(PrecheckFailed) as exc:
        report.raise_for_failures()
    assert "source_binlog_enabled: the binary log is off" in str(
        exc.value
    ) and "Fix: start the server with --log-bin" in str(exc.value)
    # a failed first precheck writes nothing on either server (not even the control schema); every item is in
    # the report
    assert footprint(clean_pair.b, exclude=(), binlog=True) == before
    assert not report.recorded and "nothing is written on either server" in report.record_error
    assert {r.name for r in report.results} == set(PRECHECK_ITEMS)


def test_statement_format_on_the_reverse_directions_source(clean_pair, make_server, task_name):
    """Task two reads the other server's binlog: its binlog checks run there."""
    bad = make_server("--binlog-format=STATEMENT", server_id=12)
    make_shop(bad)
    d = direction(task_name, role="reverse")
    report = run_precheck(d, bad.settings(name="dts_destination"), clean_pair.a.settings(name="dts_source"))
    r = _only_fail(report, "source_binlog_format")
    assert "binlog_format=STATEMENT" in r.reason and f"127.0.0.1:{bad.port}" in r.reason
    assert "--binlog-format=ROW" in r.fix and "SET GLOBAL binlog_format='ROW' affects only new sessions" in r.fix
    assert report.result("source_binlog_row_metadata").status == PASS
    # the reverse direction's home (A) has no control schema yet: a failed first precheck leaves it untouched
    assert not report.recorded and {r.name for r in report.results} == set(PRECHECK_ITEMS)
    assert sql_rows(clean_pair.a, "SHOW DATABASES LIKE 'dts_meta'") == ()


def test_row_metadata_minimal_compression_retention_and_server_differences(clean_pair, make_server, task_name):
    bad = make_server(
        "--binlog-row-metadata=MINIMAL",
        "--binlog-row-image=MINIMAL",
        "--log-bin-compress=ON",
        "--binlog-expire-logs-seconds=3600",
        "--sql-mode=ANSI_QUOTES,STRICT_ALL_TABLES",
        "--default-time-zone=+02:00",
        "--character-set-server=latin1",
        "--collation-server=latin1_swedish_ci",
        "--lower-case-table-names=1",
        server_id=13,
    )
    make_shop(bad)
    report = run_precheck(direction(task_name), bad.settings(), clean_pair.b.settings())
    s = statuses(report)
    r = _only_fail(report, "source_binlog_row_metadata")
    assert "binlog_row_metadata=MINIMAL" in r.reason and "--binlog-row-metadata=FULL" in r.fix
    r = _only_fail(report, "source_binlog_row_image")
    assert "binlog_row_image=MINIMAL" in r.reason and "--binlog-row-image=FULL" in r.fix
    r = _only_fail(report, "source_binlog_compression")
    assert "log_bin_compress=ON" in r.reason and "SET GLOBAL log_bin_compress=OFF" in r.fix
    assert s["source_binlog_retention"] == WARN
    assert "1 h" in report.result("source_binlog_retention").reason
    assert "binlog_expire_logs_seconds=604800" in report.result("source_binlog_retention").fix
    assert s["sql_mode"] == WARN and "ANSI_QUOTES" in report.result("sql_mode").reason
    assert s["time_zone"] == WARN and "+02:00" in report.result("time_zone").reason
    assert s["charset_collation"] == WARN and "latin1" in report.result("charset_collation").reason
    assert s["lower_case_table_names"] == WARN
    assert s["source_binlog_format"] == PASS and s["source_binlog_enabled"] == PASS
    assert {r.name for r in report.warnings} == {
        "source_binlog_retention",
        "sql_mode",
        "time_zone",
        "charset_collation",
        "lower_case_table_names",
    }


# --------------------------------------------------------------------------- privileges


def test_user_without_replication_privileges(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'pc_reader'@'%'")
        cur.execute("CREATE USER 'pc_reader'@'%' IDENTIFIED BY 'Reader-pw-1'")
        cur.execute("GRANT SELECT, SHOW VIEW ON `shop`.* TO 'pc_reader'@'%'")
    reader = ConnectionSettings(
        host="127.0.0.1", port=pair.a.port, user="pc_reader", password="Reader-pw-1", name="dts_source"
    )
    report = run_precheck(direction(task_name), reader, pair.b.settings())
    r = _only_fail(report, "source_privileges")
    assert "pc_reader@%" in r.reason and "REPLICATION SLAVE" in r.reason and "BINLOG MONITOR" in r.reason
    assert "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'pc_reader'@'%';" in r.fix
    assert "`dts_meta`.* (the control schema" in r.reason  # heartbeat rows are written on the source
    assert (
        "SELECT on `mysql`.`proc` (without it the stored functions and procedures of `shop` are invisible" in r.reason
        and "GRANT SELECT ON `mysql`.`proc` TO 'pc_reader'@'%';" in r.fix
    )
    assert "ON `dts_meta`.* TO 'pc_reader'@'%';" in r.fix
    assert [f.name for f in report.failed] == ["source_privileges"]
    assert "Reader-pw-1" not in str(report.to_dict())

    # granting exactly what the fix says makes the item pass
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        for stmt in r.fix.split(": ", 1)[1].split(";"):
            if stmt.strip():
                cur.execute(stmt)
    report = run_precheck(direction(task_name), reader, pair.b.settings())
    assert report.result("source_privileges").status == PASS
    # without the TRIGGER privilege triggers are invisible to it: a warning says so
    assert report.result("triggers").status == WARN and "TRIGGER" in report.result("triggers").reason
    assert report.passed


def test_destination_user_that_cannot_own_the_control_schema(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'pc_writer'@'%'")
        cur.execute("CREATE USER 'pc_writer'@'%' IDENTIFIED BY 'Writer-pw-1'")
        cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO 'pc_writer'@'%'")
    writer = ConnectionSettings(host="127.0.0.1", port=pair.b.port, user="pc_writer", password="Writer-pw-1")
    before = footprint(pair.b, exclude=())
    report = run_precheck(direction(task_name), pair.a.settings(), writer)
    r = _only_fail(report, "destination_privileges")
    assert "`shop`.*" in r.reason and "CREATE ROUTINE" in r.reason and "`dts_meta`.* (control schema)" in r.reason
    assert (
        "GRANT CREATE, ALTER, DROP, INDEX, CREATE VIEW, TRIGGER, REFERENCES, CREATE ROUTINE, ALTER ROUTINE ON "
        "`shop`.* TO 'pc_writer'@'%';" in r.fix
    )
    # it may not create the control schema, so nothing at all is written and the report says why
    assert not report.recorded and "not recorded" in report.record_error
    assert footprint(pair.b, exclude=()) == before


# --------------------------------------------------------------------------- objects


def test_table_without_a_key_fails_and_can_be_ignored(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE shop.audit (at DATETIME, what TEXT)")
        cur.execute("CREATE TABLE shop.nullable_uk (code INT NULL, UNIQUE KEY (code))")
    report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())
    r = _only_fail(report, "primary_keys")
    assert "`shop`.`audit`" in r.reason and "`shop`.`nullable_uk`" in r.reason
    assert "`shop`.`orders`" not in r.reason and "`shop`.`customers`" not in r.reason  # PK / NOT NULL unique key
    assert "ADD PRIMARY KEY" in r.fix
    report = run_precheck(
        direction(task_name, ignore_precheck_items=["primary_keys"]), pair.a.settings(), pair.b.settings()
    )
    r = report.result("primary_keys")
    assert r.status == IGNORED and "`shop`.`audit`" in r.reason
    assert report.passed
    rows, state = control_rows(pair.b, task_name)
    assert {x["item"]: x["status"] for x in rows}["primary_keys"] == IGNORED
    assert state["state"] == State.NOT_STARTED


def test_same_name_table_at_destination(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT)")
        cur.execute("INSERT INTO shop.orders VALUES (7, 'precious destination row')")
    before = footprint(pair.b)
    report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())
    r = _only_fail(report, "destination_name_clash")
    assert "`shop`.`orders`" in r.reason and "`shop`.`customers`" not in r.reason
    assert "PrecheckAndIntercept" in r.reason and "mapping" in r.fix and "Ignore" in r.fix
    assert footprint(pair.b) == before  # the destination table and its row untouched

    report = run_precheck(direction(task_name, existing_table_mode="Ignore"), pair.a.settings(), pair.b.settings())
    assert report.result("destination_name_clash").status == WARN and report.passed

    mapped = direction(task_name, mapping={"shop": "shop_copy"})
    assert run_precheck(mapped, pair.a.settings(), pair.b.settings()).result("destination_name_clash").status == PASS

    # once the direction is initialized, a re-run passes this item
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")  # a position that exists (earlier tests may have purged old binlogs)
        file, pos = cur.fetchone()[:2]
    with pair.b.settings().connect() as conn, conn.cursor() as cur:
        CONTROL.write_checkpoint(cur, task_name, "forward", Checkpoint(binlog_file=file, binlog_pos=pos))
    report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())
    r = report.result("destination_name_clash")
    assert r.status == PASS and "already initialized by this task" in r.reason
    assert report.passed


def test_missing_objects(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    d = direction(task_name, objects=["shop.orders", "shop.invoices", "crm"])
    before = footprint(pair.b)
    report = run_precheck(d, pair.a.settings(), pair.b.settings())
    r = _only_fail(report, "objects_exist")
    assert "table shop.invoices" in r.reason and "database crm" in r.reason and "shop.orders" not in r.reason
    assert "correct the names in `objects`" in r.fix
    assert [f.name for f in report.failed] == ["objects_exist"]
    assert footprint(pair.b) == before


def test_triggers_and_non_transactional_tables_warn(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE shop.log (id INT PRIMARY KEY) ENGINE=MyISAM")
        cur.execute(
            "CREATE TRIGGER shop.orders_log AFTER INSERT ON shop.orders FOR EACH ROW "
            "INSERT INTO shop.log VALUES (NEW.id)"
        )
    report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())
    assert report.passed
    t = report.result("triggers")
    assert t.status == WARN and "`shop`.`orders_log` on `shop`.`orders` (source)" in t.reason
    assert "keep each trigger on one server only" in t.fix and "DROP TRIGGER" not in t.fix
    # a copy of the trigger at the destination: the fix names the exact statement to run there
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40), qty INT)")
        cur.execute("CREATE TABLE shop.log (id INT PRIMARY KEY)")
        cur.execute(
            "CREATE TRIGGER shop.orders_log AFTER INSERT ON shop.orders FOR EACH ROW "
            "INSERT INTO shop.log VALUES (NEW.id)"
        )
    report = run_precheck(
        direction(task_name, existing_table_mode="Ignore", sync_triggers=True), pair.a.settings(), pair.b.settings()
    )
    t = report.result("triggers")
    assert t.status == WARN and "`shop`.`orders_log` on `shop`.`orders` (destination)" in t.reason
    assert "DROP TRIGGER `shop`.`orders_log`;" in t.fix and "set sync_triggers off" in t.fix
    e = report.result("storage_engines")
    assert (
        e.status == WARN and "`shop`.`log` (MyISAM)" in e.reason and "ALTER TABLE `shop`.`log` ENGINE=InnoDB" in e.fix
    )
    rows, _ = control_rows(pair.b, task_name)
    assert {x["item"]: x["status"] for x in rows}["triggers"] == WARN


def test_bad_configuration_value_is_one_clear_error():
    with pytest.raises(ConfigError) as exc:
        SyncDirection.from_dict(
            {
                "task_name": "shop sync!",
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "conflict_policy": "Sometimes",
                "ignore_precheck_items": ["no_such_item"],
            }
        )
    text = str(exc.value)
    assert "conflict_policy: 'Sometimes' is not allowed; use one of TaskFailed, Ignore, Overwrite" in text
    assert "task_name" in text and "ignore_precheck_items: 'no_such_item'" in text
    assert len(exc.value.problems) == 3


# --------------------------------------------------------------------------- unreachable servers


def test_unreachable_destination_and_wrong_password_never_raise(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    down = ConnectionSettings(
        host="127.0.0.1", port=free_port(), user="dts_admin", password="x", connect_timeout=2, name="dts_destination"
    )
    report = run_precheck(direction(task_name), pair.a.settings(), down)
    r = report.result("destination_connectivity")
    assert r.status == FAIL and f"127.0.0.1:{down.port}" in r.reason and "2003" in r.reason
    assert "host and port" in r.fix
    for item in ("destination_version", "destination_privileges", "destination_name_clash", "sql_mode"):
        dep = report.result(item)
        assert dep.status == FAIL and "see destination_connectivity" in dep.reason, dep.line()
    assert report.result("source_binlog_format").status == PASS  # the source side is still checked
    assert not report.recorded and "unreachable" in report.record_error

    wrong = pair.a.settings(password="Wrong-Secret-42", name="dts_source")
    results = run_checks(direction(task_name), wrong, pair.b.settings())
    r = results[0]
    assert r.name == "source_connectivity" and r.status == FAIL and "1045" in r.reason
    assert "login and password" in r.fix
    assert "Wrong-Secret-42" not in " ".join(x.reason + x.fix for x in results)


def test_stored_functions_the_destination_would_refuse(clean_pair, task_name):
    """Binary log on and log_bin_trust_function_creators=0: CREATE FUNCTION needs SUPER at the destination."""
    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE FUNCTION shop.net(x DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN x / 1.2")
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'pc_owner'@'%'")
        cur.execute("CREATE USER 'pc_owner'@'%' IDENTIFIED BY 'Owner-pw-1'")
        cur.execute("GRANT ALL PRIVILEGES ON `shop`.* TO 'pc_owner'@'%'")
        cur.execute("GRANT ALL PRIVILEGES ON `dts_meta`.* TO 'pc_owner'@'%'")
    owner = ConnectionSettings(host="127.0.0.1", port=pair.b.port, user="pc_owner", password="Owner-pw-1")
    with global_variables(pair.b, log_bin_trust_function_creators=0):  # whatever the server's own setting
        report = run_precheck(direction(task_name), pair.a.settings(), owner)
        r = _only_fail(report, "destination_privileges")
        assert "`shop`.`net`" in r.reason and "error 1419" in r.reason
        assert "log_bin_trust_function_creators=0" in r.reason
        assert "SET GLOBAL log_bin_trust_function_creators=1" in r.fix
        assert [f.name for f in report.failed] == ["destination_privileges"]
        # with the function sync excluded (no schema sync, no DDL) nothing needs creating
        excluded = direction(task_name, initial_schema_sync=False, exclude_ddl=True)
        report = run_precheck(excluded, pair.a.settings(), owner)
        assert report.result("destination_privileges").status == PASS
    with global_variables(pair.b, log_bin_trust_function_creators=1):
        report = run_precheck(direction(task_name), pair.a.settings(), owner)
        assert report.result("destination_privileges").status == PASS and report.passed


def test_function_without_determinism_declaration_fails_even_with_super(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    # the source allowed it once
    with (
        global_variables(pair.a, log_bin_trust_function_creators=1),
        pair.a.root_connect() as conn,
        conn.cursor() as cur,
    ):
        cur.execute("CREATE FUNCTION shop.stamp() RETURNS INT RETURN 1")
    with global_variables(pair.b, log_bin_trust_function_creators=0):  # whatever the server's own setting
        report = run_precheck(direction(task_name), pair.a.settings(), pair.b.settings())  # dts_admin has SUPER
    r = _only_fail(report, "destination_privileges")
    assert "`shop`.`stamp` declare none of DETERMINISTIC, NO SQL, READS SQL DATA (error 1418)" in r.reason
    assert "1419" not in r.reason


def test_reverse_direction_does_not_clash_with_tables_task_one_synced(clean_pair, task_name):
    """Task two's destination (A) holds the tables task one copied from it: not a clash (spec: tables in both
    directions are not initially synced by task two)."""
    pair = clean_pair
    make_shop(pair.a)
    forward = direction(task_name)
    assert run_precheck(forward, pair.a.settings(), pair.b.settings()).passed  # records task one's config on B
    make_shop(pair.b)  # what task one's initial sync creates
    with pair.b.settings().connect() as conn, conn.cursor() as cur:
        CONTROL.write_checkpoint(cur, task_name, "forward", Checkpoint(binlog_file="binlog.000001", binlog_pos=4))
    reverse = direction(task_name, role="reverse")
    report = run_precheck(reverse, pair.b.settings(), pair.a.settings())
    r = report.result("destination_name_clash")
    assert r.status == PASS and "2 table(s) that task one" in r.reason, r.line()
    assert report.passed
    # a reverse direction of another task (no task one on B) would overwrite A's tables: intercepted
    other = direction(task_name + "x", role="reverse")
    r = run_precheck(other, pair.b.settings(), pair.a.settings()).result("destination_name_clash")
    assert r.status == FAIL and "`shop`.`orders`" in r.reason and "`shop`.`customers`" in r.reason


def test_checkpoint_in_a_purged_binlog(clean_pair, make_server, task_name):
    src = make_server(server_id=14)
    make_shop(src)
    with src.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        first = cur.fetchone()[0]
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("SHOW MASTER STATUS")
        current = cur.fetchone()[0]
    with clean_pair.b.settings().connect() as conn, conn.cursor() as cur:
        CONTROL.ensure(conn)
        CONTROL.write_checkpoint(cur, task_name, "forward", Checkpoint(binlog_file=first, binlog_pos=4))
    assert run_precheck(direction(task_name), src.settings(), clean_pair.b.settings()).passed
    with src.root_connect() as conn, conn.cursor() as cur:
        # MariaDB keeps a binlog until InnoDB's binlog checkpoint passes it (about a second here): retry
        deadline = time.monotonic() + 30
        while True:
            cur.execute(f"PURGE BINARY LOGS TO '{current}'")
            cur.execute("SHOW BINARY LOGS")
            if first not in [r[0] for r in cur.fetchall()] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    report = run_precheck(direction(task_name), src.settings(), clean_pair.b.settings())
    r = _only_fail(report, "source_binlog_retention")
    assert f"checkpoint is at {first}:4" in r.reason and "purged" in r.reason and "re-initialize" in r.fix


def test_a_live_direction_keeps_its_state_even_when_a_rerun_fails(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.b.settings().connect() as conn:
        CONTROL.ensure(conn)
        CONTROL.set_state(conn, task_name, "forward", State.SYNCHRONIZING, "synchronizing from binlog.000001:4")
    d = direction(task_name, objects=["shop.orders", "shop.gone"])
    report = run_precheck(d, pair.a.settings(), pair.b.settings())
    assert [f.name for f in report.failed] == ["objects_exist"] and report.recorded
    rows, state = control_rows(pair.b, task_name)
    assert (state["state"], state["message"]) == (State.SYNCHRONIZING, "synchronizing from binlog.000001:4")
    assert {r["item"]: r["status"] for r in rows}["objects_exist"] == FAIL


def test_task_two_precheck_passes_after_task_one_initialized_the_destination(clean_pair, task_name):
    """The DAG's order: task one precheck -> schema sync -> full data sync; then task two's precheck must pass."""
    from airflow_provider_dts.engine.config import TwoWayTask
    from airflow_provider_dts.engine.schema_sync import sync_schema
    from airflow_provider_dts.engine.snapshot import full_data_sync

    pair = clean_pair
    make_shop(pair.a)
    two_way = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "mapping": {"shop": "shop_b"},
            },
        }
    )
    a, b = pair.a.settings(name="dts_source"), pair.b.settings(name="dts_destination")
    assert run_precheck(two_way.forward, a, b).passed
    sync_schema(two_way.forward, a, b)
    full_data_sync(two_way.forward, a, b)
    rerun = run_precheck(two_way.forward, a, b)  # a re-run of the DAG after initialization
    assert rerun.passed and "already initialized" in rerun.result("destination_name_clash").reason

    report = run_precheck(two_way.reverse, b, a)
    assert [r.line() for r in report.results if r.status != PASS] == []

    assert "shop_b" in report.result("objects_exist").reason  # task two selects task one's target names
    assert "not initially synced here" in report.result("destination_name_clash").reason
    # a task two configured by hand (no skip list) is recognised the same way from task one's recorded config
    by_hand = direction(task_name, role="reverse", objects=["shop_b"], mapping={"shop_b": "shop"})
    assert by_hand.skip_initial_tables == ()
    assert run_precheck(by_hand, b, a).result("destination_name_clash").status == PASS
    rows, state = control_rows(pair.a, task_name, "reverse")
    assert len(rows) == len(PRECHECK_ITEMS) and state["state"] == State.NOT_STARTED


def test_privileges_granted_through_a_default_role(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'pc_role_user'@'%'")
        cur.execute("DROP ROLE IF EXISTS pc_reader_role")
        cur.execute("CREATE ROLE pc_reader_role")
        cur.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO pc_reader_role")
        cur.execute("GRANT SELECT, SHOW VIEW, TRIGGER ON `shop`.* TO pc_reader_role")
        cur.execute("GRANT SELECT ON `mysql`.`proc` TO pc_reader_role")
        cur.execute("GRANT ALL PRIVILEGES ON `dts_meta`.* TO pc_reader_role")
        cur.execute("CREATE USER 'pc_role_user'@'%' IDENTIFIED BY 'Role-pw-1'")
        cur.execute("GRANT pc_reader_role TO 'pc_role_user'@'%'")
    user = ConnectionSettings(host="127.0.0.1", port=pair.a.port, user="pc_role_user", password="Role-pw-1")
    r = run_precheck(direction(task_name), user, pair.b.settings()).result("source_privileges")
    assert r.status == FAIL  # the role is granted but not active: its privileges do not apply yet
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SET DEFAULT ROLE pc_reader_role FOR 'pc_role_user'@'%'")
    report = run_precheck(direction(task_name), user, pair.b.settings())
    assert report.result("source_privileges").status == PASS, report.result("source_privileges").line()
    assert report.result("triggers").status == PASS and report.passed


def test_least_privilege_accounts_from_two_way_grants_pass_both_prechecks(clean_pair, task_name):
    """One sync account per server with exactly the GRANTs two_way_grants prints (what the README shows)."""
    from airflow_provider_dts.engine.config import TwoWayTask
    from airflow_provider_dts.engine.precheck import two_way_grants
    from airflow_provider_dts.engine.schema_sync import sync_schema
    from airflow_provider_dts.engine.snapshot import full_data_sync

    pair = clean_pair
    make_shop(pair.a)
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW shop.big_orders AS SELECT id, qty FROM shop.orders WHERE qty > 3")
        cur.execute("CREATE PROCEDURE shop.order_count() SELECT COUNT(*) FROM shop.orders")
    two_way = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {"source_conn_id": "dts_source", "destination_conn_id": "dts_destination", "objects": ["shop"]},
        }
    )
    settings = {}
    for name, server in (("a", pair.a), ("b", pair.b)):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'pc_sync'@'%'")
            cur.execute("CREATE USER 'pc_sync'@'%' IDENTIFIED BY 'Sync-pw-1'")
            for stmt in two_way_grants(two_way.forward, two_way.reverse, name, account="'pc_sync'@'%'"):
                cur.execute(stmt)
        settings[name] = ConnectionSettings(
            host="127.0.0.1", port=server.port, user="pc_sync", password="Sync-pw-1", name=f"pc_sync_{name}"
        )
    a, b = settings["a"], settings["b"]
    report = run_precheck(two_way.forward, a, b)
    assert [r.line() for r in report.results if r.status != PASS] == []
    sync_schema(two_way.forward, a, b)
    full_data_sync(two_way.forward, a, b)
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, item, qty FROM shop.orders ORDER BY id")
        assert cur.fetchall() == ((1, "apple", 3), (2, "pear", 5))
        cur.execute("SELECT * FROM shop.big_orders")
        assert cur.fetchall() == ((2, 5),)
        cur.execute("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='shop'")
        assert cur.fetchall() == (("order_count",),)
    report = run_precheck(two_way.reverse, b, a)
    assert [r.line() for r in report.results if r.status != PASS] == []

    # and incremental sync runs with the same accounts: a row written on A arrives on B
    import threading

    from airflow_provider_dts.engine.incremental import run_direction

    stop = threading.Event()
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.setdefault("result", run_direction(two_way.forward, a, b, stop=stop, max_runtime=60))
    )
    runner.start()
    try:
        with pair.a.root_connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO shop.orders VALUES (3, 'plum', 7)")

        def arrived():
            with pair.b.root_connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT item FROM shop.orders WHERE id=3")
                return cur.fetchall() == (("plum",),)

        assert _wait_for(arrived), outcome
    finally:
        stop.set()
        runner.join(30)
    assert outcome["result"].outcome == "stopped", outcome["result"].message


def _wait_for(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.2)
    return False


def test_conflict_policies_columns_and_diverging_policies(clean_pair, task_name):
    """Issue 12: a UseMax / UseMin column must exist on both servers (FAIL names it and the fix); a column that
    cannot be compared and the policies Ignore / Overwrite WARN (they can leave the servers different)."""
    pair = clean_pair
    make_shop(pair.a)
    make_shop(pair.b, db="shop")
    with pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE shop.orders DROP COLUMN qty")
    src, dst = pair.a.settings(name="dts_source"), pair.b.settings(name="dts_destination")
    common = {"initial_schema_sync": False, "initial_full_data_sync": False}

    def item(d):
        return {r.name: r for r in run_checks(d, src, dst)}["conflict_policies"]

    d = direction(task_name, table_conflict_policies={"shop.orders": {"policy": "UseMax", "column": "qty"}}, **common)
    r = item(d)
    assert r.status == FAIL, r.line()
    assert "UseMax column `qty` of `shop`.`orders` on the destination" in r.reason, r.reason
    assert "table_conflict_policies" in r.fix
    d = direction(task_name, table_conflict_policies={"shop.orders": {"policy": "UseMin", "column": "nope"}}, **common)
    r = item(d)
    assert r.status == FAIL and "UseMin column `nope` of `shop`.`orders` on the source" in r.reason, r.reason
    # a column both sides have, of a type UseMax cannot compare: it always falls back
    for server in (pair.a, pair.b):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE shop.orders ADD COLUMN tags POINT NULL")
    d = direction(task_name, table_conflict_policies={"shop.orders": {"policy": "UseMax", "column": "tags"}}, **common)
    r = item(d)
    assert r.status == WARN and "cannot be compared" in r.reason and "fall back" in r.reason
    d = direction(task_name, table_conflict_policies={"shop.orders": {"policy": "UseMax", "column": "item"}}, **common)
    r = item(d)
    assert r.status == PASS, r.line()
    for policy in ("Ignore", "Overwrite"):
        r = item(direction(task_name, conflict_policy=policy, **common))
        assert r.status == WARN and policy in r.reason and "Synchronizing while the servers differ" in r.reason
        assert "UseMax / UseMin" in r.fix
