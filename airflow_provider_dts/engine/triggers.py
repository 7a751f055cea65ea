"""Guarded triggers: triggers that live on both servers and do nothing in the sync's own sessions.

A trigger on a synced table fires on every row the applier (or the full-sync copy writer) writes at the
receiving server, so without care it writes its extra or changed rows twice: once where the user wrote
(those rows arrive through the binlog) and once more at the other server. With ``guard_triggers`` on,
every trigger on the selected tables, on both servers, is rewritten so that its body runs only outside the
sync's sessions, the way SymmetricDS guards its MySQL triggers with a session variable its loader sets::

    IF @dts_applying IS NULL THEN
    <original body>
    ;
    END IF

Every session that writes for the sync sets ``@dts_applying = 1`` (``apply.APPLY_SESSION_SQL`` for the
appliers, ``snapshot._Writer`` for the copy, ``verify.Verifier.repair_table`` for repairs). A user's session
never sets it, so a user's write fires the trigger exactly once, where it happens; the trigger's own writes
reach the other server as rows.

The rewrite keeps the trigger's name, table, timing, event, DEFINER, ``sql_mode``, client character set and
connection collation (read from ``information_schema.TRIGGERS``) and its place among the table's triggers of
the same timing and event (``FOLLOWS``/``PRECEDES``). ``DATABASE_COLLATION`` is the database's collation at
the time of the rewrite (the server sets it; unchanged unless the database's default was changed since).
A body with non-ASCII text whose client character set is not utf8mb4/utf8mb3 is recreated with client
character set utf8mb4 (same text, same connection collation for its literals).

Replacement is atomic on MariaDB (``CREATE OR REPLACE TRIGGER``). MySQL has no such statement: the trigger is
dropped and created again while the session holds ``LOCK TABLES <table> WRITE``, so no other session writes
the table in between.

Idempotent: a body that already has the guard is left alone (``guard_triggers``), and only guarded bodies
are unwrapped (``remove_trigger_guards``), byte for byte back to the original text.

Privileges: TRIGGER on the selected tables on both servers; creating a trigger whose DEFINER is another
account needs SUPER (MariaDB, MySQL 5.7) or SET_USER_ID / SET_ANY_DEFINER (MySQL 8); with the binary log on, a
server may also need SUPER or ``log_bin_trust_function_creators=1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pymysql

from airflow_provider_dts.engine.config import SyncDirection, format_object_name
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.engine.sqltext import as_text, backslash_escapes, qualified, quote_ident, tokenize

log = logging.getLogger(__name__)

GUARD_VARIABLE = "@dts_applying"
GUARD_HEAD = f"IF {GUARD_VARIABLE} IS NULL THEN\n"
GUARD_TAIL = "\n;\nEND IF"  # on its own line: a body ending in a "-- comment" cannot swallow it


class TriggerGuardError(DtsError):
    """A trigger cannot be guarded or restored (message names the trigger and the fix)."""


# ----------------------------------------------------------------------------------------- bodies


def is_guarded(body: str) -> bool:
    return body.startswith(GUARD_HEAD) and body.endswith(GUARD_TAIL)


def guard_body(body: str) -> str:
    """The guarded form of a trigger body (a single statement or a BEGIN ... END block). Idempotent."""
    if is_guarded(body):
        return body
    return GUARD_HEAD + body + GUARD_TAIL


def unguard_body(body: str) -> str:
    """The original body of a guarded trigger body (unchanged when it is not guarded)."""
    if not is_guarded(body):
        return body
    return body[len(GUARD_HEAD) : -len(GUARD_TAIL)]


def guard_create_sql(create_sql: str, sql_mode: str | None = None) -> str:
    """A ``CREATE ... TRIGGER ... FOR EACH ROW [FOLLOWS|PRECEDES x] <body>`` statement with its body guarded.
    ``sql_mode``: the trigger's stored mode (its strings are read as written under it)."""
    tokens = tokenize(create_sql, backslash_escapes=backslash_escapes(sql_mode))
    for n in range(len(tokens) - 2):
        if tokens[n].kw("FOR") and tokens[n + 1].kw("EACH") and tokens[n + 2].kw("ROW"):
            k = n + 3
            if k < len(tokens) and tokens[k].kw("FOLLOWS", "PRECEDES"):
                k += 2  # the keyword and the other trigger's name
            body = tokens[k].start if k < len(tokens) else len(create_sql)
            return create_sql[:body] + guard_body(create_sql[body:])
    raise TriggerGuardError(
        "cannot find FOR EACH ROW in a trigger definition read from the source. "
        "Fix: check the trigger with SHOW CREATE TRIGGER, or turn guard_triggers off"
    )


