"""Triggers on both servers (issue 9, cause 6): with ``guard_triggers`` they fire once, where the user wrote.

Real servers, both directions running (``run_direction``), users writing on both sides. Without the option
the receiving server's triggers fire again for every synced row and the servers diverge (asserted, so the
test shows the guard is what keeps them equal).
"""

from __future__ import annotations

import pytest
from helpers import wait_until
from syncing import Sync, make_direction, sql

from airflow_provider_dts.engine.config import SyncDirection, TwoWayTask
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.precheck import PASS, WARN, run_precheck
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.engine.triggers import (
    GUARD_HEAD,
    guard_body,
    guard_create_sql,
    guard_triggers,
    is_guarded,
    remove_trigger_guards,
    unguard_body,
)

TABLES = [
    "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, touches INT NOT NULL DEFAULT 0, "
    "note VARCHAR(80))",
    "CREATE TABLE shop.audit (id CHAR(36) PRIMARY KEY, item_id INT NOT NULL, action VARCHAR(8) NOT NULL, "
    "what VARCHAR(80))",
]
TRIGGERS = [
    # a single-statement AFTER INSERT audit trigger, ending in a line comment
    "CREATE TRIGGER shop.items_ai AFTER INSERT ON shop.items FOR EACH ROW "
    "INSERT INTO shop.audit VALUES (UUID(), NEW.id, 'ins', NEW.name) -- audit",
    # a BEGIN ... END BEFORE UPDATE trigger that changes the row itself
    "CREATE TRIGGER shop.items_bu BEFORE UPDATE ON shop.items FOR EACH ROW "
    "BEGIN SET NEW.touches = NEW.touches + 1; SET NEW.note = CONCAT(IFNULL(NEW.note, ''), '+'); END",
    "CREATE TRIGGER shop.items_ad AFTER DELETE ON shop.items FOR EACH ROW "
    "INSERT INTO shop.audit VALUES (UUID(), OLD.id, 'del', OLD.name)",
]


def setup_both(pair) -> None:
    for s in (pair.a, pair.b):
        sql(s, "CREATE DATABASE shop", *TABLES, *TRIGGERS)


def user_writes(server, base: int) -> None:
    """A user's session on one server: inserts, one update per row, a delete."""
    sql(
        server,
        *[f"INSERT INTO shop.items (id, name) VALUES ({base + i}, 'n{base + i}')" for i in range(1, 6)],
        f"UPDATE shop.items SET name = CONCAT(name, 'u') WHERE id BETWEEN {base + 1} AND {base + 3}",
        f"DELETE FROM shop.items WHERE id = {base + 5}",
    )


def rows(server, table: str) -> list[tuple]:
    return sql(server, f"SELECT * FROM shop.{table} ORDER BY id")


def checksum(server, table: str) -> int:
    return sql(server, f"CHECKSUM TABLE shop.{table}")[0][1]


def bodies(server) -> dict[str, str]:
    return dict(
        sql(
            server, "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='shop'"
        )
    )


def run_two_way(pair, task_name: str, guard: bool) -> None:
    """Both directions running while users write on both servers; returns once the items have arrived."""
    fwd = make_direction(task_name, guard_triggers=guard)
    rev = make_direction(task_name, "reverse", guard_triggers=guard)
    with Sync(fwd, pair.a, pair.b), Sync(rev, pair.b, pair.a):
        user_writes(pair.a, 0)
        user_writes(pair.b, 100)
        expected_ids = [1, 2, 3, 4, 101, 102, 103, 104]
        for s in (pair.a, pair.b):
            wait_until(lambda s=s: [r[0] for r in rows(s, "items")] == expected_ids, 30, "items on both sides")
        # the audit rows travel in the same transactions as the items; wait for every user's audit row too
        for s in (pair.a, pair.b):
            wait_until(lambda s=s: len(rows(s, "audit")) >= 12, 30, "audit rows on both sides")
        if guard:
            for t in ("items", "audit"):
                wait_until(lambda t=t: rows(pair.a, t) == rows(pair.b, t), 30, f"shop.{t} equal")


