"""PrecheckOperator: step 11 of the DTS procedure for one sync direction.

Runs every precheck item (``engine.precheck``), records the results in the destination's control schema,
logs each item, returns the report (XCom ``return_value``; no secrets in it) and fails the task listing
each failed item with its reason and fix. Items named in the direction's ``ignore_precheck_items`` are
reported as IGNORED and never fail the task; warnings go to the log and the XCom report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_dts.engine.errors import DtsError, PrecheckFailed
from airflow_provider_dts.engine.precheck import FAIL, IGNORED, WARN, run_precheck
from airflow_provider_dts.engine.startfloor import record_reverse_floor
from airflow_provider_dts.operators.base import DtsDirectionOperator


class PrecheckOperator(DtsDirectionOperator):
    """Precheck one direction of a two-way sync task.

    :param direction: the direction's settings (dict, JSON string or ``SyncDirection``); templated.
    :param run_id: optional identifier recorded with the results (default: a fresh one per run).
    """

    template_fields: Sequence[str] = ("direction",)
    ui_color = "#fdf1d6"

    def __init__(self, *, direction: Any, run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(direction=direction, **kwargs)
        self.precheck_run_id = run_id

    def execute(self, context: Any) -> dict[str, Any]:
        direction, source, destination = self.resolve()
        run_id = self.precheck_run_id
        if run_id is None:
            ti = context.get("ti") if hasattr(context, "get") else None
            run_id = f"{getattr(ti, 'run_id', 'manual')}:{getattr(ti, 'try_number', 1)}"[:64]
        report = run_precheck(direction, source, destination, run_id=run_id, logger=self.engine_log)
        for r in report.results:
            if r.status == FAIL:
                self.log.error("%s", r.line())
            elif r.status in (WARN, IGNORED):
                self.log.warning("%s", r.line())
            else:
                self.log.info("%s", r.line())
        self.log.info("%s", report.summary())  # run_precheck already logged a record_error, if any
        result = report.to_dict()
        if report.failed:
            # The report is still useful to whoever looks at XCom after a failure.
            ti = context.get("ti") if hasattr(context, "get") else None
            if ti is not None:
                try:
                    ti.xcom_push(key="precheck_report", value=result)
                except Exception:  # pragma: no cover - XCom backend trouble must not hide the real failure
                    self.log.warning("could not push the precheck report to XCom", exc_info=True)
            raise AirflowFailException(f"{direction.key}: {PrecheckFailed(report.failed)}")
        # Task one passed: record task two's start floor now, before the schema sync writes on the destination
        # (engine.startfloor; idempotent). Not before the precheck: a failed precheck writes only control-schema
        # rows there, and a floor left by a failed run would later replay writes made before the real start.
        try:
            record_reverse_floor(direction, source, destination, logger=self.engine_log)
        except DtsError as e:  # the message names the direction, the cause and the fix
            raise AirflowException(str(e)) from None
        return result
