"""Re-initialize one direction of a two-way sync (or both): the documented way out of a purged binlog,
``RESET MASTER`` on the source, a statement-based change, or a destination that drifted.

What it overwrites, and nothing else (``plan`` lists it before anything is done):

- the direction's destination tables that its own initial sync fills (tables the opposite direction fills
  are left alone): emptied with ``TRUNCATE TABLE``, so the next full data sync copies them again from the
  source. ``TRUNCATE`` is DDL: task two never applies DDL, so task one's truncations do not travel back. Task
  one does apply DDL, so for task two every table task one selects is left alone (task one's settings are
  read from its home, task two's source; without them task two is not re-initialized);
- the direction's checkpoint (deleted: the next full data sync records a new start position) and its copy
  progress (reset, so the precheck and the schema sync recognise the tables as this task's own).

It refuses while the direction runs (its apply lease is held on the destination). Rows written only at the
destination and not yet synchronized back are lost with the truncation: stop both directions after the
opposite one has caught up. Then run the DAG again with the same ``task_name`` (or the full data sync).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from airflow_provider_dts.engine.config import SyncDirection, format_object_name, skips_initial
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.running import lease_holder
from airflow_provider_dts.engine.schema_sync import list_source_objects
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import qualified

log = logging.getLogger(__name__)


def how_to(direction: SyncDirection) -> str:
    """The command that re-initializes ``direction``, for error messages."""
    which = "task_one" if direction.role == "forward" else "task_two"
    return (
        f"python -m airflow_provider_dts.cli reinitialize --task-name {direction.task_name} --direction {which}"
        " (README: Re-initialize a direction), then run the DAG again"
    )


class ReinitError(DtsError):
    """The direction cannot be re-initialized now (the message says why and what to do)."""


@dataclass
class ReinitPlan:
    direction: str
    destination: str
    truncate: list[str] = field(default_factory=list)  # destination tables emptied and copied again
    kept: list[str] = field(default_factory=list)  # tables the opposite direction fills: untouched
    checkpoint: str | None = None  # the checkpoint that is forgotten

    def describe(self) -> str:
        lines = [
            f"re-initialize {self.direction} (destination {self.destination}):",
            f"  forget its checkpoint ({self.checkpoint or 'none'}) and copy progress;",
        ]
        lines.append("  empty and copy again from the source: " + (", ".join(self.truncate) or "no table"))
        if self.kept:
            lines.append("  left alone (the opposite direction fills them): " + ", ".join(self.kept))
        return "\n".join(lines)


def plan(direction: SyncDirection, source: ConnectionSettings, destination: ConnectionSettings) -> ReinitPlan:
    """What ``reinitialize`` would overwrite; nothing is written."""
    control = ControlSchema(direction.control_schema)
    out = ReinitPlan(direction.key, destination.describe())
    with source.connect() as src, destination.connect() as dst:
        forward = None
        if direction.role == "reverse":
            from airflow_provider_dts.engine.verify import stored_direction

            forward = stored_direction(src, direction.task_name, direction.control_schema, "forward")
            if forward is None:
                raise ReinitError(
                    f"{direction.key}: task one's settings are not in {direction.control_schema}.sync_state on "
                    f"{source.describe()}, so it is unknown which tables task one fills (a TRUNCATE of one of them "
                    "on its source would be applied to its destination too). Fix: run task one's precheck once "
                    "(trigger the DAG), or re-initialize both directions with --direction both"
                )
        if control.exists(dst):
            cp = control.read_checkpoint(dst, direction.task_name, direction.role)
            if cp is not None and cp.position is not None:
                out.checkpoint = f"{cp.binlog_file}:{cp.binlog_pos}"
        existing = _tables(dst)
        for ref in list_source_objects(src, direction).tables:
            name = format_object_name(ref.dst_db, ref.dst_table)
            if skips_initial(direction, ref.src_db, ref.src_table) or (
                forward is not None and forward.selects_table(ref.dst_db, ref.dst_table)
            ):
                out.kept.append(name)
            elif (ref.dst_db, ref.dst_table) in existing:
                out.truncate.append(name)
    return out


def reinitialize(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
) -> ReinitPlan:
    """Do what ``plan`` lists (module doc). Raises ``ReinitError`` while the direction runs."""
    logger = logger or log
    p = plan(direction, source, destination)
    control = ControlSchema(direction.control_schema)
    with destination.connect() as dst, dst.cursor() as cur:
        holder = lease_holder(dst, direction)
        if holder is not None:
            raise ReinitError(
                f"{direction.key} is running (its apply lease is held by connection {holder} on "
                f"{destination.describe()}). Fix: stop it first (mark its incremental task success, or stop the "
                "runner), then re-initialize"
            )
        cur.execute("SET SESSION foreign_key_checks=0")
        for name in p.truncate:
            db, table = _split(name)
            cur.execute(f"TRUNCATE TABLE {qualified(db, table)}")
        if control.exists(dst):
            control.ensure(dst)  # the current table_progress columns (per-table catch-up positions)
            task, role = direction.task_name, direction.role
            cur.execute(f"DELETE FROM {control.table('checkpoint')} WHERE task_name=%s AND direction=%s", (task, role))
            cur.execute(
                f"UPDATE {control.table('table_progress')} SET status='created', rows_done=0, last_key=NULL, "
                "catchup_file=NULL, catchup_pos=NULL, started_at=NULL, finished_at=NULL, "
                "message='re-initialized', updated_at=UTC_TIMESTAMP(6) "
                "WHERE task_name=%s AND direction=%s",
                (task, role),
            )
            control.set_state(
                dst,
                task,
                role,
                State.NOT_STARTED,
                f"re-initialized: checkpoint forgotten, {len(p.truncate)} table(s) emptied; run the initial sync again",
            )
    logger.info("%s", p.describe())
    return p


def _tables(conn) -> set[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE'")
        return {(str(a), str(b)) for a, b in cur.fetchall()}


def _split(name: str) -> tuple[str, str]:
    from airflow_provider_dts.engine.config import split_object_name

    db, table = split_object_name(name)
    assert table is not None
    return db, table
