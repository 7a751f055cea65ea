"""The sync checks itself: rows broken behind its back are found by the running directions, with both images,
recorded in sync_state and the divergence table, shown on the status page, repaired when asked; rows changing
normally under load on both sides are never reported."""

from __future__ import annotations

import html
import json
import struct
import threading
import time

import pymysql
from fastapi.testclient import TestClient
from helpers import wait_until
from syncing import Sync, create_both, make_direction, sql, state_row, table_rows

from airflow_provider_dts.engine import selfcheck
from airflow_provider_dts.plugins.status import create_app

ROWS = [(i, f"owner {i}", f"{i}.50") for i in range(1, 61)]
FAST = dict(self_check_rows_per_second=50_000)


def setup_accounts(pair) -> None:
    create_both(
        pair,
        "CREATE TABLE shop.acct (id INT PRIMARY KEY, owner VARCHAR(40), balance DECIMAL(10,2), "
        "doubled DECIMAL(12,2) AS (balance * 2) STORED)",
    )
    for s in (pair.a, pair.b):
        sql(
            s,
            "INSERT INTO shop.acct (id, owner, balance) VALUES " + ", ".join(f"({i}, '{o}', {b})" for i, o, b in ROWS),
        )


def break_rows(server) -> None:
    """Three changes the sync never sees (not in the binlog): one value, one missing row, one extra row."""
    sql(
        server,
        "SET SESSION sql_log_bin=0",
        "UPDATE shop.acct SET balance=999.99 WHERE id=5",
        "DELETE FROM shop.acct WHERE id=6",
        "INSERT INTO shop.acct (id, owner, balance) VALUES (1000, 'ghost row', 1.25)",
    )


def open_divergences(server, task: str, role: str) -> list[dict]:
    rows = sql(
        server,
        "SELECT kind, key_json, columns_json, source_image, dest_image, found_by, repaired_at, "
        f"resolved_at FROM dts_meta.divergence WHERE task_name='{task}' AND direction='{role}' "
        "AND resolved_at IS NULL ORDER BY key_json",
    )
    names = ("kind", "key", "columns", "source", "dest", "found_by", "repaired_at", "resolved_at")
    out = []
    for r in rows:
        d = dict(zip(names, r))
        for k in ("key", "columns", "source", "dest"):
            d[k] = json.loads(d[k]) if d[k] is not None else None
        out.append(d)
    return out


def checksum(server, table: str = "shop.acct") -> int:
    return sql(server, f"CHECKSUM TABLE {table}")[0][1]


