"""Table planning for the full data sync: which columns are copied, the key that drives keyset chunks, the
estimated size and the resume point of each table (``TablePlan``), the key ranges a large table is split into
(``KeyRange``, ``split_table``), and the result of a run.

Resume points in ``table_progress.last_key`` (JSON, written with every chunk in the chunk's transaction):
a table copied as one range stores the last copied key, a list of key literals (``["42"]``); a table split
into key ranges stores ``{"ranges": [{"lo": .., "hi": .., "last": .., "done": ..}, ..]}``: range i holds the
keys after ``lo`` up to and including ``hi`` (null: unbounded), copied up to and including ``last`` (null:
nothing yet), ``done`` once all of it is copied. The ranges are fixed when the table's first chunk commits,
so a resumed copy (a new snapshot) continues each range where it stopped: no row twice, none skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_dts.engine.catalog import ColumnInfo, load_columns, read_table
from airflow_provider_dts.engine.config import SyncDirection, format_object_name
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DestinationTableDiffers, DestinationTableMissing, FullSyncError
from airflow_provider_dts.engine.schema_sync import TableRef
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident
from airflow_provider_dts.engine.values import (
    LoadDataPlan,
    key_literal_sql,
    keyset_condition,
    load_data_plan,
    row_literal_sql,
)


@dataclass(frozen=True)
class KeyRange:
    """Range ``index`` of a split table: keys after ``lo`` up to and including ``hi`` (key literals as
    ``values.key_literal_sql`` renders them; None: unbounded), as recorded when the copy was planned
    (``last``: copied up to and including this key by an earlier run; ``done``: copied whole)."""

    index: int
    lo: list[str] | None
    hi: list[str] | None
    last: list[str] | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "last": self.last, "done": self.done}

    @classmethod
    def from_json(cls, index: int, data: dict[str, Any]) -> KeyRange:
        return cls(index, data["lo"], data["hi"], data.get("last"), bool(data.get("done")))


def ranges_json(ranges: list[KeyRange]) -> dict[str, Any]:
    return {"ranges": [r.to_json() for r in ranges]}


def parse_ranges(text: str | None) -> list[KeyRange] | None:
    """The key ranges stored in ``table_progress.last_key`` (None when the table is copied as one range)."""
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        return None
    return [KeyRange.from_json(i, r) for i, r in enumerate(data["ranges"])]


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
    ranges: list[KeyRange] | None = None  # split into key ranges (copied by several pipelines at once)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

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
            plan.rows_done = rows_done
            plan.ranges = parse_ranges(last_key)
            if plan.ranges is None:
                plan.last_key = json.loads(last_key)
            elif any(len(k) != len(key) for r in plan.ranges for k in (r.lo, r.hi, r.last) if k is not None):
                raise FullSyncError(
                    f"the copy progress of {ref.label} was recorded for another key than {_key_names(key)}. "
                    "Fix: reinitialize the direction (cli.py reinitialize) to copy the table again from the start"
                )
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


def _key_names(key: list[ColumnInfo]) -> str:
    return "(" + ", ".join(c.name for c in key) + ")"


def record_plans(dst, control: ControlSchema, direction: SyncDirection, plans: list[TablePlan]) -> None:
    """Create or refresh each table's ``table_progress`` row (``pending`` unless copying or done; a pending
    row's resume point is cleared, so only this run's chunks ever set it); a keyless table that was being
    copied restarts whole."""
    with dst.cursor() as dcur:
        for plan in plans:
            dcur.execute(
                f"INSERT INTO {control.table('table_progress')} (task_name, direction, source_db, source_table, "
                f"dest_db, dest_table, status, rows_estimated, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,"
                f"UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE rows_estimated=VALUES(rows_estimated), "
                f"last_key=IF(status IN ('copying','done'), last_key, NULL), "
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


def split_table(src, plan: TablePlan, parts: int) -> list[KeyRange] | None:
    """Split ``plan``'s key space into about ``parts`` ranges of similar row counts (None: not worth it).

    The boundaries need not come from the snapshot: ranges ``(None, b1], (b1, b2], .., (bk, None)`` cover every
    key whatever the data. A single integer key is split arithmetically between its MIN and MAX (two index
    lookups); any other key at every ``estimated_rows / parts``-th key in key order (one pass over the index).
    """
    if plan.key is None or parts < 2:
        return None
    table = qualified(plan.ref.src_db, plan.ref.src_table)
    bounds: list[list[str]] = []
    with src.cursor() as cur:
        if len(plan.key) == 1 and plan.key[0].kind == "integer":
            c = quote_ident(plan.key[0].name)
            cur.execute(f"SELECT MIN({c}), MAX({c}) FROM {table}")
            lo, hi = cur.fetchone()
            if lo is None:
                return None
            lo, hi = int(lo), int(hi)
            for i in range(1, parts):
                b = lo + (hi - lo) * i // parts
                if b >= hi or (bounds and b <= int(bounds[-1][0])):
                    continue
                bounds.append([str(b)])
        else:
            step = max(1, plan.estimated_rows // parts)
            key_exprs = ", ".join(key_literal_sql(k) for k in plan.key)
            order = ", ".join(quote_ident(k.name) for k in plan.key)
            for _ in range(1, parts):
                where = f" WHERE {keyset_condition(plan.key, bounds[-1])}" if bounds else ""
                cur.execute(f"SELECT {key_exprs} FROM {table}{where} ORDER BY {order} LIMIT 1 OFFSET {step - 1}")
                row = cur.fetchone()
                if row is None:
                    break
                bounds.append([as_text(v) for v in row])
    if not bounds:
        return None
    edges: list[list[str] | None] = [None, *bounds, None]
    return [KeyRange(i, edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
