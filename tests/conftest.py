"""Shared fixtures: a private Airflow home, and a real MySQL-compatible pair started by the suite.

External-server mode: with ``DTS_TEST_EXTERNAL_A`` and ``DTS_TEST_EXTERNAL_B`` set (``mysql://USER[:PASSWORD]@
HOST[:PORT][?password_file=PATH]``, plus ``DTS_TEST_EXTERNAL_DROP_DATABASES=1`` to confirm they are throwaway),
the session pair is those two existing servers (``localpair.ExternalPair``): every test that does not start,
stop or kill servers runs against them; tests marked ``own_servers`` and tests using ``make_server`` are skipped
with the reason. The servers are left as found, apart from their databases: a test that changes a global setting
uses ``helpers.global_variables`` (the server's own value is put back), tests that purge binary logs are
``own_servers``, and the session drops every account it made (``ExternalPair.stop``).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

# Airflow reads its configuration at import: point it at a throwaway home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dts-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))

import sys  # noqa: E402

# tests import helpers from tests/ (typesample, tlscerts) and from bench/ (the chaos suite)
_REPO = Path(__file__).resolve().parent.parent
for _p in (str(_REPO), str(_REPO / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from airflow_provider_dts.localpair import (  # noqa: E402
    EXTERNAL_ENV,
    ExternalPair,
    ExternalServer,
    ExternalServerError,
    LocalPair,
    LocalServer,
)

SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}
OWN_SERVERS = "own_servers"
_OWN_SERVERS_DOC = (
    f"{OWN_SERVERS}: the test starts, stops, kills or restarts servers, reaches their files or socket, or purges "
    f"their binary logs: it runs only on the servers the suite starts itself (skipped when "
    f"{' and '.join(EXTERNAL_ENV)} name external servers)"
)
_SKIP_EXTERNAL = (
    f"needs servers the suite starts itself (it starts, stops, kills or reaches the files of a server); "
    f"{EXTERNAL_ENV[0]}/{EXTERNAL_ENV[1]} name external servers"
)

try:
    EXTERNAL: ExternalPair | None = ExternalPair.from_env()
except ExternalServerError as _e:
    raise pytest.UsageError(f"external-server test mode: {_e}") from None


def pytest_configure(config):
    config.addinivalue_line("markers", _OWN_SERVERS_DOC)
    workers = config.getoption("numprocesses", default=None)
    if EXTERNAL is not None and workers not in (None, 0, "0"):
        raise pytest.UsageError(
            "external-server test mode runs the tests one at a time: they all use the same two servers (and drop "
            "their databases). Fix: run pytest with -n 0"
        )


def pytest_report_header(config):
    if EXTERNAL is not None:
        return f"external servers: A = {EXTERNAL.a.describe()}, B = {EXTERNAL.b.describe()}"
    return None


def pytest_collection_modifyitems(config, items):
    if EXTERNAL is None:
        return
    skip = pytest.mark.skip(reason=_SKIP_EXTERNAL)
    for item in items:
        if item.get_closest_marker(OWN_SERVERS) is not None or "make_server" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def drop_user_databases(server: LocalServer | ExternalServer) -> None:
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        for (name,) in cur.fetchall():
            if name not in SYSTEM_DATABASES:
                cur.execute("DROP DATABASE `" + name.replace("`", "``") + "`")


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """Two servers A (source, dts_source) and B (destination, dts_destination) for the whole session: started
    by the suite, or the external servers of ``DTS_TEST_EXTERNAL_A`` / ``_B``."""
    p: LocalPair | ExternalPair
    if EXTERNAL is not None:
        p = EXTERNAL.start()
    else:
        p = LocalPair.create(tmp_path_factory.mktemp("pair"))
        p.start()
    old = {k: os.environ.get(k) for k in p.env()}
    os.environ.update(p.env())
    try:
        yield p
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        p.stop()


@pytest.fixture
def clean_pair(pair):
    """The session pair with every user database (and the control schema) dropped on both sides."""
    for s in (pair.a, pair.b):
        drop_user_databases(s)
    return pair


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory for extra servers with custom flags (badly configured servers for precheck tests). Tests using it
    are skipped in external-server mode (``pytest_collection_modifyitems``)."""
    if EXTERNAL is not None:
        pytest.skip(_SKIP_EXTERNAL)
    started: list[LocalServer] = []

    def factory(*extra_args: str, server_id: int = 9) -> LocalServer:
        s = LocalServer(tmp_path_factory.mktemp("srv"), server_id=server_id, extra_args=list(extra_args))
        s.start()
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


@pytest.fixture
def task_name():
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def airflow_db():
    """dag.test() needs Airflow's metadata tables in the suite's private AIRFLOW_HOME (SQLite); once a session."""
    from airflow.utils.db import initdb

    initdb()
