"""The rows of docs/mysql-compatibility.md that no test named (issue 15): each runs the code on MySQL's (and
MariaDB's) documented values, without a server. Pure logic: the fakes stand for a server's answers only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pymysql
import pytest
from pymysqlreplication.event import GtidEvent, QueryEvent, XidEvent
from pymysqlreplication.row_event import PartialUpdateRowsEvent, TableMapEvent, UpdateRowsEvent

from airflow_provider_dts.engine.apply import Applier
from airflow_provider_dts.engine.binlog import BinlogReader
from airflow_provider_dts.engine.catalog import ColumnInfo, TableInfo
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import MIGRATIONS, ControlSchema
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.precheck import PASS, WARN, Grants
from airflow_provider_dts.engine.precheck.checks import _guarded_triggers_result
from airflow_provider_dts.engine.precheck.facts import _Context, _Side
from airflow_provider_dts.engine.precheck.grants import guarded_trigger_gaps, guarded_trigger_requirements
from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, server_info
from airflow_provider_dts.engine.sqltext import tokenize
from airflow_provider_dts.engine.values import make_literal


def _direction(**over: Any) -> SyncDirection:
    d: dict[str, Any] = {"task_name": "t", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    d.update(over)
    return SyncDirection.from_dict(d)


# ------------------------------------------------------------------------------------ ServerInfo.gtid_enabled


class _VariablesConn:
    """A connection answering ``servers.server_info``'s two statements as a server does: the rows of SHOW GLOBAL
    VARIABLES (only the variables the server has: MariaDB has no gtid_mode), then VERSION(), CURRENT_USER()."""

    def __init__(self, version: str, rows: list[tuple[str, str]]):
        self.version, self.rows, self.statements = version, rows, []

    def cursor(self):
        conn = self

        class _Cursor:
            def execute(self, sql, args=None):
                conn.statements.append((sql, args))

            def fetchall(self):
                return [(name, value) for name, value in conn.rows if name in conn.statements[-1][1]]

            def fetchone(self):
                return (conn.version, "dts@%")

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return _Cursor()


# MySQL's gtid_mode: OFF, OFF_PERMISSIVE, ON_PERMISSIVE, ON (https://dev.mysql.com/doc/refman/8.4/en/replication-
# options-gtids.html#sysvar_gtid_mode). Only ON means every transaction has a GTID: with ON_PERMISSIVE new
# transactions get one but replicated ones may still be anonymous, so a resume by GTID is not safe there.
@pytest.mark.parametrize(
    ("gtid_mode", "enabled"),
    [("ON", True), ("OFF", False), ("ON_PERMISSIVE", False), ("OFF_PERMISSIVE", False), ("on", True)],
)
def test_mysql_gtid_enabled_only_with_gtid_mode_on(gtid_mode, enabled):
    conn = _VariablesConn(
        "8.4.3",
        [("version_comment", "MySQL Community Server - GPL"), ("gtid_mode", gtid_mode), ("server_id", "1")],
    )
    info = server_info(conn)
    assert "gtid_mode" in conn.statements[0][1]  # asked of the server with the other facts
    assert info.flavour == "mysql" and info.var("gtid_mode") == gtid_mode
    assert info.gtid_enabled is enabled


def test_mysql_without_a_gtid_mode_row_has_gtids_off():
    info = server_info(_VariablesConn("5.7.44-log", [("version_comment", "MySQL Community Server (GPL)")]))
    assert info.flavour == "mysql" and info.gtid_enabled is False


# MariaDB writes a GTID for every transaction whatever its gtid_* settings (https://mariadb.com/kb/en/gtid/);
# it has no gtid_mode.
@pytest.mark.parametrize(
    "rows",
    [
        [("gtid_strict_mode", "OFF"), ("gtid_domain_id", "0")],
        [("gtid_strict_mode", "ON"), ("gtid_domain_id", "7"), ("log_slave_updates", "ON")],
        [],
    ],
)
def test_mariadb_gtids_are_always_enabled(rows):
    info = server_info(_VariablesConn("10.11.6-MariaDB-0+deb12u1-log", [("version_comment", "Debian 12"), *rows]))
    assert info.flavour == "mariadb" and info.gtid_enabled is True


# ------------------------------------------------------------------------------------------- partial JSON


def _event(cls: type, pos: int, **attrs: Any) -> Any:
    ev = object.__new__(cls)
    ev.packet = SimpleNamespace(log_pos=pos)
    ev.timestamp = 1_700_000_000
    for k, v in attrs.items():
        setattr(ev, k, v)
    return ev


def _update_events(cls: type, table: str) -> list[Any]:
    """One MySQL transaction updating ``shop.<table>`` with a rows event of class ``cls``."""
    gtid = _event(GtidEvent, 200, sid=bytes.fromhex("3E11FA4771CA11E19E33C80AA9429562"), gno=9)
    update = _event(cls, 400, schema="shop", table=table, primary_key="id", flags=0)
    update.columns = [SimpleNamespace(name="id", type=3), SimpleNamespace(name="doc", type=245)]
    update._RowsEvent__rows = [
        {"before_values": {"id": 1, "doc": '{"a": 1}'}, "after_values": {"id": 1, "doc": '{"a": 2}'}}
    ]
    return [
        gtid,
        _event(QueryEvent, 250, query="BEGIN", schema=b"shop"),
        _event(TableMapEvent, 300, schema="shop", table=table),
        update,
        _event(XidEvent, 450),
    ]


def _read(events: list[Any], **direction: Any) -> tuple[list[Any], BaseException | None]:
    reader = BinlogReader(_direction(**direction), ConnectionSettings(), ("binlog.000001", 4))
    stream = iter(events)
    reader._open = lambda: SimpleNamespace(fetchone=lambda: next(stream, None), close=lambda: None)  # type: ignore[method-assign]
    got: list[Any] = []
    try:
        for txn in reader.transactions():
            got.append(txn)
    except Exception as e:  # StreamResync at the end of the events, or what the reader raised
        return got, e
    return got, None


def test_mysql_partial_json_update_of_a_selected_table_is_refused_with_the_fix():
    # binlog_row_value_options=PARTIAL_JSON (MySQL 8.0.3+) logs JSON updates as Partial_update_rows events (type
    # 39) whose after image holds diffs, not the document (https://dev.mysql.com/doc/en/replication-features-json.html)
    got, err = _read(_update_events(PartialUpdateRowsEvent, "docs"))
    assert got == [] and isinstance(err, SyncFailed)  # nothing of the transaction is delivered
    message = str(err)
    assert "binlog_row_value_options=PARTIAL_JSON" in message and "shop.docs" in message
    assert "binlog.000001:400" in message  # where it was met
    assert "Fix: SET GLOBAL binlog_row_value_options='' on the source" in message
    assert "re-initialize the direction" in message


def test_mysql_partial_json_update_of_an_unselected_table_is_skipped():
    got, err = _read(_update_events(PartialUpdateRowsEvent, "other"), objects=["shop.docs"])
    assert not isinstance(err, SyncFailed)
    assert [len(t.changes) for t in got] == [0]  # the transaction passes, without the other table's rows


def test_a_full_update_of_the_same_table_is_applied():
    # the same transaction with an ordinary Update_rows event (binlog_row_value_options='') is read normally
    got, err = _read(_update_events(UpdateRowsEvent, "docs"))
    assert not isinstance(err, SyncFailed)
    assert [(c.kind, c.after) for t in got for c in t.changes] == [("update", {"id": 1, "doc": '{"a": 2}'})]


# -------------------------------------------------------------------------------- sql_require_primary_key


def _statements(verb: str) -> list[str]:
    """The control schema's ``<verb> TABLE`` statements of every migration, rendered with a schema name."""
    out = []
    for _version, statements in MIGRATIONS:
        for stmt in statements:
            sql = stmt.format(s="`dts_meta`")
            words = tokenize(sql)
            if len(words) > 1 and words[0].kw(verb) and words[1].kw("TABLE"):
                out.append(sql)
    return out


