"""Running the checks and recording the results (``run_checks`` reads only; ``run_precheck`` records them in
the destination's control schema and moves the direction's state; see the package docstring)."""

from __future__ import annotations

import logging
import uuid

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.precheck.checks import CHECKS, _NotChecked
from airflow_provider_dts.engine.precheck.facts import _close, _Context, _gather, _open, _Side
from airflow_provider_dts.engine.precheck.grants import CONTROL_PRIVILEGES, _req
from airflow_provider_dts.engine.precheck.results import FAIL, IGNORED, CheckResult, PrecheckReport
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import quote_ident

# States of a direction that is (or was last seen) running: a precheck records its results but leaves these.
ACTIVE_STATES = (State.INITIALIZING, State.SYNCHRONIZING)

log = logging.getLogger(__name__)


def _apply_ignores(direction: SyncDirection, results: list[CheckResult]) -> list[CheckResult]:
    out = []
    for r in results:
        if r.name in direction.ignore_precheck_items and r.status != IGNORED:
            out.append(
                CheckResult(
                    r.name, IGNORED, f"ignored by ignore_precheck_items (result was {r.status}: {r.reason})", r.fix
                )
            )
        else:
            out.append(r)
    return out


def _run_all(ctx: _Context) -> list[CheckResult]:
    results = []
    for name, fn in CHECKS.items():
        try:
            r = fn(ctx)
        except _NotChecked as e:
            r = CheckResult(name, FAIL, e.reason, e.fix)
        except Exception as e:  # a check must never raise: report it as that item's failure
            msg = str(e)
            for s in (ctx.src.settings, ctx.dst.settings):
                if s.password:
                    msg = msg.replace(s.password, "***")
            r = CheckResult(
                name,
                FAIL,
                f"the check could not be completed: {type(e).__name__}: {msg}.",
                "fix the error above (often a missing privilege) and run the precheck again",
            )
        results.append(r)
    return _apply_ignores(ctx.direction, results)


def run_checks(
    direction: SyncDirection,
    source_settings: ConnectionSettings,
    dest_settings: ConnectionSettings,
    control: ControlSchema | None = None,
) -> list[CheckResult]:
    """Run every check and return the results (``PRECHECK_ITEMS`` order). Reads only; never raises for a
    failed check."""
    ctx = _Context(
        direction,
        control or ControlSchema(direction.control_schema),
        _Side("source", source_settings),
        _Side("destination", dest_settings),
    )
    try:
        _open(ctx.src)
        _open(ctx.dst)
        _gather(ctx)
        return _run_all(ctx)
    finally:
        _close(ctx.src)
        _close(ctx.dst)


# --------------------------------------------------------------------------- precheck with recording


def run_precheck(
    direction: SyncDirection,
    source_settings: ConnectionSettings,
    dest_settings: ConnectionSettings,
    control: ControlSchema | None = None,
    *,
    run_id: str | None = None,
    logger: logging.Logger | None = None,
) -> PrecheckReport:
    """Run the precheck of one direction and record it in the destination's control schema.

    Never raises because a check failed: read ``report.passed`` / ``report.failed`` (or call
    ``report.raise_for_failures()``).
    """
    logger = logger or log
    control = control or ControlSchema(direction.control_schema)
    run_id = run_id or uuid.uuid4().hex
    task, role = direction.task_name, direction.role
    ctx = _Context(direction, control, _Side("source", source_settings), _Side("destination", dest_settings))
    recorded, record_error, previous = False, None, None
    try:
        _open(ctx.src)
        _open(ctx.dst)
        # Nothing is written on either server before the precheck passes: the checks run first; the results
        # are recorded in the destination's control schema when they pass, or when that schema already exists
        # (a sync that ran before keeps its history). A failed first precheck leaves both servers untouched.
        logger.info(
            "precheck %s of %s: %s -> %s", run_id, direction.key, source_settings.describe(), dest_settings.describe()
        )
        _gather(ctx)
        results = _run_all(ctx)
        report = PrecheckReport(
            task, role, run_id, tuple(results), source_settings.describe(), dest_settings.describe()
        )
        can_record = False
        if not ctx.dst.ok:
            record_error = f"the {ctx.dst.label} is unreachable; results not recorded"
        elif report.failed and not _control_exists(ctx.dst.conn, control):
            record_error = (
                "results not recorded: nothing is written on either server before the precheck passes; "
                "the results are in this report and the task log"
            )
        elif ctx.dst.grants is not None and not ctx.dst.grants.missing(_req(CONTROL_PRIVILEGES), control.schema):
            can_record = True
        else:
            record_error = (
                f"the account on the {ctx.dst.label} may not create or write the control schema "
                f"{quote_ident(control.schema)} (see destination_privileges); results not recorded"
            )
        if can_record:
            try:
                control.ensure(ctx.dst.conn)
                previous = control.get_state(ctx.dst.conn, task, role)
                if previous is not None and previous.get("state") in ACTIVE_STATES:
                    # a running direction keeps its live state; the results are still recorded
                    logger.info(
                        "precheck %s: %s is %s; its state is left as it is", run_id, direction.key, previous["state"]
                    )
                else:
                    control.set_state(
                        ctx.dst.conn,
                        task,
                        role,
                        State.PRECHECKING,
                        f"precheck {run_id} done",
                        config_json=direction.to_json(),
                    )
                control.record_precheck(ctx.dst.conn, task, role, run_id, results)
                _finish_state(ctx.dst.conn, control, report, previous)
                recorded = True
            except pymysql.err.MySQLError as e:
                record_error = f"cannot write the control schema on the {ctx.dst.label}: {e}"
        if record_error:
            logger.warning("precheck %s: %s", run_id, record_error)
        return PrecheckReport(
            task,
            role,
            run_id,
            tuple(results),
            source_settings.describe(),
            dest_settings.describe(),
            recorded,
            record_error,
        )
    finally:
        _close(ctx.src)
        _close(ctx.dst)


def _control_exists(conn, control: ControlSchema) -> bool:
    try:
        return control.exists(conn) and control.version(conn) > 0
    except pymysql.err.MySQLError:
        return False


def _finish_state(conn, control: ControlSchema, report: PrecheckReport, previous: dict | None) -> None:
    task, role = report.task_name, report.direction
    if (previous or {}).get("state") in ACTIVE_STATES:
        return
    if report.failed:
        lines = "; ".join(f"{r.name}: {r.reason}" for r in report.failed)
        failed = f"precheck {report.run_id} failed ({len(report.failed)} item(s)): {lines}"
        control.set_state(conn, task, role, State.PRECHECK_FAILED, failed[:60000])
        return
    prev_state = (previous or {}).get("state")
    message: str | None
    if prev_state in (None, State.PRECHECKING, State.PRECHECK_FAILED):
        state, message = State.NOT_STARTED, f"precheck {report.run_id} passed"
    else:
        state, message = prev_state, (previous or {}).get("message")
    # Restore only if nobody changed the state meanwhile (e.g. a running direction that failed).
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {control.table('sync_state')} SET state=%s, message=%s, updated_at=UTC_TIMESTAMP(6) "
            f"WHERE task_name=%s AND direction=%s AND state=%s",
            (state, message, task, role, State.PRECHECKING),
        )
