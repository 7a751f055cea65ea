"""Changing the objects of an initialized sync (DTS's "modify objects").

Triggering the DAG again with the same ``task_name`` and other settings is a modification of a sync whose
directions are already initialized (checkpoint ``binlog_file`` set). Each direction compares the settings it
is given with the ones it was last initialized or modified with (``sync_state.synced_config`` on its
destination, next to its checkpoint; ``sync_state.config_json`` is not usable: every precheck overwrites it):

* **Objects added**: the initial schema sync creates only what is new, and the full data sync copies only the
  added tables, from a fresh consistent snapshot at position S, while the direction's checkpoint P stays where
  it is. Each added table's S is stored in ``table_progress.catchup_file/pos``; when the incremental sync
  resumes from P, the added table's changes in transactions ending at or before S apply idempotently (the
  snapshot already holds them), later ones strictly (``apply.Applier``). Tables the opposite direction covers
  (``skip_initial_tables``) are not copied back: they are applied strictly from P.
* **Objects removed**: the binlog reader filters by the direction's objects, so they are simply no longer
  synchronized; nothing is dropped or changed on either server (logged).
* **Settings that change in place** (``IN_PLACE``): take effect with the new run.
* **Anything else** (the mapping of an object already synchronized, another source or destination server,
  ``existing_table_mode``, another control schema for the same ``task_name``) cannot be applied to a running
  sync: ``ModifyRefused`` is raised before anything is written, saying what to do. Tables are added only while
  the direction is stopped (its lease free): a running reader with the old objects would skip their changes.

While added tables are being copied, ``synced_config`` keeps the old settings plus the list of tables being
added (``adding``), so an interrupted copy resumes after its last chunk, while a table that was synchronized
earlier, removed and now added again is copied from scratch. Once every added table is copied,
``synced_config`` holds the new settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql

from airflow_provider_dts.engine.config import SyncDirection, format_object_name, split_object_name
from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.running import lease_holder
from airflow_provider_dts.engine.sqltext import as_text, quote_ident

log = logging.getLogger(__name__)

# Settings a running sync takes over as they are (the next run uses them).
IN_PLACE = (
    "dml_types",
    "exclude_ddl",
    "conflict_policy",
    "table_conflict_policies",
    "retry_minutes",
    "ignore_precheck_items",
    "sync_triggers",
    "guard_triggers",
    "self_check",
    "self_check_rows_per_second",
    "self_check_auto_repair",
    "initial_schema_sync",
    "initial_full_data_sync",
)


class ModifyRefused(DtsError):
    """The new settings cannot be applied to the initialized sync (message says what to do)."""


@dataclass
class Modification:
    """What re-running an initialized direction with ``direction``'s settings changes."""

    direction: SyncDirection  # the new settings
    stored: SyncDirection  # the settings it was last initialized or modified with
    added: tuple[str, ...] = ()  # selected object names (source side) not synchronized so far
    removed: tuple[str, ...] = ()  # object names no longer selected
    settings: tuple[str, ...] = ()  # in-place changes, "name: old -> new"
    added_tables: list = field(default_factory=list)  # schema_sync.TableRef of the tables to copy
    adding_before: frozenset = frozenset()  # tables an interrupted earlier modification was adding
    baseline: str = "stored"  # "stored" | "table_progress" | "none" (where ``stored`` came from)
    identities: dict[str, Any] = field(default_factory=dict)

    def added_direction(self) -> SyncDirection | None:
        """The direction restricted to the added objects (what schema sync and data sync work on)."""
        return replace(self.direction, objects=self.added) if self.added else None

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"objects added: {', '.join(self.added)}")
        if self.removed:
            parts.append(
                f"objects no longer synchronized (left as they are on both servers): {', '.join(self.removed)}"
            )
        if self.settings:
            parts.append(f"settings changed in place: {'; '.join(self.settings)}")
        return "; ".join(parts) if parts else "no change of objects or settings"


# ----------------------------------------------------------------------------------------- stored settings


