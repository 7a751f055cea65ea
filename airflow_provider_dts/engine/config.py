"""Task configuration: one sync direction, and a two-way task made of two directions.

Plain data, validated once, JSON round-trip. Validation collects every problem and raises one
``ConfigError`` listing each bad field with the allowed values, so a user fixes their input in one go.

Object selection follows DTS: a whole database (``"shop"``) or one table (``"shop.orders"``). Names that
contain dots or other odd characters are written with backticks: ``"`my.db`.`odd table`"``.
Object name mapping renames a database (``{"shop": "shop_copy"}``) or a table (``{"shop.orders":
"orders_v2"}``, the table keeps its database's mapped name; or ``{"shop.orders": "archive.orders"}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

from airflow_provider_dts.engine.errors import ConfigError


class ConflictPolicy(str, Enum):
    TASK_FAILED = "TaskFailed"
    IGNORE = "Ignore"
    OVERWRITE = "Overwrite"


# Per-table policies (``table_conflict_policies``): the global ones, and DTS's column policies, which decide by
# the values of a column the user names (engine/conflicts.py).
COLUMN_POLICIES = ("UseMax", "UseMin")
TABLE_POLICIES = tuple(p.value for p in ConflictPolicy) + COLUMN_POLICIES


@dataclass(frozen=True)
class TableConflictPolicy:
    """The conflict policy of one table: a ``TABLE_POLICIES`` value, and its column for UseMax / UseMin."""

    policy: str
    column: str | None = None


class ExistingTableMode(str, Enum):
    PRECHECK_AND_INTERCEPT = "PrecheckAndIntercept"
    IGNORE = "Ignore"


DML_TYPES = ("INSERT", "UPDATE", "DELETE")
ROLES = ("forward", "reverse")
DEFAULT_CONTROL_SCHEMA = "dts_meta"
DEFAULT_RETRY_MINUTES = 720
MAX_RETRY_MINUTES = 7 * 24 * 60
# Self-check (engine/selfcheck.py): load budget of the rolling whole-table comparison, rows read per second.
DEFAULT_SELF_CHECK_ROWS_PER_SECOND = 1000
MAX_SELF_CHECK_ROWS_PER_SECOND = 1_000_000

# Every precheck item by name; `ignore_precheck_items` may name any of these.
PRECHECK_ITEMS = (
    "source_connectivity",
    "destination_connectivity",
    "source_version",
    "destination_version",
    "source_binlog_enabled",
    "source_binlog_format",
    "source_binlog_row_image",
    "source_binlog_row_metadata",
    "source_binlog_compression",
    "source_server_id",
    "source_binlog_retention",
    "source_gtid_resume",
    "source_privileges",
    "destination_privileges",
    "objects_exist",
    "destination_name_clash",
    "primary_keys",
    "conflict_policies",
    "triggers",
    "storage_engines",
    "charset_collation",
    "sql_mode",
    "lower_case_table_names",
    "time_zone",
)

_TASK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # always fullmatch: "$" accepts a trailing "\n"
_CONTROL_SCHEMA_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
# The servers' own schemas: never selected, never a mapping target, never the control schema (any letter case).
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def is_system_schema(name: str) -> bool:
    return isinstance(name, str) and name.lower() in SYSTEM_SCHEMAS


# --------------------------------------------------------------------------- identifiers


def check_identifier(name: str, what: str) -> str | None:
    """Return a problem description, or None when ``name`` is a usable MySQL identifier."""
    if not isinstance(name, str) or name == "":
        return f"{what}: an empty name; give a database or table name"
    if len(name) > 64:
        return f"{what}: {name[:20]!r}... is {len(name)} characters; MySQL allows at most 64"
    if "\x00" in name:
        return f"{what}: {name!r} contains a NUL character, which MySQL does not allow"
    if name != name.rstrip(" "):
        return f"{what}: {name!r} ends with a space, which MySQL does not allow"
    return None


def split_object_name(text: str) -> tuple[str, str | None]:
    """Parse ``db``, ``db.table`` or the backtick-quoted forms into (db, table-or-None).

    Raises ValueError with a readable message when the text is not one of those forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an object name must be a non-empty string like 'shop' or 'shop.orders'")
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == "`":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ValueError(f"{text!r}: unterminated backtick")
                if text[j] == "`":
                    if j + 1 < n and text[j + 1] == "`":
                        buf.append("`")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        else:
            j = text.find(".", i)
            if j == -1:
                j = n
            parts.append(text[i:j])
            i = j
        if i >= n:
            break
        if text[i] != "." or len(parts) >= 2:
            raise ValueError(f"{text!r}: expected 'db' or 'db.table' (quote names containing dots with backticks)")
        i += 1
        if i >= n:
            raise ValueError(f"{text!r}: nothing after the dot")
    if len(parts) == 1:
        return parts[0], None
    return parts[0], parts[1]


