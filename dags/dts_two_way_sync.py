"""dts_two_way_sync: two-way real-time sync of two MySQL/MariaDB servers (DTS procedure, steps 5 to 15).

Trigger it from the UI form, `airflow dags trigger dts_two_way_sync --conf '{"objects": ["shop"]}'`, or the
REST API. Every setting is a param below; task one (source -> destination) and task two (destination ->
source) are configured separately. Task two never synchronizes DDL and does not initially sync the tables
task one already fills.

Flow: `configure` validates the params and publishes both directions' settings (XCom keys `forward` and
`reverse`); task one: precheck -> initial schema sync -> initial full data sync -> incremental sync
(long-running: deferred to the triggerer, or a long-running worker task with `run_incremental_in` = worker);
`wait_task_one_synchronizing` waits until task one is Synchronizing within `max_lag_seconds`; task two:
precheck -> schema / full data sync (they skip the tables task one covers) -> incremental sync (long-running).
Beside them, `health` watches both directions: metrics through Airflow's stats, alerts through ALERT_NOTIFIERS;
it ends when every other task of the run has ended.

Stop a direction: mark its `*_incremental` task skipped (the engine stops and keeps its checkpoint; the grid
shows it skipped, not green). Restart it: clear that task (it resumes from the checkpoint, nothing is
re-initialized), and `health` if it ended. Status: the incremental tasks log a status line every 30 s and link
to the status page ("DTS status"); the control schema holds it all (README).
"""

from __future__ import annotations

import copy
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.engine.config import (
    DEFAULT_CONTROL_SCHEMA,
    DEFAULT_RETRY_MINUTES,
    DEFAULT_SELF_CHECK_ROWS_PER_SECOND,
    DML_TYPES,
    MAX_RETRY_MINUTES,
    MAX_SELF_CHECK_ROWS_PER_SECOND,
    PRECHECK_ITEMS,
    TABLE_POLICIES,
    ConflictPolicy,
    ExistingTableMode,
    TwoWayTask,
)
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.operators.health import SyncHealthOperator
from airflow_provider_dts.operators.incremental import IncrementalSyncOperator, parse_max_runtime
from airflow_provider_dts.operators.initial_sync import FullDataSyncOperator, InitialSchemaSyncOperator
from airflow_provider_dts.operators.precheck import PrecheckOperator
from airflow_provider_dts.operators.worker_run import RUN_IN_CHOICES, RUN_IN_TRIGGERER
from airflow_provider_dts.sensors.sync_state import SyncStateSensor

DAG_ID = "dts_two_way_sync"
GENERAL = "General"
TASK_ONE = "Task one: source -> destination"
TASK_TWO = "Task two: destination -> source"
POLICIES = [p.value for p in ConflictPolicy]
MODES = [m.value for m in ExistingTableMode]

# Task one's settings: param name = SyncDirection field name.
FORWARD_KEYS = (
    "source_conn_id",
    "destination_conn_id",
    "objects",
    "mapping",
    "dml_types",
    "exclude_ddl",
    "conflict_policy",
    "table_conflict_policies",
    "existing_table_mode",
    "initial_schema_sync",
    "initial_full_data_sync",
    "retry_minutes",
    "ignore_precheck_items",
    "sync_triggers",
    "guard_triggers",
    "self_check",
    "self_check_rows_per_second",
    "self_check_auto_repair",
)
# Task two's settings: param "reverse_<field>"; None (the default) means "derive it from task one".
REVERSE_KEYS = (
    "objects",
    "mapping",
    "dml_types",
    "conflict_policy",
    "existing_table_mode",
    "initial_schema_sync",
    "initial_full_data_sync",
    "retry_minutes",
    "ignore_precheck_items",
)
RUN_KEYS = ("task_name", "control_schema", "max_runtime", "max_lag_seconds")


def _dml(default, section, title, description):
    return Param(
        default,
        type=["null", "array"] if default is None else "array",
        items={"type": "string", "enum": list(DML_TYPES)},
        uniqueItems=True,
        title=title,
        description=description,
        section=section,
    )


