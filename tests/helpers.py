"""Small helpers shared by the integration tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

# "not there yet" while a replicated CREATE DATABASE / CREATE TABLE is still on its way
_NOT_YET = {1049, 1146}  # unknown database, table doesn't exist


def q(conn, sql: str, args=None) -> tuple:
    """Run one statement on an open connection; its rows."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` every 0.2 s until it returns something truthy (returned). A query on a database or table
    that does not exist yet counts as "not yet"; any other error fails at once."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = pred()
        except pymysql.err.ProgrammingError as e:
            if not (e.args and e.args[0] in _NOT_YET):
                raise
            last = e
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")


_VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")


@contextmanager
def global_variables(server, **values: int | str) -> Iterator[dict[str, Any]]:
    """``SET GLOBAL name=value`` for each keyword on ``server`` (anything with ``root_connect()``) for the block, then
    put back the values the variables had before (read first, yielded), even when the block fails. Every test that
    changes a global setting uses this: in the external-server test mode the servers are someone else's, so a
    hard-coded "restore" value would leave them changed. A restore that does not take raises."""
    for name in values:
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"global_variables: {name!r} is not a server variable name (lowercase, digits, _)")
    select = "SELECT " + ", ".join(f"@@GLOBAL.{name}" for name in values)
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute(select)
        before = dict(zip(values, cur.fetchone()))
    try:
        with server.root_connect() as conn, conn.cursor() as cur:
            for name, value in values.items():
                cur.execute(f"SET GLOBAL {name} = %s", (value,))
        yield dict(before)
    finally:
        with server.root_connect() as conn, conn.cursor() as cur:
            for name, value in before.items():
                cur.execute(f"SET GLOBAL {name} = %s", (value,))
            cur.execute(select)
            after = dict(zip(values, cur.fetchone()))
        if after != before:
            raise AssertionError(f"global_variables: restoring {before} left {after}")


# The start of the small DAG files the dag.test() tests write (test_*_dag.py): imports, and run() for root SQL on
# a server's socket. No braces: the templates may be str.format()ed.
DAG_TEST_PREAMBLE = """
import os
from datetime import datetime

import pymysql
from airflow.sdk import DAG, task

from airflow_provider_dts.operators.incremental import IncrementalSyncOperator
from airflow_provider_dts.operators.initial_sync import FullDataSyncOperator, InitialSchemaSyncOperator
from airflow_provider_dts.operators.precheck import PrecheckOperator

"""
DAG_TEST_RUN = """

def run(socket, *statements):
    conn = pymysql.connect(unix_socket=socket, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()
"""
