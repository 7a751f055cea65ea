"""Command line for operating a two-way sync: ``python -m airflow_provider_dts.cli <command>``.

Connections are Airflow connection ids, resolved the way Airflow resolves them (``AIRFLOW_CONN_<ID>``
environment variables, the metadata database, a secrets backend); passwords are never accepted as arguments.

Commands:

``reinitialize --task-name NAME [--direction task_one|task_two|both] [--yes]``
    Prints what re-initialization overwrites (engine/reinit.py) and, with ``--yes``, does it. The directions'
    settings are read from the control schema (what their last precheck stored), so nothing is asked again.
    Afterwards run the DAG again with the same task_name: the initial sync runs again for what was reset.

``switch-direction --task-name NAME [--to forward|reverse] [--wait SECONDS]``
    DTS's "switch direction" on a running pair (engine/ddl_owner.py): makes the other side (or ``--to``) the
    one whose DDL is applied, recorded on both servers. Waits for the old owner to apply the DDL made before
    the switch; exit 2 when it did not within ``--wait`` (run it again to complete the switch).

``status [--conn-id ID ...] [--json]``
    Every direction of every sync found in the control schemas of the given connections (default
    dts_source and dts_destination): state, lag, position, rows applied, conflicts. Reads MySQL only.

``verify --task-name NAME [--conn-id ID ...]``
    Compares both directions' tables row by row (engine/verify.py) with the settings stored in the control
    schema; exit 0 when equal, 3 when they differ (each difference is recorded in the control schema).

``conflicts [--task-name NAME] [--conn-id ID ...] [--json]``
    Open conflicts (waiting for an answer) first, then the latest others, from the conflict logs of the given
    connections: table, key, source and destination rows, policy, decision, status, answer, who and when.

``answer --task-name NAME --direction forward|reverse --choice take_source|keep_destination|skip|stop
[--note TEXT] [--conflict-id ID] [--no-airflow]``
    Answers the direction's open conflict. When its incremental task has an open human-in-the-loop request,
    through Airflow's REST API (the request's PATCH: Airflow records you as who answered and resumes the
    task at once); otherwise (or with ``--no-airflow``) straight in the conflict log (engine/resolve.py), where
    the waiting task (or the next restart) picks it up. The other direction gets the mirrored answer for the
    same key, so both servers end with the same row.

``stop --task-name NAME [--direction ...]`` / ``resume --task-name NAME [--direction ...]``
    Through Airflow's REST API: stop marks the direction's ``*_incremental`` task skipped (its trigger is
    cancelled, the engine stops and records Stopped with its checkpoint; the grid shows it skipped, not a green
    success); resume clears it (it resumes from the checkpoint), and the run's ``health`` watcher too when it
    had ended. The DAG run is found by task_name (configure's XCom) among the runs of the DAGs tagged ``dts``.

Environment. MySQL connections: the same Airflow connections the DAG uses, e.g. ``AIRFLOW_CONN_DTS_SOURCE``,
or AIRFLOW_HOME pointing at the Airflow whose metadata database holds them. REST (stop, resume):
``AIRFLOW_API_URL`` (default http://localhost:8080), ``AIRFLOW_API_USER`` (default admin) and
``AIRFLOW_API_PASSWORD``; without the password, the one ``airflow standalone`` generated in
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`` is used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine import resolve
from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA, SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.reinit import plan, reinitialize
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.status import DirectionStatus, read_directions
from airflow_provider_dts.engine.verify import stored_direction
from airflow_provider_dts.triggers.settle import SETTLE_SECONDS

DIRECTIONS = {"task_one": ("forward",), "task_two": ("reverse",), "both": ("forward", "reverse")}


def _settings(conn_id: str) -> ConnectionSettings:
    from airflow_provider_dts.hooks.dts import DtsMySqlHook

    return DtsMySqlHook(conn_id).get_settings()


def _stored(task_name: str, role: str, home: ConnectionSettings, control_schema: str) -> SyncDirection:
    with home.connect() as conn:
        d = stored_direction(conn, task_name, control_schema, role)
    if d is None:
        raise DtsError(
            f"no settings of {task_name}/{role} in {control_schema}.sync_state on {home.describe()}: "
            "this sync never passed a precheck there. Fix: check --task-name and the connection ids"
        )
    return d


def cmd_reinitialize(args: argparse.Namespace) -> int:
    a, b = _settings(args.source_conn_id), _settings(args.destination_conn_id)
    work = []
    for role in DIRECTIONS[args.direction]:
        src, dst = (a, b) if role == "forward" else (b, a)  # a direction's settings live at its destination
        d = _stored(args.task_name, role, dst, args.control_schema)
        work.append((d, src, dst))
    for d, src, dst in work:
        print(plan(d, src, dst).describe())
    if not args.yes:
        print("nothing was changed; run again with --yes to do this")
        return 2
    for d, src, dst in work:
        reinitialize(d, src, dst)
        print(f"{d.key}: re-initialized")
    print(f"next: trigger the DAG again with task_name {args.task_name!r}; the initial sync runs again")
    return 0


def cmd_switch_direction(args: argparse.Namespace) -> int:
    from airflow_provider_dts.engine.ddl_owner import SWITCHING, switch_direction

    result = switch_direction(
        args.task_name,
        _settings(args.source_conn_id),
        _settings(args.destination_conn_id),
        args.control_schema,
        to=args.to,
        who=f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}",
        wait=args.wait,
    )
    print(result.describe())
    return 2 if result.state == SWITCHING else 0  # 2: not complete yet, run it again


# --------------------------------------------------------------------------- status and verify (MySQL only)

ROLE_LABEL = {"forward": "task one", "reverse": "task two"}


def _conn_ids(args: argparse.Namespace) -> list[str]:
    return list(dict.fromkeys(args.conn_id or ["dts_source", "dts_destination"]))


def _directions(args: argparse.Namespace) -> list[tuple[str, ConnectionSettings, DirectionStatus]]:
    """(conn_id, settings, status) for every direction found in the given connections' control schemas."""
    found = []
    for conn_id in _conn_ids(args):
        settings = _settings(conn_id)
        with settings.connect() as conn:
            statuses = read_directions(conn, args.control_schema)
        found += [
            (conn_id, settings, st) for st in statuses if getattr(args, "task_name", None) in (None, st.task_name)
        ]
    return found


