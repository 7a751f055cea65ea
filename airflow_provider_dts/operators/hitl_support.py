"""Asking a person from inside a running task, on Airflow's own human-in-the-loop (HITL) machinery.

``HumanInTheLoopMixin`` lets any operator open a HITL request on its OWN task instance from any of its
methods (``execute``, or an ``execute_complete`` after a deferral), wait for the answer, and continue in a
method of its choice, as often as it needs: defer to another trigger in between, then ask again.

Nothing is re-implemented: the request is written with the SDK's ``upsert_hitl_detail`` (the supervisor
message ``CreateHITLDetailPayload`` -> Execution API ``POST /execution/hitlDetails/{ti_id}``), the question is
a ``HITLOperator`` (its validation, parameter serialization and event handling), and the wait is what
``HITLOperator.execute`` does on this Airflow: on 3.3+ the task is parked ``awaiting_input``
(``TaskAwaitingInput``; the Core API answer or the scheduler's timeout sweep resumes it), before 3.3 it
defers to ``HITLTrigger``.

Airflow keeps ONE ``hitl_detail`` row per task instance (keyed on the task instance id). Asking again after
an answer only clears the answer: subject, body, options, defaults and params stay those of the FIRST
request of that task instance (Execution API ``upsert_hitl_detail``). Ask with the same options every time and
keep what changes between requests out of the subject and body, or accept that they show the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.providers.standard.version_compat import AIRFLOW_V_3_3_PLUS
from airflow.sdk.execution_time.hitl import upsert_hitl_detail
from airflow.sdk.timezone import utcnow

if TYPE_CHECKING:
    from airflow.sdk.execution_time.hitl import HITLUser

# the method every answer resumes in; it hands the answer to the method named in ``ask_human``
RESUME_METHOD = "_resume_after_human_answer"


@dataclass(frozen=True)
class HumanQuestion:
    """One HITL request: what ``HITLOperator`` takes, with ``options`` single-choice."""

    subject: str
    options: list[str]
    body: str | None = None
    defaults: list[str] | None = None
    params: dict[str, Any] | None = None
    assigned_users: list[HITLUser] | None = None
    response_timeout: timedelta | None = None

    def operator(self, task_id: str) -> HITLOperator:
        """The question as a ``HITLOperator`` (not in a DAG): validates it, serializes params, reads answers."""
        return HITLOperator(
            task_id=task_id,
            subject=self.subject,
            options=list(self.options),
            body=self.body,
            defaults=list(self.defaults) if self.defaults is not None else None,
            multiple=False,
            params=dict(self.params or {}),
            assigned_users=list(self.assigned_users) if self.assigned_users else None,
            response_timeout=self.response_timeout,
        )

    def to_kwargs(self) -> dict[str, Any]:
        """What travels with the parked task (serde-serializable) to validate the answer on resume."""
        return {
            "subject": self.subject,
            "options": list(self.options),
            "body": self.body,
            "defaults": list(self.defaults) if self.defaults is not None else None,
            "params": dict(self.params or {}),
            "assigned_users": [dict(u) for u in self.assigned_users] if self.assigned_users else None,
            "response_timeout": self.response_timeout.total_seconds() if self.response_timeout else None,
        }

    @classmethod
    def from_kwargs(cls, data: dict[str, Any]) -> HumanQuestion:
        timeout = data.get("response_timeout")
        return cls(
            subject=data["subject"],
            options=list(data["options"]),
            body=data.get("body"),
            defaults=list(data["defaults"]) if data.get("defaults") is not None else None,
            params=dict(data.get("params") or {}),
            assigned_users=data.get("assigned_users") or None,
            response_timeout=timedelta(seconds=timeout) if timeout else None,
        )


@dataclass(frozen=True)
class HumanAnswer:
    """The answer to one request. ``responded_by`` is None when the timeout chose the default."""

    option: str
    params_input: dict[str, Any]
    responded_by: HITLUser | None
    responded_at: datetime
    timed_out: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "params_input": self.params_input,
            "responded_by": dict(self.responded_by) if self.responded_by else None,
            "responded_at": self.responded_at.isoformat(),
            "timed_out": self.timed_out,
        }


class HumanInTheLoopMixin:
    """Mix into a ``BaseOperator``: ``ask_human`` opens a HITL request on this task instance and parks the
    task; the answer arrives in ``getattr(self, method_name)(context, answer, **kwargs)``, where
    ``answer`` is a ``HumanAnswer``. A timeout without defaults fails the task (``HITLTimeoutError``)."""

    task_id: str

    def ask_human(
        self,
        context: Any,
        question: HumanQuestion,
        *,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        trigger: bool = False,
        trigger_class: type[HITLTrigger] = HITLTrigger,
        trigger_kwargs: dict[str, Any] | None = None,
    ) -> NoReturn:
        """Open ``question`` on this task instance and park the task until it is answered (or times out).

        ``trigger=True`` waits in ``HITLTrigger`` (deferred, as before Airflow 3.3) even on 3.3+, where an
        answer through the Core API still resumes the deferred task at once and the trigger handles the
        timeout; a subclass of ``HITLTrigger`` (``trigger_class``, built with ``trigger_kwargs`` on top of
        HITLTrigger's own arguments) can then also watch something else (e.g. the control schema).
        """
        hitl = question.operator(f"{self.task_id}.question")  # validates options, defaults, params
        ti_id = context["task_instance"].id
        upsert_hitl_detail(
            ti_id=ti_id,
            options=hitl.options,
            subject=hitl.subject,
            body=hitl.body,
            defaults=hitl.defaults,
            multiple=False,
            params=hitl.serialized_params,
            assigned_users=hitl.assigned_users,
        )
        resume_kwargs = {"question": question.to_kwargs(), "next_method": method_name, "next_kwargs": kwargs or {}}
        if AIRFLOW_V_3_3_PLUS and not trigger and trigger_class is HITLTrigger:
            from airflow.sdk.exceptions import TaskAwaitingInput

            raise TaskAwaitingInput(method_name=RESUME_METHOD, kwargs=resume_kwargs, timeout=question.response_timeout)
        timeout_at = utcnow() + question.response_timeout if question.response_timeout else None
        self.defer(  # type: ignore[attr-defined]  # BaseOperator.defer, on the class this is mixed into
            trigger=trigger_class(
                ti_id=ti_id,
                options=hitl.options,
                defaults=hitl.defaults,
                params=hitl.serialized_params,
                multiple=False,
                timeout_datetime=timeout_at,
                **(trigger_kwargs or {}),
            ),
            method_name=RESUME_METHOD,
            kwargs=resume_kwargs,
        )
        raise AssertionError("defer() returned")  # pragma: no cover - defer always raises

    def _resume_after_human_answer(
        self,
        context: Any,
        event: dict[str, Any],
        question: dict[str, Any],
        next_method: str,
        next_kwargs: dict[str, Any],
    ) -> Any:
        hitl = HumanQuestion.from_kwargs(question).operator(f"{self.task_id}.question")
        payload = hitl.execute_complete(context, event)  # raises on a timeout without defaults, bad answers
        answer = HumanAnswer(
            option=payload["chosen_options"][0],
            params_input=dict(payload["params_input"] or {}),
            responded_by=payload["responded_by_user"],
            responded_at=payload["responded_at"],
            timed_out=bool(event.get("timedout", payload["responded_by_user"] is None)),
        )
        return getattr(self, next_method)(context, answer, **next_kwargs)