def _has_primary_key(sql: str) -> bool:
    """A PRIMARY KEY in the table's definition (parenthesis depth 1), not in a comment, a string or a name."""
    tokens = tokenize(sql)
    depth = 0
    for i, t in enumerate(tokens):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 1 and t.kw("PRIMARY") and i + 1 < len(tokens) and tokens[i + 1].kw("KEY"):
            return True
    return False


def _table_name(sql: str) -> str:
    tokens = tokenize(sql)
    at = next(i for i, t in enumerate(tokens) if t.ident == "dts_meta")
    assert tokens[at + 1].text == "."
    return str(tokens[at + 2].ident)


def test_every_control_table_has_a_primary_key_for_sql_require_primary_key():
    # MySQL 8.0.13+ with sql_require_primary_key=ON refuses CREATE TABLE without a PRIMARY KEY, and an ALTER
    # TABLE that drops it (error 3750, https://dev.mysql.com/doc/refman/8.0/en/server-system-variables.html
    # #sysvar_sql_require_primary_key)
    creates = _statements("CREATE")
    names = {_table_name(c) for c in creates}
    assert {"sync_state", "checkpoint", "conflict_log", "heartbeat", "ddl_log", "divergence"} <= names
    for stmt in creates:
        assert _has_primary_key(stmt), f"control table {_table_name(stmt)} has no PRIMARY KEY: {stmt}"
    alters = _statements("ALTER")
    assert alters  # the later migrations add columns
    for stmt in alters:
        tokens = tokenize(stmt)
        assert not any(t.kw("DROP") and tokens[i + 1].kw("PRIMARY") for i, t in enumerate(tokens[:-1])), stmt


