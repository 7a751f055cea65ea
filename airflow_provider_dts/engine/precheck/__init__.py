"""Precheck of one sync direction: every item of ``config.PRECHECK_ITEMS``, as DTS runs before a task starts.

Each check returns a ``CheckResult(name, status, reason, fix)``. The reason names the server (``describe()``,
never the password), the object or variable and its value; the fix says exactly what to run or set.

``run_checks`` only reads. ``run_precheck`` runs the checks and records them on the destination (the
direction's home): the control schema is created there if the destination is reachable and its user may,
``sync_state`` shows ``Prechecking`` while the checks run, ``PrecheckFailed`` (with the failed items) when
one fails, and on success the state the direction had before (``NotStarted`` if none, or if it was
``PrecheckFailed``). A direction that is ``Initializing`` or ``Synchronizing`` keeps that state: a re-run of
the DAG must not flip a live direction (its results are recorded all the same). Nothing but the
control schema is ever written, on either server, and a failed check never raises.

Checks of the "source" apply to the direction's source server: for the reverse direction (task two)
that is the other server, so its binlog settings are checked there automatically.

Split by concern:

- ``results``: statuses (``PASS``/``WARN``/``FAIL``/``IGNORED``), ``CheckResult``, ``PrecheckReport``;
- ``grants``: ``SHOW GRANTS`` parsing (``Grants``), the privileges each side needs, ``required_grants`` /
  ``two_way_grants``;
- ``facts``: connecting to both servers and gathering what the checks read (``_Context``, ``_Side``);
- ``checks``: one ``check_<item>`` per item, ``CHECKS`` and ``ITEM_DOCS`` (same order as ``PRECHECK_ITEMS``);
- ``runner``: ``run_checks`` and ``run_precheck`` (recording and the direction's state).
"""

from __future__ import annotations

from airflow_provider_dts.engine.precheck.checks import CHECKS, ITEM_DOCS, check_time_zone
from airflow_provider_dts.engine.precheck.grants import (
    CONTROL_PRIVILEGES,
    Grant,
    Grants,
    account_sql,
    db_pattern_matches,
    destination_privilege_gaps,
    destination_requirements,
    parse_grant,
    parse_revoke,
    read_grants,
    required_grants,
    routine_visibility_gap,
    two_way_grants,
)
from airflow_provider_dts.engine.precheck.results import (
    FAIL,
    IGNORED,
    PASS,
    STATUSES,
    WARN,
    CheckResult,
    PrecheckReport,
)
from airflow_provider_dts.engine.precheck.runner import ACTIVE_STATES, run_checks, run_precheck

__all__ = [
    "ACTIVE_STATES",
    "CHECKS",
    "CONTROL_PRIVILEGES",
    "FAIL",
    "IGNORED",
    "ITEM_DOCS",
    "PASS",
    "STATUSES",
    "WARN",
    "CheckResult",
    "Grant",
    "Grants",
    "PrecheckReport",
    "account_sql",
    "check_time_zone",
    "db_pattern_matches",
    "destination_privilege_gaps",
    "destination_requirements",
    "parse_grant",
    "parse_revoke",
    "read_grants",
    "required_grants",
    "routine_visibility_gap",
    "run_checks",
    "run_precheck",
    "two_way_grants",
]
