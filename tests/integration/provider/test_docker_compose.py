"""docker-compose.yaml: two MySQL 8.4 servers set up for two-way sync, and Airflow 3 with this provider.

There is no Docker engine on the build machine, so the file is parsed and its settings are checked; the
connections it preconfigures are resolved through the provider's own hook code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from airflow.models.connection import Connection

from airflow_provider_dts.hooks.dts import settings_from_connection

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value):
    """Compose's variable substitution with no variables set: ${X:-default} -> default, $$ -> $."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose():
    return interpolate(yaml.safe_load(COMPOSE.read_text()))


def flags(command) -> dict[str, str]:
    out = {}
    items = command if isinstance(command, list) else command.split()
    for item in items:
        assert item.startswith("--"), f"unexpected mysqld argument {item!r}"
        name, _, value = item[2:].partition("=")
        out[name.replace("_", "-")] = value or "ON"
    return out


def mysql_services(compose):
    return {n: s for n, s in compose["services"].items() if str(s.get("image", "")).startswith("mysql")}


def airflow_services(compose):
    return {n: s for n, s in compose["services"].items() if "AIRFLOW__CORE__EXECUTOR" in (s.get("environment") or {})}


def test_two_mysql_84_servers_configured_for_two_way_sync(compose):
    servers = mysql_services(compose)
    assert len(servers) == 2, f"expected exactly two MySQL servers, got {sorted(servers)}"
    ids = []
    for name, svc in servers.items():
        assert svc["image"] == "mysql:8.4", name
        f = flags(svc["command"])
        assert f.get("log-bin"), f"{name}: binlog must be on"
        assert f["binlog-format"].upper() == "ROW", name
        assert f["binlog-row-image"].upper() == "FULL", name
        assert f["binlog-row-metadata"].upper() == "FULL", name
        assert f.get("binlog-transaction-compression", "OFF").upper() == "OFF", name
        assert f["gtid-mode"].upper() == "ON", name
        assert f["enforce-gtid-consistency"].upper() == "ON", name
        assert int(f.get("binlog-expire-logs-seconds", 2592000)) >= 24 * 3600, f"{name}: keep binlogs >= 24 h"
        ids.append(int(f["server-id"]))
        assert "healthcheck" in svc, f"{name}: Airflow must wait until the server answers"
    assert 0 not in ids and len(set(ids)) == 2, f"server ids must be distinct and non-zero: {ids}"


def test_airflow_runs_every_component_with_the_provider_installed(compose):
    services = airflow_services(compose)
    commands = {str(s.get("command")) for s in services.values()}
    for component in ("scheduler", "triggerer", "dag-processor", "api-server"):
        assert component in commands, f"no service runs `airflow {component}`"
    for name, svc in services.items():
        build = svc.get("build") or {}
        dockerfile = build.get("dockerfile_inline", "")
        assert re.search(r"FROM apache/airflow:3\.", dockerfile), f"{name}: not built on Airflow 3"
        assert re.search(r"pip install .*/opt/airflow-provider-dts", dockerfile), f"{name}: provider not installed"
        assert build.get("context") == ".", f"{name}: the image must be built from this repository"


def test_dags_folder_is_the_repository_dags_directory(compose):
    for name, svc in airflow_services(compose).items():
        folder = svc["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts.get(folder) == "./dags", f"{name}: ./dags is not mounted at {folder}"
    assert (ROOT / "dags" / "dts_two_way_sync.py").is_file()


def test_connections_point_at_the_two_servers(compose):
    servers = mysql_services(compose)
    by_host = {svc.get("hostname", n): flags(svc["command"]) for n, svc in servers.items()}
    init_script = (ROOT / "docker" / "mysql-init" / "01-dts-user.sh").read_text()
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        found = {}
        for conn_id in ("dts_source", "dts_destination"):
            raw = env[f"AIRFLOW_CONN_{conn_id.upper()}"]
            conn = Connection.from_json(raw, conn_id=conn_id)
            assert conn.conn_type == "mysql", f"{name}: {conn_id} must use providers-mysql's mysql type"
            settings = settings_from_connection(conn)
            assert settings.host in by_host, f"{name}: {conn_id} points at {settings.host}, not a MySQL service"
            assert settings.port == 3306
            assert f"'{settings.user}'@'%'" in init_script, f"user {settings.user} is not created on the servers"
            assert settings.password and settings.password not in repr(settings)
            found[conn_id] = settings.host
        assert found["dts_source"] != found["dts_destination"], f"{name}: both connections hit one server"
        assert by_host[found["dts_source"]]["server-id"] == "1"


def test_mysql_init_script_is_mounted_and_grants_replication(compose):
    script = ROOT / "docker" / "mysql-init" / "01-dts-user.sh"
    assert script.stat().st_mode & 0o111, "the init script must be executable"
    text = script.read_text()
    for priv in ("REPLICATION SLAVE", "REPLICATION CLIENT", "SELECT", "SHOW VIEW", "CREATE", "ALTER", "INSERT"):
        assert priv in text
    for name, svc in mysql_services(compose).items():
        assert "./docker/mysql-init:/docker-entrypoint-initdb.d:ro" in svc["volumes"], name
        env = svc["environment"]
        assert env.get("MYSQL_ROOT_PASSWORD") and env.get("DTS_PASSWORD"), name
    # The password the servers give the dts user is the one the Airflow connections use.
    conn = json.loads(next(iter(airflow_services(compose).values()))["environment"]["AIRFLOW_CONN_DTS_SOURCE"])
    assert conn["password"] == next(iter(mysql_services(compose).values()))["environment"]["DTS_PASSWORD"]
