"""Charset zoo (issue 9, cause 3): every character set and collation round-trips byte for byte, in the full
data sync and in binlog apply (forward and reverse), incl. MySQL latin1's five extra bytes (0x81 0x8D 0x8F 0x90
0x9D), bytes that no Unicode codec of Python maps like the server does, and keys that differ only in letter case
(in _bin tables). Rows are compared as HEX() of every column and by CHECKSUM TABLE on both servers
(the zoo: tests/charsetzoo.py)."""

from __future__ import annotations

import pytest
from charsetzoo import DB, assert_zoo_equal, create_zoo, hex_rows, write_changes
from test_incremental import Sync, make_direction, sql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.schema_sync import sync_schema
from airflow_provider_dts.engine.snapshot import full_data_sync
from airflow_provider_dts.engine.verify import verify_direction


def test_full_data_sync_copies_every_charset_byte_exact(clean_pair, task_name):
    pair = clean_pair
    create_zoo(pair.a, with_rows=True)
    for method in ("insert", "load_data"):
        sql(pair.b, f"DROP DATABASE IF EXISTS {DB}")
        d = SyncDirection.from_dict({"task_name": task_name + method[0], "source_conn_id": "dts_source",
                                     "destination_conn_id": "dts_destination", "objects": [DB]})
        sync_schema(d, pair.a.settings(), pair.b.settings())
        result = full_data_sync(d, pair.a.settings(), pair.b.settings(), method=method, chunk_bytes=2048)
        assert result.method == method and result.rows > 50
        assert_zoo_equal(pair.a, pair.b, timeout=1)
    # verify agrees, and sees one byte changed in a latin1 value (0x81 -> 0x8D) and in a big5 one
    report = verify_direction(d, pair.a.settings(), pair.b.settings(), run_id="zoo", record=False)
    assert report.equal, report.summary()
    sql(pair.b, f"UPDATE {DB}.latin1_bin SET v=REPLACE(v, _latin1 X'81', _latin1 X'8D') WHERE k='k0'",
        f"UPDATE {DB}.big5_chinese_ci SET t=_big5 X'F9D7' WHERE k='k2'")
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
        assert [r[0] for r in hex_rows(dst, "latin1_bin") if r[0].startswith(b"case-".hex().upper())] == \
               sorted((b"case-" + x).hex().upper() for x in (b"A", b"\xe9", b"z"))


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
                chunk = codes[i:i + 2000]
                cur.execute(" UNION ALL ".join(
                    f"SELECT '{c.hex()}', HEX(CONVERT(CONVERT(X'{c.hex()}' USING {cs}) USING utf8mb4))" for c in chunk))
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