def _ignore(default, section, title):
    return Param(
        default,
        type=["null", "array"] if default is None else "array",
        items={"type": "string", "enum": list(PRECHECK_ITEMS)},
        uniqueItems=True,
        title=title,
        description="Precheck items whose failure must not stop the task (reported as IGNORED). "
        "Ignoring a check can cost data consistency: see the README's precheck table.",
        section=section,
    )


PARAMS: dict[str, Param] = {
    # ---- general
    "task_name": Param(
        "dts_two_way_sync",
        type="string",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        title="Sync task name",
        section=GENERAL,
        description="Names this two-way sync in the control schema. Keep it to resume: "
        "a new name starts a new sync from scratch.",
    ),
    "control_schema": Param(
        DEFAULT_CONTROL_SCHEMA,
        type="string",
        minLength=1,
        maxLength=64,
        title="Control schema",
        section=GENERAL,
        description="Schema the provider owns on both servers (state, checkpoints, "
        "precheck results, conflict log). Never synchronized.",
    ),
    "max_runtime": Param(
        None,
        type=["null", "number"],
        minimum=0,
        title="Max runtime (seconds)",
        section=GENERAL,
        description="Stop both incremental syncs cleanly after this many seconds (tests, "
        "demos). Empty: run until stopped.",
    ),
    "max_lag_seconds": Param(
        10,
        type="number",
        minimum=0,
        title="Lag bound before task two (seconds)",
        section=GENERAL,
        description="Task two starts once task one is Synchronizing with at most this lag.",
    ),
    "alert_lag_seconds": Param(
        60,
        type="number",
        minimum=0,
        title="Alert: lag above (seconds)",
        section=GENERAL,
        description="The health task alerts (ALERT_NOTIFIERS) when a direction's lag stays above this.",
    ),
    "alert_lag_for_seconds": Param(
        120,
        type="number",
        minimum=0,
        title="Alert: for at least (seconds)",
        section=GENERAL,
        description="How long the lag must stay above the bound before the health task alerts.",
    ),
    "conflict_answer_timeout_minutes": Param(
        None,
        type=["null", "number"],
        minimum=0,
        title="Conflict answer timeout (minutes)",
        section=GENERAL,
        description="Under TaskFailed a conflict asks a person (Required actions). Without an answer after "
        "this many minutes the direction stops (the default answer). Empty: wait forever.",
    ),
    "run_incremental_in": Param(
        RUN_IN_TRIGGERER,
        type="string",
        enum=list(RUN_IN_CHOICES),
        title="Run the incremental syncs in",
        section=GENERAL,
        description="triggerer: each direction runs in a thread of Airflow's triggerer (the task stays deferred, "
        "no worker slot; fine for a few directions per triggerer). worker: each incremental task runs as a "
        "long-running worker task (a Celery slot or a Kubernetes pod of its own, with its own CPU and memory; set "
        "INCREMENTAL_TASK_KWARGS in this file for its queue, pod and retries). Same lease, checkpoint, stop and "
        "resume either way (README: Where the incremental sync runs).",
    ),
    # ---- task one
    "source_conn_id": Param(
        "dts_source",
        type="string",
        minLength=1,
        title="Source connection",
        section=TASK_ONE,
        description="Airflow connection (type mysql) of the source server of task one.",
    ),
    "destination_conn_id": Param(
        "dts_destination",
        type="string",
        minLength=1,
        title="Destination connection",
        section=TASK_ONE,
        description="Airflow connection (type mysql) of the destination server of task one (task two's source).",
    ),
    "objects": Param(
        ["shop"],
        type="array",
        minItems=1,
        items={"type": "string", "minLength": 1},
        title="Objects to synchronize",
        section=TASK_ONE,
        description="Whole databases ('shop') or single tables ('shop.orders'). Backtick-quote "
        "names that contain dots. Selecting whole databases also syncs their schema changes.",
    ),
    "mapping": Param(
        {},
        type="object",
        title="Object name mapping",
        section=TASK_ONE,
        description='Rename objects at the destination: {"shop": "shop_copy"} (database), '
        '{"shop.orders": "orders_v2"} (table), {"shop.orders": "archive.orders"}.',
    ),
    "dml_types": _dml(
        list(DML_TYPES), TASK_ONE, "DML to synchronize", "INSERT, UPDATE and DELETE (REPLACE arrives as these)."
    ),
    "exclude_ddl": Param(
        False,
        type="boolean",
        title="Exclude DDL",
        section=TASK_ONE,
        description="If off, task one applies the supported DDL (ALTER/CREATE/DROP TABLE, "
        "indexes, views, routines, TRUNCATE) at the destination. Task two never does.",
    ),
    "conflict_policy": Param(
        ConflictPolicy.TASK_FAILED.value,
        type="string",
        enum=POLICIES,
        title="Conflict resolution policy",
        section=TASK_ONE,
        description="TaskFailed: stop with an error before the conflicting transaction. "
        "Ignore: keep the destination row. Overwrite: replace the destination row.",
    ),
    "table_conflict_policies": Param(
        {},
        type="object",
        title="Per-table conflict policies (both tasks)",
        section=TASK_ONE,
        description='Per table (task one\'s source names), overriding the policy above: {"shop.orders": '
        '{"policy": "UseMax", "column": "updated_at"}, "shop.log": {"policy": "Ignore"}}. Policies: '
        f"{', '.join(TABLE_POLICIES)}. UseMax / UseMin: the row with the larger / smaller value of the column wins "
        "on both servers (a number, decimal, temporal or string column; UseMax falls back to Overwrite, UseMin to "
        "Ignore when it cannot compare). Task two uses the same entries under its own table names.",
    ),
    "existing_table_mode": Param(
        ExistingTableMode.PRECHECK_AND_INTERCEPT.value,
        type="string",
        enum=MODES,
        title="Existing destination tables",
        section=TASK_ONE,
        description="PrecheckAndIntercept: fail the precheck when a destination table "
        "has the same name. Ignore: keep existing tables and rows (consistency is "
        "not guaranteed).",
    ),
    "initial_schema_sync": Param(
        True,
        type="boolean",
        title="Initial schema synchronization",
        section=TASK_ONE,
        description="Create databases, tables, views and routines at the destination.",
    ),
    "initial_full_data_sync": Param(
        True,
        type="boolean",
        title="Initial full data synchronization",
        section=TASK_ONE,
        description="Copy all existing rows first. Off: start from the source's "
        "current binlog position (only new changes are synchronized).",
    ),
    "retry_minutes": Param(
        DEFAULT_RETRY_MINUTES,
        type="integer",
        minimum=1,
        maximum=MAX_RETRY_MINUTES,
        title="Connection retry window (minutes)",
        section=TASK_ONE,
        description="How long a lost connection is retried before the direction fails.",
    ),
    "ignore_precheck_items": _ignore([], TASK_ONE, "Precheck items to ignore"),
    "sync_triggers": Param(
        False,
        type="boolean",
        title="Create triggers at the destination",
        section=TASK_ONE,
        description="Off by default (the spec's trigger limit: triggers at both ends "
        "double-apply). Turn on only if you know the triggers are idempotent.",
    ),
    "guard_triggers": Param(
        False,
        type="boolean",
        title="Guard triggers on both servers",
        section=TASK_ONE,
        description="Rewrite every trigger of the selected tables, on both servers, so "
        "that it does nothing in the sync's own sessions (IF @dts_applying IS NULL THEN "
        "... END IF): triggers then fire once, where the user wrote. Applies to both tasks. "
        "Needs TRIGGER on both servers. README: Triggers on both servers.",
    ),
    # ---- self-check (both directions; engine/selfcheck.py)
    "self_check": Param(
        True,
        type="boolean",
        title="Self-check",
        section=TASK_ONE,
        description="Each running direction re-checks recently changed rows and rolls slowly over "
        "whole tables; rows that stay different are reported (sync_state, status page, task log).",
    ),
    "self_check_rows_per_second": Param(
        DEFAULT_SELF_CHECK_ROWS_PER_SECOND,
        type="integer",
        minimum=1,
        maximum=MAX_SELF_CHECK_ROWS_PER_SECOND,
        title="Self-check load budget (rows read per second)",
        section=TASK_ONE,
        description="How fast the rolling whole-table comparison may read, per direction (both servers counted).",
    ),
    "self_check_auto_repair": Param(
        False,
        type="boolean",
        title="Self-check automatic repair",
        section=TASK_ONE,
        description="Off: only report. On: task one makes the destination row equal "
        "to the source row for every confirmed difference (written with the sync's "
        "mark, so it does not echo).",
    ),
    # ---- task two (None = derived from task one)
    "reverse_objects": Param(
        None,
        type=["null", "array"],
        items={"type": "string", "minLength": 1},
        title="Objects (task two)",
        section=TASK_TWO,
        description="Empty: the same objects as task one, by their destination names.",
    ),
    "reverse_mapping": Param(
        None,
        type=["null", "object"],
        title="Object name mapping (task two)",
        section=TASK_TWO,
        description="Empty: task one's mapping inverted.",
    ),
    # Task two's choices and toggles carry their real default (no "null" entry, a toggle shows what it does).
    "reverse_dml_types": _dml(
        list(DML_TYPES),
        TASK_TWO,
        "DML to synchronize (task two)",
        "INSERT, UPDATE and DELETE (REPLACE arrives as these).",
    ),
    "reverse_conflict_policy": Param(
        ConflictPolicy.TASK_FAILED.value,
        type="string",
        enum=POLICIES,
        title="Conflict resolution policy (task two)",
        section=TASK_TWO,
        description="TaskFailed: stop with an error before the conflicting "
        "transaction. Ignore: keep the destination row. Overwrite: replace it.",
    ),
    "reverse_existing_table_mode": Param(
        ExistingTableMode.PRECHECK_AND_INTERCEPT.value,
        type="string",
        enum=MODES,
        title="Existing destination tables (task two)",
        section=TASK_TWO,
        description="PrecheckAndIntercept: fail the precheck on a name clash. "
        "Ignore: keep existing tables and rows. Tables task one covers never "
        "count as clashes.",
    ),
    "reverse_initial_schema_sync": Param(
        True,
        type="boolean",
        title="Initial schema sync (task two)",
        section=TASK_TWO,
        description="On: create the objects task one does not cover.",
    ),
    "reverse_initial_full_data_sync": Param(
        True,
        type="boolean",
        title="Initial full data sync (task two)",
        section=TASK_TWO,
        description="On: copy the rows of tables task one does not cover "
        "(tables task one covers are never copied back).",
    ),
    "reverse_retry_minutes": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=MAX_RETRY_MINUTES,
        title="Connection retry window (task two, minutes)",
        section=TASK_TWO,
        description="Empty: the same as task one.",
    ),
    "reverse_ignore_precheck_items": _ignore([], TASK_TWO, "Precheck items to ignore (task two)"),
}


