"""``SyncStateTrigger``: waits in the triggerer until a direction is ``Synchronizing`` within a lag bound.

Reading the state and the readiness rule are the engine's (``engine/status.py``: ``read_status``, ``judge``);
this module only polls them from the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pymysql
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dts.engine.config import DEFAULT_CONTROL_SCHEMA
from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.status import DEFAULT_MAX_LAG_SECONDS, STALE_AFTER_SECONDS, judge, read_status
from airflow_provider_dts.triggers.inline import cancel_on_sigterm, running_inline
from airflow_provider_dts.triggers.settle import SETTLE_SECONDS, hold_until_settled


class SyncStateTrigger(BaseTrigger):
    """Polls a direction's state until it is Synchronizing within the lag bound, or has failed.

    Yields one event: ``{"status": "success" | "failed", "reason", "direction_status"}``. Holds no secret:
    the destination connection is looked up by id when the trigger runs. The event is never yielded earlier than
    ``settle_seconds`` after the trigger started (``triggers/settle.py``).
    """

    def __init__(
        self,
        *,
        task_name: str,
        role: str,
        destination_conn_id: str,
        control_schema: str = DEFAULT_CONTROL_SCHEMA,
        max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS,
        max_state_age_seconds: float | None = STALE_AFTER_SECONDS,
        poke_interval: float = 5.0,
        failures_since: str | None = None,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        super().__init__()
        self.task_name = task_name
        self.role = role
        self.destination_conn_id = destination_conn_id
        self.control_schema = control_schema
        self.max_lag_seconds = float(max_lag_seconds)
        self.max_state_age_seconds = None if max_state_age_seconds is None else float(max_state_age_seconds)
        self.poke_interval = float(poke_interval)
        self.failures_since = failures_since
        self.settle_seconds = float(settle_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "task_name": self.task_name,
                "role": self.role,
                "destination_conn_id": self.destination_conn_id,
                "control_schema": self.control_schema,
                "max_lag_seconds": self.max_lag_seconds,
                "max_state_age_seconds": self.max_state_age_seconds,
                "poke_interval": self.poke_interval,
                "failures_since": self.failures_since,
                "settle_seconds": self.settle_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # the event is yielded outside cancel_on_sigterm: the SIGTERM routing ends with the wait
        started = time.monotonic()
        async with cancel_on_sigterm(self.log):
            event = await self._wait(running_inline())
        await hold_until_settled(started, self.settle_seconds)
        yield event

    async def _wait(self, inline: bool) -> TriggerEvent:
        from airflow_provider_dts.hooks.dts import DtsMySqlHook

        last_reason = None
        while True:
            try:
                settings = await DtsMySqlHook.aget_settings(self.destination_conn_id)
                status = await asyncio.to_thread(read_status, settings, self.control_schema, self.task_name, self.role)
            except (ServerError, pymysql.err.Error) as e:
                reason = f"cannot read the state from {self.destination_conn_id}: {e}"
                if reason != last_reason:
                    self.log.warning("%s; retrying in %.0fs", reason, self.poke_interval)
                    last_reason = reason
                await asyncio.sleep(self.poke_interval)
                continue
            verdict, reason = judge(
                status, self.max_lag_seconds, self.max_state_age_seconds, self.failures_since, inline=inline
            )
            if verdict == "done":
                return TriggerEvent({"status": "success", "reason": reason, "direction_status": status.to_dict()})
            if verdict == "fail":
                return TriggerEvent({"status": "failed", "reason": reason, "direction_status": status.to_dict()})
            if reason != last_reason:
                self.log.info("%s/%s: %s", self.task_name, self.role, reason)
                last_reason = reason
            await asyncio.sleep(self.poke_interval)
