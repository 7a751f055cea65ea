"""Charset zoo (issue 9, cause 3): every character set and collation round-trips byte for byte, in the full
data sync and in binlog apply (forward and reverse), incl. MySQL latin1's five extra bytes (0x81 0x8D 0x8F 0x90
0x9D), bytes that no Unicode codec of Python maps like the server does, and keys that differ only in letter case
(in _bin tables). Rows are compared as HEX() of every column and by CHECKSUM TABLE on both servers
(the zoo: tests/charsetzoo.py)."""

from __future__ import annotations

import pytest
from charsetzoo import (
    DB,
    assert_zoo_equal,
    create_zoo,
    hex_rows,
    write_changes,
    zoo_tables,
)
from helpers import wait_until
from syncing import Sync, make_direction, sql

from airflow_provider_dts.engine.config import SyncDirection, TwoWayTask
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.engine.verify import verify_direction


def test_full_data_sync_copies_every_charset_byte_exact(clean_pair, task_name):
    pair = clean_pair
    create_zoo(pair.a, with_rows=True)
    for method in ("insert", "load_data"):
        sql(pair.b, f"DROP DATABASE IF EXISTS {DB}")
        d = SyncDirection.from_dict(
            {
                "task_name": task_name + method[0],
                "source_conn_id": "dts_source",
                "destination_conn_id": "dts_destination",
                "objects": [DB],
            }
        )
        sync_schema(d, pair.a.settings(), pair.b.settings())
        result = full_data_sync(d, pair.a.settings(), pair.b.settings(), method=method, chunk_bytes=2048)
        assert result.method == method and result.rows > 50
        assert_zoo_equal(pair.a, pair.b, timeout=1)
    # verify agrees, and sees one byte changed in a latin1 value (0x81 -> 0x8D) and in a big5 one
    report = verify_direction(d, pair.a.settings(), pair.b.settings(), run_id="zoo", record=False)
    assert report.equal, report.summary()
    sql(
        pair.b,
        f"UPDATE {DB}.latin1_bin SET v=REPLACE(v, _latin1 X'81', _latin1 X'8D') WHERE k='k0'",
        f"UPDATE {DB}.big5_chinese_ci SET t=_big5 X'F9D7' WHERE k='k2'",
    )
    report = verify_direction(d, pair.a.settings(), pair.b.settings(), run_id="zoo2", record=False)
    bad = sorted(t.source[1] for t in report.tables if not t.equal)
    assert bad == ["big5_chinese_ci", "latin1_bin"], report.summary()


@pytest.mark.parametrize("role", ["forward", "reverse"])
def test_binlog_apply_keeps_every_charset_byte_exact(clean_pair, task_name, role):
    pair = clean_pair
    src, dst = (pair.a, pair.b) if role == "forward" else (pair.b, pair.a)
    create_zoo(src, with_rows=False)
    create_zoo(dst, with_rows=False)
    with Sync(make_direction(task_name, role, objects=[DB]), src, dst) as sync:
        write_changes(src)
        assert_zoo_equal(src, dst)
        assert sync.result is None, sync.result  # still running
        assert sql(dst, "SELECT conflict_type, dest_table, key_json FROM dts_meta.conflict_log") == []
        # the case twins really are distinct rows on both sides
        assert [r[0] for r in hex_rows(dst, "latin1_bin") if r[0].startswith(b"case-".hex().upper())] == sorted(
            (b"case-" + x).hex().upper() for x in (b"A", b"\xe9", b"z")
        )


def test_zoo_writes_of_one_server_touch_only_its_own_rows(clean_pair):
    """The two servers of a two-way test write disjoint rows (the spec: a row is written on one node only).
    A whole-table ``UPDATE ... SET s=e`` used to also rewrite the other server's rows that had just arrived:
    replayed back while that server's own later changes were still in flight, it re-inserted rows the other
    server had already re-keyed and put stale values back (update_missing conflicts, sides different)."""
    server = clean_pair.a
    create_zoo(server, with_rows=True)  # rows of "the other server" (no prefix), several with s <> e
    before = {name: hex_rows(server, name) for name, *_ in zoo_tables()}
    write_changes(server, prefix=b"B-")
    mine = tuple(p.hex().upper() for p in (b"B-", b"new-B-"))
    for name, rows in before.items():
        others = [r for r in hex_rows(server, name) if not r[0].startswith(mine)]
        assert others == rows, name


def test_two_way_zoo_written_on_both_servers_ends_equal(clean_pair, task_name):
    """Both directions running (task one after its full data sync, task two from its start floor); each server
    writes every charset and collation on its own rows; both sides end byte-equal with no conflict (the engine
    side of tests/e2e/test_charsets_statements_dag.py)."""
    p = clean_pair
    create_zoo(p.a, with_rows=True)
    task = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {"source_conn_id": "dts_source", "destination_conn_id": "dts_destination", "objects": [DB]},
            "reverse": {},
        }
    )
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    sync_schema(task.forward, a, b)
    full_data_sync(task.forward, a, b)
    with Sync(task.forward, p.a, p.b) as forward:
        sync_schema(task.reverse, b, a)
        full_data_sync(task.reverse, b, a)
        with Sync(task.reverse, p.b, p.a) as reverse:
            assert_zoo_equal(p.a, p.b, timeout=5)
            write_changes(p.a, prefix=b"A-")
            write_changes(p.b, prefix=b"B-")
            assert_zoo_equal(p.a, p.b)
            assert forward.result is None and reverse.result is None  # both still running
    for server, role in ((p.b, "forward"), (p.a, "reverse")):
        with server.root_connect() as conn:
            assert ControlSchema().conflicts(conn, task_name, role) == [], role
    keys = [r[0] for r in hex_rows(p.a, "latin1_swedish_ci")]
    assert (b"new-A-k1" + b"\x81\x8d\x8f\x90\x9d").hex().upper() in keys and (
        b"new-B-k1" + b"\x81\x8d\x8f\x90\x9d"
    ).hex().upper() in keys  # both servers' re-keys arrived


