"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
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
