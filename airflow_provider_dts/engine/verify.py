"""Online data verification: are the selected tables equal on both sides while sync runs?

Method (pt-table-checksum's, adapted to two live servers):
1. Split each table's key space into chunks of ``chunk_size`` rows by walking the source's primary key
   (keyset: only key columns travel). The last chunk is open-ended so rows beyond the source's largest key are
   seen too.
2. Each server computes ``COUNT(*)`` and an order-independent 128-bit checksum of the chunk (``BIT_XOR`` of two
   64-bit halves of ``MD5`` over every compared column, NULLs marked). Equal chunks cost two small queries.
3. Chunks that differ are re-checked after ``recheck_delay`` seconds, up to ``rechecks`` times, so rows still in
   flight (replication lag) are not reported as drift.
4. Chunks that still differ are compared row by row (key + row hash only): missing at the destination, extra at
   the destination, or different.

Optional repair makes the destination equal to the source (or the reverse) for the rows found, in transactions
that also touch a mark row in the control schema's ``checkpoint`` table, so the opposite direction's reader drops
them like any write of the sync and nothing echoes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from airflow_provider_dts.engine.catalog import TableInfo, read_table
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema, to_json
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident

log = logging.getLogger(__name__)

REPAIR_MARK_DIRECTION = "verify-repair"


@dataclass
class RowDiff:
    kind: str  # "missing" (at destination), "extra" (at destination), "different"
    key: tuple
    columns: tuple[str, ...] = ()  # for "different": the columns whose values differ

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": list(self.key), "columns": list(self.columns)}


@dataclass
class TableReport:
    source: tuple[str, str]
    destination: tuple[str, str]
    key_columns: tuple[str, ...] = ()
    chunks: int = 0
    rows_source: int = 0
    rows_destination: int = 0
    mismatched_chunks: int = 0
    diffs: list[RowDiff] = field(default_factory=list)
    problem: str | None = None  # schema-level problem (missing table, missing columns, no key)
    repaired: int = 0

    @property
    def equal(self) -> bool:
        return self.problem is None and not self.diffs

    def to_dict(self, max_diffs: int = 100) -> dict[str, Any]:
        return {
            "source": ".".join(self.source),
            "destination": ".".join(self.destination),
            "chunks": self.chunks,
            "rows_source": self.rows_source,
            "rows_destination": self.rows_destination,
            "mismatched_chunks": self.mismatched_chunks,
            "missing": sum(d.kind == "missing" for d in self.diffs),
            "extra": sum(d.kind == "extra" for d in self.diffs),
            "different": sum(d.kind == "different" for d in self.diffs),
            "diffs": [d.to_dict() for d in self.diffs[:max_diffs]],
            "problem": self.problem,
            "repaired": self.repaired,
        }


@dataclass
class VerifyReport:
    tables: list[TableReport]
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    @property
    def drift_count(self) -> int:
        return sum(len(t.diffs) + (1 if t.problem else 0) for t in self.tables)

    def summary(self) -> str:
        bad = [t for t in self.tables if not t.equal]
        if not bad:
            rows = sum(t.rows_source for t in self.tables)
            return f"{len(self.tables)} table(s), {rows} row(s): both sides equal"
        parts = []
        for t in bad:
            d = t.to_dict()
            what = t.problem or f"{d['missing']} missing, {d['extra']} extra, {d['different']} different"
            parts.append(f"{d['source']} -> {d['destination']}: {what}")
        return "drift found in " + "; ".join(parts)

    def to_dict(self, max_diffs: int = 100) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
            "tables": [t.to_dict(max_diffs) for t in self.tables],
        }


# --------------------------------------------------------------------------- table discovery


def selected_tables(conn, direction: SyncDirection) -> list[tuple[str, str]]:
    """The source tables the direction selects (base tables only), in a stable order."""
    out: list[tuple[str, str]] = []
    with conn.cursor() as cur:
        for db, table in direction.selected:
            if table is None:
                cur.execute(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                    "AND TABLE_TYPE='BASE TABLE' ORDER BY TABLE_NAME",
                    (db,),
                )
                out.extend((db, r[0]) for r in cur.fetchall())
            else:
                out.append((db, table))
    seen: dict[tuple[str, str], None] = {}
    for t in out:
        seen.setdefault(t, None)
    return list(seen)


def column_types(info: TableInfo | None) -> dict[str, str]:
    """The compared columns: name -> data type, generated columns excluded, in ordinal order ({} for no
    table). Rows are matched by ``info.match_key`` (the row key, ``engine.catalog``)."""
    return {c.name: c.data_type for c in info.stored_columns()} if info is not None else {}


def table_columns(conn, db: str, table: str) -> dict[str, str]:
    """``column_types`` of ``db.table`` as ``conn``'s server has it."""
    return column_types(read_table(conn, db, table))