def cmd_status(args: argparse.Namespace) -> int:
    out = []
    for conn_id, _, st in _directions(args):
        task, role = st.task_name, st.role
        out.append({"conn_id": conn_id, **st.to_dict()})
        if not args.json:
            text = st.summary().removeprefix(f"{task}/{role}: ")
            print(f"{task}/{role} ({ROLE_LABEL.get(role, role)}, state kept on {conn_id}): {text}")
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    elif not out:
        print(f"no sync found in {args.control_schema} on {', '.join(_conn_ids(args))}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from airflow_provider_dts.engine.verify import verify_direction

    checked, equal = 0, True
    for _conn_id, settings, st in _directions(args):
        with settings.connect() as conn:
            d = stored_direction(conn, st.task_name, args.control_schema, st.role)
        if d is None:
            continue
        report = verify_direction(
            d, _settings(d.source_conn_id), _settings(d.destination_conn_id), run_id=f"cli-verify-{os.getpid()}"
        )
        checked += 1
        equal = equal and report.equal
        print(f"{d.key} ({d.source_conn_id} -> {d.destination_conn_id}): {report.summary()}")
    if not checked:
        raise DtsError(
            f"no stored settings of {args.task_name!r} in {args.control_schema} on "
            f"{', '.join(_conn_ids(args))}. Fix: check --task-name and --conn-id"
        )
    return 0 if equal else 3


# --------------------------------------------------------------------------- stop and resume (Airflow REST API)

INCREMENTAL_TASKS = {"forward": "task_one_incremental", "reverse": "task_two_incremental"}
HEALTH_TASK = "health"  # the two-way DAG's health watcher (operators/health.py)
STOPPED_TI_STATE = "skipped"  # what stop marks an incremental task: a stopped direction is not a success
FINISHED_TI_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


class AirflowApi:
    """Airflow 3 REST API (``/api/v2``) with a token from ``/auth/token``; credentials from the environment."""

    def __init__(self, url: str | None = None, *, user: str | None = None, password: str | None = None) -> None:
        self.url = (url or os.environ.get("AIRFLOW_API_URL") or "http://localhost:8080").rstrip("/")
        self.user = user or os.environ.get("AIRFLOW_API_USER", "admin")
        self.password = password
        self._token: str | None = None

    def _password(self) -> str:
        if self.password is not None:
            return self.password
        if os.environ.get("AIRFLOW_API_PASSWORD"):
            return os.environ["AIRFLOW_API_PASSWORD"]
        home = os.environ.get("AIRFLOW_HOME")
        generated = Path(home) / "simple_auth_manager_passwords.json.generated" if home else None
        if generated and generated.exists():
            try:
                return json.loads(generated.read_text())[self.user]
            except (ValueError, KeyError):
                pass
        raise DtsError(
            "no Airflow API password: set AIRFLOW_API_PASSWORD (and AIRFLOW_API_USER if not admin), or "
            "AIRFLOW_HOME to the home of `airflow standalone`, whose generated password is used"
        )

    def call(self, method: str, path: str, body: Any = None, token: bool = True) -> Any:
        """One REST call (``path`` from the server root, e.g. ``/api/v2/...``); JSON in and out."""
        headers = {"Content-Type": "application/json"}
        if token:
            if self._token is None:
                self._token = self.call(
                    "POST", "/auth/token", {"username": self.user, "password": self._password()}, token=False
                )["access_token"]
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(
            self.url + path, method=method, headers=headers, data=None if body is None else json.dumps(body).encode()
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise DtsError(
                f"Airflow API {method} {path} answered {e.code}: {e.read().decode(errors='replace')[:500]}"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            raise DtsError(f"cannot reach the Airflow API at {self.url}: {e}. Fix: set AIRFLOW_API_URL") from None
        return json.loads(text) if text else None

    def find_run(self, task_name: str) -> tuple[str, str]:
        """(dag_id, run_id) of the newest run of a ``dts``-tagged DAG whose configure published ``task_name``."""
        dags = self.call("GET", "/api/v2/dags?tags=dts&limit=1000")["dags"]
        candidates = []
        for dag in dags:
            q = urllib.parse.quote
            runs = self.call("GET", f"/api/v2/dags/{q(dag['dag_id'])}/dagRuns?order_by=-run_after&limit=100")
            for run in runs["dag_runs"]:
                try:
                    x = self.call(
                        "GET",
                        f"/api/v2/dags/{q(dag['dag_id'])}/dagRuns/{q(run['dag_run_id'])}/"
                        "taskInstances/configure/xcomEntries/forward?deserialize=true",
                    )
                except DtsError:
                    continue  # configure did not publish (failed, or not run yet)
                value = x.get("value")
                doc = json.loads(value) if isinstance(value, str) else value
                if isinstance(doc, dict) and doc.get("task_name") == task_name:
                    candidates.append((run.get("run_after") or "", dag["dag_id"], run["dag_run_id"]))
        if not candidates:
            raise DtsError(
                f"no run of a dts DAG configured task_name {task_name!r} at {self.url}. Fix: check "
                "--task-name, or trigger the DAG with it"
            )
        _, dag_id, run_id = max(candidates)
        return dag_id, run_id

    def set_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        q = urllib.parse.quote
        return self.call(
            "PATCH", f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances/{task_id}", {"new_state": state}
        )

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The state of one task instance; None when the run has no such task (or it has no state yet)."""
        q = urllib.parse.quote
        try:
            ti = self.call("GET", f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances/{task_id}")
        except DtsError:
            return None
        return ti.get("state") if isinstance(ti, dict) else None

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> Any:
        return self.call(
            "POST",
            f"/api/v2/dags/{urllib.parse.quote(dag_id)}/clearTaskInstances",
            {
                "dry_run": False,
                "task_ids": task_ids,
                "dag_run_id": run_id,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )


def cmd_stop(args: argparse.Namespace) -> int:
    api = AirflowApi(args.airflow_url)
    dag_id, run_id = api.find_run(args.task_name)
    for role in DIRECTIONS[args.direction]:
        task_id = INCREMENTAL_TASKS[role]
        api.set_state(dag_id, run_id, task_id, STOPPED_TI_STATE)
        print(
            f"{args.task_name}/{role}: marked {dag_id} {run_id} {task_id} {STOPPED_TI_STATE}; the engine stops "
            "and keeps its checkpoint"
        )
    print(f"resume with: python -m airflow_provider_dts.cli resume --task-name {args.task_name}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    api = AirflowApi(args.airflow_url)
    dag_id, run_id = api.find_run(args.task_name)
    task_ids = [INCREMENTAL_TASKS[r] for r in DIRECTIONS[args.direction]]
    if api.task_state(dag_id, run_id, HEALTH_TASK) in FINISHED_TI_STATES:  # its watch ended with the stop
        task_ids.append(HEALTH_TASK)
    api.clear(dag_id, run_id, task_ids)
    print(
        f"{args.task_name}: cleared {', '.join(task_ids)} of {dag_id} {run_id}; the engine resumes from its checkpoint"
    )
    return 0


# --------------------------------------------------------------------------- conflicts (issue 12)

ROLES = {"forward": "forward", "reverse": "reverse", "task_one": "forward", "task_two": "reverse"}


def cmd_conflicts(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    cs = ControlSchema(args.control_schema)
    for conn_id in _conn_ids(args):
        with _settings(conn_id).connect() as conn:
            if not cs.exists(conn):
                continue
            rows += [{"conn_id": conn_id, **r} for r in resolve.recent_conflicts(conn, cs, args.task_name, args.limit)]
    rows.sort(key=lambda r: (r["status"] != C.STATUS_OPEN, -(r["id"] or 0) if r["status"] != C.STATUS_OPEN else 0))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no conflicts logged in {args.control_schema} on {', '.join(_conn_ids(args))}")
        return 0
    for r in rows:
        print(f"{resolve.describe(r)}\n  (logged on {r['conn_id']})")
        if r["status"] == C.STATUS_OPEN and r.get("answer") is None:
            print(
                f"  answer: python -m airflow_provider_dts.cli answer --task-name {r['task_name']} "
                f"--direction {r['direction']} --conflict-id {r['id']} "
                "--choice take_source|keep_destination|skip|stop"
            )
        print()
    return 0


def _hitl_path(dag_id: str, run_id: str, task_id: str) -> str:
    q = urllib.parse.quote
    return f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"


def _wait_until_settled(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> None:
    """An answer given in Airflow resumes the deferred task itself, not through its trigger: wait until the task
    has been parked for ``SETTLE_SECONDS`` (``triggers/settle.py``: Airflow 3.3.2 fails a task resumed before the
    worker that parked it has exited)."""
    q = urllib.parse.quote
    ti = api.call("GET", f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id, safe='')}/taskInstances/{task_id}")
    created = (ti.get("trigger") or {}).get("created_date")
    if ti.get("state") != "deferred" or not created:
        return
    age = (datetime.now(UTC) - datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds()
    if age < SETTLE_SECONDS:
        print(
            f"the task parked {age:.0f}s ago; answering in {SETTLE_SECONDS - age:.0f}s (Airflow 3.3.2 fails a task "
            "resumed before the worker that parked it has exited)"
        )
        time.sleep(SETTLE_SECONDS - age)


def _answer_through_airflow(args: argparse.Namespace, role: str) -> dict[str, Any] | None:
    """PATCH the direction's open request; None when there is none (or Airflow is not reachable)."""
    api = AirflowApi(args.airflow_url)
    try:
        dag_id, run_id = api.find_run(args.task_name)
        path = _hitl_path(dag_id, run_id, INCREMENTAL_TASKS[role])
        detail = api.call("GET", path)
    except DtsError as e:
        print(f"no open request in Airflow ({str(e)[:200]}); recording the answer in the conflict log")
        return None
    if detail.get("response_received"):
        print("the direction's request in Airflow is not open; recording the answer in the conflict log")
        return None
    _wait_until_settled(api, dag_id, run_id, INCREMENTAL_TASKS[role])
    out = api.call(
        "PATCH", path, {"chosen_options": [C.ANSWER_LABELS[args.choice]], "params_input": {"note": args.note or ""}}
    )
    print(
        f"{args.task_name}/{role}: answered {C.ANSWER_LABELS[args.choice]!r} on {dag_id} {run_id} "
        f"{INCREMENTAL_TASKS[role]} as {(out.get('responded_by') or {}).get('name')}; the task records it and "
        "resumes the direction"
    )
    return dict(out)


def cmd_answer(args: argparse.Namespace) -> int:
    role = ROLES[args.direction]
    home = _settings(args.destination_conn_id if role == "forward" else args.source_conn_id)
    d = _stored(args.task_name, role, home, args.control_schema)
    cs = ControlSchema(args.control_schema)
    with home.connect() as conn:
        waiting = [c for c in resolve.open_conflicts(conn, cs, d.task_name, role) if c.get("answer") is None]
    if args.conflict_id is not None:
        waiting = [c for c in waiting if int(c["id"]) == args.conflict_id]
    if not waiting:
        raise DtsError(
            f"{d.key} has no open conflict waiting for an answer"
            + (f" with id {args.conflict_id}" if args.conflict_id is not None else "")
            + f". See: python -m airflow_provider_dts.cli conflicts --task-name {d.task_name}"
        )
    if len(waiting) > 1 and args.conflict_id is None:
        raise DtsError(
            f"{d.key} has {len(waiting)} open conflicts ({', '.join(str(c['id']) for c in waiting)}). "
            "Fix: name one with --conflict-id"
        )
    if not args.no_airflow and _answer_through_airflow(args, role) is not None:
        return 0
    who = f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"
    recorded = resolve.record_answer(
        d,
        _settings(d.source_conn_id),
        _settings(d.destination_conn_id),
        int(waiting[0]["id"]),
        args.choice,
        who,
        args.note,
    )
    print(recorded.describe())
    if not recorded.recorded:
        return 1
    print("the waiting task (or the direction's next start) picks it up")
    return 0


AIRFLOW_URL_HELP = "Airflow's base URL (default $AIRFLOW_API_URL or http://localhost:8080)"


def _pair_arguments(p: argparse.ArgumentParser) -> None:
    """The two servers of a sync (task one's source and destination) and its control schema."""
    p.add_argument("--source-conn-id", default="dts_source", help="task one's source (default dts_source)")
    p.add_argument(
        "--destination-conn-id", default="dts_destination", help="task one's destination (default dts_destination)"
    )
    p.add_argument("--control-schema", default=DEFAULT_CONTROL_SCHEMA)


def _servers_arguments(p: argparse.ArgumentParser) -> None:
    """The connections whose control schema to read, and its name."""
    p.add_argument(
        "--conn-id",
        action="append",
        help="a connection whose control schema to read (repeatable; default dts_source and dts_destination)",
    )
    p.add_argument("--control-schema", default=DEFAULT_CONTROL_SCHEMA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_dts.cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reinitialize", help="reset one direction or both so the initial sync runs again")
    p.add_argument("--task-name", required=True)
    p.add_argument("--direction", choices=sorted(DIRECTIONS), default="both")
    _pair_arguments(p)
    p.add_argument("--yes", action="store_true", help="do it (without: only print what it would overwrite)")
    p.set_defaults(func=cmd_reinitialize)
    p = sub.add_parser("switch-direction", help="make the other side the one whose DDL is applied (running pair)")
    p.add_argument("--task-name", required=True)
    p.add_argument("--to", choices=("forward", "reverse"), help="the new DDL owner (default: the other side)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the old owner (default 60)")
    _pair_arguments(p)
    p.set_defaults(func=cmd_switch_direction)

    p = sub.add_parser("status", help="every direction of every sync in the given connections' control schemas")
    _servers_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("verify", help="compare both sides of a sync row by row; exit 3 when they differ")
    p.add_argument("--task-name", required=True)
    _servers_arguments(p)
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("conflicts", help="open and recent conflicts: table, key, both rows, status, answer, who")
    p.add_argument("--task-name")
    _servers_arguments(p)
    p.add_argument("--limit", type=int, default=resolve.RECENT_LIMIT, help="rows per server (open ones first)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_conflicts)
    p = sub.add_parser("answer", help="answer a direction's open conflict (Airflow's request, else the conflict log)")
    p.add_argument("--task-name", required=True)
    p.add_argument("--direction", choices=sorted(ROLES), required=True)
    p.add_argument("--choice", choices=list(C.ANSWERS), required=True)
    p.add_argument("--note", help="recorded with the answer")
    p.add_argument("--conflict-id", type=int, help="which open conflict (when the direction has several)")
    p.add_argument("--no-airflow", action="store_true", help="record in the conflict log, not through Airflow")
    p.add_argument("--airflow-url", help=AIRFLOW_URL_HELP)
    _pair_arguments(p)
    p.set_defaults(func=cmd_answer)
    for name, func, what in (
        ("stop", cmd_stop, "stop a running sync (its incremental tasks) through Airflow"),
        ("resume", cmd_resume, "resume a stopped sync from its checkpoint through Airflow"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("--task-name", required=True)
        p.add_argument("--direction", choices=sorted(DIRECTIONS), default="both")
        p.add_argument("--airflow-url", help=AIRFLOW_URL_HELP)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DtsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
