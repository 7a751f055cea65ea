"""The one SQL tokenizer and the qualified-name rewriter (engine/sqltext.py)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.sqltext import (
    as_text,
    dotted_name,
    qualified,
    quote_ident,
    rewrite_names,
    tokenize,
)


def kinds(sql: str, **kw) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(sql, **kw)]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE `a``b`.t (x INT) /*!50100 PARTITION BY HASH (x) */ -- c\n# d\n",
        "SELECT 'it''s \\' fine', \"q\"\"q\", 1.5e3, 0x1F, é.ü FROM t WHERE a<=>b /* x */",
        "unterminated 'string",
        "unterminated /* comment",
        "a `unterminated",
        "emoji \U0001f600 and nbsp\u00a0x",
        "",
    ],
)
def test_tokens_with_trivia_cover_the_text_exactly(sql):
    toks = tokenize(sql, trivia=True)
    assert "".join(t.text for t in toks) == sql
    assert all(sql[t.start : t.end] == t.text for t in toks)
    assert [t for t in toks if not t.is_trivia] == tokenize(sql)


def test_comments_of_each_kind_are_trivia():
    sql = "a -- dash\nb # hash\nc /* block\n d */ e --\nf"
    assert kinds(sql) == [("word", "a"), ("word", "b"), ("word", "c"), ("word", "e"), ("word", "f")]
    assert [t.text for t in tokenize(sql, trivia=True) if t.kind == "comment"] == [
        "-- dash",
        "# hash",
        "/* block\n d */",
        "--",
    ]
    # "--" starts a comment only before whitespace or a control character (else it is two minus signs)
    assert kinds("1--1") == [("number", "1"), ("symbol", "-"), ("symbol", "-"), ("number", "1")]
    assert kinds("x/*+ hint */y") == [("word", "x"), ("word", "y")]
    assert kinds("5*/**/2") == [("number", "5"), ("symbol", "*"), ("number", "2")]


def test_executable_comments_are_code():
    sql = "CREATE /*!50001 VIEW*/ v /*M!100100 IF NOT EXISTS */ /*! STRAIGHT_JOIN */ x"
    assert [t.text for t in tokenize(sql)] == ["CREATE", "VIEW", "v", "IF", "NOT", "EXISTS", "STRAIGHT_JOIN", "x"]
    trivia = [t.text for t in tokenize(sql, trivia=True) if t.kind == "comment"]
    assert trivia == ["/*!50001", "*/", "/*M!100100", "*/", "/*!", "*/"]
    # a string inside an executable comment is a string; "*/" in it does not end the comment
    assert kinds("/*!40101 SET @a='*/' */ b") == [
        ("word", "SET"),
        ("symbol", "@"),
        ("word", "a"),
        ("symbol", "="),
        ("string", "'*/'"),
        ("word", "b"),
    ]


def test_odd_identifiers():
    toks = tokenize("`we``ird db`.`t 1` é_ü.ñ $x 2019_orders `` 1e5x")
    assert [(t.kind, t.ident) for t in toks] == [
        ("backtick", "we`ird db"),
        ("symbol", None),
        ("backtick", "t 1"),
        ("word", "é_ü"),
        ("symbol", None),
        ("word", "ñ"),
        ("word", "$x"),
        ("word", "2019_orders"),
        ("backtick", ""),
        ("word", "1e5x"),
    ]
    # U+0080..U+FFFF are identifier characters (U+00A0 too); characters beyond the BMP are not
    assert kinds("a\u00a0b") == [("word", "a\u00a0b")]
    assert kinds("a\U0001f600b") == [("word", "a"), ("symbol", "\U0001f600"), ("word", "b")]
    assert tokenize("SELECT")[0].kw("SELECT", "FROM") and not tokenize("`select`")[0].kw("SELECT")


def test_numbers_are_not_identifiers():
    numbers = ["1", "1.5", ".5", "1e5", "1.5E-3", "0x1F", "0b101", "123"]
    assert kinds(" ".join(numbers)) == [("number", n) for n in numbers]
    assert all(t.ident is None for t in tokenize("1.5 0x1F 42"))
    # a digit-led identifier after a dot stays a name
    assert kinds("db.1x") == [("word", "db"), ("symbol", "."), ("word", "1x")]
    assert kinds("0x1G") == [("word", "0x1G")]


def test_strings_with_escapes():
    assert kinds(r"'a\'b' 'c''d' " + '"e\\"f" "g""h"') == [
        ("string", r"'a\'b'"),
        ("string", "'c''d'"),
        ("string", '"e\\"f"'),
        ("string", '"g""h"'),
    ]
    # sql_mode NO_BACKSLASH_ESCAPES: a backslash is a plain character
    assert kinds(r"'C:\' x", backslash_escapes=False) == [("string", r"'C:\'"), ("word", "x")]
    assert kinds(r"'C:\' x") == [("string", r"'C:\' x")]  # unterminated: runs to the end
    assert kinds("'--' '#' '/*'") == [("string", "'--'"), ("string", "'#'"), ("string", "'/*'")]


def test_operators_are_whole():
    assert [t.text for t in tokenize("a<=>b c->>'$.x' @v:=1 d!=e f<>g")] == [
        "a",
        "<=>",
        "b",
        "c",
        "->>",
        "'$.x'",
        "@",
        "v",
        ":=",
        "1",
        "d",
        "!=",
        "e",
        "f",
        "<>",
        "g",
    ]


def test_dotted_name():
    toks = tokenize("`a`. b .c.d x")
    parts, j = dotted_name(toks, 0)
    assert [p.ident for p in parts] == ["a", "b", "c"] and toks[j].text == "."
    parts, j = dotted_name(toks, 0, max_parts=2)
    assert [p.ident for p in parts] == ["a", "b"] and j == 3
    assert dotted_name(tokenize("'s'.x"), 0) == ([], 0)


def test_rewrite_names():
    def m(db, name):
        return {("shop", "orders"): ("shop2", "orders_v2"), ("shop", "items"): ("shop2", "items")}.get((db, name))

    sql = (
        "SELECT shop.orders.id, `shop`.`items`.x, other.t, 'shop.orders', o.shop.orders /* shop.orders */ "
        "FROM shop . orders JOIN shop.unknown"
    )
    assert rewrite_names(sql, m) == (
        "SELECT `shop2`.`orders_v2`.id, `shop2`.`items`.x, other.t, 'shop.orders', o.shop.orders /* shop.orders */ "
        "FROM `shop2`.`orders_v2` JOIN shop.unknown"
    )
    # given edits win over mapping and are applied as they are
    sql = "ALTER TABLE shop.items ADD c INT"
    assert rewrite_names(sql, m, edits=[(12, 22, "`x`.`y`")]) == "ALTER TABLE `x`.`y` ADD c INT"
    assert rewrite_names(sql) == sql
    assert rewrite_names("SELECT 1.5, x.y", m) == "SELECT 1.5, x.y"


def test_quoting_and_text():
    assert quote_ident("a`b") == "`a``b`"
    assert qualified("d", "t") == "`d`.`t`"
    assert as_text(b"\xc3\xa9") == "é" and as_text(5) == 5


def test_a_name_after_a_dot_is_never_a_number():
    """The server reads ``shop.2024``, ``shop.1e3`` and ``shop.0x1f`` as table names (MY_LEX_IDENT_SEP)."""
    toks = tokenize("ALTER TABLE shop.2024 ADD c INT; RENAME TABLE shop.1e3 TO `shop`.0x1f")
    assert [(t.kind, t.text) for t in toks[2:5]] == [("word", "shop"), ("symbol", "."), ("word", "2024")]
    assert [t.ident for t in toks if t.kind in ("word", "backtick")][-5:] == ["shop", "1e3", "TO", "shop", "0x1f"]
    assert [(t.kind, t.text) for t in tokenize("SELECT 1.5, .5, 3 .5")] == [
        ("word", "SELECT"),
        ("number", "1.5"),
        ("symbol", ","),
        ("number", ".5"),
        ("symbol", ","),
        ("number", "3"),
        ("number", ".5"),
    ]

    def m(db, name):
        return ("shop2", f"t_{name}") if db == "shop" else None

    assert rewrite_names("ALTER TABLE shop.2024 ADD c INT", m) == "ALTER TABLE `shop2`.`t_2024` ADD c INT"
