"""SyncStateSensor: wait until a sync direction is ``Synchronizing`` and caught up within a lag bound.

Reads only the control schema on the direction's destination server. Fails at once (no retry) when the
direction is ``Failed``, ``PrecheckFailed`` or ``InitializeFailed``, with the engine's message.
Works in ``poke`` or ``reschedule`` mode, or deferred (``deferrable=True``) to ``SyncStateTrigger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pymysql
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.engine.config import ROLES, SyncDirection
from airflow_provider_dts.engine.errors import ConfigError, ServerError
from airflow_provider_dts.engine.status import DEFAULT_MAX_LAG_SECONDS, STALE_AFTER_SECONDS, judge, read_status
from airflow_provider_dts.hooks.dts import DtsMySqlHook
from airflow_provider_dts.operators.base import parse_direction
from airflow_provider_dts.triggers.sync_state import SyncStateTrigger


class SyncStateSensor(BaseSensorOperator):
    """Waits for a direction to be ``Synchronizing`` with ``lag_seconds <= max_lag_seconds``.

    :param direction: the direction (dict, JSON string, e.g. rendered from XCom, or ``SyncDirection``).
        Alternatively give ``task_name``, ``role`` and ``destination_conn_id``.
    :param max_lag_seconds: the lag bound (default 10).
    :param max_state_age_seconds: a ``Synchronizing`` row older than this is not trusted (its engine is
        not running); None disables the check.
    :param control_schema: the control schema (default: the direction's, else ``dts_meta``).
    :param ignore_failures_before_start: a failure state recorded before this task instance started is a
        leftover of an earlier run (the DAG restarts the direction): keep waiting instead of failing.
    :param deferrable: wait in the triggerer instead of a worker slot.
    Returns (XCom) the direction's status as a dict.
    """

    template_fields: Sequence[str] = (
        "direction",
        "task_name",
        "role",
        "destination_conn_id",
        "control_schema",
        "max_lag_seconds",
    )
    ui_color = "#d7e9f7"

    def __init__(
        self,
        *,
        direction: dict[str, Any] | str | SyncDirection | None = None,
        task_name: str | None = None,
        role: str | None = None,
        destination_conn_id: str | None = None,
        max_lag_seconds: float | str = DEFAULT_MAX_LAG_SECONDS,  # templated: a rendered string is fine
        max_state_age_seconds: float | None = STALE_AFTER_SECONDS,
        control_schema: str | None = None,
        ignore_failures_before_start: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 5)
        super().__init__(**kwargs)
        self.direction = direction.to_dict() if isinstance(direction, SyncDirection) else direction
        self.task_name = task_name
        self.role = role
        self.destination_conn_id = destination_conn_id
        self.max_lag_seconds = max_lag_seconds
        self.max_state_age_seconds = max_state_age_seconds
        self.control_schema = control_schema
        self.deferrable = deferrable
        self.ignore_failures_before_start = ignore_failures_before_start

    # ------------------------------------------------------------------ target

    def target(self) -> tuple[str, str, str, str]:
        """(task_name, role, destination_conn_id, control_schema), validated; ConfigError otherwise."""
        if self.direction not in (None, "", {}):
            d = parse_direction(self.direction)
            return d.task_name, d.role, d.destination_conn_id, self.control_schema or d.control_schema
        task_name, role, conn_id = self.task_name, self.role, self.destination_conn_id
        problems = []
        if not task_name:
            problems.append("task_name: missing; give direction=... or task_name, role and destination_conn_id")
        if role not in ROLES:
            problems.append(f"role: {role!r} is not allowed; use one of {', '.join(ROLES)}")
        if not conn_id:
            problems.append("destination_conn_id: missing; the Airflow connection id of the direction's destination")
        if problems or not (task_name and role and conn_id):  # the second test only narrows the types
            raise ConfigError(problems)
        return task_name, role, conn_id, self.control_schema or "dts_meta"

    def _fail_on_bad_config(self):
        try:
            return self.target()
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None

    # ------------------------------------------------------------------ poke / defer

    def _failures_since(self, context: Any) -> str | None:
        if not self.ignore_failures_before_start:
            return None
        ti = context.get("ti") if hasattr(context, "get") else None
        start = getattr(ti, "start_date", None)
        return start.isoformat() if start is not None else None

    def poke(self, context: Any) -> bool | PokeReturnValue:
        task_name, role, conn_id, control_schema = self._fail_on_bad_config()
        try:
            settings = DtsMySqlHook(mysql_conn_id=conn_id).get_settings()
            status = read_status(settings, control_schema, task_name, role)
        except (ServerError, pymysql.err.Error) as e:
            self.log.warning("cannot read the state of %s/%s from %s: %s", task_name, role, conn_id, e)
            return False
        verdict, reason = judge(
            status, float(self.max_lag_seconds), self.max_state_age_seconds, self._failures_since(context)
        )
        self.log.info("%s -> %s", status.summary(), reason)
        if verdict == "fail":
            raise AirflowFailException(reason)
        if verdict == "done":
            return PokeReturnValue(is_done=True, xcom_value=status.to_dict())
        return False

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if isinstance(first, PokeReturnValue) and first.is_done:
            return first.xcom_value
        task_name, role, conn_id, control_schema = self.target()
        self.defer(
            trigger=SyncStateTrigger(
                task_name=task_name,
                role=role,
                destination_conn_id=conn_id,
                control_schema=control_schema,
                max_lag_seconds=float(self.max_lag_seconds),
                max_state_age_seconds=self.max_state_age_seconds,
                poke_interval=float(self.poke_interval),
                failures_since=self._failures_since(context),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event:
            raise AirflowFailException("the state trigger ended without an event")
        status = event.get("direction_status") or {}
        self.log.info("%s: %s (%s)", self.task_id, event.get("reason"), status)
        if event.get("status") != "success":
            raise AirflowFailException(event.get("reason") or "the direction failed")
        return status