def server_identity(conn) -> dict[str, Any]:
    """What tells one server from another: MySQL's server_uuid when there is one, else server_id/host/port."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@server_id, @@hostname, @@port")
        sid, host, port = cur.fetchone()
        uuid = None
        try:
            cur.execute("SELECT @@server_uuid")
            uuid = cur.fetchone()[0]
        except pymysql.err.MySQLError:
            pass  # MariaDB has none
    return {"server_id": int(sid), "hostname": as_text(host), "port": int(port), "uuid": as_text(uuid)}


def _same_server(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    if not a:
        return True  # nothing recorded: cannot tell
    if a.get("uuid") and b.get("uuid"):
        return a["uuid"] == b["uuid"]
    return (a.get("server_id"), a.get("hostname"), a.get("port")) == (b["server_id"], b["hostname"], b["port"])


def _describe_server(i: dict[str, Any] | None) -> str:
    if not i:
        return "unknown"
    return f"{i.get('hostname')}:{i.get('port')} server_id {i.get('server_id')}" + (
        f" uuid {i['uuid']}" if i.get("uuid") else ""
    )


def read_synced(conn, control: ControlSchema, direction: SyncDirection) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        try:
            cur.execute(
                f"SELECT synced_config FROM {control.table('sync_state')} WHERE task_name=%s AND direction=%s",
                (direction.task_name, direction.role),
            )
        except pymysql.err.MySQLError:
            return None  # control schema older than version 4
        row = cur.fetchone()
    if not row or not row[0]:
        return None
    return json.loads(as_text(row[0]))


def write_synced(
    cur, control: ControlSchema, direction: SyncDirection, identities: dict[str, Any], adding: list | None = None
) -> None:
    """Store ``direction`` as the settings the direction runs with (on a cursor: joins its transaction)."""
    doc = {"direction": direction.to_dict(), **identities}
    if adding:
        doc["adding"] = [list(t) for t in adding]
    cur.execute(
        f"INSERT INTO {control.table('sync_state')} (task_name, direction, state, synced_config, updated_at) "
        f"VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE synced_config=VALUES(synced_config)",
        (direction.task_name, direction.role, State.NOT_STARTED, json.dumps(doc, sort_keys=True)),
    )


def record_initialized(cur, control: ControlSchema, direction: SyncDirection, ids: dict[str, Any]) -> None:
    """Store the settings a direction was just initialized with (the baseline of later modifications);
    ``ids``: ``identities(source connection, destination connection)``."""
    write_synced(cur, control, direction, ids)


def identities(src_conn, dst_conn) -> dict[str, Any]:
    return {"source_server": server_identity(src_conn), "destination_server": server_identity(dst_conn)}


# ----------------------------------------------------------------------------------------- the comparison


def _initialized(conn, control: ControlSchema, direction: SyncDirection) -> bool:
    if not control.exists(conn) or control.version(conn) == 0:
        return False
    cp = control.read_checkpoint(conn, direction.task_name, direction.role)
    return cp is not None and cp.binlog_file is not None


def _other_control_schema(conn, direction: SyncDirection) -> str | None:
    """Another control schema on this server in which the same task/direction is initialized."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.TABLE_SCHEMA FROM information_schema.TABLES c JOIN information_schema.TABLES v "
            "ON v.TABLE_SCHEMA=c.TABLE_SCHEMA AND v.TABLE_NAME='schema_version' "
            "WHERE c.TABLE_NAME='checkpoint' AND c.TABLE_SCHEMA<>%s",
            (direction.control_schema,),
        )
        schemas = [as_text(r[0]) for r in cur.fetchall()]
        for s in schemas:
            try:
                cur.execute(
                    f"SELECT 1 FROM {quote_ident(s)}.`checkpoint` WHERE task_name=%s AND direction=%s "
                    "AND binlog_file IS NOT NULL",
                    (direction.task_name, direction.role),
                )
            except pymysql.err.MySQLError:
                continue
            if cur.fetchone():
                return s
    return None


