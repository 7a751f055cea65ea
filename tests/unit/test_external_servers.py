"""External-server test mode: how DTS_TEST_EXTERNAL_A / _B are read, and that no password leaks."""

from __future__ import annotations

import json

import pytest

from airflow_provider_dts.localpair import ExternalPair, ExternalServer, ExternalServerError

SECRET = "s3cr:t/@pw"
CONFIRM = {"DTS_TEST_EXTERNAL_DROP_DATABASES": "1"}


def test_a_url_names_the_account_host_and_port_and_the_password_never_shows():
    s = ExternalServer.from_url("DTS_TEST_EXTERNAL_A", "mysql://ro%40t:s3cr%3At%2F%40pw@db.example:3307")
    assert (s.admin_user, s.admin_password, s.host, s.port) == ("ro@t", SECRET, "db.example", 3307)
    for text in (repr(s), str(s), s.describe()):
        assert SECRET not in text and "s3cr" not in text
    assert str(s) == "DTS_TEST_EXTERNAL_A (ro@t@db.example:3307)"
    assert ExternalServer.from_url("X", "mariadb://root@127.0.0.1").port == 3306


def test_the_password_can_come_from_a_file(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\nignored\n")
    s = ExternalServer.from_url("DTS_TEST_EXTERNAL_B", f"mysql://root@127.0.0.1:3308?password_file={pw}")
    assert s.admin_password == SECRET and s.port == 3308
    with pytest.raises(ExternalServerError, match=r"DTS_TEST_EXTERNAL_B: the password_file .*missing cannot be read"):
        ExternalServer.from_url("DTS_TEST_EXTERNAL_B", f"mysql://root@h?password_file={tmp_path / 'missing'}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:3306", "is not a server URL with a user and a host"),
        ("mysql://127.0.0.1:3306", "is not a server URL with a user and a host"),
        ("postgres://u@h", "is not a server URL with a user and a host"),
        ("mysql://u:pw@h:port", "has a port that is not a number"),
        ("mysql://u:pw@h:3306?ssl=1", r"unknown parameters \['ssl'\]"),
    ],
)
def test_bad_urls_are_refused_naming_the_variable_never_the_password(url, message):
    with pytest.raises(ExternalServerError, match=message) as e:
        ExternalServer.from_url("DTS_TEST_EXTERNAL_A", url)
    assert "DTS_TEST_EXTERNAL_A" in str(e.value) and ":pw@" not in str(e.value)


def test_the_environment_names_both_servers_and_confirms_they_may_be_wiped():
    a, b = "mysql://root:Secret-A-77@127.0.0.1:3307", "mysql://root:Secret-B-77@127.0.0.1:3308"
    assert ExternalPair.from_env({}) is None
    with pytest.raises(ExternalServerError, match="missing: DTS_TEST_EXTERNAL_B"):
        ExternalPair.from_env({"DTS_TEST_EXTERNAL_A": a, **CONFIRM})
    with pytest.raises(ExternalServerError, match=r"DROPS EVERY DATABASE.*DTS_TEST_EXTERNAL_DROP_DATABASES=1") as e:
        ExternalPair.from_env({"DTS_TEST_EXTERNAL_A": a, "DTS_TEST_EXTERNAL_B": b})
    # everything else it does to the servers, said before it touches them
    for said in (
        "rotates their binary logs",
        "it never purges them",
        "changes global settings while a test runs",
        "each put back afterwards",
        "dts_admin and test accounts, dropped at the end",
        "refuses a server that already has a dts_admin",
    ):
        assert said in str(e.value)
    with pytest.raises(ExternalServerError, match=r"name the same server 127\.0\.0\.1:3307"):
        ExternalPair.from_env({"DTS_TEST_EXTERNAL_A": a, "DTS_TEST_EXTERNAL_B": a, **CONFIRM})
    pair = ExternalPair.from_env({"DTS_TEST_EXTERNAL_A": a, "DTS_TEST_EXTERNAL_B": b, **CONFIRM})
    assert pair is not None and (pair.a.port, pair.b.port) == (3307, 3308)
    assert "Secret-A-77" not in repr(pair) and "Secret-B-77" not in repr(pair) and "Secret" not in str(pair.a)


def test_the_airflow_connections_use_the_dts_admin_account_not_the_administrators():
    pair = ExternalPair(
        ExternalServer("A", "127.0.0.1", 3307, "root", "rootpw"), ExternalServer("B", "h2", 3308, "root")
    )
    pair.a.password, pair.b.password = "generated-a", "generated-b"
    env = {k: json.loads(v) for k, v in pair.env().items()}
    assert env == {
        "AIRFLOW_CONN_DTS_SOURCE": {
            "conn_type": "mysql",
            "host": "127.0.0.1",
            "port": 3307,
            "login": "dts_admin",
            "password": "generated-a",
        },
        "AIRFLOW_CONN_DTS_DESTINATION": {
            "conn_type": "mysql",
            "host": "h2",
            "port": 3308,
            "login": "dts_admin",
            "password": "generated-b",
        },
    }
    settings = pair.a.settings()
    assert (settings.host, settings.port, settings.user, settings.password) == (
        "127.0.0.1",
        3307,
        "dts_admin",
        "generated-a",
    )
    assert "rootpw" not in json.dumps(pair.env())


@pytest.mark.parametrize("action", ["start", "stop", "kill", "restart", "pid"])
def test_an_external_server_is_never_started_stopped_or_killed(action):
    s = ExternalServer("DTS_TEST_EXTERNAL_A", "127.0.0.1", 3307, "root", "rootpw")
    with pytest.raises(ExternalServerError, match=r"cannot .* it\. Fix: mark the test @pytest.mark.own_servers"):
        getattr(s, action)()
    with pytest.raises(ExternalServerError, match="cannot reach the socket file of it"):
        _ = s.socket_path


def test_stopping_a_pair_that_never_started_touches_no_server():
    """Nothing was created, so nothing is dropped (and the unreachable hosts are never contacted)."""
    pair = ExternalPair(
        ExternalServer("A", "192.0.2.1", 3307, "root", "rootpw"), ExternalServer("B", "192.0.2.2", 3308, "root")
    )
    pair.stop()
    assert pair.a.cleanup() == [] and pair.b.cleanup() == []
