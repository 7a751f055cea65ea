"""Step 10 of the DTS procedure for one direction: initial schema sync and initial full data sync.

``InitialSchemaSyncOperator`` creates the selected objects at the destination (``engine.schema_sync``).
``FullDataSyncOperator`` copies every selected table's rows from one consistent snapshot and records the
binlog position incremental sync starts from (``engine.snapshot``); a retried task resumes after the last
copied chunk.

Both return a summary (XCom ``return_value``): what was created / tables, rows, seconds, snapshot
position. Both succeed without doing anything (``{"skipped": reason}``) when the direction turns the step
off or is already initialized with the same objects, so the rest of the DAG runs on; they never raise a skip,
which would skip the incremental sync downstream.

Re-run with other settings on an initialized direction (same ``task_name``), they modify the running sync
(``engine.modify``): objects added are created and their tables copied from a new snapshot while the
direction's checkpoint stays; objects removed are no longer synchronized (logged); a change that cannot be
applied in place fails the task before anything is written, saying what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import ConfigError, DestinationMismatch, DtsError, FullSyncError, ServerError
from airflow_provider_dts.engine.modify import ModifyRefused, identities, plan_modification, record_initialized
from airflow_provider_dts.engine.modify import finish as modification_done
from airflow_provider_dts.engine.schema_sync import SchemaSyncError, sync_schema
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.snapshot import METHODS, full_data_sync
from airflow_provider_dts.operators.base import DtsDirectionOperator


def _already_initialized(direction: SyncDirection, destination: ConnectionSettings) -> str | None:
    """The incremental start position when the direction is initialized, else None."""
    control = ControlSchema(direction.control_schema)
    with destination.connect() as conn:
        if not control.exists(conn) or control.version(conn) == 0:
            return None
        cp = control.read_checkpoint(conn, direction.task_name, direction.role)
    if cp is None or cp.binlog_file is None:
        return None
    return f"{cp.binlog_file}:{cp.binlog_pos}"


def _record_without_copy(direction: SyncDirection, source: ConnectionSettings, destination: ConnectionSettings) -> str:
    """Full data sync off: record the settings the direction runs with (checking a re-run's changes first)."""
    control = ControlSchema(direction.control_schema)
    with source.connect() as src, destination.connect() as dst:
        mod = plan_modification(direction, src, dst)
        control.ensure(dst)
        with dst.cursor() as cur:
            cur.execute("START TRANSACTION")
            if mod is None:
                record_initialized(cur, control, direction, identities(src, dst))
            else:
                modification_done(mod, cur)
            cur.execute("COMMIT")
    if mod is None:
        return "incremental sync will start at the source's current binlog position"
    if mod.added_tables:
        return (
            f"{mod.describe()}; the added tables are NOT copied (initial_full_data_sync is off): only their "
            "changes from the direction's checkpoint on are applied"
        )
    return mod.describe()


class InitialSchemaSyncOperator(DtsDirectionOperator):
    """Create the direction's selected databases, tables, views, functions and procedures at the destination.

    :param direction: the direction's settings (dict, JSON string or ``SyncDirection``); templated.
    """

    template_fields: Sequence[str] = ("direction",)
    ui_color = "#e3eefc"

    def execute(self, context: Any) -> dict[str, Any]:
        direction, source, destination = self.resolve()
        if not direction.initial_schema_sync:
            self.log.info("%s: initial schema sync is off for this direction; nothing to do", direction.key)
            return {"skipped": "initial_schema_sync is off"}
        try:
            started = _already_initialized(direction, destination)
        except DtsError as e:
            raise AirflowException(f"{direction.key}: {e}") from None
        try:
            result = sync_schema(direction, source, destination, logger=self.engine_log)
        except ModifyRefused as e:
            raise AirflowFailException(str(e)) from None
        except (SchemaSyncError, ConfigError) as e:
            raise AirflowFailException(f"{direction.key}: initial schema sync failed: {e}") from None
        except ServerError as e:
            raise AirflowException(f"{direction.key}: {e}") from None
        summary = result.summary()
        if started and not (
            result.tables_created or result.views_created or result.routines_created or result.databases_created
        ):
            self.log.info(
                "%s: already initialized (incremental start %s); %s; nothing to create",
                direction.key,
                started,
                "; ".join(result.modification) or "no change",
            )
            summary["skipped"] = f"already initialized (incremental start {started})"
            return summary
        self.log.info(
            "%s: schema sync done: %d database(s), %d table(s), %d view(s), %d routine(s) created; %d table(s) "
            "kept; %d skipped",
            direction.key,
            len(result.databases_created),
            len(result.tables_created),
            len(result.views_created),
            len(result.routines_created),
            len(result.tables_kept),
            len(result.skipped),
        )
        return summary


class FullDataSyncOperator(DtsDirectionOperator):
    """Copy the direction's selected tables from one consistent snapshot and record the incremental start.

    :param direction: the direction's settings (dict, JSON string or ``SyncDirection``); templated.
    :param progress_interval: seconds between progress lines in the task log.
    :param max_rows_per_second: optional limit of the copy's rate, to spare both servers.
    :param method: ``auto`` (LOAD DATA LOCAL INFILE when the destination allows it, else INSERT),
        ``load_data`` or ``insert``.
    """

    template_fields: Sequence[str] = ("direction", "max_rows_per_second", "method")
    ui_color = "#d9ecf7"

    def __init__(
        self,
        *,
        direction: Any,
        progress_interval: float = 10.0,
        max_rows_per_second: Any = None,
        method: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(direction=direction, **kwargs)
        self.progress_interval = progress_interval
        self.max_rows_per_second = max_rows_per_second
        self.method = method
        self._stop: threading.Event | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        direction, source, destination = self.resolve()
        if self.method not in METHODS:
            raise AirflowFailException(f"method {self.method!r} is not allowed; use one of {', '.join(METHODS)}")
        rate = None
        if self.max_rows_per_second not in (None, "", "None"):
            try:
                rate = float(self.max_rows_per_second)
                if rate <= 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise AirflowFailException(
                    f"max_rows_per_second {self.max_rows_per_second!r} is not a positive number"
                ) from None
        if not direction.initial_full_data_sync:
            try:
                note = _record_without_copy(direction, source, destination)
            except ModifyRefused as e:
                raise AirflowFailException(str(e)) from None
            except DtsError as e:
                raise AirflowException(f"{direction.key}: {e}") from None
            self.log.info("%s: initial full data sync is off; %s", direction.key, note)
            return {"skipped": "initial_full_data_sync is off"}
        self._stop = threading.Event()
        try:
            result = full_data_sync(
                direction,
                source,
                destination,
                logger=self.engine_log,
                progress_interval=self.progress_interval,
                max_rows_per_second=rate,
                stop=self._stop,
                method=self.method,
            )
        except ModifyRefused as e:
            raise AirflowFailException(str(e)) from None
        except ConfigError as e:
            raise AirflowFailException(f"{direction.key}: {e}") from None
        except DestinationMismatch as e:  # a table missing or different, a row already there: needs the user
            raise AirflowFailException(f"{direction.key}: initial full data sync failed: {e}") from None
        except (FullSyncError, SchemaSyncError) as e:  # retrying resumes after the last copied chunk
            raise AirflowException(f"{direction.key}: initial full data sync failed: {e}") from None
        except DtsError as e:
            raise AirflowException(f"{direction.key}: initial full data sync failed: {e}") from None
        summary = result.summary()
        if result.already_initialized and not result.tables:
            summary["skipped"] = f"already initialized (incremental start {result.snapshot_file}:{result.snapshot_pos})"
            return summary
        if result.already_initialized:
            self.log.info(
                "%s: %s; %d added table(s), %d rows copied in %.1f s; the incremental sync resumes from its checkpoint",
                direction.key,
                result.modification,
                result.tables,
                result.rows,
                result.seconds,
            )
            return summary
        self.log.info(
            "%s: full data sync done: %d tables, %d rows in %.1f s (%s); incremental sync starts at %s",
            direction.key,
            result.tables,
            result.rows,
            result.seconds,
            result.method,
            summary["snapshot_position"],
        )
        return summary

    def on_kill(self) -> None:
        if self._stop is not None:
            self._stop.set()