# ----------------------------------------------------------------------------------------- reading


@dataclass
class TriggerDef:
    db: str
    name: str
    table: str
    timing: str
    event: str
    order: int
    body: str
    sql_mode: str
    definer: str
    charset_client: str
    collation_connection: str

    @property
    def label(self) -> str:
        return f"trigger {format_object_name(self.db, self.name)} on {format_object_name(self.db, self.table)}"


def read_triggers(conn, databases: Iterable[str], selects: Callable[[str, str], bool]) -> list[TriggerDef]:
    """The triggers of the tables ``selects(db, table)`` accepts, in firing order per table/timing/event."""
    dbs = sorted(set(databases))
    if not dbs:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
            "ACTION_ORDER, ACTION_STATEMENT, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION "
            "FROM information_schema.TRIGGERS "
            f"WHERE EVENT_OBJECT_SCHEMA IN ({','.join(['%s'] * len(dbs))}) AND TRIGGER_SCHEMA=EVENT_OBJECT_SCHEMA "
            "ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            dbs,
        )
        rows = [[as_text(v) for v in r] for r in cur.fetchall()]
    return [
        TriggerDef(r[0], r[1], r[2], r[3], r[4], int(r[5] or 0), r[6], r[7] or "", r[8] or "", r[9], r[10])
        for r in rows
        if selects(r[0], r[2])
    ]


def source_selection(direction: SyncDirection) -> tuple[list[str], Callable[[str, str], bool]]:
    """Databases and table predicate of the direction's selected tables on its source."""
    return list(direction.selected_databases), direction.selects_table


def destination_selection(direction: SyncDirection) -> tuple[list[str], Callable[[str, str], bool]]:
    """Databases and table predicate of the selected tables' counterparts on the destination."""
    whole = {direction.map_database(db) for db, t in direction.selected if t is None}
    tables = {direction.map_table(db, t) for db, t in direction.selected if t is not None}
    dbs = sorted(whole | {d for d, _ in tables})

    def selects(db: str, table: str) -> bool:
        return db != direction.control_schema and (db in whole or (db, table) in tables)

    return dbs, selects


def _definer_sql(definer: str) -> str:
    if not definer:
        return ""
    user, at, host = definer.rpartition("@")
    if not at:
        return f"DEFINER={quote_ident(definer)} "
    return f"DEFINER={quote_ident(user)}@{quote_ident(host)} "


