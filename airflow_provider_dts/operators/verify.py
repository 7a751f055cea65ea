"""DataVerifyOperator: compare a direction's tables on both servers while sync runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA, SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.verify import stored_direction, verify_direction
from airflow_provider_dts.operators.base import DtsDirectionOperator

REPAIR_CHOICES = (None, "", "to_destination", "to_source")


class DataVerifyOperator(DtsDirectionOperator):
    """Chunked checksum comparison of the selected tables, then row-level differences of drifting chunks.

    :param direction: the direction whose tables are compared (source names, mapping applied).
    :param chunk_size: rows per checksum chunk.
    :param recheck_delay: seconds to wait before re-checking a differing chunk (replication lag).
    :param rechecks: how many times a differing chunk is re-checked before it counts as drift.
    :param repair: ``None`` (report only), ``"to_destination"`` (make the destination equal to the source) or
        ``"to_source"``. Repairs are written with the sync's mark, so they do not echo.
    :param fail_on_drift: fail the task when drift remains (after repair, if any).
    :param task_name: with ``direction`` empty (``None`` or ``""``): compare the tables of this existing sync,
        reading task one's objects, mapping and connections from its control schema (``engine.verify.
        stored_direction``: the settings it runs with, else those of its last precheck), looked for on
        ``destination_conn_id``, then ``source_conn_id``, instead of asking for them again.

    The report (per table: rows, chunks, missing / extra / different keys) is returned to XCom and stored in
    the destination's control schema, table ``verify_result``.
    """

    template_fields: Sequence[str] = (
        "direction",
        "repair",
        "chunk_size",
        "recheck_delay",
        "task_name",
        "control_schema",
        "source_conn_id",
        "destination_conn_id",
    )

    def __init__(
        self,
        *,
        chunk_size: int | str = 1000,
        recheck_delay: float | str = 5.0,
        rechecks: int = 2,
        repair: str | None = None,
        fail_on_drift: bool = True,
        direction: Any = None,
        task_name: str | None = None,
        control_schema: str = DEFAULT_CONTROL_SCHEMA,
        source_conn_id: str = "dts_source",
        destination_conn_id: str = "dts_destination",
        **kwargs: Any,
    ) -> None:
        super().__init__(direction=direction, **kwargs)
        self.task_name = task_name
        self.control_schema = control_schema
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.chunk_size = chunk_size
        self.recheck_delay = recheck_delay
        self.rechecks = rechecks
        self.repair = repair
        self.fail_on_drift = fail_on_drift

    def get_direction(self) -> SyncDirection:
        if self.direction not in (None, "", {}):
            return super().get_direction()
        if not self.task_name:
            raise ConfigError(
                [
                    "direction: give the direction's settings, or task_name to read them from the "
                    "control schema of an existing sync"
                ]
            )
        tried = []
        for conn_id in dict.fromkeys((self.destination_conn_id, self.source_conn_id)):
            settings: ConnectionSettings = self.settings_for(conn_id)
            tried.append(f"{conn_id} ({settings.describe()})")
            with settings.connect() as conn:
                found = stored_direction(conn, self.task_name, self.control_schema)
            if found is not None:
                self.log.info(
                    "comparing the tables of sync %s as stored in %s.sync_state on %s: objects %s, mapping %s",
                    self.task_name,
                    self.control_schema,
                    conn_id,
                    list(found.objects),
                    found.mapping,
                )
                return found
        raise ConfigError(
            [
                f"task_name: no sync named {self.task_name!r} in {self.control_schema}.sync_state on "
                f"{' or '.join(tried)}. Fix: give the task_name of a sync that has run its precheck (see the DTS sync "
                "status page), the connection of its destination, or its objects and mapping"
            ]
        )

    def execute(self, context: Any) -> dict[str, Any]:
        if self.repair not in REPAIR_CHOICES:
            raise AirflowFailException(
                f"repair: {self.repair!r} is not allowed; use none, 'to_destination' or 'to_source'"
            )
        direction, source, destination = self.resolve()
        run_id = str(context.get("run_id") or "manual")
        try:
            chunk_size, recheck_delay = int(self.chunk_size), float(self.recheck_delay)
        except (TypeError, ValueError):
            raise AirflowFailException(
                f"chunk_size {self.chunk_size!r} / recheck_delay {self.recheck_delay!r}: give numbers"
            ) from None
        options: dict[str, Any] = dict(
            chunk_size=chunk_size, recheck_delay=recheck_delay, rechecks=self.rechecks, progress=self.log.info
        )
        report = verify_direction(direction, source, destination, run_id=run_id, repair=self.repair or None, **options)
        self.log.info("verification: %s (%.1f s)", report.summary(), report.seconds)
        result = report.to_dict()
        if not report.equal and self.repair:
            after = verify_direction(direction, source, destination, run_id=f"{run_id}:after-repair", **options)
            self.log.info("after repair: %s", after.summary())
            result["after_repair"] = after.to_dict()
            report = after
        if not report.equal:
            for t in report.tables:
                for d in t.diffs[:20]:
                    self.log.warning(
                        "%s.%s %s key=%s %s", *t.source, d.kind, list(d.key), ",".join(d.columns) if d.columns else ""
                    )
            if self.fail_on_drift:
                context["ti"].xcom_push(key="report", value=result)
                raise AirflowException(f"data drift between the two sides: {report.summary()}")
        return result
