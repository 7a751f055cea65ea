"""TLS: connections through the hook are encrypted and verified against a CA the test creates."""

import json

import pytest
from tlscerts import make_certs

from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.hooks.dts import DtsMySqlHook


@pytest.fixture
def tls_server(make_server, tmp_path):
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other", name="rogue-ca")
    server = make_server(
        f"--ssl-ca={certs['ca']}", f"--ssl-cert={certs['cert']}", f"--ssl-key={certs['key']}", server_id=21
    )
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER tls_only@'%' IDENTIFIED BY 'tls-pw-123' REQUIRE SSL")
        cur.execute("GRANT SELECT ON *.* TO tls_only@'%'")
    return server, certs, other


def _conn_env(monkeypatch, conn_id, server, extra):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "127.0.0.1",
                "port": server.port,
                "login": "tls_only",
                "password": "tls-pw-123",
                "extra": extra,
            }
        ),
    )


def cipher(settings):
    with settings.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cur.fetchone()[1]


def test_verified_tls_connection(tls_server, monkeypatch):
    server, certs, _ = tls_server
    _conn_env(monkeypatch, "tls_src", server, {"ssl": {"ca": str(certs["ca"])}, "ssl_mode": "VERIFY_IDENTITY"})
    settings = DtsMySqlHook(mysql_conn_id="tls_src").get_settings()
    assert settings.ssl["verify_cert"] and settings.ssl["verify_identity"]
    assert cipher(settings)  # a non-empty cipher: the session is encrypted


def test_untrusted_ca_is_refused_without_leaking_the_password(tls_server, monkeypatch):
    server, _, rogue = tls_server
    _conn_env(monkeypatch, "tls_bad", server, {"ssl": {"ca": str(rogue["ca"])}, "ssl_mode": "VERIFY_CA"})
    settings = DtsMySqlHook(mysql_conn_id="tls_bad").get_settings()
    with pytest.raises(Exception) as e:
        cipher(settings)
    assert "tls-pw-123" not in str(e.value) and "tls-pw-123" not in repr(e.value)
    assert "certificate" in str(e.value).lower() or isinstance(e.value, ServerError)


def test_account_that_requires_tls_cannot_log_in_without_it(tls_server, monkeypatch):
    server, _, _ = tls_server
    _conn_env(monkeypatch, "tls_off", server, {"ssl_mode": "DISABLED"})
    with pytest.raises(ServerError, match="cannot connect") as e:
        cipher(DtsMySqlHook(mysql_conn_id="tls_off").get_settings())
    assert "tls-pw-123" not in str(e.value)
