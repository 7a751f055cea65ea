"""The "DTS sync" page as people see it: real headless Chromium (Debian's ``chromium``) loads the page served by
the plugin's FastAPI app (uvicorn on a free port) while real directions run, and the test asserts what the
browser's DOM shows: copy progress during a full data sync, charts with data points during incremental sync,
the conflict and divergence sections, stopped and failed directions not shown as healthy.

Each test also takes a screenshot (``<basetemp>/.../<name>.png``) to judge the page by eye.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from airflow_provider_dts.engine.control import ControlSchema, State
from airflow_provider_dts.localpair import free_port
from airflow_provider_dts.plugins.status import create_app

CHROMIUM = Path("/usr/bin/chromium")
SCHEMA = "dts_meta"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (the Makefile and CI install it)"
)


# --------------------------------------------------------------------------- the page in a browser


@pytest.fixture
def page_url(pair):
    """The plugin's app (no Airflow login: the page itself is under test) served by uvicorn in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(require_auth=False), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(15)


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def browse(url: str, tmp_path: Path, name: str) -> str:
    """The DOM Chromium built from the page, and a screenshot of it (``tmp_path/<name>.png``)."""
    dom = _chromium(tmp_path, "--dump-dom", url)
    shot = tmp_path / f"{name}.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", "--hide-scrollbars", url)
    assert shot.exists() and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    assert "<h1>DTS two-way sync</h1>" in dom, dom[:2000]
    return dom