def build_task(params: dict[str, Any]) -> TwoWayTask:
    """DAG params -> validated ``TwoWayTask``. Raises one ``ConfigError`` listing every bad setting."""
    values = {k: p.value if isinstance(p, Param) else p for k, p in PARAMS.items()}
    unknown = [k for k in params if k not in PARAMS]
    values.update({k: v for k, v in params.items() if k in PARAMS})
    problems = [f"{k}: unknown setting; allowed settings are {', '.join(sorted(PARAMS))}" for k in sorted(unknown)]
    try:
        parse_max_runtime(values.get("max_runtime"))
    except ConfigError as e:
        problems += e.problems
    forward = {k: values[k] for k in FORWARD_KEYS}
    reverse = {k: values[f"reverse_{k}"] for k in REVERSE_KEYS if values.get(f"reverse_{k}") is not None}
    try:
        built = TwoWayTask.from_dict(
            {
                "name": values["task_name"],
                "control_schema": values["control_schema"],
                "forward": forward,
                "reverse": reverse,
            }
        )
    except ConfigError as e:
        problems += e.problems
        built = None
    if problems:
        raise ConfigError(problems)
    assert built is not None
    return built


# Alerts of the `health` task (operators/health.py): Airflow notifiers, each called once when an alert episode of a
# direction starts or clears (Failed, lag above alert_lag_seconds for alert_lag_for_seconds, not running, status
# unreadable, a new divergence), with the task's context plus `dts_alert` (subject, message, ...) and `message`.
# Example (apache-airflow-providers-smtp):
#   from airflow.providers.smtp.notifications.smtp import SmtpNotifier
#   ALERT_NOTIFIERS = [
#       SmtpNotifier(to="dba@example.com", subject="{{ dts_alert.subject }}", html_content="{{ message }}")
#   ]
# Without editing this file: an Airflow cluster policy (airflow_local_settings.py) can set the `notifiers` of every
# SyncHealthOperator (README: Alerts and metrics).
ALERT_NOTIFIERS: list[Any] = []