def test_guarded_triggers_fire_once_and_both_servers_end_equal(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    run_two_way(pair, task_name, guard=True)
    for t in ("items", "audit"):
        assert rows(pair.a, t) == rows(pair.b, t)
        assert checksum(pair.a, t) == checksum(pair.b, t)
    # every user write fired its server's trigger exactly once, and no synced row fired one again
    items = rows(pair.a, "items")
    assert [(r[0], r[1], r[2], r[3]) for r in items] == (
        [(i, f"n{i}u", 1, "+") for i in (1, 2, 3)]
        + [(4, "n4", 0, None)]
        + [(i, f"n{i}u", 1, "+") for i in (101, 102, 103)]
        + [(104, "n104", 0, None)]
    )
    audit = sorted((r[1], r[2]) for r in rows(pair.a, "audit"))
    assert audit == sorted([(b + i, "ins") for b in (0, 100) for i in range(1, 6)] + [(5, "del"), (105, "del")])
    # the triggers on both servers are the guarded originals
    for s in (pair.a, pair.b):
        assert all(is_guarded(b) for b in bodies(s).values())


def test_without_the_guard_the_receiving_servers_triggers_double_apply(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    run_two_way(pair, task_name, guard=False)
    a_items = {r[0]: r for r in rows(pair.a, "items")}
    b_items = {r[0]: r for r in rows(pair.b, "items")}
    # the BEFORE UPDATE trigger ran again on the synced update: touches 2 and note '++' on the receiver
    assert a_items[1][2:] == (1, "+") and b_items[1][2:] == (2, "++")
    assert b_items[101][2:] == (1, "+") and a_items[101][2:] == (2, "++")
    # the audit trigger logged each synced insert and delete again on the receiving server
    assert len(rows(pair.a, "audit")) == len(rows(pair.b, "audit")) == 18
    assert rows(pair.a, "audit") != rows(pair.b, "audit")
    for t in ("items", "audit"):
        assert checksum(pair.a, t) != checksum(pair.b, t)


def test_guard_is_idempotent_keeps_order_definer_mode_and_removal_restores_the_originals(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    extra = [
        # same timing and event as items_ai: the firing order must survive the rewrite
        "CREATE TRIGGER shop.items_ai2 AFTER INSERT ON shop.items FOR EACH ROW FOLLOWS items_ai "
        "lbl: BEGIN IF NEW.id > 1000 THEN LEAVE lbl; END IF; "
        "INSERT INTO shop.audit VALUES (UUID(), NEW.id, 'ins2', 'ü \"q\"'); END",
        "CREATE TRIGGER shop.items_ai0 AFTER INSERT ON shop.items FOR EACH ROW PRECEDES items_ai "
        "INSERT INTO shop.audit VALUES (UUID(), NEW.id, 'ins0', NULL)",
    ]
    sql(pair.a, "SET SESSION sql_mode='ANSI_QUOTES,NO_BACKSLASH_ESCAPES'", *extra)
    sql(pair.b, *extra)
    meta = (
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, "
        "ACTION_STATEMENT, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='shop' ORDER BY TRIGGER_NAME"
    )
    before = {s.server_id: sql(s, meta) for s in (pair.a, pair.b)}
    d = make_direction(task_name, guard_triggers=True)

    done = guard_triggers(d, pair.a.settings(), pair.b.settings())
    assert len(done) == 10 and sum(x.endswith("(source)") for x in done) == 5
    for s in (pair.a, pair.b):
        after = sql(s, meta)
        for old, new in zip(before[s.server_id], after):
            assert new[5] == guard_body(old[5]) and new[5].startswith(GUARD_HEAD)
            assert new[:5] + new[6:] == old[:5] + old[6:]  # name, table, timing, event, order, mode, definer
    assert {r[0]: r[6] for r in sql(pair.a, meta)}["items_ai2"] == "ANSI_QUOTES,NO_BACKSLASH_ESCAPES"
    # recognised as guarded: nothing rewritten the second time (no DDL at all)
    pos = sql(pair.a, "SHOW MASTER STATUS")[0][:2]
    assert guard_triggers(d, pair.a.settings(), pair.b.settings()) == []
    assert sql(pair.a, "SHOW MASTER STATUS")[0][:2] == pos
    # guarded: a user's session fires the three insert triggers, a session of the sync none
    sql(pair.b, "INSERT INTO shop.items (id, name) VALUES (7, 'user')")
    sql(
        pair.b,
        "SET @dts_applying = 1",
        "INSERT INTO shop.items (id, name) VALUES (8, 'sync')",
        "UPDATE shop.items SET name = 'sync2' WHERE id = 7",
    )
    assert sorted(r[2] for r in rows(pair.b, "audit")) == ["ins", "ins0", "ins2"]
    assert sql(pair.b, "SELECT id, touches, note FROM shop.items ORDER BY id") == [(7, 0, None), (8, 0, None)]

    restored = remove_trigger_guards(d, pair.a.settings(), pair.b.settings())
    assert sorted(restored) == sorted(done)
    for s in (pair.a, pair.b):
        assert sql(s, meta) == before[s.server_id]  # byte for byte, same order, definer, sql_mode, charset
    assert remove_trigger_guards(d, pair.a.settings(), pair.b.settings()) == []


def test_schema_sync_guards_both_servers_and_creates_synced_triggers_guarded(clean_pair, task_name):
    pair = clean_pair
    sql(
        pair.a,
        "CREATE DATABASE shop",
        *TABLES,
        *TRIGGERS,
        "INSERT INTO shop.items (id, name) VALUES (1, 'a'), (2, 'b')",
    )
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop"],
            "sync_triggers": True,
            "guard_triggers": True,
        }
    )
    result = sync_schema(d, pair.a.settings(), pair.b.settings())
    assert len(result.triggers_guarded) == 3  # the source's; the destination has none before the copy
    copied = full_data_sync(d, pair.a.settings(), pair.b.settings())
    assert sorted(copied.triggers_created) == [
        "trigger shop.items_ad",
        "trigger shop.items_ai",
        "trigger shop.items_bu",
    ]
    # the created triggers are the source's guarded bodies (not guarded twice)
    assert len(rows(pair.a, "audit")) == 2 and rows(pair.b, "audit") == rows(pair.a, "audit")
    assert bodies(pair.b) == bodies(pair.a) and all(is_guarded(b) for b in bodies(pair.b).values())
    assert all(b.count(GUARD_HEAD) == 1 for b in bodies(pair.b).values())
    sql(pair.b, "INSERT INTO shop.items (id, name) VALUES (3, 'user on b')")
    assert sorted(r[1:3] for r in rows(pair.b, "audit")) == [(1, "ins"), (2, "ins"), (3, "ins")]


def test_the_copy_writer_session_does_not_fire_guarded_destination_triggers(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    sql(pair.a, *[f"INSERT INTO shop.items (id, name) VALUES ({i}, 'r{i}')" for i in range(1, 4)])
    sql(pair.a, "DELETE FROM shop.audit")
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop.items"],
            "existing_table_mode": "Ignore",
            "guard_triggers": True,
        }
    )
    sync_schema(d, pair.a.settings(), pair.b.settings())
    assert all(is_guarded(b) for b in bodies(pair.b).values())
    full_data_sync(d, pair.a.settings(), pair.b.settings())
    assert rows(pair.b, "items") == rows(pair.a, "items") and checksum(pair.a, "items") == checksum(pair.b, "items")
    assert rows(pair.b, "audit") == []