def exact_expr(column: str, data_type: str) -> str:
    """A select expression giving a column's value exactly. The server renders a FLOAT with 6 digits (1e-38,
    0.123457): ``k = 1e-38`` finds no row and writing 0.123457 back stores another value. ``col + 0e0`` is the
    widened double (9.999999350456404e-39, as in the binlog image), which does both right."""
    q = quote_ident(column)
    return f"({q} + 0e0)" if data_type == "float" else q


# --------------------------------------------------------------------------- SQL pieces


def keyset_after(cols: Sequence[str], values: Sequence[Any] | None, op: str = ">") -> tuple[str, list[Any]]:
    """``(c1, c2, ...) op (v1, v2, ...)`` expanded so that an index range scan is used on every server."""
    if values is None:
        return "1=1", []
    q = [quote_ident(c) for c in cols]
    strict = op in (">", "<")
    base = op[0]
    ors: list[str] = []
    args: list[Any] = []
    for i in range(len(cols)):
        terms = [f"{q[j]} = %s" for j in range(i)]
        last_op = base if (i < len(cols) - 1 or strict) else op
        terms.append(f"{q[i]} {last_op} %s")
        args.extend(values[: i + 1])
        ors.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(ors) + ")", args


def _range_predicate(cols: Sequence[str], lo: tuple | None, hi: tuple | None) -> tuple[str, list[Any]]:
    p1, a1 = keyset_after(cols, lo, ">")
    p2, a2 = keyset_after(cols, hi, "<=")
    return f"{p1} AND {p2}", a1 + a2


def _row_expr(columns: Sequence[str]) -> str:
    """A string that identifies a row's compared values; NULL differs from '' and from 'NULL'."""
    parts = [quote_ident(c) for c in columns]
    nulls = "CONCAT(" + ", ".join(f"ISNULL({quote_ident(c)})" for c in columns) + ")"
    return f"CONCAT_WS('#', {', '.join(parts)}, {nulls})"


def _checksum_sql(db: str, table: str, key: Sequence[str], columns: Sequence[str], where: str) -> str:
    md5 = f"MD5({_row_expr(columns)})"
    return (
        f"SELECT COUNT(*), "
        f"COALESCE(BIT_XOR(CAST(CONV(SUBSTRING({md5}, 1, 16), 16, 10) AS UNSIGNED)), 0), "
        f"COALESCE(BIT_XOR(CAST(CONV(SUBSTRING({md5}, 17, 16), 16, 10) AS UNSIGNED)), 0) "
        f"FROM {qualified(db, table)} WHERE {where}"
    )


# --------------------------------------------------------------------------- the verifier


