"""Table planning for the full data sync: which columns are copied, the key that drives keyset chunks, the
estimated size and the resume point of each table (``TablePlan``), and the result of a run."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_dts.engine.catalog import ColumnInfo, load_columns, read_table
from airflow_provider_dts.engine.config import SyncDirection, format_object_name
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DestinationTableDiffers, DestinationTableMissing
from airflow_provider_dts.engine.schema_sync import TableRef
from airflow_provider_dts.engine.sqltext import as_text
from airflow_provider_dts.engine.values import LoadDataPlan, load_data_plan, row_literal_sql


@dataclass
class TablePlan:
    ref: TableRef
    columns: list[ColumnInfo]
    key: list[ColumnInfo] | None
    estimated_rows: int
    status: str | None = None
    rows_done: int = 0
    last_key: list[str] | None = None
    load: LoadDataPlan | None = None  # set when the LOAD DATA method is used

    @property
    def label(self) -> str:
        return self.ref.label

    @property
    def row_sql(self) -> str:
        return self.load.select_sql if self.load is not None else row_literal_sql(self.columns)

    @property
    def separator(self) -> bytes:
        return b"" if self.load is not None else b","


@dataclass
class FullSyncResult:
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    snapshot_file: str | None = None
    snapshot_pos: int | None = None
    catchup_file: str | None = None
    catchup_pos: int | None = None
    resumed: bool = False
    already_initialized: bool = False
    skipped: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    triggers_created: list[str] = field(default_factory=list)
    method: str = ""
    modification: str | None = None  # an initialized sync re-run: what changed (engine/modify.py)

    def summary(self) -> dict[str, Any]:
        return {
            "modification": self.modification,
            "tables": self.tables,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
            "snapshot_position": f"{self.snapshot_file}:{self.snapshot_pos}" if self.snapshot_file else None,
            "catchup_position": f"{self.catchup_file}:{self.catchup_pos}" if self.catchup_file else None,
            "resumed": self.resumed,
            "already_initialized": self.already_initialized,
            "skipped": list(self.skipped),
            "table_rows": dict(self.table_rows),
            "triggers_created": list(self.triggers_created),
            "method": self.method,
        }


def copy_columns_and_key(conn, ref: TableRef) -> tuple[list[ColumnInfo], list[ColumnInfo] | None]:
    """The source table's copied columns (every column but generated ones) and the key its keyset chunks are
    ordered by: ``catalog.TableInfo.chunk_key`` (the row key whenever it can drive chunks; None: no usable
    key, the table is streamed in one transaction)."""
    info = read_table(conn, ref.src_db, ref.src_table)
    if info is None:
        return [], None
    key = info.chunk_key
    return info.stored_columns(), [info.column(c) for c in key] if key else None


def _check_destination_columns(dst, ref: TableRef, columns: list[ColumnInfo]) -> None:
    dcols = {c.name: c for c in load_columns(dst, ref.dst_db, ref.dst_table)}
    if not dcols:
        raise DestinationTableMissing(
            f"table {format_object_name(ref.dst_db, ref.dst_table)} does not exist at the destination. "
            "Fix: run the initial schema sync first, or create the table"
        )
    missing = [c.name for c in columns if c.name not in dcols]
    generated = [c.name for c in columns if c.name in dcols and dcols[c.name].generated]
    if missing or generated:
        what = []
        if missing:
            what.append(f"missing columns {', '.join(missing)}")
        if generated:
            what.append(f"columns {', '.join(generated)} are generated there")
        raise DestinationTableDiffers(
            f"table {format_object_name(ref.dst_db, ref.dst_table)} at the destination differs from the source "
            f"({'; '.join(what)}). Fix: make the destination table's columns match the source"
        )


def _load_progress(dst, control: ControlSchema, direction: SyncDirection) -> dict[tuple[str, str], tuple]:
    with dst.cursor() as cur:
        cur.execute(
            f"SELECT source_db, source_table, status, rows_done, last_key FROM {control.table('table_progress')} "
            f"WHERE task_name=%s AND direction=%s",
            (direction.task_name, direction.role),
        )
        return {(as_text(r[0]), as_text(r[1])): (as_text(r[2]), int(r[3]), as_text(r[4])) for r in cur.fetchall()}


def plan_tables(
    src,
    dst,
    control: ControlSchema,
    direction: SyncDirection,
    refs: list[TableRef],
    method: str,
    logger: logging.Logger,
) -> tuple[list[TablePlan], bool]:
    """One ``TablePlan`` per table (columns, key, estimated rows, resume point from ``table_progress``);
    the second value is True when an earlier run's progress is resumed."""
    progress_rows = _load_progress(dst, control, direction)
    plans: list[TablePlan] = []
    resumed = False
    for ref in refs:
        columns, key = copy_columns_and_key(src, ref)
        _check_destination_columns(dst, ref, columns)
        with src.cursor() as cur:
            cur.execute(
                "SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                (ref.src_db, ref.src_table),
            )
            est = int(cur.fetchone()[0])
        status, rows_done, last_key = progress_rows.get((ref.src_db, ref.src_table), (None, 0, None))
        plan = TablePlan(ref, columns, key, est, status)
        if method == "load_data":
            plan.load = load_data_plan(columns)
        if status == "copying" and key is not None and last_key:
            plan.rows_done, plan.last_key = rows_done, json.loads(last_key)
            resumed = True
        elif status == "done":
            plan.rows_done = rows_done
            resumed = True
        if key is None and status != "done":
            logger.warning(
                "full data sync: %s has no primary or NOT NULL unique key: copied in one "
                "transaction (restarted whole if interrupted)",
                ref.label,
            )
        plans.append(plan)
    return plans, resumed


def record_plans(dst, control: ControlSchema, direction: SyncDirection, plans: list[TablePlan]) -> None:
    """Create or refresh each table's ``table_progress`` row (``pending`` unless copying or done); a keyless
    table that was being copied restarts whole."""
    with dst.cursor() as dcur:
        for plan in plans:
            dcur.execute(
                f"INSERT INTO {control.table('table_progress')} (task_name, direction, source_db, source_table, "
                f"dest_db, dest_table, status, rows_estimated, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,"
                f"UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE rows_estimated=VALUES(rows_estimated), "
                f"status=IF(status IN ('copying','done'), status, 'pending'), updated_at=VALUES(updated_at)",
                (
                    direction.task_name,
                    direction.role,
                    plan.ref.src_db,
                    plan.ref.src_table,
                    plan.ref.dst_db,
                    plan.ref.dst_table,
                    "pending",
                    plan.estimated_rows,
                ),
            )
            if plan.status not in ("copying", "done"):
                plan.status = "pending"
    for plan in plans:
        if plan.status == "copying" and plan.key is None:
            plan.status, plan.rows_done = "pending", 0