def test_precheck_passes_with_guard_and_says_what_it_does(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    base = {
        "task_name": task_name,
        "source_conn_id": "dts_source",
        "destination_conn_id": "dts_destination",
        "objects": ["shop"],
        "existing_table_mode": "Ignore",
    }
    t = run_precheck(SyncDirection.from_dict(base), pair.a.settings(), pair.b.settings()).result("triggers")
    assert t.status == WARN and "guard_triggers on" in t.fix
    t = run_precheck(
        SyncDirection.from_dict({**base, "guard_triggers": True}), pair.a.settings(), pair.b.settings()
    ).result("triggers")
    assert t.status == PASS, t
    assert "`shop`.`items_ai` on `shop`.`items` (destination)" in t.reason
    assert "IF @dts_applying IS NULL THEN" in t.reason and "remove_trigger_guards" in t.reason


def test_guard_setting_is_validated_and_task_two_follows_task_one():
    base = {
        "name": "t1",
        "forward": {"source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"], "guard_triggers": True},
    }
    two = TwoWayTask.from_dict(base)
    assert two.forward.guard_triggers and two.reverse.guard_triggers
    assert TwoWayTask.from_json(two.to_json()).reverse.guard_triggers
    off = {**base, "forward": {**base["forward"], "guard_triggers": False}}
    assert not TwoWayTask.from_dict(off).reverse.guard_triggers
    with pytest.raises(ConfigError, match=r"forward\.guard_triggers: 'maybe' is not a boolean"):
        TwoWayTask.from_dict({**base, "forward": {**base["forward"], "guard_triggers": "maybe"}})
    # the DAG param reaches both tasks
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "dags" / "dts_two_way_sync.py"
    spec = importlib.util.spec_from_file_location("dts_two_way_sync_guard", path)
    dag_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag_module)
    assert dag_module.PARAMS["guard_triggers"].value is False
    built = dag_module.build_task({"guard_triggers": True})
    assert built.forward.guard_triggers and built.reverse.guard_triggers
    assert not dag_module.build_task({}).reverse.guard_triggers


