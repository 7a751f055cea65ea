"""The "DTS sync" page in the Airflow UI: each sync direction's status, read from the control schemas.

Two layers:

- ``collect_status(settings_list, control_schema)`` is plain Python (no Airflow): it opens each server with
  the engine's ``ConnectionSettings``, reads ``sync_state`` + ``checkpoint`` (via ``ControlSchema``), the latest
  ``conflict_log`` rows, the failed ``precheck_result`` items and the open ``divergence`` rows (differences the
  running sync's self-check confirmed, with both row images), and returns a JSON-ready dict. A server that
  cannot be reached becomes an error entry; nothing raises.
- The Airflow layer (``create_app``, ``DtsStatusPlugin``) looks up the Airflow connections named in
  ``DTS_STATUS_CONN_IDS`` (comma-separated, default ``dts_source,dts_destination``) with ``DtsMySqlHook`` and
  serves a FastAPI app mounted at ``/dts``: ``/dts/`` is an HTML page (refreshes itself every few seconds),
  ``/dts/api/status`` the same data as JSON. The control schema is ``DTS_STATUS_CONTROL_SCHEMA`` (default
  ``dts_meta``). A nav entry "DTS sync" shows the page inside the Airflow UI.

Both endpoints require a signed-in Airflow user (the UI's session cookie or an API bearer token) who may read
the configured connections (the auth manager's ``is_authorized_connection``, method GET), because the page
shows data read through them: row keys and images in the conflict log. Data comes only from the MySQL
servers, never from Airflow's database, and the page never shows a password.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any

import pymysql
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.status import DirectionStatus, read_directions

DEFAULT_CONN_IDS = "dts_source,dts_destination"
DEFAULT_CONTROL_SCHEMA = "dts_meta"
CONFLICT_LIMIT = 20
DIVERGENCE_LIMIT = 50
PRECHECK_LIMIT = 50
REFRESH_SECONDS = 5
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10

DIRECTION_LABELS = {"forward": "task one (forward)", "reverse": "task two (reverse)"}


# --------------------------------------------------------------------------- data (plain Python)


def _jsonable(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)  # sessions run in UTC
        return value.isoformat()
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _row(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in d.items()}


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _int(v: Any) -> int:
    return int(v or 0)


def _read_divergences(conn, cs: ControlSchema, server: str) -> tuple[list[dict[str, Any]], dict[tuple, int]]:
    """Open (unresolved) divergences the self-check confirmed, latest first, and their count per direction."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        try:
            cur.execute(
                f"SELECT task_name, direction, COUNT(*) AS n FROM {cs.table('divergence')} "
                f"WHERE resolved_at IS NULL GROUP BY task_name, direction"
            )
        except pymysql.err.ProgrammingError as e:  # control schema older than version 3: no self-check yet
            if e.args and e.args[0] == 1146:
                return [], {}
            raise
        counts = {(r["task_name"], r["direction"]): int(r["n"]) for r in cur.fetchall()}
        cur.execute(
            f"SELECT id, task_name, direction, source_db, source_table, dest_db, dest_table, kind, key_json, "
            f"columns_json, source_image, dest_image, found_by, detected_at, last_seen_at "
            f"FROM {cs.table('divergence')} WHERE resolved_at IS NULL ORDER BY id DESC LIMIT %s",
            (DIVERGENCE_LIMIT,),
        )
        rows = [_row({"server": server, **r}) for r in cur.fetchall()]
    return rows, counts