def test_the_primary_key_scan_sees_a_table_without_one():
    # the scan above can fail: a key in a comment, a string or a column's inline KEY is not the table's
    assert not _has_primary_key(
        "CREATE TABLE t (a INT /* PRIMARY KEY */, b VARCHAR(11) DEFAULT 'PRIMARY KEY', UNIQUE KEY (a))"
    )
    assert _has_primary_key("CREATE TABLE t (a INT, PRIMARY KEY (a))")


# ----------------------------------------------------------------------- LOCK TABLES for guarded triggers


def _mysql(version=(8, 4, 3)) -> ServerInfo:
    return ServerInfo("mysql", version, ".".join(map(str, version)), {}, "dts@%")


LOCK = "LOCK TABLES"
MARIADB = ServerInfo("mariadb", (10, 11, 6), "10.11.6-MariaDB", {}, "dts@%")


# MySQL's SHOW GRANTS rows: static privileges on one line per level, the account as `user`@`host`
# (https://dev.mysql.com/doc/refman/8.4/en/show-grants.html). LOCK TABLES "requires the LOCK TABLES privilege,
# and the SELECT privilege for each object to be locked" (https://dev.mysql.com/doc/refman/8.4/en/lock-tables.html).
@pytest.mark.parametrize(
    ("lines", "missing"),
    [
        (
            ["GRANT USAGE ON *.* TO `dts`@`%`", "GRANT SELECT, INSERT, TRIGGER ON `shop`.* TO `dts`@`%`"],
            ["LOCK TABLES"],
        ),
        (["GRANT USAGE ON *.* TO `dts`@`%`", "GRANT TRIGGER ON `shop`.* TO `dts`@`%`"], ["LOCK TABLES", "SELECT"]),
        (["GRANT USAGE ON *.* TO `dts`@`%`", "GRANT SELECT, LOCK TABLES ON `shop`.* TO `dts`@`%`"], ["TRIGGER"]),
        (["GRANT SELECT, LOCK TABLES, TRIGGER ON `shop`.* TO `dts`@`%`"], []),
        (
            [
                "GRANT RELOAD, LOCK TABLES, REPLICATION SLAVE ON *.* TO `dts`@`%`",
                "GRANT SELECT, TRIGGER ON `shop`.* TO `dts`@`%`",
            ],
            [],
        ),
        (["GRANT ALL PRIVILEGES ON `shop`.* TO `dts`@`%`"], []),
        (["GRANT SELECT, LOCK TABLES, TRIGGER ON `sh_p`.* TO `dts`@`%`"], []),  # a pattern matching shop
    ],
)
def test_mysql_guarded_triggers_need_lock_tables(lines, missing):
    gaps = guarded_trigger_gaps(_mysql(), Grants(lines), ["shop"])
    if not missing:
        assert gaps == []
        return
    assert gaps == [("shop", missing, f"GRANT {', '.join(missing)} ON `shop`.* TO 'dts'@'%';")]


def test_mysql_lock_tables_on_another_database_does_not_count():
    lines = ["GRANT SELECT, TRIGGER ON `shop`.* TO `dts`@`%`", "GRANT LOCK TABLES ON `other`.* TO `dts`@`%`"]
    assert guarded_trigger_gaps(_mysql((8, 0, 36)), Grants(lines), ["shop", "other"]) == [
        ("shop", ["LOCK TABLES"], "GRANT LOCK TABLES ON `shop`.* TO 'dts'@'%';"),
        ("other", ["TRIGGER", "SELECT"], "GRANT TRIGGER, SELECT ON `other`.* TO 'dts'@'%';"),
    ]