# Extra arguments of both incremental tasks (BaseOperator's), mostly for `run_incremental_in` = worker: where the
# long-running task runs and what happens when its worker goes away. Example (Kubernetes executor, a pod per
# direction with its own CPU and memory; a worker shutdown or pod eviction restarts the direction from its
# checkpoint through a retry):
#   from datetime import timedelta
#   from kubernetes.client import models as k8s
#   INCREMENTAL_TASK_KWARGS = {
#       "retries": 5,
#       "retry_delay": timedelta(seconds=30),
#       "queue": "dts",  # Celery: a queue served by workers kept for the syncs
#       "executor_config": {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
#           name="base", resources=k8s.V1ResourceRequirements(requests={"cpu": "1", "memory": "512Mi"},
#                                                               limits={"memory": "1Gi"}))]))},
#   }
# A stop (the task marked skipped, `cli.py stop`) is never retried: Airflow keeps the state it was given; an engine
# failure (a conflict answered "stop", a purged binlog, bad settings) fails without retries either.
INCREMENTAL_TASK_KWARGS: dict[str, Any] = {}

FORWARD_XCOM = "{{ ti.xcom_pull(task_ids='configure', key='forward') }}"
REVERSE_XCOM = "{{ ti.xcom_pull(task_ids='configure', key='reverse') }}"
MAX_RUNTIME = "{{ params.max_runtime if params.max_runtime is not none else '' }}"
ANSWER_TIMEOUT = (
    "{{ params.conflict_answer_timeout_minutes if params.conflict_answer_timeout_minutes is not none else '' }}"
)
RUN_IN = "{{ params.run_incremental_in }}"