def text(fragment: str) -> str:
    """What a fragment of the DOM reads as (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def card(dom: str, task: str, role: str) -> str:
    m = re.search(rf'<section class="direction (\w+)" id="direction-{task}-{role}">(.*?)</section>', dom, re.S)
    assert m, f"no card for {task}/{role}"
    return m.group(0)


def section(dom: str, heading_id: str) -> str:
    m = re.search(rf'<h2 id="{heading_id}">(.*?)(?=<h2)', dom, re.S)
    assert m, heading_id
    return m.group(0)


def charts(fragment: str) -> dict[str, dict]:
    """Each chart of a card: its points (dots drawn), line segments, and any empty-state text."""
    out = {}
    for m in re.finditer(r'<svg class="chart (\w+) (\w+)"[^>]*data-points="(\d+)"[^>]*>(.*?)</svg>', fragment, re.S):
        series, span, n, body = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        out[f"{series}/{span}"] = {
            "data_points": n,
            "dots": len(re.findall(r'<circle class="pt"', body)),
            "lines": len(re.findall(r'<polyline class="line"', body)),
            "titles": re.findall(r"<title>([^<]*)</title>", body),
            "empty": " ".join(text(t) for t in re.findall(r'<text class="none"[^>]*>(.*?)</text>', body)),
            "labels": [text(t) for t in re.findall(r'<text class="[xy]l"[^>]*>(.*?)</text>', body)],
        }
    return out


def api_status(url: str) -> dict:
    with urllib.request.urlopen(url + "api/status", timeout=30) as r:
        return json.loads(r.read())


def _mine(status: dict, task: str, role: str) -> dict:
    (d,) = [d for d in status["directions"] if d["task_name"] == task and d["direction"] == role]
    return d


# --------------------------------------------------------------------------- (a) full data sync


def test_full_data_sync_shows_progress_per_table_with_percent_and_eta(clean_pair, task_name, page_url, tmp_path):
    """The copy is paused after a few chunks (the snapshot's on_chunk hook, after the chunk committed) while the
    browser loads the page: the table's rows done / estimated, its %, its rate and an ETA are shown."""
    from airflow_provider_dts.engine.config import SyncDirection
    from airflow_provider_dts.engine.schema_sync import sync_schema
    from airflow_provider_dts.engine.snapshot import full_data_sync

    pair = clean_pair
    with pair.a.root_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE snap")
        cur.execute("CREATE TABLE snap.big (id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, payload TEXT)")
        cur.execute(
            "INSERT INTO snap.big SELECT seq, CONCAT('name-', seq), REPEAT('x', seq % 50) FROM snap.seq_1_to_3000"
        )
        cur.execute("ANALYZE TABLE snap.big")
        cur.fetchall()
    d = SyncDirection.from_dict(
        {
            "task_name": task_name,
            "source_conn_id": "dts_source",
            "destination_conn_id": "dts_destination",
            "objects": ["snap.big"],
        }
    )
    sync_schema(d, pair.a.settings(), pair.b.settings())
    paused, resume = threading.Event(), threading.Event()
    chunks: list[int] = []
    failures: list[BaseException] = []

    def on_chunk(table: str, rows_done: int) -> None:
        chunks.append(rows_done)
        if len(chunks) == 4:
            paused.set()
            resume.wait(180)

    def copy() -> None:
        try:
            full_data_sync(
                d,
                pair.a.settings(),
                pair.b.settings(),
                chunk_bytes=4000,
                max_rows_per_second=300,
                on_chunk=on_chunk,
                parallel=1,
            )
        except BaseException as e:  # reported by the test below
            failures.append(e)

    worker = threading.Thread(target=copy, daemon=True)
    worker.start()
    try:
        assert paused.wait(120), f"the copy did not reach its 4th chunk: {failures}"
        with pair.b.settings().connect() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT status, rows_done, rows_estimated FROM dts_meta.table_progress "
                "WHERE task_name=%s AND direction='forward' AND source_table='big'",
                (task_name,),
            )
            status, done, est = cur.fetchone()
        assert (status, done) == ("copying", chunks[-1]) and 0 < done < 3000 and est > 0

        # the JSON
        fwd = _mine(api_status(page_url), task_name, "forward")
        assert fwd["state"] == State.INITIALIZING
        (big,) = fwd["copy_progress"]
        assert (big["source_table"], big["status"], big["rows_done"], big["rows_estimated"]) == (
            "big",
            "copying",
            done,
            est,
        )
        assert big["percent"] == pytest.approx(min(99.9, 100 * done / est))
        assert big["rows_per_second"] > 0 and big["eta_seconds"] > 0
        assert (fwd["copy"]["tables"], fwd["copy"]["tables_done"], fwd["copy"]["rows_done"]) == (1, 0, done)

        # the browser
        dom = browse(page_url, tmp_path, "full-sync")
        c = card(dom, task_name, "forward")
        assert 'class="direction busy"' in c and '<span class="state s-busy">Initializing</span>' in c
        shown = text(c)
        pct = f"{min(99.9, 100 * done / est):.1f}%"
        assert f"Full data sync: 0 of 1 tables, {done:,} of about {est:,} rows {pct}" in shown, shown
        assert re.search(r"ETA about \d+ (s|min)", shown), shown
        (row,) = re.findall(r'<tr class="copy-copying">(.*?)</tr>', c, re.S)
        cells = [text(x) for x in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        assert cells[:3] == ["snap.big", "copying", f"{done:,} / {est:,}"] and cells[4] == pct, cells
        assert re.fullmatch(r"about \d+ (s|min)( \d+ s)?", cells[6]), cells
        assert re.search(rf'<div class="bar"><div style="width:{float(pct[:-1]):.1f}%"></div></div>', row)
        # the links into Airflow: the DAG (grid), its runs of this sync, the task copying now
        assert 'href="../dags/dts_two_way_sync"' in c
        assert f'href="../dags/dts_two_way_sync/runs?conf_contains={task_name}"' in c
        assert 'href="../dags/dts_two_way_sync/tasks/task_one_full_data_sync"' in c
    finally:
        resume.set()
        worker.join(120)
    assert not worker.is_alive() and not failures, failures
    # finished (the direction stays Initializing until its incremental sync starts): the whole copy, 100%
    dom = browse(page_url, tmp_path, "full-sync-done")
    c = card(dom, task_name, "forward")
    assert "Full data sync finished: 1 of 1 tables, 3,000 rows copied" in text(c), text(c)
    (row,) = re.findall(r'<tr class="copy-done">(.*?)</tr>', c, re.S)
    cells = [text(x) for x in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:3] == ["snap.big", "done", f"3,000 / {est:,}"] and cells[4:7:2] == ["100.0%", "done"], cells


# --------------------------------------------------------------------------- (b) incremental sync


def test_incremental_sync_charts_lag_and_rows_per_second_with_points(clean_pair, task_name, page_url, tmp_path):
    """A real running direction writes its per-minute history (one row when a minute is over: up to ~61 s);
    earlier history rows are written with the engine's own writer. The hour charts draw a dot per minute,
    the real minute among them; the day charts their 10-minute buckets."""
    from syncing import Sync, create_both, make_direction, sql

    pair = clean_pair
    create_both(pair, "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
    cs = ControlSchema(SCHEMA)
    with pair.b.settings().connect() as conn, conn.cursor() as cur:
        cs.ensure(conn)
        cur.execute("SELECT UTC_TIMESTAMP()")
        now = cur.fetchone()[0].replace(second=0)
    history = {}
    for k in range(5, 60, 5):  # the last hour, every 5 minutes (gaps: the line breaks, the dots stay)
        history[now - dt.timedelta(minutes=k)] = (0.5 + k / 10, 20.0 * k)
    for k in range(2, 24):  # the last day, hourly
        history[now - dt.timedelta(hours=k)] = (3.0, 1200.0)
    with pair.b.settings().connect() as conn:
        for minute, (lag, rows) in history.items():
            cs.write_metrics_minute(
                conn, task_name, "forward", minute, lag_max=lag, lag_avg=lag / 2, rows_applied=int(rows), conflicts=0
            )

    with Sync(make_direction(task_name), pair.a, pair.b) as sync:
        # a minute with rows applied, recorded by the direction itself (when the minute is over)
        deadline = time.monotonic() + 150
        n = 0
        real: list[tuple] = []
        while not any(rows > 0 for _, rows in real):
            assert time.monotonic() < deadline, "no metrics row with rows from the running direction in 150 s"
            n += 1
            sql(pair.a, f"INSERT INTO shop.t VALUES ({n}, 'v{n}')")
            with pair.b.settings().connect() as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT minute, rows_applied FROM dts_meta.metrics WHERE task_name=%s AND direction='forward' "
                    "AND minute >= %s ORDER BY minute",
                    (task_name, now),
                )
                real = list(cur.fetchall())
            time.sleep(0.5)
        assert sync.thread.is_alive()
        real_minute = next(minute for minute, rows in real if rows > 0)

        fwd = _mine(api_status(page_url), task_name, "forward")
        hour = fwd["history"]["hour"]
        assert real_minute.strftime("%Y-%m-%dT%H:%M") in [m["minute"][:16] for m in hour]
        assert len(hour) >= 11 + 1  # every 5 minutes, and the real one(s)
        assert len(fwd["history"]["day"]) >= 22 + 1

        dom = browse(page_url, tmp_path, "incremental")
        c = card(dom, task_name, "forward")
        assert 'class="direction ok"' in c and '<span class="state s-ok">Synchronizing</span>' in c
        shown = text(c)
        assert re.search(r"Lag \d[\d,]*\.\d s", shown) and re.search(r"Rows/s \d[\d,]*\.\d", shown), shown
        drawn = charts(c)
        assert set(drawn) == {"lag/hour", "rps/hour", "lag/day", "rps/day"}
        for name, column in (("lag/hour", "lag_max"), ("rps/hour", "rows_per_second")):
            expected = [m for m in hour if m[column] is not None]  # a dot per minute with a value
            assert drawn[name]["dots"] == drawn[name]["data_points"] == len(expected) >= 12, drawn[name]
            assert drawn[name]["empty"] == ""
            assert len(drawn[name]["labels"]) == 5 + 3  # five times on the x axis, three values on the y axis
        real_title = real_minute.strftime("%Y-%m-%d %H:%M UTC: ")
        assert any(
            t.startswith(real_title) and not t.startswith(real_title + "0 ") for t in drawn["rps/hour"]["titles"]
        )
        assert f"{(now - dt.timedelta(minutes=55)):%Y-%m-%d %H:%M} UTC: 6 s" in drawn["lag/hour"]["titles"]
        assert f"{(now - dt.timedelta(minutes=55)):%Y-%m-%d %H:%M} UTC: 18.3 rows/s" in drawn["rps/hour"]["titles"]
        for name in ("lag/day", "rps/day"):
            assert drawn[name]["dots"] == drawn[name]["data_points"] >= 23 and drawn[name]["lines"] >= 1
        assert 'href="../dags/dts_two_way_sync/tasks/task_one_incremental"' in c


# --------------------------------------------------------------------------- (c) conflicts, divergences, states


def test_conflicts_divergences_and_stopped_or_failed_directions(pair, task_name, page_url, tmp_path):
    """A stopped and a failed direction are not green; a conflict shows both rows with the differing column
    marked; a divergence the self-check confirmed shows its key and both rows; no history: a readable empty
    chart."""
    cs = ControlSchema(SCHEMA)
    other = task_name + "s"
    with pair.b.settings().connect() as conn:
        cs.ensure(conn)
        cs.set_state(conn, task_name, "forward", State.STOPPED, "stopped on request", lag_seconds=0.4)
        cs.set_state(conn, other, "forward", State.STOPPED, "stopped on request")
        with conn.cursor() as cur:
            cs.log_conflict(
                cur,
                task_name,
                "forward",
                conflict_type="update_missing",
                policy="Overwrite",
                decision="Overwritten",
                source=("shop", "orders"),
                dest=("shop", "orders"),
                key={"order_id": 4242},
                source_image={"order_id": 4242, "status": "shipped", "total": "19.90"},
                dest_image={"order_id": 4242, "status": "cancelled", "total": "19.90"},
                position="binlog.000001:1234",
            )
            cur.execute(
                "INSERT INTO dts_meta.divergence (task_name, direction, source_db, source_table, dest_db, "
                "dest_table, kind, key_json, key_hash, columns_json, source_image, dest_image, found_by, "
                "detected_at, last_seen_at) VALUES (%s, 'forward', 'shop', 'customers', 'shop', 'customers', "
                "'different', %s, MD5(%s), %s, %s, %s, 'chunk', UTC_TIMESTAMP(6) - INTERVAL 90 SECOND, "
                "UTC_TIMESTAMP(6))",
                (
                    task_name,
                    '{"id": 77}',
                    '{"id": 77}',
                    '["email"]',
                    '{"id": 77, "email": "a@example.com", "name": "Ann"}',
                    '{"id": 77, "email": "ann@example.com", "name": "Ann"}',
                ),
            )
            cur.execute("COMMIT")
    with pair.a.settings().connect() as conn:
        cs.ensure(conn)
        cs.set_state(conn, task_name, "reverse", State.FAILED, "conflict on shop.orders: TaskFailed")
        cs.write_metrics_minute(
            conn,
            task_name,
            "reverse",
            dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0) - dt.timedelta(hours=5),
            lag_max=73.0,
            lag_avg=40.0,
            rows_applied=600,
            conflicts=1,
        )

    dom = browse(page_url, tmp_path, "conflicts-divergences")
    stopped, failed = card(dom, task_name, "forward"), card(dom, task_name, "reverse")
    # stopped: a grey badge; its card is red because the self-check found the servers differ
    assert 'class="direction bad"' in stopped and "SERVERS DIFFER: 1 row(s)" in text(stopped)
    assert '<span class="state s-idle">Stopped</span>' in stopped
    only_stopped = card(dom, other, "forward")
    assert 'class="direction idle"' in only_stopped and '<span class="state s-idle">Stopped</span>' in only_stopped
    assert 'class="direction bad"' in failed and '<span class="state s-bad">Failed</span>' in failed
    # no history at all: one line; history older than an hour: the hour charts say there is no data
    assert "No lag or throughput history in the last day" in text(only_stopped) and not charts(only_stopped)
    drawn = charts(failed)
    assert drawn["lag/hour"]["dots"] == drawn["rps/hour"]["dots"] == 0
    assert drawn["lag/hour"]["empty"] == "No data in the last hour a running direction records a point every minute"
    assert drawn["lag/day"]["dots"] == drawn["rps/day"]["dots"] == 1

    conflicts = section(dom, "conflicts")
    (row,) = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", conflicts, re.S) if "4242" in r]
    assert "shop.orders" in text(row) and "update_missing" in text(row) and "Overwrite / Overwritten" in text(row)
    assert '<div class="diff"><span class="col">status</span> = shipped</div>' in row
    assert '<div class="diff"><span class="col">status</span> = cancelled</div>' in row
    assert '<div class="same"><span class="col">total</span> = 19.90</div>' in row
    assert re.search(r'<span class="nw" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">(just now|\d+ s ago)</span>', row)

    divergences = section(dom, "divergences")
    (row,) = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", divergences, re.S) if "customers" in r]
    shown = text(row)
    assert "shop.customers -> shop.customers" in shown and '{"id": 77}' in shown and "different" in shown
    assert '<div class="diff"><span class="col">email</span> = a@example.com</div>' in row
    assert '<div class="diff"><span class="col">email</span> = ann@example.com</div>' in row
    assert re.search(r">1 min \d+ s ago<", row), row  # detected 90 s ago, shown as people read it
    # never a raw ISO time with microseconds anywhere on the page
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", text(dom))