def test_self_check_reads_rows_whose_key_is_kept_as_bytes(clean_pair, task_name, caplog):
    """A key the engine keeps as the column's bytes (values.CharsetBytes: big5 A2CE, latin1's five extra bytes)
    is read back by the self-check with its character set. It used to be sent as a utf8mb4 string: on big5 the
    read failed (1267, illegal mix of collations) and, the candidate never leaving, the self-check stayed paused
    for good; on latin1 it found no row on either side, so a difference there passed as equal."""
    p = clean_pair
    create_zoo(p.a, with_rows=False)
    keys = {"big5_chinese_ci": "_big5 X'6B31A2CE'", "latin1_swedish_ci": "_latin1 X'6B31818D8F909D'"}
    task = TwoWayTask.from_dict(
        {
            "name": task_name,
            "forward": {"source_conn_id": "dts_source", "destination_conn_id": "dts_destination", "objects": [DB]},
            "reverse": {},
        }
    )
    a, b = p.a.settings(name="src"), p.b.settings(name="dst")
    sync_schema(task.forward, a, b)
    full_data_sync(task.forward, a, b)
    with Sync(task.forward, p.a, p.b) as forward:
        full_data_sync(task.reverse, b, a)
        with Sync(task.reverse, p.b, p.a) as reverse:
            for table, k in keys.items():
                sql(p.a, f"INSERT INTO {DB}.{table} (k, v) VALUES ({k}, 'same')")
            wait_until(
                lambda: all(sql(p.b, f"SELECT v FROM {DB}.{t} WHERE k={k}") == [("same",)] for t, k in keys.items()),
                what="rows applied",
            )
            # a change on B that bypasses its binlog: neither direction sees it, the rows really differ
            sql(
                p.b,
                "SET SESSION sql_log_bin=0",
                *(f"UPDATE {DB}.{table} SET v='only on b' WHERE k={k}" for table, k in keys.items()),
            )
            found = wait_until(
                lambda: (
                    len(
                        r := sorted(
                            sql(
                                p.b,
                                "SELECT source_table, kind FROM dts_meta.divergence WHERE "
                                f"task_name='{task_name}' AND direction='forward'",
                            )
                        )
                    )
                    >= len(keys)
                    and r
                ),
                timeout=40,
                what="the self-check of task one found both divergences",
            )
            assert found == sorted((t, "different") for t in keys), found
            assert forward.result is None and reverse.result is None
    assert "self-check paused" not in caplog.text, caplog.text


def _all_codes(cs: str) -> list[bytes]:
    if cs in ("latin1", "cp1250"):
        return [bytes([i]) for i in range(256)]
    trail = list(range(0x40, 0x7F)) + list(range(0x80 if cs == "gbk" else 0xA1, 0xFF))
    return [bytes([a, b]) for a in range(0x81, 0xFF) for b in trail]


@pytest.mark.parametrize("cs", ["latin1", "cp1250", "gbk", "big5"])
def test_python_codecs_agree_with_the_server(pair, cs):
    """Where the engine keeps a binlog text value as ``str`` (values.text_decoder), the server turns that
    string back into exactly the original bytes: checked for every character of the character set."""
    from airflow_provider_dts.engine.values import CharsetBytes, text_decoder

    dec = text_decoder(cs)
    codes = _all_codes(cs)
    conn = pair.a.root_connect()
    kept_as_text = 0
    try:
        with conn.cursor() as cur:
            for i in range(0, len(codes), 2000):
                chunk = codes[i : i + 2000]
                cur.execute(
                    " UNION ALL ".join(
                        f"SELECT '{c.hex()}', HEX(CONVERT(CONVERT(X'{c.hex()}' USING {cs}) USING utf8mb4))"
                        for c in chunk
                    )
                )
                for h, server_utf8 in cur.fetchall():
                    value = dec(bytes.fromhex(h))
                    if isinstance(value, CharsetBytes):
                        assert bytes(value) == bytes.fromhex(h) and value.charset == cs
                        continue
                    assert isinstance(value, str), (cs, h, value)
                    kept_as_text += 1
                    # the server's own reading of the bytes is the string Python made ...
                    assert value.encode("utf-8").hex().upper() == server_utf8, (cs, h, value)
                    # ... and the server converts that string back to the same bytes
                    cur.execute(f"SELECT HEX(CONVERT(%s USING {cs}))", (value,))
                    assert cur.fetchone()[0] == h.upper(), (cs, h, value)
    finally:
        conn.close()
    assert kept_as_text > len(codes) // 2  # most characters stay readable text
