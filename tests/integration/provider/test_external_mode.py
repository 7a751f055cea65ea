"""The external-server test mode leaves the servers it is pointed at as it found them (review F3): it refuses a
server it cannot use or whose dts_admin it would take over, drops every account it made, and each global setting a
test changes goes back to the server's own value. Real servers the suite starts, reached over TCP with an
administrative account as a user's own servers are."""

from __future__ import annotations

import secrets

import pymysql
import pytest
from helpers import global_variables

from airflow_provider_dts.localpair import ADMIN_USER, ExternalPair, ExternalServer, ExternalServerError


def external(server, name: str = "DTS_TEST_EXTERNAL_A", *, keep_dts_admin: bool = False) -> ExternalServer:
    """``server`` (started by make_server) seen as an external server: an ``admin`` account over TCP, and no
    dts_admin unless ``keep_dts_admin`` (a LocalServer makes one at start)."""
    password = secrets.token_urlsafe(12)
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'admin'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION")
        if not keep_dts_admin:
            cur.execute(f"DROP USER '{ADMIN_USER}'@'%', '{ADMIN_USER}'@'localhost'")
    return ExternalServer(name, "127.0.0.1", server.port, "admin", password)


def accounts(server) -> set[tuple[str, str]]:
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.user")
        return set(cur.fetchall())


def test_a_server_without_utf8mb4_or_local_infile_is_refused_naming_both(make_server):
    s = external(
        make_server("--character-set-server=latin1", "--collation-server=latin1_swedish_ci", "--local-infile=0")
    )
    with pytest.raises(ExternalServerError) as e:
        s.prepare()
    text = str(e.value)
    assert "character_set_server=latin1, local_infile=0" in text
    assert "--character-set-server=utf8mb4 --local-infile=1" in text
    assert s.admin_password not in text
    assert (ADMIN_USER, "%") not in accounts(s)  # refused before any account was made


def test_an_existing_dts_admin_is_refused_and_left_untouched(make_server):
    server = make_server()
    s = external(server, keep_dts_admin=True)
    with pytest.raises(ExternalServerError) as e:
        s.prepare()
    text = str(e.value)
    assert "already has the account 'dts_admin'@'%', 'dts_admin'@'localhost'" in text
    assert "never takes over" in text and "Fix: if it is left from an interrupted test run, DROP USER" in text
    # its password was not reset: the owner's password still logs in
    with pymysql.connect(host="127.0.0.1", port=server.port, user=ADMIN_USER, password=server.password) as conn:
        assert conn.open


def test_stop_drops_the_accounts_the_run_made_and_only_those(make_server):
    a_server, b_server = make_server(server_id=31), make_server(server_id=32)
    a, b = external(a_server, "DTS_TEST_EXTERNAL_A"), external(b_server, "DTS_TEST_EXTERNAL_B")
    with a_server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'keep_me'@'%' IDENTIFIED BY 'Keep-pw-1'")  # the owner's: must stay
    before_a, before_b = accounts(a_server), accounts(b_server)
    pair = ExternalPair(a, b).start()
    for s in (a, b):  # dts_admin works with the generated password, as the tests use it
        with s.settings().connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith(f"{ADMIN_USER}@")
            # the last test's objects, owned by dts_admin (MySQL refuses to drop a view's DEFINER)
            cur.execute("CREATE DATABASE shop")
            cur.execute("CREATE VIEW shop.v AS SELECT 1 AS one")
    with a_server.root_connect() as conn, conn.cursor() as cur:  # what tests do on the shared pair
        cur.execute("CREATE USER 'pc_owner'@'%' IDENTIFIED BY 'Owner-pw-1'")
        cur.execute("CREATE ROLE pc_reader_role")
        cur.execute("DROP USER 'keep_me'@'%'")  # a test dropping an existing account: not re-created
    pair.stop()
    assert accounts(a_server) == before_a - {("keep_me", "%")}
    assert accounts(b_server) == before_b
    assert not {(ADMIN_USER, "%"), (ADMIN_USER, "localhost")} & (accounts(a_server) | accounts(b_server))
    for server in (a_server, b_server):
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'shop'")
            assert cur.fetchall() == ()
    pair.stop()  # a second stop has nothing left to do


def test_a_refused_second_server_leaves_no_account_on_the_first(make_server):
    a_server, b_server = make_server(server_id=33), make_server(server_id=34)
    before_a = accounts(a_server) - {(ADMIN_USER, "%"), (ADMIN_USER, "localhost")}
    a = external(a_server, "DTS_TEST_EXTERNAL_A")
    b = external(b_server, "DTS_TEST_EXTERNAL_B", keep_dts_admin=True)
    with pytest.raises(ExternalServerError, match=r"DTS_TEST_EXTERNAL_B .* already has the account"):
        ExternalPair(a, b).start()
    assert accounts(a_server) == before_a | {("admin", "%")}


def test_global_variables_puts_back_the_servers_own_values_even_when_the_test_fails(make_server):
    server = make_server("--max-allowed-packet=256M", "--innodb-lock-wait-timeout=120")
    with (
        pytest.raises(RuntimeError, match="the test failed"),
        global_variables(server, max_allowed_packet=65536, innodb_lock_wait_timeout=1) as before,
    ):
        assert before == {"max_allowed_packet": 268435456, "innodb_lock_wait_timeout": 120}
        with server.root_connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.max_allowed_packet, @@GLOBAL.innodb_lock_wait_timeout")
            assert cur.fetchone() == (65536, 1)
        raise RuntimeError("the test failed")
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet, @@GLOBAL.innodb_lock_wait_timeout")
        assert cur.fetchone() == (268435456, 120)  # not the suite's 64 MB / 50 s
    with (
        pytest.raises(ValueError, match="'x; DROP' is not a server variable name"),
        global_variables(server, **{"x; DROP": 1}),
    ):
        pass