def test_mariadb_guarded_triggers_need_trigger_only():
    # MariaDB rewrites a trigger in one CREATE OR REPLACE TRIGGER, without LOCK TABLES
    assert [label for label, _ in guarded_trigger_requirements(MARIADB)] == ["TRIGGER"]
    assert guarded_trigger_gaps(MARIADB, Grants(["GRANT TRIGGER ON `shop`.* TO `dts`@`%`"]), ["shop"]) == []
    assert guarded_trigger_gaps(MARIADB, Grants(["GRANT SELECT ON `shop`.* TO `dts`@`%`"]), ["shop"]) == [
        ("shop", ["TRIGGER"], "GRANT TRIGGER ON `shop`.* TO 'dts'@'%';")
    ]


def _trigger_context(info: ServerInfo, source: list[str], destination: list[str]) -> _Context:
    d = _direction(guard_triggers=True)
    sides = [
        _Side(role, ConnectionSettings(port=port, name=name), conn=object(), info=info, grants=Grants(lines))
        for role, port, name, lines in (("source", 3307, "a", source), ("destination", 3308, "b", destination))
    ]
    ctx = _Context(d, ControlSchema(), *sides)
    ctx.source_tables[("shop", "items")] = {"type": "BASE TABLE", "engine": "InnoDB"}
    return ctx


def test_precheck_names_the_lock_tables_grant_for_guarded_triggers_on_mysql():
    full = ["GRANT SELECT, INSERT, UPDATE, DELETE, LOCK TABLES, TRIGGER ON `shop`.* TO `dts`@`%`"]
    no_lock = ["GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON `shop`.* TO `dts`@`%`"]
    found = ["`shop`.`items_ai` on `shop`.`items` (source)"]
    r = _guarded_triggers_result(_trigger_context(_mysql(), full, no_lock), found, ["shop"])
    assert r.status == WARN and "cannot rewrite triggers everywhere" in r.reason
    assert r.fix.startswith("on the destination b (root@127.0.0.1:3308): GRANT LOCK TABLES ON `shop`.* TO 'dts'@'%';")
    assert "source" not in r.fix
    assert _guarded_triggers_result(_trigger_context(_mysql(), full, full), found, ["shop"]).status == PASS
    # MariaDB unchanged: TRIGGER is enough
    assert _guarded_triggers_result(_trigger_context(MARIADB, no_lock, no_lock), found, ["shop"]).status == PASS


# ------------------------------------------------------------------------ JSON comparison in the applier


def _json_table() -> TableInfo:
    return TableInfo(
        "shop",
        "docs",
        ["id", "doc"],
        {"id", "doc"},
        ("id",),
        [("id",)],
        ("id",),
        column_info=[ColumnInfo("id", "int", "int", None, False), ColumnInfo("doc", "json", "json", "utf8mb4")],
    )


def _applier(mariadb: bool) -> Applier:
    ap = Applier(_direction(), ConnectionSettings())
    ap._mariadb = mariadb  # what connect() reads from VERSION()
    conn = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")
    conn.server_status = 0  # backslash escapes on, as the applier's sessions have them
    ap.literal = make_literal(conn)
    return ap


def test_json_is_compared_as_json_on_mysql():
    # MySQL compares a JSON column with a string as a JSON string scalar, never as the document the text spells
    # (https://dev.mysql.com/doc/refman/8.4/en/json.html#json-comparison): the literal is CAST to JSON
    ap, info = _applier(mariadb=False), _json_table()
    image = {"id": 1, "doc": '{"a": [1, 2]}'}
    assert ap._same_as(info, image) == "`id` <=> 1 AND `doc` <=> CAST('{\\\"a\\\": [1, 2]}' AS JSON)"
    assert ap._compare_literal(info, "doc", '"abc"') == "CAST('\\\"abc\\\"' AS JSON)"
    assert ap._same_as(info, {"id": 1, "doc": None}) == "`id` <=> 1 AND `doc` <=> NULL"  # SQL NULL uncast
    assert ap._compare_literal(info, "id", 5) == "5"


def test_json_is_compared_as_text_on_mariadb():
    # MariaDB's JSON is a LONGTEXT with a json_valid check: its values compare as text
    ap, info = _applier(mariadb=True), _json_table()
    assert ap._same_as(info, {"id": 1, "doc": '{"a": [1, 2]}'}) == "`id` <=> 1 AND `doc` <=> '{\\\"a\\\": [1, 2]}'"
    assert ap._compare_literal(info, "doc", '"abc"') == "'\\\"abc\\\"'"