def test_broken_rows_are_reported_by_both_running_directions(clean_pair, task_name):
    pair = clean_pair
    setup_accounts(pair)
    with (
        Sync(make_direction(task_name, **FAST), pair.a, pair.b) as fwd_sync,
        Sync(make_direction(task_name, "reverse", **FAST), pair.b, pair.a),
    ):
        sql(pair.a, "UPDATE shop.acct SET owner='moved on a' WHERE id=1")  # a normal change still flows
        sql(pair.b, "UPDATE shop.acct SET owner='moved on b' WHERE id=2")
        wait_until(lambda: table_rows(pair.a, "acct") == table_rows(pair.b, "acct"), what="normal changes synced")
        a_before = table_rows(pair.a, "acct")
        started = time.monotonic()
        break_rows(pair.b)

        # task one (a -> b) lives on b: it finds b's row 5 different, row 6 missing, row 1000 extra
        fwd = wait_until(
            lambda: len(rows := open_divergences(pair.b, task_name, "forward")) == 3 and rows,
            timeout=60,
            what="task one reporting the three broken rows",
        )
        assert time.monotonic() - started < 60
        by_key = {d["key"]["id"]: d for d in fwd}
        assert by_key[5]["kind"] == "different"
        assert by_key[5]["columns"] == ["balance"]  # the generated column `doubled` is never compared
        assert by_key[5]["source"] == {"id": 5, "owner": "owner 5", "balance": "5.50"}
        assert by_key[5]["dest"] == {"id": 5, "owner": "owner 5", "balance": "999.99"}
        assert (by_key[6]["kind"], by_key[6]["source"], by_key[6]["dest"]) == (
            "missing",
            {"id": 6, "owner": "owner 6", "balance": "6.50"},
            None,
        )
        assert (by_key[1000]["kind"], by_key[1000]["source"], by_key[1000]["dest"]) == (
            "extra",
            None,
            {"id": 1000, "owner": "ghost row", "balance": "1.25"},
        )
        assert all(d["repaired_at"] is None for d in fwd)  # auto repair is off by default

        st = state_row(pair.b, task_name, "forward")
        assert st["state"] == "Synchronizing" and st["divergences"] == 3
        assert "shop.acct" in st["last_divergence"] and st["last_divergence_at"] is not None

        # task two (b -> a) lives on a and sees the same rows the other way round
        rev = wait_until(
            lambda: len(rows := open_divergences(pair.a, task_name, "reverse")) == 3 and rows,
            timeout=60,
            what="task two reporting the three broken rows",
        )
        assert {d["key"]["id"]: d["kind"] for d in rev} == {5: "different", 6: "extra", 1000: "missing"}

        # the status page (the plugin's app, through the Airflow connections) lists them, and says the servers differ
        client = TestClient(create_app(require_auth=False))
        status = client.get("/api/status").json()
        shown = {(d["task_name"], d["direction"], d["kind"], d["key_json"]) for d in status["divergences"]}
        assert {
            (task_name, "forward", "different", '{"id": 5}'),
            (task_name, "forward", "missing", '{"id": 6}'),
            (task_name, "forward", "extra", '{"id": 1000}'),
            (task_name, "reverse", "extra", '{"id": 6}'),
        } <= shown
        mine = {d["direction"]: d for d in status["directions"] if d["task_name"] == task_name}
        assert mine["forward"]["open_divergences"] == 3 and mine["forward"]["divergences"] == 3
        page = client.get("/").text
        assert "SERVERS DIFFER: 3 row(s)" in page
        assert "ghost row" in page and "999.99" in page and html.escape('{"id": 1000}') in page

        # reporting changed nothing: a keeps its rows, b keeps the broken ones (no repair, no echo)
        assert table_rows(pair.a, "acct") == a_before
        assert str(sql(pair.b, "SELECT balance FROM shop.acct WHERE id=5")[0][0]) == "999.99"

    # the run's summary (the incremental task's XCom) carries task one's self-check result: counts and the last
    # (table, key, kind), never the row images (they can hold personal data), and where the images are
    sc = fwd_sync.result.stats["self_check"]
    assert (sc["enabled"], sc["divergences"], sc["open"]) == (True, 3, 3), sc
    assert sorted((d["table"], d["key"]["id"], d["kind"], d["now"]) for d in sc["last"]) == [
        ("shop.acct", 5, "different", "open"),
        ("shop.acct", 6, "missing", "open"),
        ("shop.acct", 1000, "extra", "open"),
    ]
    assert "`dts_meta`.`divergence`" in sc["images"] and task_name in sc["images"], sc["images"]
    as_xcom = json.dumps(fwd_sync.result.stats)  # XCom-serializable, and no personal data from the rows
    assert "999.99" not in as_xcom and "ghost row" not in as_xcom and "owner 5" not in as_xcom