def format_object_name(db: str, table: str | None = None) -> str:
    def q(s: str) -> str:
        return "`" + s.replace("`", "``") + "`" if ("." in s or "`" in s) else s

    return q(db) if table is None else f"{q(db)}.{q(table)}"


# --------------------------------------------------------------------------- one direction


@dataclass(frozen=True)
class SyncDirection:
    """One DTS synchronization task: source -> destination."""

    task_name: str
    role: str  # "forward" (task one) or "reverse" (task two)
    source_conn_id: str
    destination_conn_id: str
    objects: tuple[str, ...]
    mapping: dict[str, str] = field(default_factory=dict)
    dml_types: tuple[str, ...] = DML_TYPES
    exclude_ddl: bool = False
    conflict_policy: ConflictPolicy = ConflictPolicy.TASK_FAILED
    existing_table_mode: ExistingTableMode = ExistingTableMode.PRECHECK_AND_INTERCEPT
    initial_schema_sync: bool = True
    initial_full_data_sync: bool = True
    retry_minutes: int = DEFAULT_RETRY_MINUTES
    ignore_precheck_items: tuple[str, ...] = ()
    sync_triggers: bool = False
    # Rewrite the selected tables' triggers on both servers so they do nothing in the sync's own sessions
    # (``@dts_applying``; see engine/triggers.py). The reverse direction takes task one's value by default.
    guard_triggers: bool = False
    control_schema: str = DEFAULT_CONTROL_SCHEMA
    # Tables (source names) that the opposite direction already syncs: not initially synced here (spec).
    skip_initial_tables: tuple[str, ...] = ()
    # Self-check while running (engine/selfcheck.py): re-check recently changed keys and roll over whole tables.
    self_check: bool = True
    self_check_rows_per_second: int = DEFAULT_SELF_CHECK_ROWS_PER_SECOND
    # Repair confirmed differences (destination := source). Task one (forward) only, so that the two
    # directions never repair one row in opposite ways.
    self_check_auto_repair: bool = False
    # Per-table conflict policies, by source table name: {"db.table": {"policy": ..., "column": ...}}
    # (``TABLE_POLICIES``; "column" for UseMax / UseMin only). Other tables follow ``conflict_policy``.
    table_conflict_policies: dict[str, dict[str, str]] = field(default_factory=dict)

    # ---- construction

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, prefix: str = "") -> SyncDirection:
        problems: list[str] = []
        direction = _build_direction(data, prefix, problems)
        if problems:
            raise ConfigError(problems)
        assert direction is not None
        return direction

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objects"] = list(self.objects)
        d["dml_types"] = list(self.dml_types)
        d["ignore_precheck_items"] = list(self.ignore_precheck_items)
        d["skip_initial_tables"] = list(self.skip_initial_tables)
        d["conflict_policy"] = self.conflict_policy.value
        d["existing_table_mode"] = self.existing_table_mode.value
        d["mapping"] = dict(self.mapping)
        d["table_conflict_policies"] = {k: dict(v) for k, v in self.table_conflict_policies.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SyncDirection:
        return cls.from_dict(json.loads(text))

    # ---- identity

    @property
    def key(self) -> str:
        return f"{self.task_name}/{self.role}"

    @property
    def reader_server_id(self) -> int:
        """Server id our binlog reader registers with: stable per direction, far from real ids."""
        import zlib

        return 0x60000000 + (zlib.crc32(self.key.encode()) & 0x0FFFFFFF)

    # ---- object selection

    @property
    def selected(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(split_object_name(o) for o in self.objects)

    @property
    def selected_databases(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for db, _ in self.selected:
            seen.setdefault(db, None)
        return tuple(seen)

    def whole_database(self, db: str) -> bool:
        return (db, None) in self.selected

    def selects_table(self, db: str, table: str) -> bool:
        if db == self.control_schema:
            return False
        return (db, None) in self.selected or (db, table) in self.selected

    def selects_database(self, db: str) -> bool:
        return db != self.control_schema and any(d == db for d, _ in self.selected)

    def map_database(self, db: str) -> str:
        target = self.mapping.get(format_object_name(db))
        if target is None:
            return db
        return split_object_name(target)[0]  # targets are stored in object-name form (quoted when odd)

    def map_table(self, db: str, table: str) -> tuple[str, str]:
        target = self.mapping.get(format_object_name(db, table))
        if target is None:
            return self.map_database(db), table
        tdb, ttable = split_object_name(target)
        if ttable is None:  # "db.t": "t2" renames the table inside the mapped database
            return self.map_database(db), tdb
        return tdb, ttable

    def inverse_mapping(self) -> dict[str, str]:
        """The mapping of the opposite direction: destination names back to source names."""
        inv: dict[str, str] = {}
        for src in self.mapping:
            sdb, stable = split_object_name(src)
            if stable is None:
                inv[format_object_name(self.map_database(sdb))] = format_object_name(sdb)
            else:
                ddb, dtable = self.map_table(sdb, stable)
                inv[format_object_name(ddb, dtable)] = format_object_name(sdb, stable)
        return inv

    def conflict_policy_for(self, db: str, table: str) -> TableConflictPolicy:
        """The conflict policy of source table ``db.table``: its entry in ``table_conflict_policies``, else the
        direction's ``conflict_policy``."""
        entry = self.table_conflict_policies.get(format_object_name(db, table))
        if entry is None:
            return TableConflictPolicy(self.conflict_policy.value)
        return TableConflictPolicy(entry["policy"], entry.get("column"))

    def mirrored_table_policies(self) -> dict[str, dict[str, str]]:
        """``table_conflict_policies`` for the opposite direction: the same entries under the destination
        names (the direction's mapping applied), columns unchanged."""
        out: dict[str, dict[str, str]] = {}
        for name, entry in self.table_conflict_policies.items():
            db, table = split_object_name(name)
            if table is not None:
                out[format_object_name(*self.map_table(db, table))] = dict(entry)
        return out

    def destination_objects(self) -> tuple[str, ...]:
        out = []
        for db, table in self.selected:
            if table is None:
                out.append(format_object_name(self.map_database(db)))
            else:
                out.append(format_object_name(*self.map_table(db, table)))
        return tuple(out)


def _as_bool(value: Any, name: str, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    problems.append(f"{name}: {value!r} is not a boolean; use true or false")
    return False


@dataclass
class _Fields:
    """One direction's raw settings being validated: every validator reads ``data``, appends its problems
    (each prefixed with ``p``, the field path) and sets the clean values in ``kw``."""

    data: dict[str, Any]
    p: str
    problems: list[str]
    kw: dict[str, Any] = field(default_factory=dict)
    parsed: list[tuple[str, str | None]] = field(default_factory=list)  # selected (db, table) pairs
    control_key: str = ""  # the control schema, lower case ("" when invalid)


def _check_known(f: _Fields) -> None:
    known = {x.name for x in fields(SyncDirection)}
    for k in f.data:
        if k not in known:
            f.problems.append(f"{f.p}{k}: unknown setting; allowed settings are {', '.join(sorted(known))}")


def _check_identity(f: _Fields) -> None:
    p, problems = f.p, f.problems
    task_name = f.data.get("task_name", "")
    if not isinstance(task_name, str) or not _TASK_NAME_RE.fullmatch(task_name):
        problems.append(
            f"{p}task_name: {task_name!r} is not a valid task name; use 1-64 letters, digits, '_', '.', '-'"
        )
    f.kw["task_name"] = task_name
    role = f.data.get("role", "forward")
    if role not in ROLES:
        problems.append(f"{p}role: {role!r} is not allowed; use one of {', '.join(ROLES)}")
    f.kw["role"] = role


def _check_connections(f: _Fields) -> None:
    p, problems, kw = f.p, f.problems, f.kw
    for name in ("source_conn_id", "destination_conn_id"):
        v = f.data.get(name)
        if not isinstance(v, str) or not v.strip():
            problems.append(
                f"{p}{name}: missing; give the Airflow connection id of the {name.split('_')[0]} MySQL server"
            )
        kw[name] = v if isinstance(v, str) else ""
    if kw["source_conn_id"] and kw["source_conn_id"] == kw["destination_conn_id"]:
        problems.append(
            f"{p}destination_conn_id: the same connection as source_conn_id; two-way sync needs two servers"
        )


def _check_control_schema(f: _Fields) -> None:
    p, problems = f.p, f.problems
    control_schema = f.data.get("control_schema", DEFAULT_CONTROL_SCHEMA)
    if not isinstance(control_schema, str) or not _CONTROL_SCHEMA_RE.fullmatch(control_schema):
        problems.append(
            f"{p}control_schema: {control_schema!r} is not allowed; use 1-64 letters, digits and '_' "
            f"(a plain schema name such as {DEFAULT_CONTROL_SCHEMA!r})"
        )
    elif is_system_schema(control_schema):
        problems.append(
            f"{p}control_schema: {control_schema!r} is a system schema of the server; the provider never "
            f"writes there. Use a schema of its own such as {DEFAULT_CONTROL_SCHEMA!r}"
        )
    f.kw["control_schema"] = control_schema
    f.control_key = control_schema.lower() if isinstance(control_schema, str) else ""


def _check_objects(f: _Fields) -> None:
    p, problems, parsed = f.p, f.problems, f.parsed
    control_schema = f.kw["control_schema"]
    objects = f.data.get("objects")
    if isinstance(objects, str):
        objects = [objects]
    if not isinstance(objects, (list, tuple)) or not objects:
        problems.append(f"{p}objects: give a non-empty list of 'db' or 'db.table' names, e.g. [\"shop\"]")
        objects = []
    for o in objects:
        try:
            db, table = split_object_name(o)
        except ValueError as e:
            problems.append(f"{p}objects: {e}")
            continue
        bad = False
        for nm, what in ((db, "database"), (table, "table")):
            if nm is not None:
                err = check_identifier(nm, f"{p}objects: {what} name in {o!r}")
                if err:
                    problems.append(err)
                    bad = True
        if bad:
            continue
        if is_system_schema(db):
            problems.append(
                f"{p}objects: {o!r} is in the server's system schema {db!r}, which is never synchronized "
                "(accounts, privileges and server state stay each server's own); select your own databases"
            )
            continue
        if db.lower() == f.control_key:
            problems.append(f"{p}objects: {o!r} is the control schema {control_schema!r}, which is never synchronized")
            continue
        parsed.append((db, table))
    if len(set(parsed)) != len(parsed):
        problems.append(f"{p}objects: an object is listed twice")
    whole = {db for db, t in parsed if t is None}
    for db, t in parsed:
        if t is not None and db in whole:
            problems.append(
                f"{p}objects: {format_object_name(db, t)!r} is inside {format_object_name(db)!r}, which is "
                "selected whole; list only one of them"
            )
    f.kw["objects"] = tuple(format_object_name(db, t) for db, t in parsed)


def _check_mapping(f: _Fields) -> None:
    p, problems, parsed = f.p, f.problems, f.parsed
    control_schema = f.kw["control_schema"]
    mapping = f.data.get("mapping", {}) or {}
    clean_map: dict[str, str] = {}
    if not isinstance(mapping, dict):
        problems.append(f'{p}mapping: expected an object like {{"shop": "shop_copy", "shop.orders": "orders_v2"}}')
        mapping = {}
    for src, dst in mapping.items():
        try:
            sdb, stable = split_object_name(src)
            ddb, dtable = split_object_name(dst)
        except (ValueError, TypeError) as e:
            problems.append(f"{p}mapping: {src!r} -> {dst!r}: {e}")
            continue
        if stable is None and dtable is not None:
            problems.append(f"{p}mapping: {src!r} is a database and can only map to a database name, not {dst!r}")
            continue
        for nm in (ddb, dtable):
            if nm is not None:
                err = check_identifier(nm, f"{p}mapping: target of {src!r}")
                if err:
                    problems.append(err)
        covered = (
            (sdb, None) in parsed or (sdb, stable) in parsed or (stable is None and any(d == sdb for d, _ in parsed))
        )
        if not covered:
            problems.append(
                f"{p}mapping: {src!r} is not among the selected objects; add it to objects or remove the mapping"
            )
        if ddb.lower() == f.control_key:
            problems.append(f"{p}mapping: {src!r} maps into the control schema {control_schema!r}; choose another name")
        elif is_system_schema(ddb):
            problems.append(
                f"{p}mapping: {src!r} maps into the server's system schema {ddb!r}, which the provider "
                "never writes; choose another name"
            )
        clean_map[format_object_name(sdb, stable)] = format_object_name(ddb, dtable)
    f.kw["mapping"] = clean_map


def _check_dml_types(f: _Fields) -> None:
    p, problems = f.p, f.problems
    dml = f.data.get("dml_types", list(DML_TYPES))
    if isinstance(dml, str):
        dml = [x.strip() for x in dml.split(",") if x.strip()]
    if not isinstance(dml, (list, tuple)) or not dml:
        problems.append(f"{p}dml_types: give a non-empty list from {', '.join(DML_TYPES)}")
        dml = []
    dml_clean = []
    for t in dml:
        tu = str(t).upper()
        if tu == "REPLACE":  # REPLACE reaches the binlog as DELETE+INSERT or UPDATE row events
            continue
        if tu not in DML_TYPES:
            problems.append(f"{p}dml_types: {t!r} is not allowed; use any of {', '.join(DML_TYPES)}")
        elif tu not in dml_clean:
            dml_clean.append(tu)
    f.kw["dml_types"] = tuple(x for x in DML_TYPES if x in dml_clean)


# Enum settings: an absent value means the first member.
_ENUM_SETTINGS: tuple[tuple[type[Enum], str], ...] = (
    (ConflictPolicy, "conflict_policy"),
    (ExistingTableMode, "existing_table_mode"),
)
# Boolean settings and their defaults.
_BOOL_SETTINGS: tuple[tuple[str, bool], ...] = (
    ("exclude_ddl", False),
    ("initial_schema_sync", True),
    ("initial_full_data_sync", True),
    ("sync_triggers", False),
    ("guard_triggers", False),
    ("self_check", True),
    ("self_check_auto_repair", False),
)


def _check_enums_and_flags(f: _Fields) -> None:
    p, problems, kw = f.p, f.problems, f.kw
    for enum_cls, name in _ENUM_SETTINGS:
        v = f.data.get(name)
        if v is None:
            kw[name] = next(iter(enum_cls))
            continue
        try:
            kw[name] = enum_cls(v.value if isinstance(v, enum_cls) else v)
        except ValueError:
            allowed = ", ".join(m.value for m in enum_cls)
            problems.append(f"{p}{name}: {v!r} is not allowed; use one of {allowed}")
            kw[name] = next(iter(enum_cls))
    for name, default in _BOOL_SETTINGS:
        kw[name] = _as_bool(f.data.get(name, default), f"{p}{name}", problems)


def _check_self_check(f: _Fields) -> None:
    p, problems, kw = f.p, f.problems, f.kw
    rps = f.data.get("self_check_rows_per_second", DEFAULT_SELF_CHECK_ROWS_PER_SECOND)
    if isinstance(rps, str) and rps.strip().isdigit():
        rps = int(rps)
    if isinstance(rps, bool) or not isinstance(rps, int) or not 1 <= rps <= MAX_SELF_CHECK_ROWS_PER_SECOND:
        problems.append(
            f"{p}self_check_rows_per_second: {rps!r} is not allowed; use a whole number of rows per second from 1 "
            f"to {MAX_SELF_CHECK_ROWS_PER_SECOND} (the load the self-check's rolling table comparison may add)"
        )
        rps = DEFAULT_SELF_CHECK_ROWS_PER_SECOND
    kw["self_check_rows_per_second"] = rps
    if kw["self_check_auto_repair"] and kw["role"] == "reverse":
        problems.append(
            f"{p}self_check_auto_repair: only task one (forward) repairs, making its destination equal to its "
            "source, so the two directions never repair one row in opposite ways; turn it off for task two"
        )
    if kw["self_check_auto_repair"] and not kw["self_check"]:
        problems.append(f"{p}self_check_auto_repair: needs self_check on; turn self_check on or auto repair off")


def _check_table_policies(f: _Fields) -> None:
    """``table_conflict_policies``: selected source tables, a known policy, a column exactly for UseMax/UseMin."""
    p, problems, parsed = f.p, f.problems, f.parsed
    name = f"{p}table_conflict_policies"
    raw = f.data.get("table_conflict_policies", {}) or {}
    clean: dict[str, dict[str, str]] = {}
    example = '{"shop.orders": {"policy": "UseMax", "column": "updated_at"}}'
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected an object like {example}")
        raw = {}
    allowed = ", ".join(TABLE_POLICIES)
    for obj, entry in raw.items():
        try:
            db, table = split_object_name(obj)
        except (ValueError, TypeError) as e:
            problems.append(f"{name}: {e}")
            continue
        if table is None:
            problems.append(f"{name}: {obj!r} is a database; name one table per entry, e.g. {example}")
            continue
        if (db, None) not in parsed and (db, table) not in parsed:
            problems.append(
                f"{name}: {obj!r} is not among the selected objects (source names); select it in objects, "
                "correct the name, or remove the entry"
            )
        if not isinstance(entry, dict):
            problems.append(f'{name}: {obj!r}: expected an object like {{"policy": "Ignore"}} or {example}')
            continue
        unknown = sorted(k for k in entry if k not in ("policy", "column"))
        if unknown:
            problems.append(
                f"{name}: {obj!r}: unknown field(s) {', '.join(unknown)}; allowed fields are policy, column"
            )
        policy = entry.get("policy")
        column = entry.get("column")
        if policy not in TABLE_POLICIES:
            problems.append(f"{name}: {obj!r}: policy {policy!r} is not allowed; use one of {allowed}")
            continue
        if policy in COLUMN_POLICIES:
            which = "larger" if policy == "UseMax" else "smaller"
            if not isinstance(column, str):
                problems.append(
                    f'{name}: {obj!r}: policy {policy} needs "column": the column whose {which} value wins, '
                    f"e.g. {example}"
                )
                continue
            err = check_identifier(column, f"{name}: {obj!r}: column")
            if err:
                problems.append(err)
                continue
            clean[format_object_name(db, table)] = {"policy": policy, "column": column}
        else:
            if column is not None:
                problems.append(f'{name}: {obj!r}: "column" is only for UseMax / UseMin; remove it for policy {policy}')
                continue
            clean[format_object_name(db, table)] = {"policy": policy}
    f.kw["table_conflict_policies"] = clean


def _check_retry(f: _Fields) -> None:
    p, problems = f.p, f.problems
    retry = f.data.get("retry_minutes", DEFAULT_RETRY_MINUTES)
    if isinstance(retry, bool) or not isinstance(retry, int) or not 1 <= retry <= MAX_RETRY_MINUTES:
        if isinstance(retry, str) and retry.isdigit() and 1 <= int(retry) <= MAX_RETRY_MINUTES:
            retry = int(retry)
        else:
            problems.append(
                f"{p}retry_minutes: {retry!r} is not allowed; use a whole number of minutes from 1 to "
                f"{MAX_RETRY_MINUTES}"
            )
            retry = DEFAULT_RETRY_MINUTES
    f.kw["retry_minutes"] = retry


def _check_lists(f: _Fields) -> None:
    p, problems = f.p, f.problems
    ignore = f.data.get("ignore_precheck_items", []) or []
    if isinstance(ignore, str):
        ignore = [ignore]
    for item in ignore:
        if item not in PRECHECK_ITEMS:
            problems.append(
                f"{p}ignore_precheck_items: {item!r} is not a precheck item; known items: {', '.join(PRECHECK_ITEMS)}"
            )
    f.kw["ignore_precheck_items"] = tuple(i for i in ignore if i in PRECHECK_ITEMS)
    skip = f.data.get("skip_initial_tables", []) or []
    f.kw["skip_initial_tables"] = tuple(skip)


def _check_role_rules(f: _Fields) -> None:
    if f.kw["role"] == "reverse" and not f.kw["exclude_ddl"]:
        f.problems.append(
            f"{f.p}exclude_ddl: the reverse direction (task two) must exclude DDL; DTS synchronizes DDL in one "
            "direction only"
        )


# The validators in the order their problems are listed (later ones read what earlier ones set in ``kw``).
_VALIDATORS: tuple[Callable[[_Fields], None], ...] = (
    _check_known,
    _check_identity,
    _check_connections,
    _check_control_schema,
    _check_objects,
    _check_mapping,
    _check_dml_types,
    _check_enums_and_flags,
    _check_self_check,
    _check_table_policies,
    _check_retry,
    _check_lists,
    _check_role_rules,
)


def _build_direction(data: Any, prefix: str, problems: list[str]) -> SyncDirection | None:
    if not isinstance(data, dict):
        problems.append(
            f"{prefix or 'direction'}: expected an object with the direction's settings, got {type(data).__name__}"
        )
        return None
    f = _Fields(data, prefix, problems)
    for validate in _VALIDATORS:
        validate(f)
    try:
        direction = SyncDirection(**f.kw)
    except TypeError as e:  # pragma: no cover - guarded by the checks above
        problems.append(f"{prefix}: {e}")
        return None
    problems.extend(_destination_clashes(direction, prefix))
    return direction


def _destination_clashes(d: SyncDirection, p: str) -> list[str]:
    """Two selected objects that would land on the same destination database or table (after mapping)."""
    out: list[str] = []
    whole: dict[str, str] = {}  # destination database (any case) -> the selected database filling it
    for db, table in d.selected:
        if table is None:
            dest = d.map_database(db)
            other = whole.setdefault(dest.lower(), format_object_name(db))
            if other != format_object_name(db):
                out.append(
                    f"{p}mapping: {format_object_name(db)!r} and {other!r} both land in database {dest!r}; "
                    "map them to different databases"
                )
    tables: dict[tuple[str, str], str] = {}
    for db, table in d.selected:
        if table is None or (db, None) in d.selected:  # the overlap itself is reported with the objects
            continue
        name = format_object_name(db, table)
        ddb, dt = d.map_table(db, table)
        if ddb.lower() in whole:
            out.append(
                f"{p}mapping: {name!r} lands in database {ddb!r}, which {whole[ddb.lower()]!r} fills whole; "
                "map it to another database"
            )
        other = tables.setdefault((ddb.lower(), dt.lower()), name)
        if other != name:
            out.append(
                f"{p}mapping: {name!r} and {other!r} both land on table {format_object_name(ddb, dt)!r}; "
                "map them to different tables"
            )
    return out


# --------------------------------------------------------------------------- two-way task


@dataclass(frozen=True)
class TwoWayTask:
    """A named pair of directions: task one (forward) and task two (reverse)."""

    name: str
    forward: SyncDirection
    reverse: SyncDirection
    control_schema: str = DEFAULT_CONTROL_SCHEMA

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TwoWayTask:
        """Build from a dict like the DAG params.

        ``forward`` holds task one's settings. ``reverse`` holds task two's; anything it leaves out is
        derived from task one: connections swapped, objects and mapping inverted, DDL excluded.
        """
        problems: list[str] = []
        if not isinstance(data, dict):
            raise ConfigError([f"task: expected an object, got {type(data).__name__}"])
        for k in data:
            if k not in ("name", "control_schema", "forward", "reverse"):
                problems.append(f"{k}: unknown setting; allowed settings are name, control_schema, forward, reverse")
        name = data.get("name", "")
        control = data.get("control_schema", DEFAULT_CONTROL_SCHEMA)
        fwd_in = dict(data.get("forward") or {})
        fwd_in.update(task_name=name, role="forward", control_schema=control)
        forward = _build_direction(fwd_in, "forward.", problems)

        rev_in: dict[str, Any] = dict(data.get("reverse") or {})
        given = set(rev_in)
        forward_ok = forward is not None and not problems
        if forward is None or not forward_ok:  # task one's own problems are listed; derived values would repeat them
            rev_in.setdefault("source_conn_id", "task-one-destination")
            rev_in.setdefault("destination_conn_id", "task-one-source")
            rev_in.setdefault("objects", ["task_one_objects"])
        else:
            rev_in.setdefault("source_conn_id", forward.destination_conn_id)
            rev_in.setdefault("destination_conn_id", forward.source_conn_id)
            rev_in.setdefault("objects", list(forward.destination_objects()))
            rev_in.setdefault("mapping", forward.inverse_mapping())
            rev_in.setdefault("retry_minutes", forward.retry_minutes)
            rev_in.setdefault("guard_triggers", forward.guard_triggers)
            rev_in.setdefault("self_check", forward.self_check)
            rev_in.setdefault("self_check_rows_per_second", forward.self_check_rows_per_second)
            rev_in.setdefault("table_conflict_policies", forward.mirrored_table_policies())
        rev_in.setdefault("exclude_ddl", True)
        rev_in.update(task_name=name, role="reverse", control_schema=control)
        rev_problems: list[str] = []
        reverse = _build_direction(rev_in, "reverse.", rev_problems)
        problems += (
            rev_problems
            if forward_ok
            else [x for x in rev_problems if any(x.startswith(f"reverse.{k}:") for k in given)]
        )
        if problems:
            raise ConfigError(sorted(set(problems), key=problems.index))
        assert forward is not None and reverse is not None
        if (
            forward.source_conn_id != reverse.destination_conn_id
            or forward.destination_conn_id != reverse.source_conn_id
        ):
            raise ConfigError(
                [
                    "reverse: task two must run between the same two servers as task one, the other way: "
                    f"source_conn_id={forward.destination_conn_id!r}, destination_conn_id={forward.source_conn_id!r}"
                ]
            )
        reverse = replace(reverse, skip_initial_tables=_overlap(forward, reverse))
        return cls(name=name, forward=forward, reverse=reverse, control_schema=control)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "control_schema": self.control_schema,
            "forward": _strip_identity(self.forward.to_dict()),
            "reverse": _strip_identity(self.reverse.to_dict()),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TwoWayTask:
        return cls.from_dict(json.loads(text))


def _strip_identity(d: dict[str, Any]) -> dict[str, Any]:
    for k in ("task_name", "role", "control_schema", "skip_initial_tables"):
        d.pop(k, None)
    return d


def _overlap(forward: SyncDirection, reverse: SyncDirection) -> tuple[str, ...]:
    """Reverse-direction selections whose tables task one already fills (spec: skip their initial sync).

    Returned as reverse-side object names (``db`` for a whole database, ``db.table`` for a table).
    """
    fwd_dest_dbs = {forward.map_database(db) for db, t in forward.selected if t is None}
    fwd_dest_tables = {forward.map_table(db, t) for db, t in forward.selected if t is not None}
    out = []
    for db, table in reverse.selected:
        if table is None:
            if db in fwd_dest_dbs:
                out.append(format_object_name(db))
            else:
                out.extend(format_object_name(d, t) for d, t in sorted(fwd_dest_tables) if d == db)
        elif db in fwd_dest_dbs or (db, table) in fwd_dest_tables:
            out.append(format_object_name(db, table))
    return tuple(out)


def skips_initial(direction: SyncDirection, db: str, table: str) -> bool:
    """True when the opposite direction already initially syncs ``db.table`` (reverse-side names)."""
    for obj in direction.skip_initial_tables:
        sdb, stable = split_object_name(obj)
        if sdb == db and (stable is None or stable == table):
            return True
    return False