def _direction_entry(server: str, status: DirectionStatus, open_divergences: int) -> dict[str, Any]:
    """One row of the page's Directions table: the state row as read by ``engine.status``, made JSON-ready."""
    st = status.row
    pos = None
    if status.binlog_file is not None and status.binlog_pos is not None:
        pos = f"{status.binlog_file}:{status.binlog_pos}"
    return _row(
        {
            "server": server,
            "task_name": status.task_name,
            "direction": status.role,
            "direction_label": DIRECTION_LABELS.get(status.role, status.role),
            "state": status.state,
            "message": status.message,
            "lag_seconds": st.get("lag_seconds"),
            "rows_per_second": st.get("rows_per_second"),
            "rows_inserted": status.rows_inserted,
            "rows_updated": status.rows_updated,
            "rows_deleted": status.rows_deleted,
            "rows_applied": status.rows_inserted + status.rows_updated + status.rows_deleted,
            "transactions_applied": status.transactions_applied,
            "conflicts": status.conflicts,
            "last_source_commit_at": st.get("last_source_commit_at") or st.get("source_commit_at"),
            "last_applied_at": st.get("last_applied_at"),
            "binlog_file": status.binlog_file,
            "binlog_pos": status.binlog_pos,
            "binlog_position": pos,
            "gtid": st.get("gtid"),
            "retrying_since": st.get("retrying_since"),
            "started_at": st.get("started_at"),
            "updated_at": st.get("updated_at"),
            "updated_seconds_ago": None if status.age_seconds is None else round(status.age_seconds, 1),
            # Synchronizing but not refreshed within status.STALE_AFTER_SECONDS: its incremental task is not running
            "stale": status.stale,
            # the self-check (engine/selfcheck.py): confirmed differences between the two servers
            "divergences": _int(st.get("divergences")),
            "open_divergences": open_divergences,
            "last_divergence": st.get("last_divergence"),
            "last_divergence_at": st.get("last_divergence_at"),
            "self_check_message": st.get("self_check_message"),
            "self_check_at": st.get("self_check_at"),
        }
    )


def _read_server(settings: ConnectionSettings, cs: ControlSchema) -> tuple[bool, list, list, list, list]:
    conn = settings.connect(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, write_timeout=READ_TIMEOUT)
    try:
        if not cs.exists(conn):
            return False, [], [], [], []
        server = settings.name or settings.describe()
        divergences, open_counts = _read_divergences(conn, cs, server)
        directions = [
            _direction_entry(server, status, open_counts.get((status.task_name, status.role), 0))
            for status in read_directions(conn, cs.schema)
        ]
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(
                f"SELECT id, task_name, direction, detected_at, conflict_type, policy, decision, source_db, "
                f"source_table, dest_db, dest_table, key_json, source_position "
                f"FROM {cs.table('conflict_log')} ORDER BY id DESC LIMIT %s",
                (CONFLICT_LIMIT,),
            )
            conflicts = [_row({"server": server, **r}) for r in cur.fetchall()]
            cur.execute(
                f"SELECT task_name, direction, item, status, reason, fix, run_id, checked_at "
                f"FROM {cs.table('precheck_result')} WHERE status='FAIL' "
                f"ORDER BY checked_at DESC, task_name, direction, item LIMIT %s",
                (PRECHECK_LIMIT,),
            )
            prechecks = [_row({"server": server, **r}) for r in cur.fetchall()]
        return True, directions, conflicts, prechecks, divergences
    finally:
        conn.close()


