"""``values.make_literal(conn)`` escapes strings itself (issue 14: one table lookup instead of two PyMySQL calls
per value): it must stay exactly what the PyMySQL connection renders, in both escaping modes of the session."""

from __future__ import annotations

import random

import pymysql
import pytest
from pymysql.constants import SERVER_STATUS

from airflow_provider_dts.engine.values import make_literal

SAMPLES = [
    "",
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "nul\x00byte",
    "line\nbreak\r\n",
    "ctrl-z \x1a",
    "\\'\"\x00\n\r\x1a",
    "àé ü 中文 😀",
    "`tick` and 'quote' and \\\\",
]


@pytest.mark.parametrize("mode", [0, SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES])
def test_strings_render_exactly_as_the_pymysql_connection_renders_them(mode):
    conn = pymysql.connections.Connection(defer_connect=True)
    conn.server_status = mode
    lit = make_literal(conn)
    every_char = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF)
    rnd = random.Random(14)
    mixed = ["".join(rnd.choice(every_char[:300]) for _ in range(rnd.randint(0, 40))) for _ in range(2000)]
    for text in SAMPLES + [every_char] + mixed:
        assert lit(text) == conn.literal(text), repr(text)


def test_the_session_mode_is_read_at_each_value():
    conn = pymysql.connections.Connection(defer_connect=True)
    conn.server_status = 0
    lit = make_literal(conn)
    assert lit("it's") == "'it\\'s'"
    conn.server_status = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES  # e.g. a SET sql_mode in the session
    assert lit("it's") == "'it''s'" == conn.literal("it's")
