"""SQL text: identifier quoting, the one SQL tokenizer, qualified-name rewriting, and server text values.

Every module that builds or reads SQL text uses these; nothing else quotes an identifier or splits a
statement into tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def quote_ident(name: str) -> str:
    """Quote one identifier for MySQL: backticks, inner backticks doubled."""
    return "`" + str(name).replace("`", "``") + "`"


def qualified(db: str, table: str) -> str:
    return f"{quote_ident(db)}.{quote_ident(table)}"


def as_text(value: Any) -> Any:
    """A value read from information_schema or SHOW output: bytes (some servers, some columns) -> str."""
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


# ----------------------------------------------------------------------------------------- the tokenizer

_IDENT_CHAR = "0-9A-Za-z$_\u0080-\uffff"  # unquoted identifier characters (MySQL and MariaDB: BMP only)
SPACE = " \t\n\r\f\v"  # the servers' whitespace is ASCII only (U+00A0 is an identifier character)

# Lexeme alternatives, tried in order at each position. "xopen"/"xclose" delimit an executable comment
# (``/*! ... */``, ``/*!50100 ... */``, MariaDB ``/*M! ... */``): its content is code the server runs.
_LEXEME = (
    rf"(?P<space>[{SPACE}]+)"
    r"|(?P<xopen>/\*M?!(?:\d{5,6})?)"
    r"|(?P<xclose>\*/)"
    r"|(?P<comment>/\*.*?\*/|/\*.*\Z|\#[^\n]*|--(?=[\x00-\x20]|\Z)[^\n]*)"
    r"|(?P<backtick>`(?:[^`]|``)*`|`.*\Z)"
    r"|(?P<string>STRING)"
    rf"|(?P<number>(?:0[xX][0-9a-fA-F]+|0[bB][01]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![{_IDENT_CHAR}]))"
    rf"|(?P<word>[{_IDENT_CHAR}]+)"
    r"|(?P<symbol><=>|->>|<=|>=|<>|!=|:=|<<|>>|&&|\|\||->|.)"
)
_STRING_ESCAPES = r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|['"].*\Z"""
_STRING_NO_ESCAPES = r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|['"].*\Z"""  # sql_mode NO_BACKSLASH_ESCAPES
_LEXER = {
    True: re.compile(_LEXEME.replace("STRING", _STRING_ESCAPES), re.S),
    False: re.compile(_LEXEME.replace("STRING", _STRING_NO_ESCAPES), re.S),
}

TRIVIA = frozenset({"space", "comment"})
_IDENT_RUN = re.compile(rf"[{_IDENT_CHAR}]+")


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme of a statement: ``sql[start:end] == text``.

    ``kind``: ``word`` (unquoted identifier or keyword), ``backtick`` (quoted identifier), ``string``
    ('...' or "..."), ``number``, ``symbol`` (operator or punctuation, multi-character operators whole),
    and the trivia ``space`` and ``comment`` (the delimiters of an executable comment are ``comment``
    tokens; the code between them is tokenized as code). "..." is a string, as without sql_mode ANSI_QUOTES.
    """

    kind: str
    text: str
    start: int
    end: int

    @property
    def ident(self) -> str | None:
        """The identifier this token names (a keyword is a word too), else None."""
        if self.kind == "backtick":
            body = self.text[1:-1] if len(self.text) > 1 and self.text.endswith("`") else self.text[1:]
            return body.replace("``", "`")
        if self.kind == "word":
            return self.text
        return None

    def kw(self, *words: str) -> bool:
        """An unquoted word equal to one of ``words`` (upper case), case-insensitively."""
        return self.kind == "word" and self.text.upper() in words

    @property
    def is_trivia(self) -> bool:
        return self.kind in TRIVIA


def tokenize(sql: str, *, trivia: bool = False, backslash_escapes: bool = True) -> list[Token]:
    """Split a MySQL/MariaDB statement into tokens.

    Without ``trivia`` (the default) spaces and comments are left out; with it, the tokens cover ``sql``
    exactly (``"".join(t.text for t in tokens) == sql``). ``backslash_escapes=False`` reads strings as
    ``sql_mode=NO_BACKSLASH_ESCAPES`` does. Unterminated strings, quoted identifiers and comments run to the
    end of the text (a server would have refused such a statement).
    """
    lexer = _LEXER[backslash_escapes]
    out: list[Token] = []
    pos, n = 0, len(sql)
    in_executable = False
    # After an identifier and a dot written right after it, the server reads an identifier, never a number
    # (MySQL's MY_LEX_IDENT_SEP): ``shop.2024`` and ``db.1e3`` are table names.
    after_ident = False  # the previous lexeme was an identifier ending here
    after_ident_dot = False  # the previous lexemes were an identifier and a dot, ending here
    while pos < n:
        name_part = _IDENT_RUN.match(sql, pos) if after_ident_dot else None
        if name_part is not None:
            kind, end = "word", name_part.end()
        elif after_ident and sql[pos] == ".":
            kind, end = "symbol", pos + 1
        else:
            m = lexer.match(sql, pos)
            assert m is not None  # the symbol alternative matches any character
            kind, end = m.lastgroup or "symbol", m.end()
        after_ident_dot = after_ident and kind == "symbol" and end == pos + 1 and sql[pos] == "."
        after_ident = kind in ("word", "backtick")
        if kind == "xopen":
            kind, in_executable = "comment", True
        elif kind == "xclose":
            if in_executable:
                kind, in_executable = "comment", False
            else:  # "*/" outside an executable comment: two symbols
                kind, end = "symbol", pos + 1
        if trivia or kind not in TRIVIA:
            out.append(Token(kind, sql[pos:end], pos, end))
        pos = end
    return out


def backslash_escapes(sql_mode: str | None) -> bool:
    """Whether text written under ``sql_mode`` reads a backslash in a string as an escape (``tokenize``'s
    ``backslash_escapes``): yes unless the mode has ``NO_BACKSLASH_ESCAPES``. ``None``: the server default (yes)."""
    return "NO_BACKSLASH_ESCAPES" not in {m.strip().upper() for m in (sql_mode or "").split(",")}


def dotted_name(tokens: Sequence[Token], i: int, max_parts: int = 3) -> tuple[list[Token], int]:
    """The identifier tokens of the dotted name ``a[.b[.c]]`` starting at ``tokens[i]`` (at most ``max_parts``)
    and the index after it; ``([], i)`` when ``tokens[i]`` is no identifier. ``tokens`` without trivia."""
    if i >= len(tokens) or tokens[i].ident is None:
        return [], i
    parts = [tokens[i]]
    j = i + 1
    while len(parts) < max_parts and j + 1 < len(tokens) and tokens[j].text == "." and tokens[j + 1].ident is not None:
        parts.append(tokens[j + 1])
        j += 2
    return parts, j


# ----------------------------------------------------------------------------------------- name rewriting

NameMapper = Callable[[str, str], "tuple[str, str] | None"]


def rewrite_names(
    sql: str,
    map_name: NameMapper | None = None,
    *,
    edits: Iterable[tuple[int, int, str]] = (),
    tokens: Sequence[Token] | None = None,
) -> str:
    """``sql`` with names rewritten.

    ``edits``: ``(start, end, text)`` spans replaced as given (the statement's own object names, placed by
    the caller). ``map_name(db, name)``: every other qualified name ``db.name`` / ``db.name.column`` becomes
    the quoted, mapped pair when it returns one that differs (None: leave it). Strings and comments are never
    touched (the code inside an executable comment is code). ``tokens``: ``tokenize(sql)`` (without trivia)
    when the caller already has it.
    """
    todo = sorted(edits)
    if map_name is not None:
        toks = tokens if tokens is not None else tokenize(sql)
        fixed = list(todo)
        i = 0
        while i < len(toks):
            parts, j = dotted_name(toks, i)
            if not parts:
                i += 1
                continue
            if len(parts) >= 2 and not any(s < parts[1].end and parts[0].start < e for s, e, _ in fixed):
                db, name = parts[0].ident, parts[1].ident
                assert db is not None and name is not None
                mapped = map_name(db, name)
                if mapped is not None and mapped != (db, name):
                    todo.append((parts[0].start, parts[1].end, qualified(*mapped)))
            i = j
        todo.sort()
    out, pos = [], 0
    for start, end, text in todo:
        out.append(sql[pos:start])
        out.append(text)
        pos = end
    out.append(sql[pos:])
    return "".join(out)