# Every run is one sync (its own task_name, servers, objects) and runs until stopped, so runs must not queue
# behind each other: any number run at once. A second run of a task_name already running is refused by
# `configure` (refuse_if_running), from the control schema's lease and state, not from Airflow's runs.
MAX_ACTIVE_SYNCS = 1024


def refuse_if_running(two_way: TwoWayTask) -> None:
    """Fail at once, naming it, when either direction of this task_name is running (engine/running.py)."""
    from airflow_provider_dts.engine.running import running_reason
    from airflow_provider_dts.hooks.dts import DtsMySqlHook

    busy = []
    for d in (two_way.forward, two_way.reverse):
        try:
            settings = DtsMySqlHook(d.destination_conn_id).get_settings()
            with settings.connect() as conn:
                reason = running_reason(conn, d)
        except Exception as e:
            print(f"{d.key}: cannot check whether it runs already ({type(e).__name__}: {e}); the precheck will tell")
            continue
        if reason:
            busy.append(
                f"{d.key} ({'task one' if d.role == 'forward' else 'task two'}) on {d.destination_conn_id}: {reason}"
            )
    if busy:
        raise AirflowFailException(
            f"task_name {two_way.name!r} is already running: " + "; ".join(busy) + ". Fix: pick another "
            "task_name for a new sync, or stop the running one first (python -m airflow_provider_dts.cli stop "
            f"--task-name {two_way.name}), then trigger again to resume it"
        )