def test_rows_changing_under_load_on_both_sides_are_not_reported(clean_pair, task_name, monkeypatch):
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.hot (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(60))")
    for s in (pair.a, pair.b):
        sql(s, "INSERT INTO shop.hot VALUES " + ", ".join(f"({i}, 0, 'start')" for i in range(1, 81)))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(server, lo: int, hi: int, tag: str) -> None:
        conn = server.root_connect()
        try:
            i = 0
            with conn.cursor() as cur:
                while not stop.is_set():
                    i += 1
                    k = lo + i % (hi - lo)  # each side writes only its own keys: no conflicts
                    try:
                        cur.execute("UPDATE shop.hot SET n=n+1, note=%s WHERE id=%s", (f"{tag} {i}", k))
                        if i % 7 == 0:  # row churn on this side's own extra keys
                            extra = hi * 100 + i % 50
                            cur.execute("DELETE FROM shop.hot WHERE id=%s", (extra,))
                            cur.execute("INSERT IGNORE INTO shop.hot VALUES (%s, %s, %s)", (extra, i, tag))
                    except pymysql.err.OperationalError as e:  # a deadlock with the applier's gap locks
                        if e.args[0] != 1213:
                            raise
        except BaseException as e:
            errors.append(e)
        finally:
            conn.close()

    monkeypatch.setattr(selfcheck, "PASS_PAUSE_SECONDS", 1.0)  # more passes in a short test
    with (
        Sync(make_direction(task_name, **FAST), pair.a, pair.b),
        Sync(make_direction(task_name, "reverse", **FAST), pair.b, pair.a),
    ):
        threads = [
            threading.Thread(target=writer, args=(pair.a, 1, 40, "a")),
            threading.Thread(target=writer, args=(pair.b, 41, 80, "b")),
        ]
        for t in threads:
            t.start()
        time.sleep(6)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        wait_until(lambda: table_rows(pair.a, "hot") == table_rows(pair.b, "hot"), what="both sides equal")
        assert checksum(pair.a, "shop.hot") == checksum(pair.b, "shop.hot")

        def progress(server, role):
            msg = (state_row(server, task_name, role) or {}).get("self_check_message") or ""
            # "self-check: N rolling pass(es) done, M row check(s), K key(s) pending, D divergence(s) found; ..."
            parts = msg.split()
            return (int(parts[1]), int(parts[5]), int(parts[8]), msg) if msg.startswith("self-check:") else None

        for server, role in ((pair.b, "forward"), (pair.a, "reverse")):
            passes0 = wait_until(lambda s=server, r=role: progress(s, r), what=f"{role}: self-check status")[0]
            # two more rolling passes over the now quiet table, and every changed key decided
            _passes, checks, _pending, msg = wait_until(
                lambda s=server, r=role, p0=passes0: (p := progress(s, r)) and p[0] >= p0 + 2 and p[2] == 0 and p,
                timeout=60,
                what=f"{role}: the self-check done with every key",
            )
            assert checks >= 20, msg  # the keys the load changed were re-checked (recent and rolling)
            assert "0 divergence(s) found" in msg, msg
    assert sql(pair.b, f"SELECT COUNT(*) FROM dts_meta.divergence WHERE task_name='{task_name}'") == [(0,)]
    assert sql(pair.a, f"SELECT COUNT(*) FROM dts_meta.divergence WHERE task_name='{task_name}'") == [(0,)]
    assert state_row(pair.b, task_name, "forward")["divergences"] == 0
    assert state_row(pair.a, task_name, "reverse")["divergences"] == 0


def test_auto_repair_makes_the_destination_equal_without_echo(clean_pair, task_name):
    pair = clean_pair
    setup_accounts(pair)
    with (
        Sync(make_direction(task_name, self_check_auto_repair=True, **FAST), pair.a, pair.b),
        Sync(make_direction(task_name, "reverse", **FAST), pair.b, pair.a),
    ):
        a_before = table_rows(pair.a, "acct")
        break_rows(pair.b)
        wait_until(lambda: table_rows(pair.b, "acct") == a_before, timeout=60, what="b repaired to equal a")
        assert checksum(pair.a) == checksum(pair.b)
        repaired = sql(
            pair.b,
            f"SELECT key_json, kind FROM dts_meta.divergence WHERE task_name='{task_name}' "
            "AND direction='forward' AND repaired_at IS NOT NULL AND resolved_at IS NOT NULL "
            "ORDER BY key_json",
        )
        assert [tuple(r) for r in repaired] == [
            ('{"id": 1000}', "extra"),
            ('{"id": 5}', "different"),
            ('{"id": 6}', "missing"),
        ]
        time.sleep(3)  # the repair carries the sync's mark: task two must not send it back to a
        assert table_rows(pair.a, "acct") == a_before == table_rows(pair.b, "acct")
        assert state_row(pair.b, task_name, "forward")["state"] == "Synchronizing"
        assert state_row(pair.a, task_name, "reverse")["state"] == "Synchronizing"