def _baseline_from_progress(conn, control: ControlSchema, direction: SyncDirection) -> SyncDirection | None:
    """A sync initialized before settings were stored: the tables it copied, with their destination names."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT source_db, source_table, dest_db, dest_table FROM {control.table('table_progress')} "
            "WHERE task_name=%s AND direction=%s AND status IN ('created','copying','done','kept')",
            (direction.task_name, direction.role),
        )
        rows = [tuple(as_text(v) for v in r) for r in cur.fetchall()]
    if not rows:
        return None
    objects = tuple(format_object_name(r[0], r[1]) for r in rows)
    mapping = {format_object_name(r[0], r[1]): format_object_name(r[2], r[3]) for r in rows if r[:2] != r[2:]}
    return replace(direction, objects=objects, mapping=mapping)


def _diff_objects(old: SyncDirection, new: SyncDirection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(objects ``new`` selects that ``old`` does not, objects ``old`` selects that ``new`` does not)."""
    return _selected_only_by(new, old), _selected_only_by(old, new)


def _selected_only_by(one: SyncDirection, other: SyncDirection) -> tuple[str, ...]:
    return tuple(
        format_object_name(db, t)
        for db, t in one.selected
        if (not other.whole_database(db) if t is None else not other.selects_table(db, t))
    )


def _mapping_changes(old: SyncDirection, new: SyncDirection) -> list[str]:
    """Objects synchronized before and now whose destination name differs."""
    out = []
    kept_dbs = [db for db, t in old.selected if t is None and new.whole_database(db)]
    for db in kept_dbs:
        if old.map_database(db) != new.map_database(db):
            out.append(
                f"{format_object_name(db)} -> {format_object_name(old.map_database(db))} before, "
                f"{format_object_name(new.map_database(db))} now"
            )
    tables = {(db, t) for db, t in old.selected if t is not None and new.selects_table(db, t)}
    for key in set(old.mapping) | set(new.mapping):  # table renames inside databases synchronized both times
        db, t = split_object_name(key)
        if t is not None and db in kept_dbs:
            tables.add((db, t))
    for db, t in sorted(tables):
        if old.map_table(db, t) != new.map_table(db, t):
            out.append(
                f"{format_object_name(db, t)} -> {format_object_name(*old.map_table(db, t))} before, "
                f"{format_object_name(*new.map_table(db, t))} now"
            )
    return out


def _value(d: SyncDirection, name: str) -> Any:
    v = getattr(d, name)
    return v.value if hasattr(v, "value") else (list(v) if isinstance(v, tuple) else v)