def collect_status(
    settings_list: Iterable[ConnectionSettings], control_schema: str = DEFAULT_CONTROL_SCHEMA
) -> dict[str, Any]:
    """Status of every direction whose control rows live on one of these servers; never raises for a server.

    Returns ``{"control_schema", "generated_at", "servers": [{"server", "address", "ok", "error",
    "control_schema_exists", "directions"}], "directions": [...], "conflicts": [...latest first],
    "precheck_failures": [...], "divergences": [...open ones, latest first]}``.
    """
    settings_list = list(settings_list)
    secrets = [s.password for s in settings_list]
    cs = ControlSchema(control_schema)
    out: dict[str, Any] = {
        "control_schema": control_schema,
        "generated_at": _jsonable(_dt.datetime.now(_dt.UTC)),
        "servers": [],
        "directions": [],
        "conflicts": [],
        "precheck_failures": [],
        "divergences": [],
    }
    for settings in settings_list:
        entry: dict[str, Any] = {
            "server": settings.name or settings.describe(),
            "address": settings.describe(),
            "ok": True,
            "error": None,
            "control_schema_exists": None,
            "directions": 0,
        }
        try:
            exists, directions, conflicts, prechecks, divergences = _read_server(settings, cs)
        except Exception as e:  # one bad server must not hide the others
            entry.update(ok=False, error=_scrub(f"{type(e).__name__}: {e}", secrets))
        else:
            entry.update(control_schema_exists=exists, directions=len(directions))
            out["directions"].extend(directions)
            out["conflicts"].extend(conflicts)
            out["precheck_failures"].extend(prechecks)
            out["divergences"].extend(divergences)
        out["servers"].append(entry)
    for row in out["directions"] + out["precheck_failures"]:
        for k in ("message", "reason", "fix", "last_divergence", "self_check_message"):
            if isinstance(row.get(k), str):
                row[k] = _scrub(row[k], secrets)
    out["directions"].sort(key=lambda r: (r["task_name"], r["direction"] != "forward", r["direction"]))
    out["conflicts"].sort(key=lambda r: r.get("detected_at") or "", reverse=True)
    out["conflicts"] = out["conflicts"][:CONFLICT_LIMIT]
    out["precheck_failures"].sort(key=lambda r: r.get("checked_at") or "", reverse=True)
    out["divergences"].sort(key=lambda r: r.get("detected_at") or "", reverse=True)
    out["divergences"] = out["divergences"][:DIVERGENCE_LIMIT]
    return out


# --------------------------------------------------------------------------- HTML


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<td>-</td>"
    if isinstance(value, float):
        value = f"{value:,.1f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:,}"
    return f"<td>{html.escape(str(value), quote=True)}</td>"


def _table(headers: list[str], rows: list[list[Any]], empty: str, css: str | Callable[[list[Any]], str] = "") -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{html.escape(css(r) if callable(css) else css, quote=True)}">'
        + "".join(_cell(v) for v in r[1:])
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _state_css(d: dict[str, Any]) -> str:
    if d.get("stale") or d.get("open_divergences"):
        return "bad"
    return {
        "Synchronizing": "ok",
        "Failed": "bad",
        "PrecheckFailed": "bad",
        "InitializeFailed": "bad",
        "Stopped": "idle",
        "NotStarted": "idle",
    }.get(str(d.get("state")), "busy")


def _state_text(d: dict[str, Any]) -> str:
    text = str(d.get("state") or "-")
    if d.get("retrying_since"):
        text += f" (retrying since {d['retrying_since']})"
    if d.get("open_divergences"):
        text += (
            f" - SERVERS DIFFER: {d['open_divergences']} row(s) found different by the self-check "
            "(see Divergences below)"
        )
    if d.get("stale"):
        text += f" - no update for {d['updated_seconds_ago']:.0f} s: is its incremental task running?"
    return text


def _server_text(s: dict[str, Any], schema: str) -> str:
    if not s["ok"]:
        return f"ERROR: {s['error']}"
    if s.get("control_schema_exists") is False:
        return f"OK (no control schema {schema} here yet)"
    return "OK"