def test_a_change_held_up_at_the_destination_is_not_reported(clean_pair, task_name):
    """The applier waits on a row lock at the destination, so the change is in flight for seconds while the lag
    (measured from the source commit it is applying) stays small: only "this direction has applied past the
    source position of the first read" tells that apart from a divergence."""
    pair = clean_pair
    setup_accounts(pair)
    with Sync(make_direction(task_name, **FAST), pair.a, pair.b):
        blocker = pair.b.root_connect()
        try:
            with blocker.cursor() as cur:
                cur.execute("START TRANSACTION")
                cur.execute("SELECT * FROM shop.acct WHERE id=9 FOR UPDATE")
                sql(pair.a, "UPDATE shop.acct SET owner='held up' WHERE id=9")

                def seen_in_flight():
                    msg = (state_row(pair.b, task_name, "forward") or {}).get("self_check_message") or ""
                    return "rolling pass" in msg and int(msg.split()[1]) >= 2 and msg

                wait_until(seen_in_flight, timeout=30, what="two rolling passes while the change is held up")
                time.sleep(4)  # > margin: a check without the position rule would confirm it now
                assert sql(pair.b, "SELECT owner FROM shop.acct WHERE id=9") == [("owner 9",)]
                cur.execute("ROLLBACK")
        finally:
            blocker.close()
        wait_until(lambda: table_rows(pair.a, "acct") == table_rows(pair.b, "acct"), what="the change arrives")
        msg = wait_until(
            lambda: (
                "1 difference(s) in flight dismissed"
                in (m := state_row(pair.b, task_name, "forward")["self_check_message"] or "")
                and m
            ),
            timeout=30,
            what="the in-flight difference dismissed",
        )
        assert "0 divergence(s) found" in msg
    assert sql(pair.b, f"SELECT COUNT(*) FROM dts_meta.divergence WHERE task_name='{task_name}'") == [(0,)]


def float32(x: float) -> float:
    """What a FLOAT column stores for ``x``, widened to a double (as the binlog image carries it)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_rows_keyed_on_float_are_looked_up_by_their_exact_value(clean_pair, task_name):
    """The server renders a FLOAT with 6 digits (0.1234567 as 0.123457) and ``k <=> 0.123457`` finds no row: a
    FLOAT-keyed row broken behind the sync's back must still be found, confirmed and recorded with its exact key."""
    pair = clean_pair
    keys = ("1e-38", "0.1234567", "16777217", "3.4e38", "-2.5")
    create_both(pair, "CREATE TABLE shop.readings (k FLOAT NOT NULL PRIMARY KEY, v INT NOT NULL)")
    for s in (pair.a, pair.b):
        sql(s, "INSERT INTO shop.readings VALUES " + ", ".join(f"({k}, {i})" for i, k in enumerate(keys)))
    with (
        Sync(make_direction(task_name, **FAST), pair.a, pair.b) as sync,
        Sync(make_direction(task_name, "reverse", **FAST), pair.b, pair.a),
    ):
        # normal changes of FLOAT-keyed rows flow and are re-checked by their binlog keys: nothing is reported
        sql(pair.a, "UPDATE shop.readings SET v=v+100 WHERE v IN (2, 3, 4)")
        wait_until(lambda: table_rows(pair.a, "readings") == table_rows(pair.b, "readings"), what="changes synced")
        # changes the sync never sees, to rows it never changed: only the rolling pass can find them, and it reads
        # the keys back from the servers
        sql(
            pair.b,
            "SET SESSION sql_log_bin=0",
            "UPDATE shop.readings SET v=-1 WHERE v=1",  # key 0.1234567: different
            "DELETE FROM shop.readings WHERE v=0",  # key 1e-38: missing at b
            "INSERT INTO shop.readings VALUES (0.7654321, 7)",
        )  # only at b
        found = wait_until(
            lambda: len(r := open_divergences(pair.b, task_name, "forward")) == 3 and r,
            timeout=60,
            what="the three broken FLOAT-keyed rows reported",
        )
        by_kind = {d["kind"]: d for d in found}
        assert all(d["found_by"] == "rolling" for d in found), found
        assert by_kind["different"]["key"] == {"k": float32(0.1234567)}  # the exact value, not 0.123457
        assert by_kind["different"]["columns"] == ["v"]
        assert (by_kind["different"]["source"]["v"], by_kind["different"]["dest"]["v"]) == (1, -1)
        assert by_kind["missing"]["key"] == {"k": float32(1e-38)}
        assert by_kind["missing"]["source"]["v"] == 0 and by_kind["missing"]["dest"] is None
        assert by_kind["extra"]["key"] == {"k": float32(0.7654321)}
        assert by_kind["extra"]["source"] is None and by_kind["extra"]["dest"]["v"] == 7
        assert sql(
            pair.b, f"SELECT COUNT(*) FROM dts_meta.divergence WHERE task_name='{task_name}' AND direction='forward'"
        ) == [(3,)]  # the changed rows were re-checked, not reported
        # the recorded key finds the row on the source, as the applier's keys do
        assert sql(pair.a, f"SELECT v FROM shop.readings WHERE k = {by_kind['different']['key']['k']!r}") == [(1,)]
        assert checksum(pair.a, "shop.readings") != checksum(pair.b, "shop.readings")
    sc = sync.result.stats["self_check"]
    assert (sc["divergences"], sc["open"]) == (3, 3), sc
    assert sorted((d["key"]["k"], d["kind"]) for d in sc["last"]) == [
        (float32(1e-38), "missing"),
        (float32(0.1234567), "different"),
        (float32(0.7654321), "extra"),
    ]


