"""DataVerifyOperator: compare a direction's tables on both servers while sync runs."""

from __future__ import annotations

from typing import Any, Sequence

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_dts.engine.verify import verify_direction
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

    The report (per table: rows, chunks, missing / extra / different keys) is returned to XCom and stored in
    the destination's control schema, table ``verify_result``.
    """

    template_fields: Sequence[str] = ("direction", "repair", "chunk_size", "recheck_delay")

    def __init__(
        self,
        *,
        chunk_size: int | str = 1000,
        recheck_delay: float | str = 5.0,
        rechecks: int = 2,
        repair: str | None = None,
        fail_on_drift: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chunk_size = chunk_size
        self.recheck_delay = recheck_delay
        self.rechecks = rechecks
        self.repair = repair
        self.fail_on_drift = fail_on_drift

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
        options = dict(chunk_size=chunk_size, recheck_delay=recheck_delay, rechecks=self.rechecks,
                       progress=self.log.info)
        report = verify_direction(direction, source, destination, run_id=run_id, repair=self.repair or None,
                                  **options)
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
                    self.log.warning("%s.%s %s key=%s %s", *t.source, d.kind, list(d.key),
                                     ",".join(d.columns) if d.columns else "")
            if self.fail_on_drift:
                context["ti"].xcom_push(key="report", value=result)
                raise AirflowException(f"data drift between the two sides: {report.summary()}")
        return result