def render_html(status: dict[str, Any], refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The status page; every value from the servers is HTML-escaped."""
    e = html.escape
    servers = _table(
        ["Server", "Address", "Status", "Directions here"],
        [
            [
                ("ok" if s["ok"] else "bad"),
                s["server"],
                s["address"],
                _server_text(s, status["control_schema"]),
                s["directions"],
            ]
            for s in status["servers"]
        ],
        "No servers configured (DTS_STATUS_CONN_IDS).",
        css=lambda r: r[0],
    )
    directions = _table(
        [
            "Task",
            "Direction",
            "State",
            "Message",
            "Lag (s)",
            "Rows/s",
            "Inserted",
            "Updated",
            "Deleted",
            "Transactions",
            "Conflicts",
            "Last source commit",
            "Binlog position",
            "Updated at",
            "Stored on",
        ],
        [
            [
                _state_css(d),
                d["task_name"],
                d["direction_label"],
                _state_text(d),
                d["message"],
                d["lag_seconds"],
                d["rows_per_second"],
                d["rows_inserted"],
                d["rows_updated"],
                d["rows_deleted"],
                d["transactions_applied"],
                d["conflicts"],
                d["last_source_commit_at"],
                d["binlog_position"],
                d["updated_at"],
                d["server"],
            ]
            for d in status["directions"]
        ],
        f"No sync direction found in the control schema {status['control_schema']}.",
        css=lambda r: r[0],
    )
    conflicts = _table(
        [
            "Detected at",
            "Task",
            "Direction",
            "Type",
            "Policy",
            "Decision",
            "Table (destination)",
            "Key",
            "Source position",
        ],
        [
            [
                "",
                c["detected_at"],
                c["task_name"],
                DIRECTION_LABELS.get(c["direction"], c["direction"]),
                c["conflict_type"],
                c["policy"],
                c["decision"],
                f"{c['dest_db']}.{c['dest_table']}",
                c["key_json"],
                c["source_position"],
            ]
            for c in status["conflicts"]
        ],
        "No conflicts logged.",
    )
    divergences = _table(
        [
            "Detected at",
            "Task",
            "Direction",
            "Kind",
            "Table (source -> destination)",
            "Key",
            "Columns",
            "Source row",
            "Destination row",
            "Found by",
            "Last seen",
        ],
        [
            [
                "bad",
                v["detected_at"],
                v["task_name"],
                DIRECTION_LABELS.get(v["direction"], v["direction"]),
                v["kind"],
                f"{v['source_db']}.{v['source_table']} -> {v['dest_db']}.{v['dest_table']}",
                v["key_json"],
                v["columns_json"],
                v["source_image"],
                v["dest_image"],
                v["found_by"],
                v["last_seen_at"],
            ]
            for v in status["divergences"]
        ],
        "No divergence found by the self-check.",
    )
    self_check = _table(
        ["Task", "Direction", "Self-check", "Divergences found", "Last divergence", "At"],
        [
            [
                "",
                d["task_name"],
                d["direction_label"],
                d["self_check_message"],
                d["divergences"],
                d["last_divergence"],
                d["last_divergence_at"],
            ]
            for d in status["directions"]
            if d.get("self_check_message") or d.get("divergences")
        ],
        "No self-check has run yet.",
    )
    prechecks = _table(
        ["Checked at", "Task", "Direction", "Item", "Reason", "Fix"],
        [
            [
                "bad",
                p["checked_at"],
                p["task_name"],
                DIRECTION_LABELS.get(p["direction"], p["direction"]),
                p["item"],
                p["reason"],
                p["fix"],
            ]
            for p in status["precheck_failures"]
        ],
        "No failed precheck items.",
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{int(refresh_seconds)}">
<title>DTS sync status</title>
<style>
body {{ font-family: system-ui, sans-serif; font-size: 13px; margin: 12px; color: #222; }}
h1 {{ font-size: 18px; }} h2 {{ font-size: 15px; margin-top: 20px; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }} td {{ word-break: break-word; }}
tr.ok td:first-child {{ border-left: 4px solid #2e7d32; }} tr.bad td {{ background: #fdecea; }}
tr.busy td:first-child {{ border-left: 4px solid #1565c0; }} tr.idle td:first-child {{ border-left: 4px solid #999; }}
.empty, .meta {{ color: #666; }}
</style></head><body>
<h1>DTS two-way sync</h1>
<p class="meta">Control schema <code>{e(status["control_schema"])}</code>
&middot; read at {e(str(status["generated_at"]))} &middot; refreshes every {int(refresh_seconds)} s
&middot; <a href="api/status">JSON</a></p>
<h2>Directions</h2>{directions}
<h2>Divergences (rows that differ between the servers)</h2>{divergences}
<h2>Self-check</h2>{self_check}
<h2>Servers</h2>{servers}
<h2>Latest conflicts</h2>{conflicts}
<h2>Failed precheck items</h2>{prechecks}
</body></html>"""


# --------------------------------------------------------------------------- Airflow layer


def configured_conn_ids() -> list[str]:
    raw = os.environ.get("DTS_STATUS_CONN_IDS", DEFAULT_CONN_IDS)
    return [c.strip() for c in raw.split(",") if c.strip()]


def configured_control_schema() -> str:
    return os.environ.get("DTS_STATUS_CONTROL_SCHEMA", "").strip() or DEFAULT_CONTROL_SCHEMA


def status_from_connections(conn_ids: list[str] | None = None, control_schema: str | None = None) -> dict[str, Any]:
    """Look up the Airflow connections, then ``collect_status``; an unknown conn id is an error entry."""
    from airflow_provider_dts.hooks.dts import DtsMySqlHook

    conn_ids = configured_conn_ids() if conn_ids is None else conn_ids
    control_schema = control_schema or configured_control_schema()
    settings: list[ConnectionSettings] = []
    lookup_errors: list[dict[str, Any]] = []
    for cid in conn_ids:
        try:
            settings.append(DtsMySqlHook(mysql_conn_id=cid).get_settings())
        except Exception as e:
            lookup_errors.append(
                {
                    "server": cid,
                    "address": "-",
                    "ok": False,
                    "directions": 0,
                    "error": f"Airflow connection {cid!r} cannot be read: {type(e).__name__}: {e}. "
                    f"Fix: define it, or change DTS_STATUS_CONN_IDS",
                }
            )
    status = collect_status(settings, control_schema)
    status["servers"] = lookup_errors + status["servers"]
    return status


# module level: FastAPI resolves the (string) annotation below in this module's globals
_BEARER = HTTPBearer(auto_error=False)


def create_app(*, require_auth: bool = True):
    """The FastAPI app the plugin mounts at ``/dts``. ``require_auth=False`` only for tests of the page itself."""

    async def authorized_user(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ):
        # Airflow's own checks, imported on first use so that loading the plugin in the scheduler or a worker
        # does not import the API server's security module: who is it (bearer token, else the UI's session
        # cookie), and may they read the connections whose servers the page shows (row keys and images)?
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
        from airflow.api_fastapi.core_api.security import get_user

        user = await get_user(request, None, credentials)
        manager = get_auth_manager()
        denied = [
            cid
            for cid in configured_conn_ids()
            if not manager.is_authorized_connection(method="GET", details=ConnectionDetails(conn_id=cid), user=user)
        ]
        if denied:
            raise HTTPException(
                status_code=403,
                detail=f"the DTS sync status shows data read through the connection(s) {', '.join(denied)}; "
                "it needs read access to them (in Airflow's simple auth manager: the Op or Admin role). "
                "Ask an administrator for that access.",
            )
        return user

    dependencies = [Depends(authorized_user)] if require_auth else []

    app = FastAPI(
        title="DTS two-way sync status", dependencies=dependencies, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:  # sync def: FastAPI runs it in a worker thread (blocking PyMySQL)
        return HTMLResponse(
            render_html(status_from_connections()),
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/api/status")
    def api_status() -> JSONResponse:
        body = json.loads(json.dumps(status_from_connections(), default=str))
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return app


class DtsStatusPlugin(AirflowPlugin):
    """Airflow 3 plugin: the DTS sync status page at ``/dts/`` and a "DTS sync" nav entry (Plugins menu)."""

    name = "dts_status"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/dts", "name": "DTS sync status"}]
    external_views = [
        {
            "name": "DTS sync",
            # relative to the UI's <base href>, so it also works when Airflow is served under a sub-path
            "href": "dts/",
            "url_route": "dts-sync",
            "destination": "nav",
        }
    ]
