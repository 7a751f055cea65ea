"""Command line for operating a two-way sync: ``python -m airflow_provider_dts.cli <command>``.

Connections are Airflow connection ids, resolved the way Airflow resolves them (``AIRFLOW_CONN_<ID>``
environment variables, the metadata database, a secrets backend); passwords are never accepted as arguments.

Commands:

``reinitialize --task-name NAME [--direction task_one|task_two|both] [--yes]``
    Prints what re-initialization overwrites (engine/reinit.py) and, with ``--yes``, does it. The directions'
    settings are read from the control schema (what their last precheck stored), so nothing is asked again.
    Afterwards run the DAG again with the same task_name: the initial sync runs again for what was reset.
"""

from __future__ import annotations

import argparse
import sys

from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA, SyncDirection
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.reinit import plan, reinitialize
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.verify import stored_direction

DIRECTIONS = {"task_one": ("forward",), "task_two": ("reverse",), "both": ("forward", "reverse")}


def _settings(conn_id: str) -> ConnectionSettings:
    from airflow_provider_dts.hooks.dts import DtsMySqlHook

    return DtsMySqlHook(conn_id).get_settings()


def _stored(task_name: str, role: str, home: ConnectionSettings, control_schema: str) -> SyncDirection:
    with home.connect() as conn:
        d = stored_direction(conn, task_name, control_schema, role)
    if d is None:
        raise DtsError(f"no settings of {task_name}/{role} in {control_schema}.sync_state on {home.describe()}: "
                       "this sync never passed a precheck there. Fix: check --task-name and the connection ids")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_dts.cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reinitialize", help="reset one direction or both so the initial sync runs again")
    p.add_argument("--task-name", required=True)
    p.add_argument("--direction", choices=sorted(DIRECTIONS), default="both")
    p.add_argument("--source-conn-id", default="dts_source", help="task one's source (default dts_source)")
    p.add_argument("--destination-conn-id", default="dts_destination",
                   help="task one's destination (default dts_destination)")
    p.add_argument("--control-schema", default=DEFAULT_CONTROL_SCHEMA)
    p.add_argument("--yes", action="store_true", help="do it (without: only print what it would overwrite)")
    p.set_defaults(func=cmd_reinitialize)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DtsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
