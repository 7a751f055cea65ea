"""Shared fixtures: a private Airflow home, and a real MySQL-compatible pair started by the suite."""

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

from airflow_provider_dts.localpair import LocalPair, LocalServer  # noqa: E402

SYSTEM_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}


def drop_user_databases(server: LocalServer) -> None:
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        for (name,) in cur.fetchall():
            if name not in SYSTEM_DATABASES:
                cur.execute("DROP DATABASE `" + name.replace("`", "``") + "`")


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """Two servers A (source, dts_source) and B (destination, dts_destination) for the whole session."""
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
    """Factory for extra servers with custom flags (badly configured servers for precheck tests)."""
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
