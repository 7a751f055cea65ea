"""The "DTS sync" Airflow UI plugin: status page and JSON read from the real control schemas of the pair."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.model import Checkpoint
from airflow_provider_dts.localpair import free_port
from airflow_provider_dts.plugins.status import DtsStatusPlugin, collect_status, create_app

SCHEMA = "dts_meta"
HOSTILE_TABLE = '<script>alert("x")</script>'


def _seed(
    server,
    task: str,
    direction: str,
    *,
    state: str,
    lag: float,
    rps: float,
    counts: tuple[int, int, int, int, int],
    binlog: tuple[str, int],
    message: str | None = None,
) -> None:
    """Real control rows, written the way the engine writes them."""
    cs = ControlSchema(SCHEMA)
    with server.settings().connect() as conn:
        cs.ensure(conn)
        cs.set_state(
            conn,
            task,
            direction,
            state,
            message,
            lag_seconds=lag,
            rows_per_second=rps,
            last_source_commit_at=dt.datetime(2026, 1, 2, 3, 4, 5),
        )
        tx, ins, upd, dele, conflicts = counts
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION")
            cs.write_checkpoint(
                cur,
                task,
                direction,
                Checkpoint(
                    binlog_file=binlog[0],
                    binlog_pos=binlog[1],
                    transactions_applied=tx,
                    rows_inserted=ins,
                    rows_updated=upd,
                    rows_deleted=dele,
                    conflicts=conflicts,
                    source_commit_at=dt.datetime(2026, 1, 2, 3, 4, 5),
                ),
            )
            cur.execute("COMMIT")


def _log_conflict(server, task: str, direction: str, table: str, key: dict) -> None:
    cs = ControlSchema(SCHEMA)
    with server.settings().connect() as conn, conn.cursor() as cur:
        cs.log_conflict(
            cur,
            task,
            direction,
            conflict_type="insert_exists",
            policy="Overwrite",
            decision="overwrite",
            source=("shop", table),
            dest=("shop", table),
            key=key,
            source_image={"id": 7, "v": "new"},
            dest_image={"id": 7, "v": "old"},
            position="binlog.000001:1234",
        )


@pytest.fixture
def client():
    return TestClient(create_app(require_auth=False))


@pytest.fixture
def seeded(pair, task_name):
    # task one (forward) lives on its destination B, task two (reverse) on A
    _seed(
        pair.b,
        task_name,
        "forward",
        state=State.SYNCHRONIZING,
        lag=1.5,
        rps=42.25,
        counts=(11, 101, 22, 3, 4),
        binlog=("binlog.000003", 4567),
        message="applying <b>live</b>",
    )
    _seed(
        pair.a,
        task_name,
        "reverse",
        state=State.FAILED,
        lag=73.0,
        rps=0.0,
        counts=(5, 6, 7, 8, 1),
        binlog=("binlog.000009", 999),
        message="conflict on shop.t: TaskFailed",
    )
    _log_conflict(pair.b, task_name, "forward", HOSTILE_TABLE, {"id": 7})
    _log_conflict(pair.a, task_name, "reverse", "orders", {"order_id": 31337})
    with pair.b.settings().connect() as conn:
        ControlSchema(SCHEMA).record_precheck(
            conn,
            task_name,
            "forward",
            "run-1",
            [
                type(
                    "R",
                    (),
                    {
                        "name": "binlog_format",
                        "status": "FAIL",
                        "reason": "binlog_format is STATEMENT",
                        "fix": "SET GLOBAL binlog_format=ROW",
                    },
                )(),
                type("R", (), {"name": "server_id", "status": "PASS", "reason": None, "fix": None})(),
            ],
        )
    return task_name


def _mine(status: dict, task: str) -> dict[str, dict]:
    return {d["direction"]: d for d in status["directions"] if d["task_name"] == task}


def test_json_shows_both_directions_conflicts_and_precheck_failures(pair, seeded, client):
    r = client.get("/api/status")
    assert r.status_code == 200
    status = r.json()
    assert status["control_schema"] == SCHEMA
    assert [s["server"] for s in status["servers"]] == ["dts_source", "dts_destination"]
    assert all(s["ok"] for s in status["servers"]), status["servers"]

    mine = _mine(status, seeded)
    assert set(mine) == {"forward", "reverse"}
    fwd, rev = mine["forward"], mine["reverse"]
    assert fwd["server"] == "dts_destination" and rev["server"] == "dts_source"
    assert fwd["direction_label"] == "task one (forward)" and rev["direction_label"] == "task two (reverse)"
    assert fwd["state"] == "Synchronizing" and rev["state"] == "Failed"
    assert fwd["message"] == "applying <b>live</b>"
    assert fwd["lag_seconds"] == 1.5 and rev["lag_seconds"] == 73.0
    assert fwd["rows_per_second"] == 42.25
    assert (
        fwd["transactions_applied"],
        fwd["rows_inserted"],
        fwd["rows_updated"],
        fwd["rows_deleted"],
        fwd["conflicts"],
        fwd["rows_applied"],
    ) == (11, 101, 22, 3, 4, 126)
    assert (
        rev["transactions_applied"],
        rev["rows_inserted"],
        rev["rows_updated"],
        rev["rows_deleted"],
        rev["conflicts"],
    ) == (5, 6, 7, 8, 1)
    assert fwd["binlog_position"] == "binlog.000003:4567" and rev["binlog_position"] == "binlog.000009:999"
    assert fwd["last_source_commit_at"].startswith("2026-01-02T03:04:05")
    assert fwd["updated_at"]
    assert "config_json" not in fwd
    assert fwd["stale"] is False and 0 <= fwd["updated_seconds_ago"] < 30
    # task one is listed before task two
    assert [d["direction"] for d in status["directions"] if d["task_name"] == seeded] == ["forward", "reverse"]

    conflicts = [c for c in status["conflicts"] if c["task_name"] == seeded]
    assert {
        (c["direction"], c["dest_table"], json.loads(c["key_json"]).popitem()[1], c["decision"]) for c in conflicts
    } == {("forward", HOSTILE_TABLE, 7, "overwrite"), ("reverse", "orders", 31337, "overwrite")}
    assert all(c["detected_at"] for c in conflicts)

    fails = [p for p in status["precheck_failures"] if p["task_name"] == seeded]
    assert [(p["item"], p["fix"]) for p in fails] == [("binlog_format", "SET GLOBAL binlog_format=ROW")]


def test_html_page_shows_status_escaped_and_refreshes(pair, seeded, client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<meta http-equiv="refresh" content="5">' in page
    for text in (
        seeded,
        "task one (forward)",
        "task two (reverse)",
        "Synchronizing",
        "Failed",
        "1.5",
        "73.0",
        "42.2",
        "101",
        "binlog.000003:4567",
        "binlog.000009:999",
        "31337",
        "insert_exists",
        "binlog_format is STATEMENT",
        "SET GLOBAL binlog_format=ROW",
    ):
        assert text in page, text
    # the table name with <script> and the message with <b> are shown escaped, never as markup
    assert "<script>" not in page and "<b>live" not in page
    assert "shop.&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "applying &lt;b&gt;live&lt;/b&gt;" in page


def test_real_sync_run_shows_up(clean_pair, task_name, client):
    """A real incremental run (Overwrite policy) with one conflict: the page shows what the engine recorded."""
    from syncing import Sync, create_both, make_direction, sql, table_rows, wait_until

    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    sql(pair.b, "INSERT INTO shop.t VALUES (1, 'dest')")
    with Sync(make_direction(task_name, conflict_policy="Overwrite"), pair.a, pair.b):
        sql(
            pair.a,
            "INSERT INTO shop.t VALUES (1, 'src'), (2, 'two'), (3, 'three')",
            "UPDATE shop.t SET v = 'TWO' WHERE id = 2",
            "DELETE FROM shop.t WHERE id = 3",
        )
        wait_until(lambda: table_rows(pair.b, "t") == [(1, "src"), (2, "TWO")], 30, "rows at the destination")

        def applied():
            d = _mine(client.get("/api/status").json(), task_name).get("forward")
            return d if d and d["rows_deleted"] == 1 and d["lag_seconds"] is not None else None

        fwd = wait_until(applied, 15, "status with the delete applied and a measured lag")
        assert fwd["state"] == "Synchronizing" and fwd["server"] == "dts_destination"
        with pair.b.settings().connect() as conn:
            cp = ControlSchema(SCHEMA).read_checkpoint(conn, task_name, "forward")
        assert cp is not None
        # exactly what the engine stored (read after the status; only heartbeats can run in between)
        assert (fwd["rows_inserted"], fwd["rows_updated"], fwd["rows_deleted"], fwd["conflicts"]) == (
            cp.rows_inserted,
            cp.rows_updated,
            cp.rows_deleted,
            cp.conflicts,
        )
        assert 3 <= fwd["transactions_applied"] <= cp.transactions_applied
        assert fwd["rows_updated"] >= 1 and fwd["rows_deleted"] == 1 and fwd["conflicts"] == 1
        assert fwd["binlog_position"].startswith(fwd["binlog_file"] + ":")
        assert fwd["lag_seconds"] < 30
        page = client.get("/").text
        assert task_name in page and "Synchronizing" in page
    status = client.get("/api/status").json()
    assert _mine(status, task_name)["forward"]["state"] == "Stopped"
    (c,) = [c for c in status["conflicts"] if c["task_name"] == task_name]
    assert (c["dest_table"], json.loads(c["key_json"]), c["decision"]) == ("t", {"id": 1}, "Overwritten")


def test_stale_and_retrying_directions_are_flagged(pair, client, task_name):
    """A Synchronizing row nobody refreshed for 2 minutes (its engine died) and one retrying a lost server."""
    _seed(
        pair.b,
        task_name,
        "forward",
        state=State.SYNCHRONIZING,
        lag=0.5,
        rps=1.0,
        counts=(1, 1, 0, 0, 0),
        binlog=("binlog.000001", 10),
    )
    with pair.a.settings().connect() as conn:
        ControlSchema(SCHEMA).ensure(conn)
        ControlSchema(SCHEMA).set_state(
            conn,
            task_name,
            "reverse",
            State.SYNCHRONIZING,
            "source lost, retrying",
            retrying_since=dt.datetime(2026, 3, 4, 5, 6, 7),
        )
    with pair.b.settings().connect() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE dts_meta.sync_state SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 120 SECOND "
            "WHERE task_name=%s AND direction='forward'",
            (task_name,),
        )
    mine = _mine(client.get("/api/status").json(), task_name)
    assert mine["forward"]["stale"] is True and mine["forward"]["updated_seconds_ago"] >= 120
    assert mine["reverse"]["stale"] is False and mine["reverse"]["retrying_since"].startswith("2026-03-04T05:06:07")
    page = client.get("/").text
    assert "no update for 12" in page and "is its incremental task running?" in page
    # issue 13: the state is a badge never broken mid-word, times are shown as people read them
    assert '<span class="state s-ok">Synchronizing</span> (retrying since ' in page
    assert '<span class="nw" title="2026-03-04 05:06:07 UTC">2026-03-04 05:06 UTC</span>' in page


def test_no_password_anywhere(pair, seeded, client, monkeypatch):
    # a wrong-password connection and a down one next to the real ones
    wrong = "Wr0ng-pw-" + seeded
    down = "D0wn-pw-" + seeded
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_WRONGPW",
        json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": pair.a.port, "login": "dts_admin", "password": wrong}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_DOWNPW",
        json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": free_port(), "login": "dts_admin", "password": down}
        ),
    )
    monkeypatch.setenv("DTS_STATUS_CONN_IDS", "dts_source,dts_destination,dts_wrongpw,dts_downpw")
    bodies = [client.get("/").text, client.get("/api/status").text]
    status = json.loads(bodies[1])
    errors = {s["server"]: s["error"] for s in status["servers"] if not s["ok"]}
    assert set(errors) == {"dts_wrongpw", "dts_downpw"}
    assert "1045" in errors["dts_wrongpw"]
    for body in bodies:
        for secret in (pair.a.password, pair.b.password, wrong, down):
            assert secret not in body


def test_down_server_is_an_error_row_not_a_500(pair, seeded, client, monkeypatch):
    port = free_port()  # nothing listens here
    monkeypatch.setenv(
        "AIRFLOW_CONN_DTS_DOWN",
        json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": port, "login": "dts_admin", "password": "x"}),
    )
    monkeypatch.setenv("DTS_STATUS_CONN_IDS", "dts_down, dts_destination ,dts_not_defined")
    r = client.get("/api/status")
    assert r.status_code == 200
    servers = {s["server"]: s for s in r.json()["servers"]}
    assert set(servers) == {"dts_down", "dts_destination", "dts_not_defined"}
    assert not servers["dts_down"]["ok"] and f"127.0.0.1:{port}" in servers["dts_down"]["error"]
    assert "check host and port" in servers["dts_down"]["error"]
    assert not servers["dts_not_defined"]["ok"] and "dts_not_defined" in servers["dts_not_defined"]["error"]
    assert servers["dts_destination"]["ok"]
    # the live server's directions are still there
    assert set(_mine(r.json(), seeded)) == {"forward"}

    page = client.get("/")
    assert page.status_code == 200
    assert "ERROR:" in page.text and f"127.0.0.1:{port}" in page.text
    assert seeded in page.text


def test_collect_status_plain_function(pair, seeded):
    """The data layer alone, with engine settings and another control schema name that does not exist."""
    status = collect_status([pair.b.settings(name="B")], SCHEMA)
    assert _mine(status, seeded)["forward"]["server"] == "B"
    empty = collect_status([pair.a.settings(name="A")], "dts_meta_absent")
    assert empty["servers"][0]["ok"] and empty["servers"][0]["control_schema_exists"] is False
    assert empty["directions"] == [] and empty["conflicts"] == []
    assert status["servers"][0]["control_schema_exists"] is True


def test_control_schema_from_env(pair, seeded, client, monkeypatch):
    monkeypatch.setenv("DTS_STATUS_CONTROL_SCHEMA", "dts_meta_absent")
    status = client.get("/api/status").json()
    assert status["control_schema"] == "dts_meta_absent" and status["directions"] == []
    page = client.get("/").text
    assert "No sync direction found" in page and "OK (no control schema dts_meta_absent here yet)" in page


def test_endpoints_require_an_airflow_user_who_may_read_the_connections(pair, seeded, airflow_db):
    """The plugin's app (as mounted) answers 401 without a token, 403 to a user who may not read the
    connections (a Viewer: the page shows row images), and the data to an Op."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    app = DtsStatusPlugin.fastapi_apps[0]["app"]
    anonymous = TestClient(app)
    assert anonymous.get("/api/status").status_code == 401
    assert anonymous.get("/").status_code == 401

    manager = init_auth_manager()
    viewer = manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="VIEWER"))
    denied = TestClient(app).get("/api/status", headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403
    assert "dts_source, dts_destination" in denied.json()["detail"] and "Op or Admin" in denied.json()["detail"]
    assert seeded not in denied.text
    assert TestClient(app, cookies={COOKIE_NAME_JWT_TOKEN: viewer}).get("/").status_code == 403

    token = manager.generate_jwt(SimpleAuthManagerUser(username="op", role="OP"))
    by_header = TestClient(app).get("/api/status", headers={"Authorization": f"Bearer {token}"})
    assert by_header.status_code == 200 and set(_mine(by_header.json(), seeded)) == {"forward", "reverse"}
    by_cookie = TestClient(app, cookies={COOKIE_NAME_JWT_TOKEN: token}).get("/")
    assert by_cookie.status_code == 200 and seeded in by_cookie.text
    assert TestClient(app).get("/", headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403)


def test_installed_package_registers_the_plugin(tmp_path):
    """`airflow plugins` (a fresh home, no plugins folder) lists the plugin through the installed package's
    airflow.plugins entry point."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(tmp_path / "no-plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    airflow = Path(sys.executable).with_name("airflow")
    r = subprocess.run(
        [str(airflow), "plugins", "--output", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout[r.stdout.index("[") :])
    mine = [p for p in info if p["name"] == "dts_status"]
    assert len(mine) == 1, info
    plugin = mine[0]
    assert [(a["url_prefix"], a["app"]) for a in plugin["fastapi_apps"]] == [("/dts", "fastapi.applications.FastAPI")]
    assert [(v["name"], v["href"], v["url_route"]) for v in plugin["external_views"]] == [
        ("DTS sync", "dts/", "dts-sync")
    ]
    assert (
        "EntryPoint(name='dts_status', value='airflow_provider_dts.plugins.status:DtsStatusPlugin', "
        "group='airflow.plugins')" in str(plugin["source"])
    )


def _http(url: str, *, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_real_api_server_mounts_the_page_and_the_nav_entry(pair, seeded, tmp_path):
    """`airflow api-server` with the plugin: /dts/ needs a login by a user who may read the connections (an
    Op; a Viewer is refused), then shows the pair's status; nav entry listed."""
    import signal
    import time

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "dts_status_plugin.py").write_text(
        "from airflow_provider_dts.plugins.status import DtsStatusPlugin  # noqa: F401\n"
    )
    (tmp_path / "passwords.json").write_text(json.dumps({"viewer": "pw-" + seeded, "op": "op-" + seeded}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") or k.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="viewer:viewer,op:op",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(tmp_path / "passwords.json"),
        AIRFLOW__API_AUTH__JWT_SECRET="dts-status-test-" + "x" * 64,
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    r = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    port = free_port()
    with open(tmp_path / "api-server.log", "wb") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            try:
                if _http(base + "/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "api-server.log").read_text()[-3000:]
            time.sleep(0.5)

        assert _http(base + "/dts/api/status")[0] == 401
        assert _http(base + "/dts/")[0] == 401
        code, body = _http(base + "/auth/token", data={"username": "viewer", "password": "pw-" + seeded})
        assert code == 201, body
        viewer = json.loads(body)["access_token"]
        code, body = _http(base + "/dts/api/status", headers={"Authorization": f"Bearer {viewer}"})
        assert code == 403 and "needs read access" in body and seeded not in body
        code, body = _http(base + "/auth/token", data={"username": "op", "password": "op-" + seeded})
        assert code == 201, body
        token = json.loads(body)["access_token"]

        code, body = _http(base + "/dts/api/status", headers={"Authorization": f"Bearer {token}"})
        assert code == 200, body
        mine = _mine(json.loads(body), seeded)
        assert (mine["forward"]["state"], mine["forward"]["lag_seconds"], mine["forward"]["rows_inserted"]) == (
            "Synchronizing",
            1.5,
            101,
        )
        assert mine["reverse"]["state"] == "Failed"

        # the browser's session cookie is what the nav entry's iframe sends
        code, page = _http(base + "/dts/", headers={"Cookie": f"_token={token}"})
        assert code == 200 and seeded in page and "&lt;script&gt;" in page and "<script>" not in page
        for secret in (pair.a.password, pair.b.password):
            assert secret not in page and secret not in body

        code, body = _http(base + "/api/v2/plugins", headers={"Authorization": f"Bearer {token}"})
        assert code == 200, body
        views = [v for p in json.loads(body)["plugins"] for v in p["external_views"]]
        assert [(v["name"], v["href"], v["url_route"], v["destination"]) for v in views] == [
            ("DTS sync", "dts/", "dts-sync", "nav")
        ]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_conflicts_section_open_first_with_both_rows_and_the_answer(pair, client, task_name):
    """Issue 12: open conflicts first (anchored for the link in the Airflow request), both rows one column per
    line with the differing ones marked, status, answer, who and when."""
    from airflow_provider_dts.engine import resolve
    from airflow_provider_dts.engine.config import SyncDirection

    cs = ControlSchema(SCHEMA)
    ids = []
    for key in (1, 2):
        with pair.b.settings().connect() as conn, conn.cursor() as cur:
            cs.ensure(conn)
            ids.append(
                cs.log_conflict(
                    cur,
                    task_name,
                    "forward",
                    conflict_type="insert_duplicate",
                    policy="TaskFailed",
                    decision="TaskFailed",
                    source=("shop", "t"),
                    dest=("shop", "t"),
                    key={"id": key},
                    source_image={"id": key, "v": "fromA", "n": 5},
                    dest_image={"id": key, "v": "fromB", "n": 5},
                    position="binlog.000001:1234",
                    status="open",
                )
            )
            cur.execute("COMMIT")
    fwd = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
        }
    )
    with pair.a.settings().connect() as conn:
        cs.ensure(conn)
    resolve.record_answer(fwd, pair.a.settings(), pair.b.settings(), ids[0], "take_source", "admin", "A wins")

    conflicts = client.get("/api/status").json()["conflicts"]
    mine = [c for c in conflicts if c["task_name"] == task_name and c["direction"] == "forward"]
    assert [(c["id"], c["status"]) for c in mine][:2] == [(ids[1], "open"), (ids[0], "answered")]
    answered = mine[1]
    assert (answered["answer"], answered["answer_label"], answered["answered_by"]) == (
        "take_source",
        "Take the source row",
        "admin",
    )
    assert answered["answered_at"] and json.loads(answered["source_image"])["v"] == "fromA"

    page = client.get("/").text
    assert f'id="open-{task_name}-forward"' in page and 'id="conflicts"' in page
    assert '<div class="diff"><span class="col">v</span> = fromA</div>' in page
    assert '<div class="same"><span class="col">n</span> = 5</div>' in page
    assert "open: waiting for an answer" in page and "Take the source row<br>by admin" in page
    assert page.index(f"#{ids[1]} on") < page.index(f"#{ids[0]} on")  # open first


def test_links_to_the_latest_dag_run_and_the_directions_task(pair, seeded, client, airflow_db):
    """Issue 13: each direction links into Airflow's UI: the DAG (its grid), the latest run whose conf names the
    sync, and the task running the direction's current step; without a run, the DAG's runs of this sync."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    run_id = f"manual__2026-11-29T17:03:00+00:00_{seeded}"
    with create_session() as session:
        for rid, task in ((run_id + "_old", seeded), (run_id, seeded), (run_id + "_other", "someone_else")):
            session.add(DagRun(dag_id="dts_two_way_sync", run_id=rid, run_type="manual", conf={"task_name": task}))
    try:
        mine = _mine(client.get("/api/status").json(), seeded)
        quoted = run_id.replace(":", "%3A").replace("+", "%2B")
        assert mine["forward"]["links"] == {
            "dag_id": "dts_two_way_sync",
            "run_id": run_id,
            "task_id": "task_one_incremental",
            "items": [
                ["DAG (grid)", "dags/dts_two_way_sync"],
                ["run", f"dags/dts_two_way_sync/runs/{quoted}"],
                ["task_one_incremental", f"dags/dts_two_way_sync/runs/{quoted}/tasks/task_one_incremental"],
            ],
        }
        assert mine["reverse"]["links"]["task_id"] == "task_two_incremental"
        page = client.get("/").text
        assert f'<a target="_top" href="../dags/dts_two_way_sync/runs/{quoted}/tasks/task_two_incremental">' in page
    finally:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.run_id.like(run_id + "%")))