def test_auto_repair_of_float_keyed_rows_keeps_the_exact_values(clean_pair, task_name):
    """The repair copies the source row: a FLOAT read back as the server renders it (0.123457) would be written
    as another value, and the repaired row would have another key."""
    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.readings (k FLOAT NOT NULL PRIMARY KEY, f FLOAT, v INT NOT NULL)")
    for s in (pair.a, pair.b):
        sql(s, "INSERT INTO shop.readings VALUES (0.1234567, 0.7654321, 1), (1e-38, NULL, 2), (-2.5, 3.3333333, 3)")
    with (
        Sync(make_direction(task_name, self_check_auto_repair=True, **FAST), pair.a, pair.b),
        Sync(make_direction(task_name, "reverse", **FAST), pair.b, pair.a),
    ):
        a_before = checksum(pair.a, "shop.readings")
        sql(
            pair.b,
            "SET SESSION sql_log_bin=0",
            "UPDATE shop.readings SET v=-1 WHERE v=1",
            "DELETE FROM shop.readings WHERE v=2",
        )
        wait_until(lambda: checksum(pair.b, "shop.readings") == a_before, timeout=60, what="b repaired to equal a")
        # the repaired row has its exact key and values again (found by the binlog's doubles)
        assert sql(
            pair.b, f"SELECT v FROM shop.readings WHERE k = {float32(0.1234567)!r} AND f = {float32(0.7654321)!r}"
        ) == [(1,)]
        assert sql(pair.b, f"SELECT v FROM shop.readings WHERE k = {float32(1e-38)!r} AND f IS NULL") == [(2,)]
        repaired = sql(
            pair.b,
            f"SELECT kind FROM dts_meta.divergence WHERE task_name='{task_name}' AND "
            "direction='forward' AND repaired_at IS NOT NULL ORDER BY kind",
        )
        assert [r[0] for r in repaired] == ["different", "missing"]
        time.sleep(3)  # no echo, no second repair
        assert checksum(pair.a, "shop.readings") == a_before == checksum(pair.b, "shop.readings")
        assert sql(
            pair.b, f"SELECT COUNT(*) FROM dts_meta.divergence WHERE task_name='{task_name}' AND resolved_at IS NULL"
        ) == [(0,)]