def test_guard_text_rules():
    body = "INSERT INTO t VALUES (1) -- trailing comment"
    g = guard_body(body)
    assert g == "IF @dts_applying IS NULL THEN\n" + body + "\n;\nEND IF"
    assert guard_body(g) == g and unguard_body(g) == body and unguard_body(body) == body
    sql_text = (
        "CREATE TRIGGER `s`.`t` BEFORE INSERT ON `s`.`x` FOR EACH ROW /* c */ FOLLOWS `o` "
        "BEGIN SET NEW.a = 'FOR EACH ROW'; END"
    )
    assert guard_create_sql(sql_text) == (
        "CREATE TRIGGER `s`.`t` BEFORE INSERT ON `s`.`x` FOR EACH ROW /* c */ "
        "FOLLOWS `o` " + guard_body("BEGIN SET NEW.a = 'FOR EACH ROW'; END")
    )
    assert guard_create_sql(guard_create_sql(sql_text)) == guard_create_sql(sql_text)


def test_verify_repair_writes_do_not_fire_guarded_triggers(clean_pair, task_name):
    from airflow_provider_dts.engine.verify import Verifier

    pair = clean_pair
    setup_both(pair)
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["shop.items"],
            "guard_triggers": True,
        }
    )
    guard_triggers(d, pair.a.settings(), pair.b.settings())
    sql(pair.a, "INSERT INTO shop.items (id, name) VALUES (1, 'only on a'), (2, 'two')")
    sql(pair.b, "SET @dts_applying = 1", "INSERT INTO shop.items (id, name) VALUES (2, 'two')")
    report = Verifier(d, pair.a.settings(), pair.b.settings(), recheck_delay=0, rechecks=0).run(repair="to_destination")
    assert report.tables[0].repaired == 1
    assert rows(pair.a, "items") == rows(pair.b, "items")
    assert rows(pair.b, "audit") == []  # the repair's INSERT is a sync write: the audit trigger stayed quiet


def test_ddl_sync_never_replays_trigger_statements():
    """The guard's own rewrites reach each server's binlog; DDL sync must skip them (and user trigger DDL)."""
    from airflow_provider_dts.engine.ddl import rewrite_ddl

    d = make_direction("t1", guard_triggers=True)
    for statement in (
        "CREATE OR REPLACE DEFINER=`root`@`localhost` TRIGGER `shop`.`items_ai` AFTER INSERT ON `shop`.`items` "
        "FOR EACH ROW PRECEDES `items_bu` " + guard_body("INSERT INTO shop.audit VALUES (UUID(), NEW.id, 'i', '')"),
        "CREATE TRIGGER shop.t BEFORE UPDATE ON shop.items FOR EACH ROW SET NEW.touches = 0",
        "DROP TRIGGER shop.items_ai",
    ):
        _, rewritten, reason = rewrite_ddl(d, statement, "shop")
        assert rewritten is None and reason == "not a DDL statement that DTS synchronizes"


def test_precheck_warns_with_the_grant_when_an_account_cannot_rewrite_triggers(clean_pair, task_name):
    pair = clean_pair
    setup_both(pair)
    user = "dts_notrig_" + task_name[-6:]
    sql(
        pair.b,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{task_name}'",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX ON *.* TO '{user}'@'%'",
    )
    try:
        d = SyncDirection.from_dict(
            {
                "task_name": task_name,
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": ["shop"],
                "existing_table_mode": "Ignore",
                "guard_triggers": True,
            }
        )
        t = run_precheck(d, pair.a.settings(), pair.b.settings(user=user, password=f"pw-{task_name}")).result(
            "triggers"
        )
        assert t.status == WARN, t
        assert f"GRANT TRIGGER ON `shop`.* TO '{user}'@" in t.fix and "(destination" not in t.fix
        assert f"pw-{task_name}" not in t.reason + t.fix
        # and the guard itself fails with the same fix, naming the trigger
        from airflow_provider_dts.engine.triggers import TriggerGuardError

        with pytest.raises(
            TriggerGuardError,
            match=r"cannot read the body of trigger shop\.items_\w+ on "
            r"shop\.items on the destination: .*lacks the TRIGGER privilege"
            rf"\. Fix: GRANT TRIGGER ON `shop`\.\* TO '{user}'@'%'",
        ):
            guard_triggers(d, pair.a.settings(), pair.b.settings(user=user, password=f"pw-{task_name}"))
        assert not any(is_guarded(b) for b in bodies(pair.a).values())  # nothing changed on either server
    finally:
        sql(pair.b, f"DROP USER '{user}'@'%'")
