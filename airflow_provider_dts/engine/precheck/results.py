"""Precheck results: the item statuses, one item's ``CheckResult`` and a run's ``PrecheckReport``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_dts.engine.errors import PrecheckFailed

PASS = "PASS"
WARN = "WARN"
FAIL = "FAIL"
IGNORED = "IGNORED"
STATUSES = (PASS, WARN, FAIL, IGNORED)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    reason: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown precheck status {self.status!r}")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "fix": self.fix}

    def line(self) -> str:
        text = f"{self.status} {self.name}: {self.reason}"
        if self.fix and self.status in (FAIL, WARN):
            text += f" Fix: {self.fix}"
        return text


@dataclass(frozen=True)
class PrecheckReport:
    """All items of one precheck run, in ``PRECHECK_ITEMS`` order.

    ``passed`` is True when no item FAILed (ignored items never fail). ``failed`` / ``warnings`` /
    ``ignored`` list the results with that status.
    """

    task_name: str
    direction: str
    run_id: str
    results: tuple[CheckResult, ...]
    source: str = ""
    destination: str = ""
    recorded: bool = False
    record_error: str | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == WARN]

    @property
    def ignored(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == IGNORED]

    @property
    def passed(self) -> bool:
        return not self.failed

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def summary(self) -> str:
        counts = {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"precheck of {self.task_name}/{self.direction} ({self.source} -> {self.destination}) {verdict}: "
            f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed, {counts[IGNORED]} ignored"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_name": self.task_name,
            "direction": self.direction,
            "run_id": self.run_id,
            "source": self.source,
            "destination": self.destination,
            "passed": self.passed,
            "failed": [r.name for r in self.failed],
            "warnings": [r.name for r in self.warnings],
            "ignored": [r.name for r in self.ignored],
            "recorded": self.recorded,
            "record_error": self.record_error,
            "results": [r.to_dict() for r in self.results],
        }

    def raise_for_failures(self) -> None:
        if self.failed:
            raise PrecheckFailed(self.failed)