def _is_mariadb(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return "mariadb" in str(as_text(cur.fetchone()[0])).lower()


def _grant_trigger(conn, db: str) -> str:
    """The GRANT that lets this connection's account read and rewrite the triggers of ``db``."""
    from airflow_provider_dts.engine.precheck import account_sql  # precheck imports schema_sync

    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        account = account_sql(str(as_text(cur.fetchone()[0])))
    return f"GRANT TRIGGER ON {quote_ident(db)}.* TO {account}"


# ----------------------------------------------------------------------------------------- rewriting


def _replace_trigger(conn, t: TriggerDef, body: str, placement: str, mariadb: bool) -> None:
    from airflow_provider_dts.engine.schema_sync import _charset_sql

    client = t.charset_client
    if not body.isascii() and client.lower() not in ("utf8mb4", "utf8mb3", "utf8"):
        client = "utf8mb4"  # the connection sends utf8mb4; the literals keep their collation_connection
    tail = (
        f"TRIGGER {qualified(t.db, t.name)} {t.timing} {t.event} ON {qualified(t.db, t.table)} "
        f"FOR EACH ROW {placement}{body}"
    )
    with conn.cursor() as cur:
        try:
            cur.execute("SET SESSION sql_mode=%s", (t.sql_mode,))
            cur.execute(_charset_sql(client, t.collation_connection))
            if mariadb:
                cur.execute(f"CREATE OR REPLACE {_definer_sql(t.definer)}{tail}")
            else:  # MySQL: no CREATE OR REPLACE TRIGGER; nobody writes the table between DROP and CREATE
                cur.execute(f"LOCK TABLES {qualified(t.db, t.table)} WRITE")
                dropped = False
                try:
                    cur.execute(f"DROP TRIGGER {qualified(t.db, t.name)}")
                    dropped = True
                    cur.execute(f"CREATE {_definer_sql(t.definer)}{tail}")
                except pymysql.err.MySQLError:
                    if dropped:  # never leave the table without its trigger: put the original back
                        cur.execute(f"CREATE {_definer_sql(t.definer)}{tail[: len(tail) - len(body)]}{t.body}")
                    raise
                finally:
                    cur.execute("UNLOCK TABLES")
        except pymysql.err.MySQLError as e:
            code = e.args[0] if e.args else None
            text = e.args[1] if len(e.args) > 1 else str(e)
            fixes: dict[int | None, str] = {
                1142: _grant_trigger(conn, t.db),
                1227: f"create it as its definer {t.definer!r} or grant the sync account SUPER (MariaDB, MySQL 5.7) "
                "or SET_USER_ID / SET_ANY_DEFINER (MySQL 8)",
                1419: "grant the sync account SUPER or SET GLOBAL log_bin_trust_function_creators=1 on this server",
                1418: "grant the sync account SUPER or SET GLOBAL log_bin_trust_function_creators=1 on this server",
            }
            fix = fixes.get(code, "check the trigger with SHOW CREATE TRIGGER, or turn guard_triggers off")
            raise TriggerGuardError(f"cannot rewrite {t.label}: [{code}] {text}. Fix: {fix}") from None
        finally:
            try:
                cur.execute("SET NAMES utf8mb4, SESSION sql_mode=DEFAULT")
            except pymysql.err.MySQLError:
                pass


def _rewrite_all(
    conn, triggers: list[TriggerDef], change: Callable[[str], str], server: str, logger: logging.Logger
) -> list[str]:
    """Apply ``change`` to every body that it changes, keeping each trigger's place in its group."""
    mariadb = _is_mariadb(conn)
    groups: dict[tuple, list[TriggerDef]] = {}
    for t in triggers:
        groups.setdefault((t.db, t.table, t.timing, t.event), []).append(t)
    done = []
    for group in groups.values():
        group.sort(key=lambda t: t.order)
        for i, t in enumerate(group):
            body = change(t.body)
            if body == t.body:
                continue
            if i > 0:
                placement = f"FOLLOWS {quote_ident(group[i - 1].name)} "
            elif len(group) > 1:
                placement = f"PRECEDES {quote_ident(group[1].name)} "
            else:
                placement = ""
            _replace_trigger(conn, t, body, placement, mariadb)
            t.body = body
            done.append(f"{t.label} ({server})")
            logger.info("%s: %s", "guarded" if is_guarded(body) else "guard removed", done[-1])
    return done


def _both_servers(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    change: Callable[[str], str],
    logger: logging.Logger | None,
) -> list[str]:
    logger = logger or log
    done: list[str] = []
    with source.connect() as src, destination.connect() as dst:
        sides = []
        for conn, (dbs, selects), server in (
            (src, source_selection(direction), "source"),
            (dst, destination_selection(direction), "destination"),
        ):
            triggers = read_triggers(conn, dbs, selects)
            for t in triggers:  # both servers checked before either is changed
                if t.body is None:  # information_schema hides the body from an account without TRIGGER
                    raise TriggerGuardError(
                        f"cannot read the body of {t.label} on the {server}: the sync account "
                        f"lacks the TRIGGER privilege. Fix: {_grant_trigger(conn, t.db)}"
                    )
            sides.append((conn, triggers, server))
        for conn, triggers, server in sides:
            done += _rewrite_all(conn, triggers, change, server, logger)
    return done


def guard_triggers(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
) -> list[str]:
    """Guard every trigger of the direction's selected tables on both servers. Returns what was rewritten.

    Idempotent: already guarded triggers are left alone (nothing is written then).
    """
    return _both_servers(direction, source, destination, guard_body, logger)


def remove_trigger_guards(
    direction: SyncDirection,
    source: ConnectionSettings,
    destination: ConnectionSettings,
    *,
    logger: logging.Logger | None = None,
) -> list[str]:
    """Restore the original bodies of the guarded triggers of the direction's selected tables on both servers.

    Run it after the sync is stopped for good (a running sync with unguarded triggers double-applies them).
    """
    return _both_servers(direction, source, destination, unguard_body, logger)
