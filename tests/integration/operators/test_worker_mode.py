"""IncrementalSyncOperator(run_in="worker"): the incremental sync as a long-running worker task (issue 14).

Against the suite's real MariaDB pair. The crash test runs the operator's ``execute()`` in a child process,
SIGKILLs it in the middle of a stream of writes, starts a new run in a DAG run (``dag.test()``: Airflow's own
in-process task runner, with its SIGTERM -> ``on_kill`` handler) that takes over the lease and resumes from the
checkpoint, then stops it with SIGTERM (what the supervisor sends when the task is marked skipped): every row
arrives exactly once (row by row, CHECKSUM TABLE, the checkpoint's counters) and the direction ends Stopped.
The other tests call ``execute()`` in this process (max_runtime, on_kill, a conflict, bad input).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from helpers import wait_until
from test_dag_incremental_operator import direction, make_shop, state

from airflow_provider_dts.engine.control import State
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

REPO = Path(__file__).resolve().parents[3]


def sql(server, *statements):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            out: list = []
            for s in statements:
                cur.execute(s)
                out = list(cur.fetchall())
            conn.commit()
            return out
    finally:
        conn.close()


def synchronizing(pair, task_name):
    return (state(pair, task_name) or {}).get("state") == State.SYNCHRONIZING


def rows(server):
    return sql(server, "SELECT id, item, qty FROM shop.orders ORDER BY id")


def checksum(server):
    return sql(server, "CHECKSUM TABLE shop.orders")[0][1]


def operator(task_name, **kw) -> IncrementalSyncOperator:
    return IncrementalSyncOperator(
        task_id="incremental", direction=direction(task_name).to_dict(), run_in="worker", progress_interval=1, **kw
    )


# ---------------------------------------------------------------------------------------------- in this process


def test_worker_mode_syncs_until_max_runtime(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)

    def writer():
        wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
        sql(pair.a, "INSERT INTO shop.orders VALUES (1, 'apple', 3), (2, 'pear', 5)")
        sql(pair.a, "UPDATE shop.orders SET qty = 4 WHERE id = 1")

    t = threading.Thread(target=writer)
    t.start()
    summary = operator(task_name, max_runtime=6).execute({})
    t.join()
    assert summary["outcome"] == "max_runtime" and summary["state"] == State.STOPPED, summary
    assert (summary["rows_inserted"], summary["rows_updated"]) == (2, 1), summary
    assert rows(pair.b) == [(1, "apple", 4), (2, "pear", 5)]
    assert state(pair, task_name)["state"] == State.STOPPED


def test_on_kill_stops_the_engine_cleanly_and_a_new_run_resumes(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)
    op = operator(task_name)
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = op.execute({})
        except BaseException as e:
            outcome["error"] = e

    t = threading.Thread(target=run)
    t.start()
    wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
    sql(pair.a, "INSERT INTO shop.orders VALUES (1, 'apple', 3)")
    wait_until(lambda: rows(pair.b) == [(1, "apple", 3)], timeout=30, what="row 1 on B")
    op.on_kill()  # what Airflow's task runner calls on SIGTERM
    t.join(30)
    assert not t.is_alive(), "execute() did not return after on_kill()"
    err = outcome.get("error")
    # retryable (not AirflowFailException): after a worker shutdown the task's retries resume the direction
    assert isinstance(err, AirflowException) and not isinstance(err, AirflowFailException), outcome
    assert "stopped by SIGTERM" in str(err) and "checkpoint is kept" in str(err)
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED and st["rows_inserted"] == 1, st

    sql(pair.a, "INSERT INTO shop.orders VALUES (2, 'pear', 5)", "UPDATE shop.orders SET qty = 9 WHERE id = 1")
    summary = operator(task_name, max_runtime=5).execute({})  # a cleared task: resumes from the checkpoint
    assert rows(pair.b) == [(1, "apple", 9), (2, "pear", 5)]
    assert (summary["rows_inserted"], summary["rows_updated"]) == (2, 1), summary


def test_a_sigterm_before_the_engine_started_is_honoured_when_it_starts(clean_pair, task_name):
    """The task runner's SIGTERM -> on_kill handler is installed before execute(): a task marked skipped while its
    connections are being looked up must not start an engine that runs on until the SIGKILL."""
    pair = clean_pair
    make_shop(pair)
    op = operator(task_name, max_runtime=8)
    real_resolve = op.resolve
    calls: list[int] = []

    def resolve():
        calls.append(1)
        if len(calls) == 2:  # _run_in_worker's look-up: the task is marked skipped right now
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        return real_resolve()

    vars(op)["resolve"] = resolve
    old = signal.signal(signal.SIGTERM, lambda s, f: op.on_kill())  # what Airflow's task runner installs
    started = time.monotonic()
    try:
        with pytest.raises(AirflowException, match="stopped by SIGTERM"):
            op.execute({})
    finally:
        signal.signal(signal.SIGTERM, old)
    assert time.monotonic() - started < 5, "the engine ran on after the SIGTERM"
    assert (state(pair, task_name) or {}).get("state") != State.SYNCHRONIZING


def test_worker_mode_conflict_without_a_task_instance_fails_with_the_engines_message(clean_pair, task_name):
    pair = clean_pair
    make_shop(pair)

    def writer():
        wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
        sql(pair.b, "INSERT INTO shop.orders VALUES (9, 'on B', 1)")
        sql(pair.a, "INSERT INTO shop.orders VALUES (9, 'on A', 2)")

    t = threading.Thread(target=writer)
    t.start()
    with pytest.raises(AirflowFailException, match="orders"):
        operator(task_name, max_runtime=60).execute({})
    t.join()
    assert state(pair, task_name)["state"] == State.FAILED
    assert rows(pair.b) == [(9, "on B", 1)]


@pytest.mark.parametrize("bad", ["pod", "Worker-Pool", 3])
def test_bad_run_in_fails_naming_the_setting(pair, task_name, bad):
    op = IncrementalSyncOperator(task_id="incremental", direction=direction(task_name).to_dict(), run_in=bad)
    with pytest.raises(AirflowFailException, match=r"run_in: .* is not one of triggerer, worker"):
        op.execute({})


# ---------------------------------------------------------------------------------- a real DAG run, SIGKILLed

WORKER_DAG = """
import json
import os
from airflow.sdk import DAG
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