def plan_modification(
    direction: SyncDirection, src_conn, dst_conn, *, logger: logging.Logger | None = None
) -> Modification | None:
    """Compare ``direction`` with the settings its initialized direction runs with (module doc).

    Returns None when the direction is not initialized (a first run), else the ``Modification``. Raises
    ``ModifyRefused`` for a change that cannot be applied in place. Writes nothing.
    """
    lg = logger or log
    control = ControlSchema(direction.control_schema)
    what = f"{direction.key}: task {direction.task_name!r} is already running"
    again = (
        "Fix: trigger it with its previous settings for this, or stop the sync (mark both incremental tasks "
        "success), drop its control schema rows and the destination's copies and initialize it again, or "
        "start a new sync under a new task_name"
    )
    if not _initialized(dst_conn, control, direction):
        other = _other_control_schema(dst_conn, direction)
        if other:
            raise ModifyRefused(
                f"{direction.key}: task {direction.task_name!r} is already initialized with the control schema "
                f"{other!r} on the destination; a running sync cannot move to another control schema "
                f"({direction.control_schema!r}). Fix: set control_schema back to {other!r}, or use a new task_name"
            )
        return None
    ids = identities(src_conn, dst_conn)
    doc = read_synced(dst_conn, control, direction)
    adding_before: frozenset = frozenset()
    if doc is not None:
        stored = SyncDirection.from_dict(doc["direction"])
        baseline = "stored"
        adding_before = frozenset(tuple(t) for t in doc.get("adding") or ())
        problems = []
        for side, conn_id, key in (
            ("source", direction.source_conn_id, "source_server"),
            ("destination", direction.destination_conn_id, "destination_server"),
        ):
            if not _same_server(doc.get(key), ids[key]):
                problems.append(
                    f"the {side} connection {conn_id!r} now reaches another server "
                    f"({_describe_server(ids[key])}; the sync runs with {_describe_server(doc.get(key))})"
                    f"; its checkpoint belongs to the old server. Fix: point {conn_id!r} back to that "
                    "server, or start a new sync under a new task_name"
                )
    else:
        from_progress = _baseline_from_progress(dst_conn, control, direction)
        stored, baseline = (from_progress, "table_progress") if from_progress is not None else (direction, "none")
        problems = []
        if from_progress is None:
            lg.warning(
                "%s: no record of the settings this sync was initialized with (initialized by an older "
                "version, without a full data sync); taking the current settings as they are: objects "
                "added now are NOT copied",
                direction.key,
            )
    if problems:
        raise ModifyRefused(f"{what}: " + "; ".join(problems))
    for m in _mapping_changes(stored, direction):
        problems.append(f"the mapping of {m}")
    if baseline == "stored" and stored.existing_table_mode != direction.existing_table_mode:
        problems.append(
            f"existing_table_mode {stored.existing_table_mode.value} before, "
            f"{direction.existing_table_mode.value} now (it decides how tables are first synchronized; "
            "the synchronized ones cannot be redone in place)"
        )
    if problems:
        raise ModifyRefused(
            f"{what} and these changes cannot be applied to it in place: {'; '.join(problems)}. " + again
        )
    added, removed = _diff_objects(stored, direction)
    settings = []
    if baseline == "stored":
        for name in IN_PLACE:
            a, b = _value(stored, name), _value(direction, name)
            if a != b:
                settings.append(f"{name}: {a!r} -> {b!r}")
        for name in ("source_conn_id", "destination_conn_id"):
            if getattr(stored, name) != getattr(direction, name):
                settings.append(f"{name}: {getattr(stored, name)!r} -> {getattr(direction, name)!r} (same server)")
    mod = Modification(
        direction,
        stored,
        added,
        removed,
        tuple(settings),
        adding_before=adding_before,
        baseline=baseline,
        identities=ids,
    )
    added_direction = mod.added_direction()
    if added_direction is not None:  # objects were added
        from airflow_provider_dts.engine.schema_sync import list_source_objects

        objs = list_source_objects(src_conn, added_direction)
        mod.added_tables = [r for r in objs.tables if not stored.selects_table(r.src_db, r.src_table)]
    if mod.added_tables and lease_holder(dst_conn, direction) is not None:
        raise ModifyRefused(
            f"{what} and its incremental sync is running now, with the old objects: tables cannot be added to it "
            f"while it runs ({', '.join(r.label for r in mod.added_tables)}). Fix: stop the sync first (mark both "
            "incremental tasks success), then trigger the DAG again with the new objects"
        )
    return mod


def begin(mod: Modification, dst_conn) -> None:
    """Before the first write of a modification: forget copy progress of added tables that does not belong to
    it (a table synchronized earlier, removed, now added again) and record which tables are being added."""
    if not mod.added_tables:
        return
    control = ControlSchema(mod.direction.control_schema)
    d = mod.direction
    with dst_conn.cursor() as cur:
        cur.execute("START TRANSACTION")
        for ref in mod.added_tables:
            if (ref.src_db, ref.src_table) not in mod.adding_before:
                cur.execute(
                    f"DELETE FROM {control.table('table_progress')} WHERE task_name=%s AND direction=%s "
                    "AND source_db=%s AND source_table=%s",
                    (d.task_name, d.role, ref.src_db, ref.src_table),
                )
        adding = sorted(set(mod.adding_before) | {(r.src_db, r.src_table) for r in mod.added_tables})
        write_synced(cur, control, mod.stored, mod.identities, adding=adding)
        cur.execute("COMMIT")
    mod.adding_before = frozenset(adding)


def finish(mod: Modification, cur) -> None:
    """Every added table is copied: the new settings are the ones the direction runs with (on a cursor)."""
    write_synced(cur, ControlSchema(mod.direction.control_schema), mod.direction, mod.identities)
