"""Issue 10, passwords: non-ASCII passwords work for every connection the sync opens (the mariadb client sends
them as UTF-8; PyMySQL alone would send latin-1), and the binlog reader child gets no credentials in its
environment (only the source's settings, through its stdin pipe)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql

from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.reader_process import ReaderProcess, child_environment
from airflow_provider_dts.engine.servers import ConnectionSettings

PASSWORDS = ["pässwörd", "пароль-€-中文-🙂"]  # inside latin-1, and far outside it


def make_user(server, name: str, password: str) -> ConnectionSettings:
    sql(
        server,
        f"DROP USER IF EXISTS '{name}'@'%'",
        f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT ALL ON *.* TO '{name}'@'%'",
    )
    return ConnectionSettings(host="127.0.0.1", port=server.port, user=name, password=password, name=name)


def test_non_ascii_passwords_log_in_and_run_a_direction(clean_pair, task_name):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    src = make_user(pair.a, "dts_uni_a", PASSWORDS[1])
    dst = make_user(pair.b, "dts_uni_b", PASSWORDS[0])
    for settings in (src, dst):
        with settings.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith(settings.user)
    stop = threading.Event()
    result: list = []
    runner = threading.Thread(
        target=lambda: result.append(run_direction(make_direction(task_name), src, dst, stop=stop)), daemon=True
    )
    runner.start()
    try:
        time.sleep(1)
        sql(pair.a, "INSERT INTO shop.t VALUES (1, 'über')")  # read by the reader child, logged in as dts_uni_a
        wait_until(lambda: sql(pair.b, "SELECT v FROM shop.t") == [("über",)], 30, "the row at the destination")
    finally:
        stop.set()
        runner.join(15)
    assert result and result[0].outcome == "stopped", result


def test_the_reader_child_gets_no_credentials_in_its_environment(clean_pair, task_name, monkeypatch):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    secret = "s3cr3t-in-env"
    monkeypatch.setenv("AIRFLOW_CONN_DTS_SOURCE", f"mysql://u:{secret}@h:1")
    monkeypatch.setenv("DTS_DESTINATION", f'{{"password": "{secret}"}}')
    monkeypatch.setenv("MY_DB_PASSWORD", secret)
    seen: list[bytes] = []
    original = ReaderProcess._spawn

    def spawn_and_look(self):
        proc = original(self)
        seen.append(Path(f"/proc/{proc.pid}/environ").read_bytes())
        return proc

    monkeypatch.setattr(ReaderProcess, "_spawn", spawn_and_look)
    with Sync(make_direction(task_name), pair.a, pair.b):
        sql(pair.a, "INSERT INTO shop.t VALUES (1)")
        wait_until(lambda: sql(pair.b, "SELECT id FROM shop.t") == [(1,)], 30, "the row at the destination")
    assert seen, "no reader child was started"
    for environ in seen:
        assert secret.encode() not in environ
        assert pair.a.password.encode() not in environ and b"AIRFLOW_CONN_" not in environ
        assert b"PATH=" in environ  # the rest of the environment is kept


def test_child_environment_rule():
    env = {
        "PATH": "/bin",
        "AIRFLOW_CONN_X": "a",
        "airflow_conn_y": "b",
        "DTS_SOURCE": "c",
        "PGPASSWORD": "d",
        "AWS_SECRET_ACCESS_KEY": "e",
        "HOME": "/root",
        "AIRFLOW_HOME": "/af",
    }
    assert child_environment(env) == {"PATH": "/bin", "HOME": "/root", "AIRFLOW_HOME": "/af"}
    assert os.environ.get("PATH")