class Verifier:
    def __init__(
        self,
        direction: SyncDirection,
        source: ConnectionSettings,
        destination: ConnectionSettings,
        *,
        chunk_size: int = 1000,
        recheck_delay: float = 5.0,
        rechecks: int = 2,
        max_diffs_per_table: int = 1000,
        progress: Callable[[str], None] | None = None,
    ):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.direction = direction
        self.source = source
        self.destination = destination
        self.chunk_size = chunk_size
        self.recheck_delay = recheck_delay
        self.rechecks = rechecks
        self.max_diffs = max_diffs_per_table
        self.progress = progress or log.info

    # ------------------------------------------------------------------ public

    def run(self, *, repair: str | None = None) -> VerifyReport:
        """Compare every selected table; ``repair`` = "to_destination" or "to_source" fixes what was found."""
        if repair not in (None, "to_destination", "to_source"):
            raise ValueError(f"repair: {repair!r} is not allowed; use 'to_destination', 'to_source' or None")
        started = time.monotonic()
        src = self.source.connect()
        dst = self.destination.connect()
        try:
            reports = []
            for db, table in selected_tables(src, self.direction):
                report = self.verify_table(src, dst, db, table)
                if repair and report.diffs:
                    report.repaired = self.repair_table(src, dst, report, repair)
                reports.append(report)
                self.progress(
                    f"verified {db}.{table}: "
                    + ("equal" if report.equal else (report.problem or f"{len(report.diffs)} row difference(s)"))
                )
            return VerifyReport(reports, seconds=time.monotonic() - started)
        finally:
            src.close()
            dst.close()

    def verify_table(self, src, dst, db: str, table: str) -> TableReport:
        ddb, dtable = self.direction.map_table(db, table)
        report = TableReport(source=(db, table), destination=(ddb, dtable))
        src_info = read_table(src, db, table)
        src_cols, dst_cols = column_types(src_info), table_columns(dst, ddb, dtable)
        if src_info is None or not src_cols:
            report.problem = f"table {db}.{table} does not exist on the source"
            return report
        if not dst_cols:
            report.problem = f"table {ddb}.{dtable} does not exist at the destination"
            return report
        missing_cols = [c for c in src_cols if c not in dst_cols]
        if missing_cols:
            report.problem = f"columns missing at the destination: {', '.join(missing_cols)}"
            return report
        key = src_info.match_key
        if not key:
            report.problem = "no primary key or NOT NULL unique key: rows cannot be matched"
            return report
        report.key_columns = key
        columns = tuple(src_cols)

        lo: tuple | None = None
        while True:
            hi = self._next_boundary(src, db, table, key, lo)
            report.chunks += 1
            equal, n_src, n_dst = self._chunk_equal(src, dst, (db, table), (ddb, dtable), key, columns, lo, hi)
            attempt = 0
            while not equal and attempt < self.rechecks:
                attempt += 1
                time.sleep(self.recheck_delay)
                equal, n_src, n_dst = self._chunk_equal(src, dst, (db, table), (ddb, dtable), key, columns, lo, hi)
            report.rows_source += n_src
            report.rows_destination += n_dst
            if not equal:
                report.mismatched_chunks += 1
                if len(report.diffs) < self.max_diffs:
                    report.diffs.extend(self._row_diffs(src, dst, (db, table), (ddb, dtable), key, columns, lo, hi))
            if hi is None:
                break
            lo = hi
        del report.diffs[self.max_diffs :]
        return report

    # ------------------------------------------------------------------ pieces

    def _next_boundary(self, src, db, table, key, lo) -> tuple | None:
        """The key of the chunk_size-th row after ``lo``; None when fewer rows remain (last chunk)."""
        where, args = keyset_after(key, lo, ">")
        cols = ", ".join(quote_ident(c) for c in key)
        with src.cursor() as cur:
            cur.execute(
                f"SELECT {cols} FROM {qualified(db, table)} WHERE {where} ORDER BY {cols} LIMIT {self.chunk_size}",
                args,
            )
            rows = cur.fetchall()
        if len(rows) < self.chunk_size:
            return None
        return tuple(rows[-1])

    def _chunk_equal(self, src, dst, s, d, key, columns, lo, hi) -> tuple[bool, int, int]:
        where, args = _range_predicate(key, lo, hi)
        results = []
        for conn, (db, table) in ((src, s), (dst, d)):
            with conn.cursor() as cur:
                cur.execute(_checksum_sql(db, table, key, columns, where), args)
                results.append(tuple(int(v) for v in cur.fetchone()))
        return results[0] == results[1], results[0][0], results[1][0]

    def _chunk_rows(self, conn, db, table, key, columns, lo, hi) -> dict[tuple, tuple]:
        where, args = _range_predicate(key, lo, hi)
        kcols = ", ".join(quote_ident(c) for c in key)
        vals = ", ".join(f"MD5(CONCAT_WS('#', {quote_ident(c)}, ISNULL({quote_ident(c)})))" for c in columns)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {kcols}, {vals} FROM {qualified(db, table)} WHERE {where}", args)
            n = len(key)
            return {tuple(r[:n]): tuple(r[n:]) for r in cur.fetchall()}

    def _row_diffs(self, src, dst, s: tuple[str, str], d: tuple[str, str], key, columns, lo, hi) -> list[RowDiff]:
        a = self._chunk_rows(src, *s, key, columns, lo, hi)
        b = self._chunk_rows(dst, *d, key, columns, lo, hi)
        diffs = []
        for k in sorted(set(a) | set(b), key=_sort_key):
            if k not in b:
                diffs.append(RowDiff("missing", k))
            elif k not in a:
                diffs.append(RowDiff("extra", k))
            elif a[k] != b[k]:
                cols = tuple(c for c, x, y in zip(columns, a[k], b[k]) if x != y)
                diffs.append(RowDiff("different", k, cols))
        return diffs

    # ------------------------------------------------------------------ repair

    def repair_table(self, src, dst, report: TableReport, repair: str) -> int:
        """Copy the authoritative side's rows over the other side for every difference found."""
        (sdb, stable), (ddb, dtable) = report.source, report.destination
        if repair == "to_destination":
            good, bad, good_t, bad_t = src, dst, (sdb, stable), (ddb, dtable)
        else:
            good, bad, good_t, bad_t = dst, src, (ddb, dtable), (sdb, stable)
        key = report.key_columns
        types = table_columns(good, *good_t)
        columns = tuple(types)
        control = ControlSchema(self.direction.control_schema)
        control.ensure(bad)
        fixed = 0
        where_key = " AND ".join(f"{quote_ident(c)} <=> %s" for c in key)
        col_list = ", ".join(quote_ident(c) for c in columns)
        with good.cursor() as gcur, bad.cursor() as bcur:
            bcur.execute("SET @dts_applying = 1")  # a sync write: guarded triggers do nothing (engine/triggers.py)
            bcur.execute("START TRANSACTION")
            try:
                # The mark: the opposite reader drops transactions touching <control>.checkpoint.
                bcur.execute(
                    f"INSERT INTO {control.table('checkpoint')} (task_name, direction, updated_at) "
                    f"VALUES (%s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE updated_at=UTC_TIMESTAMP(6)",
                    (self.direction.task_name, REPAIR_MARK_DIRECTION),
                )
                for diff in report.diffs:
                    gcur.execute(
                        f"SELECT {', '.join(exact_expr(c, t) for c, t in types.items())} "
                        f"FROM {qualified(*good_t)} WHERE {where_key}",
                        diff.key,
                    )
                    row = gcur.fetchone()
                    bcur.execute(f"DELETE FROM {qualified(*bad_t)} WHERE {where_key}", diff.key)
                    if row is not None:
                        bcur.execute(
                            f"INSERT INTO {qualified(*bad_t)} ({col_list}) VALUES ({', '.join(['%s'] * len(row))})",
                            row,
                        )
                    fixed += 1
                bcur.execute("COMMIT")
            except Exception:
                bcur.execute("ROLLBACK")
                raise
        return fixed


