"""IncrementalSyncOperator: the long-running incremental sync of one direction, deferred to the triggerer.

The task defers at once to ``IncrementalSyncTrigger``, which runs the engine in a worker thread of the
triggerer for as long as the direction runs. The task therefore stays ``deferred`` while the direction is
synchronizing, and costs no worker slot.

Stop and restart:
- mark the task *success* or *failed* in the UI: the trigger is cancelled, the engine stops cleanly and
  records ``Stopped`` with its checkpoint;
- *clear* the task: it defers again and the engine resumes from the checkpoint (no re-initialization).

When the engine returns (failure, or ``max_runtime`` for tests and demos) the task resumes in
``execute_complete``: it logs a summary, returns it (XCom ``return_value``) and fails on ``failed`` with
the engine's message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.status import stats_line
from airflow_provider_dts.operators.base import DtsDirectionOperator
from airflow_provider_dts.triggers.incremental import DEFAULT_PROGRESS_INTERVAL, IncrementalSyncTrigger


def parse_max_runtime(value: Any) -> float | None:
    """None, "", "None", "null" or 0 mean no limit; otherwise a positive number of seconds."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            [f"max_runtime: {value!r} is not a number of seconds; leave it empty to run until stopped"]
        ) from None
    if not math.isfinite(seconds):
        raise ConfigError(
            [
                f"max_runtime: {value!r} is not a finite number of seconds; give seconds > 0, or leave "
                "it empty to run until stopped"
            ]
        )
    if seconds < 0:
        raise ConfigError([f"max_runtime: {value!r} is negative; give seconds > 0, or leave it empty"])
    return seconds or None


class IncrementalSyncOperator(DtsDirectionOperator):
    """Incremental (binlog) sync of one direction; deferrable only.

    :param direction: the direction's settings (dict, JSON string e.g. rendered from XCom, or ``SyncDirection``).
    :param max_runtime: stop cleanly after this many seconds (tests, demos); empty/None runs until stopped.
    :param progress_interval: seconds between status lines in the task log.
    """

    template_fields: Sequence[str] = ("direction", "max_runtime")
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        direction: Any,
        max_runtime: float | str | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(direction=direction, **kwargs)
        self.max_runtime = max_runtime
        self.progress_interval = progress_interval

    def execute(self, context: Any) -> None:
        # parsed and looked up now, so bad input or a missing connection fails here, not later in the triggerer
        direction, _, _ = self.resolve()
        try:
            max_runtime = parse_max_runtime(self.max_runtime)
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        self.log.info(
            "deferring the incremental sync of %s (%s -> %s) to the triggerer; max_runtime=%s. Mark this task "
            "success or failed to stop it (checkpoint kept); clear it to resume from the checkpoint.",
            direction.key,
            direction.source_conn_id,
            direction.destination_conn_id,
            max_runtime,
        )
        self.defer(
            trigger=IncrementalSyncTrigger(
                direction=direction.to_json(), max_runtime=max_runtime, progress_interval=float(self.progress_interval)
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise AirflowFailException("the incremental sync trigger ended without an event")
        summary = {
            "direction": event.get("direction"),
            "outcome": event.get("status"),
            "state": event.get("state"),
            "message": event.get("message"),
            **(event.get("stats") or {}),
        }
        line = f"{summary['direction']}: {summary['outcome']} -> state {summary['state']}: {summary['message']}"
        self.log.info("%s", line)
        self.log.info("%s", stats_line(event.get("stats")))
        if event.get("status") == "failed":
            ti = context.get("ti") if hasattr(context, "get") else None
            if ti is not None:
                try:
                    ti.xcom_push(key="sync_summary", value=summary)
                except Exception:  # pragma: no cover - XCom trouble must not hide the real failure
                    self.log.warning("could not push the summary to XCom", exc_info=True)
            raise AirflowFailException(f"incremental sync failed: {line}")
        return summary
