"""Text values kept byte-exact (issue 9, cause 3): pure logic of values.text_decoder / CharsetBytes. The
agreement of the decoders with the server's own tables is checked on a real server in
tests/integration/engine/test_charsets.py."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_dts.engine.values import CharsetBytes, sql_literal, text_decoder


def test_mysql_latin1_decodes_every_byte_including_the_five_cp1252_gaps():
    dec = text_decoder("latin1")
    text = dec(bytes(range(256)))
    assert isinstance(text, str) and len(text) == 256
    assert [text[b] for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)] == ["\x81", "\x8d", "\x8f", "\x90", "\x9d"]
    assert text[0x80] == "€" and text[0x9F] == "Ÿ" and text[0xE9] == "é"


@pytest.mark.parametrize(
    "charset, raw",
    [
        ("big5", b"\xf9\xd6"),  # ETEN extension: Python cannot decode it
        ("big5", b"ab\xa2\xce"),  # the server reads A2CE as U+FFFD, Python as U+5345
        ("gbk", b"\xff\xff"),  # not gbk at all
        ("cp1251", "Привет".encode("cp1251")),  # not checked against the server: kept as bytes
        ("utf16", "hé".encode("utf-16-be")),
        ("utf8mb4", b"\xed\xa0\x80"),  # a surrogate: not valid UTF-8
    ],
)
def test_values_python_may_read_differently_from_the_server_stay_bytes(charset, raw):
    value = text_decoder(charset)(raw)
    assert isinstance(value, CharsetBytes) and bytes(value) == raw and value.charset == charset
    assert value.literal() == f"_{charset} X'{raw.hex().upper()}'"
    assert sql_literal(value) == value.literal() and sql_literal(value, "text") == value.literal()
    back = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))  # reader process -> applier
    assert type(back) is CharsetBytes and back == value and back.charset == charset


def test_exact_values_stay_text_and_binary_stays_bytes():
    assert text_decoder("utf8mb4")("中文 😀".encode()) == "中文 😀"
    assert text_decoder("gbk")("中文".encode("gbk")) == "中文"
    assert text_decoder("cp1250")("Příliš".encode("cp1250")) == "Příliš"
    assert type(text_decoder("binary")(b"\x00\xff")) is bytes


def test_a_charset_name_that_is_not_a_name_is_refused():
    with pytest.raises(ValueError):
        CharsetBytes(b"x", "latin1 X'00'; DROP").literal()
