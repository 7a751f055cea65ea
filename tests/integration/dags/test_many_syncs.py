"""Several syncs from one Airflow (issue 13, item 1), without a scheduler: the duplicate-task_name rule of the
two-way DAG's ``configure`` against a really running engine, syncs declared in a file parsed by Airflow's own
DagBag, and a trigger form with no "null" choice and no tri-state toggle."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.demo import direction_status, sql
from airflow_provider_dts.engine.incremental import run_direction

DAGS = Path(__file__).resolve().parents[3] / "dags"


def two_way_module():
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_many", DAGS / "dts_two_way_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configure_refuses_a_task_name_that_is_running(clean_pair, task_name):
    pair, dag = clean_pair, two_way_module()
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)")
    two_way = dag.build_task({"task_name": task_name, "objects": ["shop"], "initial_full_data_sync": False})
    dag.refuse_if_running(two_way)  # nothing runs yet

    stop = threading.Event()
    engine = threading.Thread(
        target=run_direction, args=(two_way.forward, pair.a.settings(), pair.b.settings()), kwargs={"stop": stop}
    )
    engine.start()
    try:
        deadline = time.monotonic() + 30
        while direction_status(pair, task_name)["forward"].state != "Synchronizing":
            assert time.monotonic() < deadline, direction_status(pair, task_name)
            time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(AirflowFailException) as e:
            dag.refuse_if_running(dag.build_task({"task_name": task_name, "objects": ["shop"]}))
        assert time.monotonic() - started < 5
        msg = str(e.value)
        assert f"task_name {task_name!r} is already running" in msg
        assert f"{task_name}/forward (task one) on dts_destination" in msg and "apply lease" in msg
        assert "reverse" not in msg.split("Fix:")[0]  # task two does not run
        assert "pick another task_name" in msg
        # another sync on the same servers is free to start
        dag.refuse_if_running(dag.build_task({"task_name": task_name + "x", "objects": ["shop"]}))
    finally:
        stop.set()
        engine.join(60)
    assert direction_status(pair, task_name)["forward"].state == "Stopped"
    dag.refuse_if_running(two_way)  # stopped: may be triggered again (resume)


SYNCS = """
syncs:
  eu_shop:
    objects: [shop]
    conflict_policy: Overwrite
  billing:
    source_conn_id: billing_a
    destination_conn_id: billing_b
    objects: [billing.invoices]
