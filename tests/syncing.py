"""Running directions against the real pair, for tests: ``Sync`` (run_direction in a thread), directions,
SQL on a server, state rows, waiting for equal tables. Shared by the integration tests of every module."""

from __future__ import annotations

import threading
from typing import Any

import pymysql
from helpers import wait_until

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.incremental import RunResult, run_direction

__all__ = [
    "Sync",
    "create_both",
    "make_direction",
    "sql",
    "state_row",
    "table_rows",
    "wait_same",
    "wait_until",
]


def make_direction(task_name: str, role: str = "forward", **kw: Any) -> SyncDirection:
    data = dict(
        task_name=task_name,
        role=role,
        source_conn_id="dts_source" if role == "forward" else "dts_destination",
        destination_conn_id="dts_destination" if role == "forward" else "dts_source",
        objects=["shop"],
        initial_full_data_sync=False,
        exclude_ddl=role == "reverse",
    )
    data.update(kw)
    return SyncDirection.from_dict(data)


def sql(server, *statements: str, db: str | None = None) -> list[tuple]:
    conn = server.root_connect(database=db) if db else server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone='+00:00'")
            out: list[tuple] = []
            for s in statements:
                cur.execute(s)
                out = list(cur.fetchall())
            return out
    finally:
        conn.close()


def state_row(server, task: str, role: str, schema: str = "dts_meta") -> dict | None:
    conn = server.root_connect()
    try:
        if not ControlSchema(schema).exists(conn):
            return None
        try:
            return ControlSchema(schema).get_state(conn, task, role)
        except pymysql.err.ProgrammingError:  # the run is creating the control schema right now
            return None
    finally:
        conn.close()


class Sync:
    """run_direction in a thread, started and stopped by the test."""

    def __init__(self, direction: SyncDirection, source_server, dest_server, max_runtime: float | None = None):
        self.direction = direction
        self.src, self.dst = source_server, dest_server
        self.stop_event = threading.Event()
        self.result: RunResult | None = None
        self.max_runtime = max_runtime
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = run_direction(
            self.direction,
            self.src.settings(name="src"),
            self.dst.settings(name="dst"),
            stop=self.stop_event,
            max_runtime=self.max_runtime,
        )

    def start(self, wait: bool = True) -> Sync:
        self.thread.start()
        if wait:
            wait_until(
                lambda: (
                    (self.result is not None)
                    or (
                        (row := state_row(self.dst, self.direction.task_name, self.direction.role)) is not None
                        and row["state"] == State.SYNCHRONIZING
                        and row["binlog_file"] is not None
                    )
                ),
                what=f"{self.direction.key} Synchronizing",
            )
            assert self.result is None, f"run ended early: {self.result}"
        return self

    def stop(self, timeout: float = 15.0) -> RunResult:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run_direction did not return after stop"
        assert self.result is not None
        return self.result

    def wait_result(self, timeout: float = 30.0) -> RunResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run_direction did not finish"
        return self.result

    def __enter__(self) -> Sync:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.thread.is_alive():
            self.stop()


def table_rows(server, table: str, db: str = "shop") -> list[tuple]:
    return sql(server, f"SELECT * FROM `{db}`.`{table}` ORDER BY 1")


def wait_same(pair_src, pair_dst, table: str, db: str = "shop", dst_db: str | None = None, timeout: float = 30):
    def same():
        a = table_rows(pair_src, table, db)
        b = table_rows(pair_dst, table, dst_db or db)
        return a == b and (a, b)

    try:
        return wait_until(same, timeout, f"{db}.{table} equal on both sides")
    except AssertionError:
        a, b = table_rows(pair_src, table, db), table_rows(pair_dst, table, dst_db or db)
        raise AssertionError(f"tables differ:\nsource      {a}\ndestination {b}") from None


def create_both(pair, *statements: str) -> None:
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE IF NOT EXISTS shop", *statements)
