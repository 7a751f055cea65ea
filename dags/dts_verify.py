"""dts_verify: compare the tables of a two-way sync task on both servers while sync runs.

Give only the task name: the sync's objects, mapping and connections are read from its control schema
(``sync_state.config_json`` of task one, on the destination connection). Give objects (and mapping) to compare
something else.

Triggered by hand or on its schedule (daily, paused until you unpause it). Reports in the task log, in XCom and in
the destination's control schema (``dts_meta.verify_result``). Fails on real drift; optional repair.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_dts.operators.verify import DataVerifyOperator

with DAG(
    dag_id="dts_verify",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dts", "mysql"],
    doc_md=__doc__,
    params={
        "task_name": Param(
            "dts_two_way_sync",
            type="string",
            title="Task name",
            description="Name of the two-way sync task (the name its rows carry in dts_meta).",
        ),
        "control_schema": Param(
            "dts_meta",
            type="string",
            minLength=1,
            maxLength=64,
            title="Control schema",
            description="Where the sync keeps its state (its settings are read from there).",
        ),
        "source_conn_id": Param(
            "dts_source",
            type="string",
            title="Source connection",
            description="Airflow connection id of task one's source server.",
        ),
        "destination_conn_id": Param(
            "dts_destination",
            type="string",
            title="Destination connection",
            description="Airflow connection id of task one's destination server (where "
            "the sync's settings are stored).",
        ),
        "objects": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            title="Objects",
            description="Empty: the sync's own objects, read from its control schema. Else databases "
            "('db') or tables ('db.table') to compare, source names.",
        ),
        "mapping": Param(
            None,
            type=["null", "object"],
            title="Object name mapping",
            description='Only with objects: the same mapping as task one, e.g. {"shop": "shop_copy"}.',
        ),
        "chunk_size": Param(1000, type="integer", minimum=1, title="Rows per checksum chunk"),
        "recheck_delay": Param(
            5.0,
            type="number",
            minimum=0,
            title="Re-check delay (s)",
            description="Wait before re-checking a differing chunk, so lag is not drift.",
        ),
        "repair": Param(
            "none",
            type="string",
            enum=["none", "to_destination", "to_source"],
            title="Repair",
            description="Make one side equal to the other for the differences found.",
        ),
    },
) as dag:
    DataVerifyOperator(
        task_id="verify",
        # objects given: compare those; else "" and the sync's stored settings are used (task_name)
        direction=(
            '{{ ({"task_name": params.task_name, "source_conn_id": params.source_conn_id, '
            '"destination_conn_id": params.destination_conn_id, "objects": params.objects, '
            '"control_schema": params.control_schema, "mapping": params.mapping or {}} | tojson) '
            'if params.objects else "" }}'
        ),
        task_name="{{ params.task_name }}",
        control_schema="{{ params.control_schema }}",
        source_conn_id="{{ params.source_conn_id }}",
        destination_conn_id="{{ params.destination_conn_id }}",
        chunk_size="{{ params.chunk_size }}",
        recheck_delay="{{ params.recheck_delay }}",
        repair="{{ '' if params.repair == 'none' else params.repair }}",
    )