"""


def _bag(monkeypatch, tmp_path, text):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "syncs.yaml"
    path.write_text(text)
    monkeypatch.setenv("DTS_SYNCS_FILE", str(path))
    return DagBag(dag_folder=str(DAGS))


def test_syncs_declared_in_a_file_become_one_dag_each(monkeypatch, tmp_path):
    bag = _bag(monkeypatch, tmp_path, SYNCS)
    assert not bag.import_errors, bag.import_errors
    assert {"dts_two_way_sync", "dts_sync_eu_shop", "dts_sync_billing"} <= set(bag.dag_ids)
    eu, billing = bag.dags["dts_sync_eu_shop"], bag.dags["dts_sync_billing"]
    assert eu.params["task_name"] == "eu_shop" and eu.params["objects"] == ["shop"]
    assert eu.params["conflict_policy"] == "Overwrite"
    assert billing.params["source_conn_id"] == "billing_a" and billing.params["objects"] == ["billing.invoices"]
    assert eu.max_active_runs > 1 and bag.dags["dts_two_way_sync"].max_active_runs > 1
    assert set(eu.task_ids) == set(bag.dags["dts_two_way_sync"].task_ids)
    # the template DAG keeps its own defaults
    assert bag.dags["dts_two_way_sync"].params["conflict_policy"] == "TaskFailed"


def test_a_bad_declared_sync_is_an_import_error_naming_it(monkeypatch, tmp_path):
    bag = _bag(monkeypatch, tmp_path, SYNCS + "  broken:\n    objects: [mysql]\n    conflict_policy: Sometimes\n")
    errors = {Path(k).name: v for k, v in bag.import_errors.items()}
    assert set(errors) == {"dts_syncs_from_file.py"}, bag.import_errors
    assert "syncs.broken.forward.conflict_policy" in errors["dts_syncs_from_file.py"]
    assert "syncs.broken.forward.objects" in errors["dts_syncs_from_file.py"]
    assert "dts_two_way_sync" in bag.dag_ids  # the other DAG files are untouched


def test_trigger_form_has_no_null_choice_and_no_tri_state_toggle():
    params = two_way_module().PARAMS
    for name, p in params.items():
        schema = p.schema
        assert None not in (schema.get("enum") or []), f"{name}: the form would offer 'null'"
        items = schema.get("items") or {}
        assert None not in (items.get("enum") or []), name
        types = schema.get("type")
        assert not (isinstance(types, list) and "boolean" in types and "null" in types), (
            f"{name}: a toggle that can be empty shows OFF while meaning something else"
        )
        if "enum" in schema or types == "boolean":
            assert p.value is not None, f"{name}: a choice or toggle needs a real default"


def test_cli_lists_and_answers_conflicts(clean_pair, task_name, monkeypatch, capsys):
    """`cli conflicts` shows open conflicts first with both rows; `cli answer` with no Airflow request open records
    the answer straight in the conflict log, mirrored to the other direction's open conflict of the key."""
    import json

    from airflow_provider_dts import cli
    from airflow_provider_dts.engine.control import ControlSchema, State
    from airflow_provider_dts.localpair import free_port

    pair, cs = clean_pair, ControlSchema("dts_meta")
    for k, v in pair.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AIRFLOW_API_URL", f"http://127.0.0.1:{free_port()}")  # no Airflow there
    monkeypatch.setenv("AIRFLOW_API_PASSWORD", "unused")
    two_way = two_way_module().build_task({"task_name": task_name, "objects": ["shop"]})
    ids = {}
    for d, home, image, other in (
        (two_way.forward, pair.b, "fromA", "fromB"),
        (two_way.reverse, pair.a, "fromB", "fromA"),
    ):
        with home.settings().connect() as conn:
            cs.ensure(conn)
            cs.set_state(conn, task_name, d.role, State.FAILED, "conflict", config_json=d.to_json())
            with conn.cursor() as cur:
                ids[d.role] = cs.log_conflict(
                    cur,
                    task_name,
                    d.role,
                    conflict_type="insert_duplicate",
                    policy="TaskFailed",
                    decision="TaskFailed",
                    source=("shop", "t"),
                    dest=("shop", "t"),
                    key={"id": 1},
                    source_image={"id": 1, "v": image},
                    dest_image={"id": 1, "v": other},
                    position="binlog.000001:100",
                    status="open",
                )
                cur.execute("COMMIT")

    assert cli.main(["conflicts", "--task-name", task_name]) == 0
    out = capsys.readouterr().out
    assert out.count("status open") == 2 and '{"id": 1, "v": "fromA"}' in out and "cli answer --task-name" in out

    assert cli.main(["answer", "--task-name", task_name, "--direction", "forward", "--choice", "take_source"]) == 0
    out = capsys.readouterr().out
    assert "recording the answer in the conflict log" in out and f"mirrored to {task_name}/reverse" in out
    assert cli.main(["conflicts", "--task-name", task_name, "--json"]) == 0
    rows = {r["direction"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["forward"]["status"], rows["forward"]["answer"]) == ("answered", "take_source")
    assert rows["forward"]["answered_by"].startswith("cli:")
    assert (rows["reverse"]["status"], rows["reverse"]["answer"]) == ("answered", "keep_destination")
    assert rows["reverse"]["linked_id"] == ids["forward"]
    # nothing left to answer
    assert cli.main(["answer", "--task-name", task_name, "--direction", "reverse", "--choice", "skip"]) == 1
    assert "no open conflict waiting for an answer" in capsys.readouterr().err


def test_cli_stop_marks_skipped_and_resume_clears_the_ended_health_watcher(monkeypatch, capsys):
    """`cli stop` marks the incremental tasks *skipped* (a stopped direction is not a green success); `cli resume`
    clears them, and the run's `health` task when its watch ended with the stop. Airflow's REST API is a local
    stand-in recording the calls (tests/e2e/test_health_dag.py does it against a real Airflow)."""
    import http.server
    import json

    from airflow_provider_dts import cli

    calls: list[tuple[str, str, object]] = []
    run = "/api/v2/dags/dts_two_way_sync/dagRuns/manual__1/taskInstances"

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n)) if n else None

        def do_GET(self):
            calls.append(("GET", self.path, None))
            if self.path.startswith("/api/v2/dags?"):
                return self._reply({"dags": [{"dag_id": "dts_two_way_sync"}]})
            if "/dagRuns?" in self.path:
                return self._reply({"dag_runs": [{"dag_run_id": "manual__1", "run_after": "2026-11-29T00:00:00Z"}]})
            if self.path.startswith(f"{run}/configure/xcomEntries/forward"):
                return self._reply({"value": {"task_name": "shop_eu"}})
            if self.path == f"{run}/health":
                return self._reply({"task_id": "health", "state": "success"})
            self.send_error(404)

        def do_POST(self):
            body = self._body()
            calls.append(("POST", self.path, body))
            self._reply({"access_token": "t"} if self.path == "/auth/token" else {"task_instances": []})

        def do_PATCH(self):
            calls.append(("PATCH", self.path, self._body()))
            self._reply({})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AIRFLOW_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AIRFLOW_API_PASSWORD", "pw")
    try:
        assert cli.main(["stop", "--task-name", "shop_eu"]) == 0
        patches = [(p, b) for m, p, b in calls if m == "PATCH"]
        assert patches == [
            (f"{run}/task_one_incremental", {"new_state": "skipped"}),
            (f"{run}/task_two_incremental", {"new_state": "skipped"}),
        ]
        assert "task_one_incremental skipped" in capsys.readouterr().out
        assert cli.main(["resume", "--task-name", "shop_eu"]) == 0
        (clear,) = [b for m, p, b in calls if m == "POST" and p.endswith("/clearTaskInstances")]
        assert isinstance(clear, dict)
        assert clear["task_ids"] == ["task_one_incremental", "task_two_incremental", "health"]
        assert clear["dag_run_id"] == "manual__1"
    finally:
        server.shutdown()
        thread.join(5)