def make_dag(
    dag_id: str = DAG_ID,
    *,
    defaults: dict[str, Any] | None = None,
    display_name: str = "DTS two-way MySQL sync",
    doc_md: str | None = __doc__,
    tags: tuple[str, ...] = (),
    auto_register: bool = True,
) -> DAG:
    """The two-way DAG; ``defaults`` replace params' defaults (dags/dts_syncs_from_file.py: one DAG per sync)."""
    unknown = sorted(set(defaults or {}) - set(PARAMS))
    if unknown:
        raise ConfigError([f"{k}: unknown setting; allowed settings are {', '.join(sorted(PARAMS))}" for k in unknown])
    params = dict(PARAMS)
    for k, v in (defaults or {}).items():
        params[k] = copy.copy(PARAMS[k])
        params[k].value = v
    with DAG(
        dag_id=dag_id,
        dag_display_name=display_name,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=MAX_ACTIVE_SYNCS,
        tags=["dts", "mysql", "two-way sync", *tags],
        doc_md=doc_md,
        params=params,
        auto_register=auto_register,
    ) as dag:

        @task(task_id="configure", multiple_outputs=True)
        def configure(**context: Any) -> dict[str, str]:
            """Validate the params; publish each direction's settings as JSON (XCom keys forward / reverse)."""
            try:
                two_way = build_task(dict(context["params"]))
            except ConfigError as e:
                raise AirflowFailException(str(e)) from None
            refuse_if_running(two_way)
            for d in (two_way.forward, two_way.reverse):
                print(
                    f"{d.key}: {d.source_conn_id} -> {d.destination_conn_id}, objects {list(d.objects)}, "
                    f"DDL {'excluded' if d.exclude_ddl else 'synchronized'}, policy {d.conflict_policy.value}"
                    + (
                        f", not initially synced (task one covers them): {list(d.skip_initial_tables)}"
                        if d.skip_initial_tables
                        else ""
                    )
                )
            return {"forward": two_way.forward.to_json(), "reverse": two_way.reverse.to_json()}

        settings = configure()

        fwd_precheck = PrecheckOperator(task_id="task_one_precheck", direction=FORWARD_XCOM)
        fwd_schema = InitialSchemaSyncOperator(task_id="task_one_schema_sync", direction=FORWARD_XCOM)
        fwd_full = FullDataSyncOperator(task_id="task_one_full_data_sync", direction=FORWARD_XCOM)
        fwd_incremental = IncrementalSyncOperator(
            task_id="task_one_incremental",
            direction=FORWARD_XCOM,
            max_runtime=MAX_RUNTIME,
            conflict_answer_timeout=ANSWER_TIMEOUT,
            run_in=RUN_IN,
            **INCREMENTAL_TASK_KWARGS,
        )
        wait_forward = SyncStateSensor(
            task_id="wait_task_one_synchronizing",
            direction=FORWARD_XCOM,
            max_lag_seconds="{{ params.max_lag_seconds }}",
            deferrable=True,
            poke_interval=5,
            timeout=6 * 3600,
            # a Failed left by an earlier run is overwritten when task one restarts
            ignore_failures_before_start=True,
        )
        rev_precheck = PrecheckOperator(task_id="task_two_precheck", direction=REVERSE_XCOM)
        rev_schema = InitialSchemaSyncOperator(task_id="task_two_schema_sync", direction=REVERSE_XCOM)
        rev_full = FullDataSyncOperator(task_id="task_two_full_data_sync", direction=REVERSE_XCOM)
        rev_incremental = IncrementalSyncOperator(
            task_id="task_two_incremental",
            direction=REVERSE_XCOM,
            max_runtime=MAX_RUNTIME,
            conflict_answer_timeout=ANSWER_TIMEOUT,
            run_in=RUN_IN,
            **INCREMENTAL_TASK_KWARGS,
        )

        settings >> fwd_precheck >> fwd_schema >> fwd_full >> fwd_incremental
        fwd_full >> wait_forward >> rev_precheck >> rev_schema >> rev_full >> rev_incremental
        # beside the sync, in no dependency: metrics and alerts of both directions until every other task of
        # the run has finished (both incremental tasks stopped, or configure refused the run)
        SyncHealthOperator(
            task_id="health",
            task_name="{{ params.task_name }}",
            source_conn_id="{{ params.source_conn_id }}",
            destination_conn_id="{{ params.destination_conn_id }}",
            control_schema="{{ params.control_schema }}",
            poll_seconds=15,
            alert_lag_seconds="{{ params.alert_lag_seconds }}",
            alert_lag_for_seconds="{{ params.alert_lag_for_seconds }}",
            notifiers=ALERT_NOTIFIERS,
        )
    return dag


# The file-declared syncs' factory (dags/dts_syncs_from_file.py) loads this file with DTS_NO_DEFAULT_DAG set, to
# call make_dag() only: this file's own DAG must not appear a second time under the factory's file.
if not globals().get("DTS_NO_DEFAULT_DAG"):
    dag = make_dag()
