"""Grant parsing and privilege evaluation of the precheck (pure logic, SHOW GRANTS lines as servers print them)."""

from airflow_provider_dts.engine.config import PRECHECK_ITEMS, SyncDirection
from airflow_provider_dts.engine.precheck import (
    CHECKS,
    CONTROL_PRIVILEGES,
    FAIL,
    IGNORED,
    PASS,
    CheckResult,
    Grants,
    PrecheckReport,
    account_sql,
    db_pattern_matches,
    destination_privilege_gaps,
    parse_grant,
)
from airflow_provider_dts.engine.precheck.grants import _source_global_requirements
from airflow_provider_dts.engine.precheck.runner import _apply_ignores
from airflow_provider_dts.engine.servers import ServerInfo

MARIADB_ADMIN = (
    "GRANT ALL PRIVILEGES ON *.* TO `dts_admin`@`%` IDENTIFIED BY PASSWORD "
    "'*ADD11884197B5D9C2038011320A1BA59418D30ED' WITH GRANT OPTION"
)


def info(flavour="mariadb", version=(10, 11, 6)):
    return ServerInfo(flavour=flavour, version=version, version_string="x", variables={}, current_user="u@%")


def direction(**over):
    d = {"task_name": "t", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    d.update(over)
    return SyncDirection.from_dict(d)


def test_all_privileges_global_covers_replication_and_every_database():
    g = Grants([MARIADB_ADMIN])
    assert g.has("REPLICATION SLAVE")
    assert g.has("BINLOG MONITOR")
    assert g.has("CREATE ROUTINE", "anything")
    assert g.missing(_source_global_requirements(info())) == []


def test_mariadb_line_with_binlog_monitor_and_password_hash():
    line = (
        "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR, SHOW VIEW ON *.* TO `u1`@`%` "
        "IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'"
    )
    g = parse_grant(line)
    assert g.db == "*" and g.table == "*" and not g.all_privileges
    assert g.privileges == {"SELECT", "REPLICATION SLAVE", "BINLOG MONITOR", "SHOW VIEW"}
    grants = Grants([line])
    assert grants.missing(_source_global_requirements(info())) == []
    # MySQL has no BINLOG MONITOR: the same grants lack REPLICATION CLIENT there
    assert grants.missing(_source_global_requirements(info("mysql", (8, 0, 36)))) == ["REPLICATION CLIENT"]


def test_replication_client_accepted_on_mariadb_105_as_binlog_monitor():
    g = Grants(["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`"])
    assert g.missing(_source_global_requirements(info())) == []


def test_missing_replication_privileges_named():
    g = Grants(["GRANT SELECT, SHOW VIEW ON *.* TO `reader`@`%`"])
    assert g.missing(_source_global_requirements(info())) == ["REPLICATION SLAVE", "BINLOG MONITOR"]
    assert g.missing(_source_global_requirements(info("mysql", (8, 4, 0)))) == [
        "REPLICATION SLAVE",
        "REPLICATION CLIENT",
    ]


def test_replication_privileges_on_a_database_do_not_count():
    # "ALL ON shop.*" never includes global-only privileges such as REPLICATION SLAVE
    g = Grants(["GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%`"])
    assert not g.has("REPLICATION SLAVE")
    assert not g.has("REPLICATION SLAVE", "shop")
    assert g.has("SELECT", "shop") and g.has("SELECT", "shop", "orders")
    assert not g.has("SELECT", "other")


def test_database_wildcards_and_escapes():
    assert db_pattern_matches("shop\\_%", "shop_eu")
    assert not db_pattern_matches("shop\\_%", "shopXeu")
    assert db_pattern_matches("shop_%", "shopXeu")  # unescaped _ is a wildcard
    assert db_pattern_matches("dts_meta", "dts_meta")
    assert not db_pattern_matches("Shop", "shop")
    assert db_pattern_matches("Shop", "shop", case_insensitive=True)
    g = Grants(["GRANT INSERT, UPDATE ON `shop\\_%`.* TO `u1`@`%`"])
    assert g.has("INSERT", "shop_eu") and not g.has("INSERT", "shopping")


def test_table_level_and_column_level_grants():
    g = Grants(
        [
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT SELECT (`Host`), INSERT ON `mysql`.`user` TO `u`@`%`",
            "GRANT SELECT ON `shop`.`orders` TO `u`@`%`",
        ]
    )
    assert g.has("SELECT", "shop", "orders")
    assert not g.has("SELECT", "shop")  # a table grant does not cover the database
    assert not g.has("SELECT", "shop", "items")
    assert not g.has("SELECT", "mysql", "user")  # column-level only
    assert g.has("INSERT", "mysql", "user")
    assert not g.has("USAGE", "shop")


def test_role_grant_routine_grant_and_odd_identifiers():
    assert parse_grant("GRANT `r1` TO `u1`@`%`") is None
    assert parse_grant("SET DEFAULT ROLE `r1` FOR `u1`@`%`") is None
    assert parse_grant("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION") is None
    r = parse_grant("GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `u`@`%`")
    assert r.routine == "PROCEDURE" and r.db == "shop" and r.table == "p"
    odd = parse_grant("GRANT SELECT ON `we``ird ON db`.* TO `u`@`%`")
    assert odd.db == "we`ird ON db" and odd.table == "*" and odd.privileges == {"SELECT"}
    # the role's own line (MariaDB SHOW GRANTS prints it for the current role) counts like any other
    g = Grants(["GRANT `r1` TO `u1`@`%`", "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `r1`"])
    assert g.missing(_source_global_requirements(info())) == []


def test_mysql8_static_and_dynamic_lines():
    g = Grants(
        [
            "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, SHOW VIEW ON *.* "
            "TO `dts`@`%`",
            "GRANT BACKUP_ADMIN,BINLOG_ADMIN,REPLICATION_SLAVE_ADMIN ON *.* TO `dts`@`%`",
        ]
    )
    assert g.missing(_source_global_requirements(info("mysql", (8, 4, 0)))) == []
    assert g.has("BINLOG_ADMIN")


def test_destination_gaps_name_database_and_control_schema():
    d = direction(mapping={"shop": "shop_copy"})
    g = Grants(["GRANT SELECT, INSERT, UPDATE, DELETE ON `shop_copy`.* TO `w`@`%`"])
    gaps = destination_privilege_gaps(d, g)
    assert [(db, t) for db, t, _ in gaps] == [("shop_copy", None), ("dts_meta", None)]
    assert "CREATE ROUTINE" in gaps[0][2] and "INSERT" not in gaps[0][2]
    assert set(gaps[1][2]) == set(CONTROL_PRIVILEGES)
    full = Grants(
        [
            "GRANT CREATE, ALTER, DROP, INDEX, INSERT, UPDATE, DELETE, SELECT, CREATE VIEW, CREATE ROUTINE, "
            "ALTER ROUTINE, TRIGGER, REFERENCES ON `shop_copy`.* TO `w`@`%`",
            "GRANT ALL PRIVILEGES ON `dts_meta`.* TO `w`@`%`",
        ]
    )
    assert destination_privilege_gaps(d, full) == []


def test_destination_dml_only_when_no_schema_sync_and_no_ddl():
    d = direction(initial_schema_sync=False, exclude_ddl=True)
    g = Grants(["GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO `w`@`%`", "GRANT ALL ON `dts_meta`.* TO `w`@`%`"])
    assert destination_privilege_gaps(d, g) == []
    table_dir = direction(objects=["shop.orders"])
    tg = Grants(
        [
            "GRANT CREATE, ALTER, DROP, INDEX, INSERT, UPDATE, DELETE, SELECT, CREATE VIEW, TRIGGER, "
            "REFERENCES ON `shop`.`orders` TO `w`@`%`",
            "GRANT ALL ON `dts_meta`.* TO `w`@`%`",
        ]
    )
    assert destination_privilege_gaps(table_dir, tg) == []


def test_account_sql():
    assert account_sql("dts@%") == "'dts'@'%'"
    assert account_sql("o'neil@10.0.0.1") == "'o''neil'@'10.0.0.1'"


def test_every_item_has_one_check():
    assert tuple(CHECKS) == PRECHECK_ITEMS


def test_ignored_items_keep_their_result_and_do_not_fail():
    d = direction(ignore_precheck_items=["primary_keys"])
    res = _apply_ignores(
        d,
        [CheckResult("primary_keys", FAIL, "no key on `shop`.`t`.", "add one"), CheckResult("sql_mode", PASS, "same")],
    )
    assert res[0].status == IGNORED and "result was FAIL: no key on `shop`.`t`." in res[0].reason
    report = PrecheckReport("t", "forward", "r1", tuple(res))
    assert report.passed and report.failed == [] and [r.name for r in report.ignored] == ["primary_keys"]
    assert report.to_dict()["ignored"] == ["primary_keys"]


def test_mysql_snapshot_needs_reload_only_with_initial_data_copy():
    g = Grants(["GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dts`@`%`"])
    mysql = info("mysql", (8, 4, 0))
    assert g.missing(_source_global_requirements(mysql, direction())) == ["RELOAD"]
    assert g.missing(_source_global_requirements(mysql, direction(initial_full_data_sync=False))) == []
    # MariaDB takes its snapshot position without a lock
    assert (
        Grants(["GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `dts`@`%`"]).missing(
            _source_global_requirements(info(), direction())
        )
        == []
    )


class _FakeConn:
    """Answers SELECT UNIX_TIMESTAMP(NOW(6)) with a fixed clock."""

    def __init__(self, now):
        self.now = now

    def cursor(self):
        conn = self

        class _Cur:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def execute(self, sql, args=None):
                assert sql == "SELECT UNIX_TIMESTAMP(NOW(6))"

            def fetchall(self):
                return [(conn.now,)]

        return _Cur()


def _tz_ctx(src_now, dst_now, src_tz="+00:00", dst_tz="+00:00"):
    from airflow_provider_dts.engine.control import ControlSchema
    from airflow_provider_dts.engine.precheck.facts import _Context, _Side
    from airflow_provider_dts.engine.servers import ConnectionSettings

    def side(role, now, tz, port):
        s = _Side(role, ConnectionSettings(port=port, password="Pw-never-shown", name=role))
        s.conn = _FakeConn(now)
        s.info = ServerInfo("mariadb", (10, 11, 6), "10.11.6-MariaDB", {"time_zone": tz}, "dts@%")
        return s

    return _Context(
        direction(), ControlSchema(), side("source", src_now, src_tz, 3306), side("destination", dst_now, dst_tz, 3307)
    )


def test_time_zone_and_clock_skew():
    from airflow_provider_dts.engine.precheck import WARN, check_time_zone

    assert check_time_zone(_tz_ctx(1000.0, 1000.5)).status == PASS
    r = check_time_zone(_tz_ctx(1000.0, 1030.0))
    assert r.status == WARN and "+30.0 s off" in r.reason and "NTP" in r.fix and "time zone differs" not in r.reason
    r = check_time_zone(_tz_ctx(1000.0, 1000.0, dst_tz="+02:00"))
    assert r.status == WARN and "+00:00 on the source" in r.reason and "+02:00 on the destination" in r.reason
    assert "SET GLOBAL time_zone='+00:00'" in r.fix and "NTP" not in r.fix
    assert "Pw-never-shown" not in r.reason + r.fix


def test_mysql_partial_revokes_take_a_global_privilege_from_one_database():
    from airflow_provider_dts.engine.precheck import parse_revoke

    lines = [
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON *.* TO `w`@`%`",
        "REVOKE INSERT, DELETE ON `shop`.* FROM `w`@`%`",
    ]
    r = parse_revoke(lines[1])
    assert r.db == "shop" and r.privileges == {"INSERT", "DELETE"}
    assert parse_grant(lines[1]) is None and parse_revoke(lines[0]) is None
    g = Grants(lines)
    assert g.has("INSERT", "crm") and g.has("SELECT", "shop") and g.has("UPDATE", "shop", "orders")
    assert not g.has("INSERT", "shop") and not g.has("DELETE", "shop", "orders")
    assert g.has("INSERT", "shop_eu") and g.has("INSERT", "Shop")  # a revoke names one database literally


def test_routine_visibility_per_flavour():
    from airflow_provider_dts.engine.precheck import routine_visibility_gap

    d = direction()
    db_only = Grants(["GRANT SELECT, SHOW VIEW ON `shop`.* TO `r`@`%`"])
    gap = routine_visibility_gap(d, info(), db_only)
    assert gap and "SELECT on `mysql`.`proc`" in gap[0] and gap[1] == "GRANT SELECT ON `mysql`.`proc` TO {account};"
    with_proc = Grants(db_only.lines + ["GRANT SELECT ON `mysql`.`proc` TO `r`@`%`"])
    assert routine_visibility_gap(d, info(), with_proc) is None
    # MariaDB 11.3+ has its own privilege
    gap = routine_visibility_gap(d, info(version=(11, 4, 2)), db_only)
    assert gap[1] == "GRANT SHOW CREATE ROUTINE ON `shop`.* TO {account};"
    assert (
        routine_visibility_gap(
            d, info(version=(11, 4, 2)), Grants(["GRANT SHOW CREATE ROUTINE ON `shop`.* TO `r`@`%`"])
        )
        is None
    )
    # MySQL 8.0.20+: SHOW_ROUTINE, MySQL 5.7: mysql.proc
    assert routine_visibility_gap(d, info("mysql", (8, 4, 0)), db_only)[1] == "GRANT SHOW_ROUTINE ON *.* TO {account};"
    assert routine_visibility_gap(d, info("mysql", (8, 4, 0)), Grants(["GRANT SHOW_ROUTINE ON *.* TO `r`@`%`"])) is None
    assert routine_visibility_gap(d, info("mysql", (5, 7, 44)), with_proc) is None
    # nothing to see when only tables are selected or the schema is not synced
    assert routine_visibility_gap(direction(objects=["shop.orders"]), info(), db_only) is None
    assert routine_visibility_gap(direction(initial_schema_sync=False), info(), db_only) is None
    assert routine_visibility_gap(d, info(), Grants([MARIADB_ADMIN])) is None


def test_required_grants_satisfy_the_checks_they_come_from():
    from airflow_provider_dts.engine.precheck import required_grants

    d = direction(mapping={"shop": "shop_b"})
    mysql = required_grants(d, "source", flavour="mysql", version=(8, 4, 0), account="'s'@'%'")
    assert mysql[0] == "GRANT REPLICATION SLAVE, REPLICATION CLIENT, RELOAD, SHOW_ROUTINE ON *.* TO 's'@'%';"
    g = Grants([x.rstrip(";").replace("'s'@'%'", "`s`@`%`") for x in mysql])
    assert g.missing(_source_global_requirements(info("mysql", (8, 4, 0)), d)) == []
    dest = required_grants(d, "destination", account="'w'@'%'")
    assert any(x.startswith("GRANT INSERT, UPDATE, DELETE, SELECT, CREATE") and " ON `shop_b`.* " in x for x in dest)
    assert destination_privilege_gaps(d, Grants([x.rstrip(";") for x in dest])) == []