def _sort_key(k: tuple) -> tuple:
    return tuple((v is None, str(type(v)), v) for v in k)


def record_report(conn, control: ControlSchema, direction: SyncDirection, report: VerifyReport, run_id: str) -> None:
    """Store the report in the destination's control schema (``verify_result``: one row per table and run)."""
    with conn.cursor() as cur:
        cur.execute("START TRANSACTION")
        for t in report.tables:
            d = t.to_dict(max_diffs=1000)
            cur.execute(
                f"INSERT INTO {control.table('verify_result')} (task_name, direction, run_id, source_table, "
                f"dest_table, equal, rows_source, rows_destination, chunks, mismatched_chunks, missing, extra, "
                f"different, problem, diffs_json, repaired, checked_at) VALUES "
                f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
                (
                    direction.task_name,
                    direction.role,
                    run_id,
                    d["source"],
                    d["destination"],
                    t.equal,
                    t.rows_source,
                    t.rows_destination,
                    t.chunks,
                    t.mismatched_chunks,
                    d["missing"],
                    d["extra"],
                    d["different"],
                    t.problem,
                    to_json(d["diffs"]),
                    t.repaired,
                ),
            )
        cur.execute("COMMIT")


def verify_direction(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    run_id: str,
    repair: str | None = None,
    record: bool = True,
    **options: Any,
) -> VerifyReport:
    """Verify (and optionally repair) one direction's tables; record the report at the destination."""
    report = Verifier(direction, source, destination, **options).run(repair=repair)
    if record:
        control = ControlSchema(direction.control_schema)
        with destination.connect() as conn:
            control.ensure(conn)
            record_report(conn, control, direction, report, run_id)
    return report


def stored_direction(
    conn, task_name: str, control_schema: str = "dts_meta", role: str = "forward"
) -> SyncDirection | None:
    """The configuration of the sync ``task_name`` stored on this server (the direction's home: its destination),
    or None when this server holds none: the settings it was last initialized or modified with
    (``sync_state.synced_config``, engine/modify.py), else the ones of its last precheck (``config_json``)."""
    control = ControlSchema(control_schema)
    if not control.exists(conn):
        return None
    try:
        state = control.get_state(conn, task_name, role)
    except pymysql.err.ProgrammingError:  # no sync_state table yet
        return None
    if not state:
        return None
    synced = state.get("synced_config")
    if synced:
        doc = json.loads(as_text(synced))
        if isinstance(doc, dict) and isinstance(doc.get("direction"), dict):
            return SyncDirection.from_dict(doc["direction"])
    if not state.get("config_json"):
        return None
    return SyncDirection.from_json(state["config_json"])