with DAG(dag_id="dts_worker_mode_test", schedule=None) as dag:
    IncrementalSyncOperator(task_id="incremental", direction=os.environ["DTS_TEST_DIRECTION"], run_in="worker",
                            progress_interval=2)
"""

# the first run, SIGKILLed: the operator's execute() in a plain process (cheaper to start than a DAG run)
RUN_EXECUTE = """
import os
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator

IncrementalSyncOperator(
    task_id="incremental", direction=os.environ["DTS_TEST_DIRECTION"], run_in="worker", progress_interval=2
).execute({})
"""

RUN_DAG = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("worker_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
print("TI-STATES " + json.dumps({ti.task_id: str(ti.state) for ti in run.get_task_instances()}), flush=True)
"""


def start_run(tmp_path: Path, task_name: str, n: int, script: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path),
        DTS_TEST_DIRECTION=direction(task_name).to_json(),
        PYTHONPATH=str(REPO),
    )
    return subprocess.Popen(
        [sys.executable, str(tmp_path / script), str(tmp_path / "worker_dag.py")],
        env=env,
        stdout=open(tmp_path / f"run{n}.out", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the reader child is found (and must go) with it
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Writer(threading.Thread):
    """Transactions on A until stopped: inserts of new ids, an update and a delete of older ones."""

    def __init__(self, pair):
        super().__init__(daemon=True)
        self.pair = pair
        self.stop = threading.Event()
        self.inserted = self.updated = self.deleted = 0
        self.error: BaseException | None = None

    def run(self):
        conn = self.pair.a.root_connect()
        next_id = 1
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    ids = range(next_id, next_id + 20)
                    cur.execute(
                        "INSERT INTO shop.orders VALUES " + ",".join(f"({i}, 'item {i}', {i % 7})" for i in ids)
                    )
                    if next_id > 40:
                        cur.execute("UPDATE shop.orders SET qty = qty + 1 WHERE id = %s", (next_id - 30,))
                        cur.execute("DELETE FROM shop.orders WHERE id = %s", (next_id - 40,))
                        self.updated += 1
                        self.deleted += 1
                    conn.commit()
                    self.inserted += 20
                    next_id += 20
                    time.sleep(0.02)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            conn.close()


def test_sigkilled_worker_task_resumes_exactly_once_and_sigterm_stops_it(clean_pair, task_name, airflow_db, tmp_path):
    pair = clean_pair
    make_shop(pair)
    (tmp_path / "worker_dag.py").write_text(WORKER_DAG)
    (tmp_path / "run_dag.py").write_text(RUN_DAG)
    (tmp_path / "run_execute.py").write_text(RUN_EXECUTE)
    writer = Writer(pair)
    first = start_run(tmp_path, task_name, 1, "run_execute.py")
    try:
        wait_until(lambda: synchronizing(pair, task_name), timeout=120, what="the worker task Synchronizing")
        writer.start()
        wait_until(lambda: len(rows(pair.b)) >= 200, timeout=60, what="rows arriving on B")
        killed_at = (state(pair, task_name) or {}).get("rows_inserted") or 0
        os.kill(first.pid, signal.SIGKILL)  # the task process dies mid-stream: no cleanup at all
        assert first.wait(10) == -signal.SIGKILL
        # its binlog reader (a child process) must not outlive it: it exits when the pipe closes
        wait_until(lambda: not group_alive(first.pid), timeout=20, what="the killed run's reader process to exit")
        st = state(pair, task_name)
        assert st["state"] == State.SYNCHRONIZING, st  # nothing could write Stopped
        time.sleep(1.0)  # writes go on while no run is there
        assert writer.is_alive() and writer.error is None, writer.error
        second = start_run(tmp_path, task_name, 2, "run_dag.py")  # Airflow's task runner: SIGTERM -> on_kill
        try:
            wait_until(
                lambda: ((state(pair, task_name) or {}).get("rows_inserted") or 0) > killed_at + 100,
                timeout=120,
                what="the new run applying",
            )
            writer.stop.set()
            writer.join(10)
            assert writer.error is None, writer.error
            wait_until(lambda: rows(pair.b) == rows(pair.a), timeout=60, what="B equal to A after the takeover")
            st = state(pair, task_name)
            assert st["owner"] and str(second.pid) in st["owner"], st  # the new run took over the direction
            # exactly once: the counters commit with the rows; a replayed or lost change would show here
            assert (st["rows_inserted"], st["rows_updated"], st["rows_deleted"]) == (
                writer.inserted,
                writer.updated,
                writer.deleted,
            ), (st, writer.inserted, writer.updated, writer.deleted)
            assert checksum(pair.a) == checksum(pair.b)
            os.kill(second.pid, signal.SIGTERM)  # what the supervisor sends when the task is marked skipped
            assert second.wait(30) == 0
        finally:
            if second.poll() is None:
                os.kill(second.pid, signal.SIGKILL)
                second.wait(10)
    finally:
        writer.stop.set()
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
    out = (tmp_path / "run2.out").read_text(errors="replace")
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED, (st, out[-3000:])
    assert "stopped by SIGTERM" in out, out[-3000:]
    states = json.loads(out.split("TI-STATES ", 1)[1].splitlines()[0])
    assert states["incremental"].endswith("failed"), states  # retryable failure; a marked state would stay
    assert rows(pair.b) == rows(pair.a) and checksum(pair.a) == checksum(pair.b)
    assert not group_alive(second.pid)
    # no password of either server in what the task printed
    assert pair.a.password not in out and pair.b.password not in out


def test_two_way_dag_chooses_the_mode_by_param():
    import importlib.util

    spec = importlib.util.spec_from_file_location("dts_two_way_sync_worker_mode", REPO / "dags" / "dts_two_way_sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    param = module.dag.params.get_param("run_incremental_in")
    assert param.value == "triggerer" and param.schema["enum"] == ["triggerer", "worker"]
    for tid in ("task_one_incremental", "task_two_incremental"):
        op = module.dag.get_task(tid)
        assert op.run_in == "{{ params.run_incremental_in }}" and "run_in" in op.template_fields
    with pytest.raises(Exception, match="worker"):  # the form refuses anything else
        param.resolve("pod")


def test_worker_mode_restarts_in_the_worker_after_a_conflict_answer(clean_pair, task_name):
    """The conflict path of the triggerer mode: the run stops on the conflict, a person answers (here the answer
    the HITL request resumes the task with), the answer is recorded and the engine runs again IN THIS PROCESS,
    applying it exactly once."""
    from datetime import UTC, datetime

    from airflow_provider_dts.engine import conflicts as C
    from airflow_provider_dts.operators.hitl_support import HumanAnswer

    pair = clean_pair
    make_shop(pair)

    def writer():
        wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
        sql(pair.b, "INSERT INTO shop.orders VALUES (9, 'on B', 1)")
        sql(pair.a, "INSERT INTO shop.orders VALUES (9, 'on A', 2)", "INSERT INTO shop.orders VALUES (10, 'next', 3)")

    t = threading.Thread(target=writer)
    t.start()
    op = operator(task_name, max_runtime=6)
    with pytest.raises(AirflowFailException, match="orders"):
        op.execute({})
    t.join()
    ((conflict_id,),) = sql(pair.b, "SELECT id FROM dts_meta.conflict_log WHERE status = 'open'")
    answer = HumanAnswer(
        option=C.ANSWER_LABELS[C.ANSWER_TAKE_SOURCE],
        params_input={"note": "A is right"},
        responded_by={"id": "u1", "name": "ann"},
        responded_at=datetime.now(UTC),
        timed_out=False,
    )
    summary = op.conflict_answered({}, answer, conflict_id)  # the engine ran again here, until max_runtime
    assert summary["outcome"] == "max_runtime", summary
    assert rows(pair.b) == [(9, "on A", 2), (10, "next", 3)]
    ((status, answered, by),) = sql(
        pair.b, f"SELECT status, answer, answered_by FROM dts_meta.conflict_log WHERE id = {conflict_id}"
    )
    assert (status, answered, by) == ("resolved", C.ANSWER_TAKE_SOURCE, "ann (id u1)")


def test_execution_timeout_stops_the_engine_before_the_task_ends(clean_pair, task_name):
    """Airflow's execution_timeout raises AirflowTaskTimeout in the task's main thread (SIGALRM): the engine is
    stopped cleanly first (Stopped, checkpoint kept), then the timeout goes on to fail the task."""
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    pair = clean_pair
    make_shop(pair)
    sql(pair.a, "INSERT INTO shop.orders VALUES (1, 'before', 1)")  # before the first start: not synced

    def writer():
        wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
        sql(pair.a, "INSERT INTO shop.orders VALUES (2, 'apple', 3)")

    t = threading.Thread(target=writer)
    t.start()
    with pytest.raises(AirflowTaskTimeout), timeout(8):  # what the task runner wraps execute() in
        operator(task_name).execute({})
    t.join()
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED and st["rows_inserted"] == 1, st
    assert rows(pair.b) == [(2, "apple", 3)]


def test_sigint_stops_the_engine_like_sigterm(clean_pair, task_name):
    """SIGINT (Ctrl-C, or the supervisor's escalation when it starts there) in the task's main thread."""
    pair = clean_pair
    make_shop(pair)

    def interrupt():
        wait_until(lambda: synchronizing(pair, task_name), timeout=30, what="Synchronizing")
        sql(pair.a, "INSERT INTO shop.orders VALUES (1, 'apple', 3)")
        wait_until(lambda: rows(pair.b) == [(1, "apple", 3)], timeout=30, what="row 1 on B")
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt)
    t.start()
    with pytest.raises(AirflowException, match="stopped by SIGINT") as err:
        operator(task_name).execute({})
    t.join()
    assert not isinstance(err.value, AirflowFailException)
    st = state(pair, task_name)
    assert st["state"] == State.STOPPED and st["rows_inserted"] == 1, st
