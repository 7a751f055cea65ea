"""DtsMySqlHook: Airflow connection -> engine settings, against the real pair."""

from __future__ import annotations

import asyncio
import json

import pymysql
import pytest
from airflow.sdk import Connection

from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.hooks.dts import DtsMySqlHook, settings_from_connection


def conn(**kw) -> Connection:
    kw.setdefault("conn_type", "mysql")
    kw.setdefault("host", "db.example")
    kw.setdefault("port", 3307)
    kw.setdefault("login", "dts")
    kw.setdefault("password", "Secret-pw-123")
    return Connection(conn_id=kw.pop("conn_id", "dts_x"), **kw)


def test_settings_from_an_env_var_json_connection(pair, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_HOOK_A",
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "127.0.0.1",
                "port": pair.a.port,
                "login": "dts_admin",
                "password": pair.a.password,
                "extra": {"charset": "utf8mb4"},
            }
        ),
    )
    s = DtsMySqlHook(mysql_conn_id="dts_hook_a").get_settings()
    assert (s.host, s.port, s.user, s.password, s.name) == (
        "127.0.0.1",
        pair.a.port,
        "dts_admin",
        pair.a.password,
        "dts_hook_a",
    )
    assert s.ssl is None and s.charset == "utf8mb4" and s.database is None
    # the async lookup (used by triggers) gives the same settings
    assert asyncio.run(DtsMySqlHook.aget_settings("dts_hook_a")) == s


def test_the_pair_connections_from_conftest(pair):
    a = DtsMySqlHook(mysql_conn_id="dts_source").get_settings()
    b = DtsMySqlHook(mysql_conn_id="dts_destination").get_settings()
    assert (a.port, b.port) == (pair.a.port, pair.b.port)


def test_ssl_extras_are_mapped():
    s = settings_from_connection(
        conn(extra=json.dumps({"ssl": {"ca": "/c/ca.pem", "cert": "/c/cl.pem", "key": "/c/cl.key"}}))
    )
    assert s.ssl == {
        "ca": "/c/ca.pem",
        "cert": "/c/cl.pem",
        "key": "/c/cl.key",
        "verify_cert": True,
        "verify_identity": False,
    }
    # ssl given as a JSON string, with check_hostname
    s = settings_from_connection(
        conn(extra=json.dumps({"ssl": json.dumps({"ca": "/c/ca.pem", "check_hostname": True})}))
    )
    assert s.ssl == {"ca": "/c/ca.pem", "verify_cert": True, "verify_identity": True}
    # flat ssl_* extras and an explicit mode
    s = settings_from_connection(conn(extra=json.dumps({"ssl_ca": "/c/ca.pem", "ssl_mode": "VERIFY_IDENTITY"})))
    assert s.ssl == {"ca": "/c/ca.pem", "verify_cert": True, "verify_identity": True}
    s = settings_from_connection(conn(extra=json.dumps({"ssl_mode": "REQUIRED"})))
    assert s.ssl == {"verify_cert": False, "verify_identity": False}  # encrypted, certificate not verified
    s = settings_from_connection(conn(extra=json.dumps({"ssl": {"ca": "/c/ca.pem"}, "ssl_mode": "DISABLED"})))
    assert s.ssl is None
    s = settings_from_connection(conn(extra=json.dumps({"unix_socket": "/run/mysqld.sock", "charset": "utf8"})))
    assert s.unix_socket == "/run/mysqld.sock" and s.charset == "utf8" and s.ssl is None
    # the pymysql arguments carry an SSL context when TLS is on
    kw = settings_from_connection(conn(extra=json.dumps({"ssl_mode": "REQUIRED"}))).pymysql_kwargs()
    assert kw["ssl"].check_hostname is False and kw["init_command"] == "SET time_zone='+00:00'"


def test_connects_detects_mariadb_and_runs_in_utc(pair):
    hook = DtsMySqlHook(mysql_conn_id="dts_source")
    info = hook.server_info()
    assert info.flavour == "mariadb" and info.is_mariadb
    assert info.version[:2] == (10, 11)
    assert info.var("log_bin") == "ON" and info.var("binlog_format") == "ROW"
    assert info.current_user == "dts_admin@%"
    with hook.get_conn() as c, c.cursor() as cur:
        cur.execute("SELECT @@session.time_zone, @@character_set_client, @@autocommit")
        assert cur.fetchone() == ("+00:00", "utf8mb4", 1)
        cur.execute("SELECT @@port")
        assert cur.fetchone()[0] == pair.a.port


def test_password_never_shown(pair, monkeypatch):
    secret = "Not-The-Right-Pw-987"
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_HOOK_BAD",
        json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": pair.a.port, "login": "dts_admin", "password": secret}
        ),
    )
    hook = DtsMySqlHook(mysql_conn_id="dts_hook_bad")
    s = hook.get_settings()
    assert s.password == secret
    assert secret not in repr(s) and secret not in str(s) and secret not in s.describe()
    with pytest.raises(ServerError) as exc:
        hook.get_conn()
    text = str(exc.value)
    assert "1045" in text and "dts_hook_bad" in text and f"127.0.0.1:{pair.a.port}" in text
    assert "check the login and password" in text
    assert secret not in text and secret not in repr(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # the driver's error is not chained
    # and the right password does log in (the failure above was the password, not the server)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_HOOK_BAD",
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "127.0.0.1",
                "port": pair.a.port,
                "login": "dts_admin",
                "password": pair.a.password,
            }
        ),
    )
    with DtsMySqlHook(mysql_conn_id="dts_hook_bad").get_conn() as c:
        assert isinstance(c, pymysql.connections.Connection)
