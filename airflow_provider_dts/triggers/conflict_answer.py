"""ConflictAnswerTrigger: waits for the answer to a direction's open conflict (issue 12).

It is Airflow's ``HITLTrigger`` (the answer given in Required actions / the REST API resumes the task; at the
timeout it writes the default answer, "Stop the direction"), and it also polls the direction's conflict log,
so the task resumes when the conflict is settled outside Airflow's request:

- answered elsewhere: the other direction's answer on the same key was mirrored here, or
  ``cli.py answer`` wrote straight to the control schema;
- no longer holds: the destination row of the key now equals the source row (made equal by hand). DTS then
  records "take the source row" itself (``engine.resolve.record_answer``; applying it is a no-op the
  applier logs as ``superseded``).

In both cases the trigger writes the HITL response itself (``update_hitl_detail_response``, as HITLTrigger
does for a timeout: no user), so Required actions is cleared; the real author stays in the conflict log.
It yields no event earlier than ``settle_seconds`` after it started (``triggers/settle.py``: Airflow 3.3.2 fails
a task resumed within about 5 s of being parked). An answer given in Airflow does not pass through here: the
Core API resumes the task itself (``cli.py answer`` waits; see settle.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.sdk.execution_time.hitl import update_hitl_detail_response
from airflow.sdk.timezone import utcnow
from airflow.triggers.base import TriggerEvent
from asgiref.sync import sync_to_async

from airflow_provider_dts.engine import conflicts as C
from airflow_provider_dts.engine import resolve
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.triggers.settle import SETTLE_SECONDS, hold_until_settled

DTS_ANSWERED_BY = "dts (the destination row already equals the source row)"


def settled_elsewhere(
    direction: SyncDirection, source: ConnectionSettings, destination: ConnectionSettings, conflict_id: int
) -> tuple[str, str] | None:
    """(answer, note) when conflict ``conflict_id`` no longer needs this task's request, else None.
    Records "take the source row" when the conflict no longer holds. Blocking (PyMySQL)."""
    control = ControlSchema(direction.control_schema)
    with destination.connect() as conn:
        row = resolve.conflict(conn, control, conflict_id)
        if row is None:
            return C.ANSWER_STOP, f"conflict {conflict_id} is no longer in the conflict log"
        if not resolve.is_answered(row):
            if resolve.conflict_holds(conn, row):
                return None
            resolve.record_answer(direction, source, destination, conflict_id, C.ANSWER_TAKE_SOURCE, DTS_ANSWERED_BY)
            row = resolve.conflict(conn, control, conflict_id) or row
    answer = str(row.get("answer") or C.ANSWER_STOP)
    return answer, f"answered outside this request: {row.get('answered_by') or '?'} ({answer})"


class ConflictAnswerTrigger(HITLTrigger):
    """``HITLTrigger`` that also resumes the task when the conflict was settled in the control schema.

    :param direction: the direction's settings as JSON (``SyncDirection.to_json()``).
    :param conflict_id: the open conflict (conflict_log.id on the direction's destination).
    :param settle_seconds: never resume the task earlier than this after it started (``triggers/settle.py``).
    (The rest: ``HITLTrigger``'s arguments.)
    """

    def __init__(
        self,
        *,
        direction: str,
        conflict_id: int,
        settle_seconds: float = SETTLE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.direction = direction
        self.conflict_id = int(conflict_id)
        self.settle_seconds = float(settle_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        kwargs.update(direction=self.direction, conflict_id=self.conflict_id, settle_seconds=self.settle_seconds)
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        event = await self._wait(started)
        await hold_until_settled(started, self.settle_seconds)
        yield event

    async def _wait(self, started: float) -> TriggerEvent:
        while True:
            if self.timeout_datetime and self.timeout_datetime < utcnow():
                return await self._handle_timeout()
            event = await self._handle_response()
            if event:
                return event
            # settled elsewhere is looked for only once settled: the answer is written into Airflow's request
            # when found, so it must be the event this trigger yields
            if time.monotonic() - started >= self.settle_seconds:
                event = await self._settled_elsewhere()
                if event:
                    return event
            await asyncio.sleep(self.poke_interval)

    async def _settled_elsewhere(self) -> TriggerEvent | None:
        from airflow_provider_dts.hooks.dts import DtsMySqlHook

        direction = SyncDirection.from_json(self.direction)
        try:
            source = await DtsMySqlHook.aget_settings(direction.source_conn_id)
            destination = await DtsMySqlHook.aget_settings(direction.destination_conn_id)
            found = await asyncio.to_thread(settled_elsewhere, direction, source, destination, self.conflict_id)
        except Exception as e:  # a server down for a moment: keep waiting for the person
            self.log.info("%s: conflict %s not readable right now: %s", direction.key, self.conflict_id, e)
            return None
        if found is None:
            return None
        answer, note = found
        label = C.ANSWER_LABELS[answer]
        self.log.info("%s: conflict %s %s; resuming the task with %r", direction.key, self.conflict_id, note, label)
        try:
            resp = await sync_to_async(update_hitl_detail_response)(
                ti_id=self.ti_id, chosen_options=[label], params_input={"note": note}
            )
        except Exception as e:  # answered in Airflow meanwhile (409): that answer resumes the task
            self.log.info("could not write the response (%s); reading the request's answer", e)
            return await self._handle_response()
        # the payload HITLTrigger yields (HITLTriggerEventSuccessPayload; its params_input annotation does not
        # match what HITLTrigger itself puts there: the raw {"note": ...})
        return TriggerEvent(
            {
                "chosen_options": [label],
                "params_input": {"note": note},
                "responded_by_user": None,
                "responded_at": resp.responded_at or utcnow(),
                "timedout": False,
            }
        )
