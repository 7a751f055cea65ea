"""Exact SQL literals for every MySQL/MariaDB type, rendered in Python or by the server itself.

Two ways to turn a value into SQL text that stores exactly the same value again:

* ``make_literal(conn)`` is THE renderer of Python values: the applier writes every row with it (also the
  self-check's lookups). Bound to a PyMySQL connection it renders exactly what PyMySQL's ``conn.literal``
  renders in that session (fast paths for the common types; ``CharsetBytes`` as ``_cs X'..'``); without one,
  session-independent exact forms (bytes as ``X'..'``; ValueError for what no column stores). It takes values
  as the reader delivers them (``binlog.normalize_value`` already fixed what the library decodes lossily).
  ``sql_literal(value, column_kind)`` / ``row_literal`` feed it values decoded elsewhere (PyMySQL reads,
  python-mysql-replication without the reader's fixes): ``column_kind`` (see ``ColumnInfo.kind``) fixes
  what the Python type alone does not say: BIT given as a string of bits or bytes, JSON given as bytes/str
  text or decoded data, raw bytes of a text/ENUM/SET column, the zero TIMESTAMP / YEAR that
  python-mysql-replication decodes as 1970-01-01 00:00:00 / 1900; TIME (``timedelta``, negative and > 24 h
  included), SET (``set``) and JSON (``dict``/``list``) become their exact text.

* The fast raw path used by the full data sync: ``row_literal_sql(columns)`` is a SQL expression the
  *source* server evaluates for each row, giving the whole ``(v1,v2,...)`` tuple as exact SQL text (bytes)
  with no Python type conversion at all. ``key_literal_sql(column)`` gives one key column's literal for
  keyset pagination (``keyset_condition``). FLOAT is rendered through a double (``c+0e0``) because the
  server prints FLOAT with only 6 significant digits (inexact); DOUBLE text is the shortest exact form.

Literals without a connection assume the session is NOT in ``NO_BACKSLASH_ESCAPES`` mode
(``WRITER_SQL_MODE`` is safe), and that both sessions use ``time_zone='+00:00'`` (every engine connection
does) so TIMESTAMP is exact. Columns (``ColumnInfo``) are read by ``engine.catalog``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_float, escape_time

from airflow_provider_dts.engine.catalog import ColumnInfo
from airflow_provider_dts.engine.sqltext import as_text, qualified, quote_ident

# sql_mode for sessions that write copied or replicated rows: strict (nothing silently truncated), zero
# dates and zero-in-date allowed (they exist in real data), 0 stored as 0 in AUTO_INCREMENT columns,
# backslash escapes on (our literals use them).
WRITER_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"

# sql_mode for sessions that read definitions or render values on the source: no ANSI_QUOTES (SHOW CREATE
# keeps backticks), no NO_BACKSLASH_ESCAPES (our string literals and QUOTE() use backslashes), no
# PAD_CHAR_TO_FULL_LENGTH (CHAR values as stored).
READER_SQL_MODE = "NO_ENGINE_SUBSTITUTION"

# ----------------------------------------------------------------------------------------- Python values

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\x00": "\\0",
    "\n": "\\n",
    "\r": "\\r",
    "\x1a": "\\Z",
}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
# PyMySQL's own escaping (``pymysql.converters.escape_string``: the same characters plus ``"``), as the table it
# uses: ``make_literal(conn)`` escapes with it directly instead of through two PyMySQL calls per string value
_PYMYSQL_ESCAPE_TABLE = [chr(x) for x in range(128)]
for _ch, _escaped in {**_ESCAPES, '"': '\\"'}.items():
    _PYMYSQL_ESCAPE_TABLE[ord(_ch)] = _escaped
del _ch, _escaped


# ----------------------------------------------------------------------------------------- text in any charset
#
# A text value read from the binlog arrives as the column's own bytes. It is kept as ``str`` only when the
# server converts that exact string back to the same bytes (the applier writes ``str`` over a utf8mb4
# connection, the server converts it to the column's character set), otherwise as ``CharsetBytes``: the bytes
# plus the character set, written as an introducer literal ``_gbk X'..'`` (no conversion; the column's
# collation decides comparisons, so key lookups still use the index and keep _ci/_bin semantics).
#
# Python codecs checked against MariaDB 10.11's own conversion tables (tests/integration/engine/test_charsets.py
# ``test_python_codecs_agree_with_the_server``): for these character sets every byte string Python decodes
# is converted back by the server to the same bytes. MySQL's latin1 is cp1252 plus five C1 controls (0x81
# 0x8D 0x8F 0x90 0x9D), which Python's cp1252 refuses: it has its own table. Other character sets (cp1251,
# sjis, utf16, ...) are not checked: their values stay bytes, which is exact too.

_EXACT_CODECS = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "ascii": "ascii",
    "cp1250": "cp1250",
    "gbk": "gbk",
    "big5": "big5",
}
# big5 characters the server reads differently from Python (A2CE: U+FFFD vs U+5345; A15A, A1C3, A1C5, A1FE,
# A240, A2CC likewise): a value containing these bytes (even across a character boundary) stays bytes.
_BIG5_UNSURE = (b"\xa1\x5a", b"\xa1\xc3", b"\xa1\xc5", b"\xa1\xfe", b"\xa2\x40", b"\xa2\xcc", b"\xa2\xce")
_LATIN1_C1 = {
    b: bytes([b]).decode("cp1252", "strict") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
    for b in range(0x80, 0xA0)
}
_MYSQL_LATIN1 = str.maketrans({chr(b): c for b, c in _LATIN1_C1.items()})


class CharsetBytes(bytes):
    """A text value as the column's bytes, with the column's character set (``charset``)."""

    charset: str

    def __new__(cls, raw: bytes, charset: str) -> CharsetBytes:
        self = super().__new__(cls, raw)
        self.charset = charset
        return self

    def __reduce__(self):  # pickled (reader process -> applier) as bytes + charset
        return CharsetBytes, (bytes(self), self.charset)

    def __repr__(self) -> str:
        return f"CharsetBytes({bytes(self)!r}, {self.charset!r})"

    def literal(self) -> str:
        """``_latin1 X'E9'``: the bytes as they are, in the column's character set."""
        return f"{charset_introducer(self.charset)} X'{self.hex().upper()}'"


def text_decoder(charset: str | None):
    """``raw bytes -> value`` for a text column of ``charset`` (see above): ``str`` when the server turns it
    back into exactly these bytes, else ``CharsetBytes``; ``bytes`` for the ``binary`` character set."""
    cs = (charset or "utf8mb4").lower()
    if cs == "binary":
        return bytes
    if cs == "latin1":
        table = _MYSQL_LATIN1

        def latin1(raw):
            return raw.decode("latin-1").translate(table)

        return latin1
    codec = _EXACT_CODECS.get(cs)
    if codec is None:

        def keep(raw):
            return CharsetBytes(raw, cs) if raw else ""

        return keep
    unsure = _BIG5_UNSURE if cs == "big5" else ()

    def dec(raw):
        try:
            if unsure and any(u in raw for u in unsure):
                return CharsetBytes(raw, cs)
            return raw.decode(codec)
        except UnicodeDecodeError:
            return CharsetBytes(raw, cs)

    return dec


def _escape(text: str) -> str:
    return text.translate(_ESCAPE_TABLE)


def quote_string(text: str) -> str:
    """A single-quoted MySQL string literal with backslash escaping (utf8mb4 characters kept)."""
    return "'" + _escape(text) + "'"


def hex_literal(data: bytes | bytearray | memoryview) -> str:
    """``X'..'``: exact for any bytes, also for GEOMETRY (internal SRID+WKB) and BIT columns."""
    return "X'" + bytes(data).hex().upper() + "'"


def format_timedelta(td: _dt.timedelta) -> str:
    """TIME text for a timedelta: '-838:59:59.000000', '100:00:00', negative fractions exact."""
    total_us = (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    secs, us = divmod(total_us, 1_000_000)
    hours, rem = divmod(secs, 3600)
    minutes, seconds = divmod(rem, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if us:
        text += f".{us:06d}"
    return text


def _fraction(us: int) -> str:
    return f".{us:06d}" if us else ""


def _plain_json(value: Any) -> Any:
    """MySQL binary JSON decodes with bytes keys/strings: make it plain JSON data."""
    if isinstance(value, dict):
        return {as_text(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return as_text(value)
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def json_text(value: Any) -> str:
    """JSON document text for a decoded JSON value (dict/list/scalar) or JSON text as str/bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    return json.dumps(_plain_json(value), ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


_EPOCH = _dt.datetime(1970, 1, 1)


def make_literal(conn: Any = None) -> Callable[[Any], str]:
    """THE renderer: ``value -> SQL literal text`` (see the module doc).

    With ``conn`` (PyMySQL connection): exactly ``conn.literal(value)``, in that session's escaping, with the
    common types first (the applier renders every value of every row). Without: the same fast paths, then
    ``_offline_literal``.
    """
    slow: Callable[[Any], str]
    table: Any
    if conn is not None:  # = conn.escape_string: PyMySQL's table, or quotes doubled in NO_BACKSLASH_ESCAPES
        slow, table, status = conn.literal, _PYMYSQL_ESCAPE_TABLE, SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
    else:
        slow, table, status = _offline_literal, _ESCAPE_TABLE, 0
    datetime, date = _dt.datetime, _dt.date

    def lit(v: Any) -> str:
        t = type(v)
        if t is int:
            return str(v)
        if t is str:
            if status and conn.server_status & status:
                return "'" + v.replace("'", "''") + "'"
            return "'" + v.translate(table) + "'"
        if v is None:
            return "NULL"
        if t is datetime and v.tzinfo is None:  # = PyMySQL's escape_datetime for naive values
            return "'" + v.isoformat(" ") + "'"
        if t is Decimal:  # = PyMySQL's Decimal2Literal
            return format(v, "f")
        if t is date:
            return "'" + v.isoformat() + "'"
        if t is CharsetBytes:  # text kept as the column's bytes: ``_gbk X'..'`` (values.CharsetBytes)
            return v.literal()
        return slow(v)

    return lit


def _offline_literal(value: Any) -> str:
    """Without a session: PyMySQL's forms where they are session-independent, hex for bytes (no escaping),
    UTC for aware datetimes; ValueError for what no column stores or nothing renders exactly."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value!r} cannot be stored in a MySQL FLOAT/DOUBLE column")
        return escape_float(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} cannot be stored in a MySQL DECIMAL column")
        return format(value, "f")
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hex_literal(value)
    if isinstance(value, _dt.datetime):  # aware (naive ones take the fast path)
        return "'" + value.astimezone(_dt.UTC).replace(tzinfo=None).isoformat(" ") + "'"
    if isinstance(value, _dt.date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, _dt.time):
        return escape_time(value)
    raise ValueError(f"cannot render a {type(value).__name__} value as a SQL literal")


def _for_kind(value: Any, kind: str | None) -> Any:
    """A decoded value made what ``make_literal`` writes back exactly (see the module doc)."""
    if value is None or isinstance(value, CharsetBytes):
        return value
    if kind == "json":
        return json_text(value)
    if kind == "timestamp" and isinstance(value, _dt.datetime) and value.tzinfo is None and value == _EPOCH:
        # python-mysql-replication decodes the zero TIMESTAMP as the epoch, which TIMESTAMP cannot hold
        # (its range starts at 1970-01-01 00:00:01 UTC): it can only be '0000-00-00 00:00:00'.
        return "0000-00-00 00:00:00"
    if kind == "year" and type(value) is int and value == 1900:
        # python-mysql-replication decodes YEAR as byte + 1900, so the zero year 0000 arrives as 1900,
        # which YEAR cannot hold (1901..2155 or 0000).
        return 0
    if kind == "bit":
        if isinstance(value, str):  # python-mysql-replication: a string of '0'/'1'
            if value and set(value) <= {"0", "1"}:
                return int(value, 2)
            raise ValueError(f"not a BIT value: {value!r}")
        if isinstance(value, (bytes, bytearray)):
            return int.from_bytes(bytes(value), "big") if value else 0
    # raw bytes of a text/ENUM/SET column (in the column's character set) stay bytes: kept byte for byte
    if isinstance(value, _dt.timedelta):
        return format_timedelta(value)
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(str(as_text(v)) for v in value))
    if isinstance(value, (dict, list, tuple)):
        return json_text(value)
    return value


def sql_literal(value: Any, column_kind: str | None = None, conn: Any = None) -> str:
    """Exact SQL literal text for a decoded ``value`` of a column of ``column_kind``: ``_for_kind`` then
    ``make_literal(conn)``. Raises ValueError for unstorable values."""
    return make_literal(conn)(_for_kind(value, column_kind))


def row_literal(values: Sequence[Any], kinds: Sequence[str | None] | None = None, conn: Any = None) -> str:
    """``(v1,v2,...)`` for one row (``sql_literal`` of each value)."""
    lit = make_literal(conn)
    if kinds is None:
        return "(" + ",".join(lit(_for_kind(v, None)) for v in values) + ")"
    return "(" + ",".join(lit(_for_kind(v, k)) for v, k in zip(values, kinds)) + ")"


# ----------------------------------------------------------------------------------------- server-side raw path


def literal_sql(col: ColumnInfo, ref: str | None = None) -> str:
    """SQL expression (evaluated on the source) giving ``col``'s exact SQL literal text, or 'NULL'.

    ``ref`` is how the column is referenced (default: its quoted name).
    """
    c = ref or quote_ident(col.name)
    kind = col.kind
    if kind in ("integer", "decimal", "double", "year"):
        # Unquoted numbers: YEAR 0000 stays 0000 (a number), DOUBLE text is the shortest exact form.
        return f"IFNULL(CONCAT({c}),'NULL')"
    if kind == "float":
        return f"IFNULL(CONCAT({c}+0e0),'NULL')"
    if kind == "bit":
        return f"IFNULL(CONCAT({c}+0),'NULL')"
    if kind in ("binary", "spatial"):
        return f"IFNULL(CONCAT('X''',HEX({c}),''''),'NULL')"
    if kind in ("temporal", "timestamp"):
        return f"QUOTE({c})"
    # text, enum, set, json. utf8mb4 (and JSON) as quoted text; any other character set as its own bytes in
    # an introducer literal ``_latin1 X'..'``: no conversion at all (CONVERT to utf8mb4 loses bytes that have
    # no Unicode mapping, e.g. gbk FEFE, big5 F9D6), and the column's collation still decides comparisons.
    cs = (col.charset or "utf8mb4").lower()
    if cs == "utf8mb4" or kind == "json":
        return f"QUOTE({c})"
    return f"IFNULL(CONCAT('{charset_introducer(cs)} X''',HEX({c}),''''),'NULL')"


def charset_introducer(charset: str) -> str:
    """``_latin1`` for a character set name (only letters and digits: the name comes from the server's
    catalog or the binlog's collation ids, never from user text)."""
    if not re.fullmatch(r"[A-Za-z0-9]+", charset or ""):
        raise ValueError(f"not a character set name: {charset!r}")
    return "_" + charset.lower()


def row_literal_sql(columns: Iterable[ColumnInfo]) -> str:
    """Expression giving one row's ``(v1,v2,...)`` as binary text, for the non-generated ``columns``."""
    parts = [literal_sql(c) for c in columns]
    if not parts:
        raise ValueError("a table without columns to copy")
    return "CAST(CONCAT('('," + ",',',".join(parts) + ",')') AS BINARY)"


def key_literal_sql(col: ColumnInfo) -> str:
    """Expression giving a key column's literal for keyset comparisons (ENUM/SET by their number)."""
    if col.kind in ("enum", "set"):
        return f"IFNULL(CONCAT({quote_ident(col.name)}+0),'NULL')"
    return literal_sql(col)


def keyset_condition(key_columns: Sequence[ColumnInfo], last_key: Sequence[str]) -> str:
    """``WHERE`` text selecting rows strictly after ``last_key`` (literals from ``key_literal_sql``).

    Expanded to ``a > x OR (a = x AND b > y) ...`` so every server's range optimizer can use the index.
    """
    if len(key_columns) != len(last_key):
        raise ValueError("last key does not match the key columns")
    terms = []
    for i, col in enumerate(key_columns):
        eqs = [f"{quote_ident(k.name)} = {v}" for k, v in zip(key_columns[:i], last_key[:i])]
        terms.append("(" + " AND ".join(eqs + [f"{quote_ident(col.name)} > {last_key[i]}"]) + ")")
    return " OR ".join(terms)


# ----------------------------------------------------------------------------------------- LOAD DATA raw path
#
# The same idea for ``LOAD DATA LOCAL INFILE`` (about twice as fast to apply as multi-row INSERT): the
# source renders each row as one line of tab-separated fields in the column's own bytes, escaped for
# ``FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`` with ``CHARACTER SET binary``
# (no conversion: text keeps its column character set byte for byte), NULL as ``\N``. Values that may be
# large (BLOB/TEXT types, binary strings, long VARCHAR) and types LOAD DATA cannot take as plain text go as
# hex through a user variable: ``UNHEX`` for binary, text (its own bytes) and spatial (the internal SRID+WKB
# form), a number for BIT, ``CONVERT(.. USING utf8mb4)`` for MySQL's JSON type.

LOAD_DATA_FORMAT = "CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
_NULL = "'\\\\N'"  # SQL text for the two characters \N


def tsv_field_sql(col: ColumnInfo, var: str) -> tuple[str, str | None]:
    """(source expression for the field, destination SET expression using ``var`` or None)."""
    c = quote_ident(col.name)
    kind = col.kind
    if kind in ("integer", "decimal", "double", "year", "temporal", "timestamp"):
        return f"IFNULL(CONCAT({c}),{_NULL})", None
    if kind == "float":
        return f"IFNULL(CONCAT({c}+0e0),{_NULL})", None
    if kind == "bit":
        return f"IFNULL(CONCAT({c}+0),{_NULL})", f"CAST({var} AS UNSIGNED)"
    if kind in ("spatial", "binary") or (kind == "text" and not _short_text(col)):
        # Hex: exact for any bytes and linear in the value's size (the REPLACE escaping below is
        # quadratic on the server for large values: 1 MB took 5 s). Text keeps its own character set.
        return f"IFNULL(HEX({c}),{_NULL})", f"UNHEX({var})"
    if kind == "json":  # MySQL's JSON type cannot take a binary string
        return f"IFNULL(HEX({c}),{_NULL})", f"CONVERT(UNHEX({var}) USING utf8mb4)"
    escaped = f"REPLACE(REPLACE(REPLACE(CAST({c} AS BINARY),'\\\\','\\\\\\\\'),'\\t','\\\\t'),'\\n','\\\\n')"
    return f"IFNULL({escaped},{_NULL})", None


def _short_text(col: ColumnInfo) -> bool:
    """CHAR/VARCHAR of at most 1024 characters (escaped in place); longer text types go as hex."""
    if col.data_type.lower() not in ("char", "varchar"):
        return False
    m = re.search(r"\((\d+)\)", col.column_type or "")
    return m is None or int(m.group(1)) <= 1024


@dataclass(frozen=True)
class LoadDataPlan:
    select_sql: str  # expression giving one row's line (binary, newline-terminated)
    targets: str  # "(`a`, @v1, ...)"
    set_clause: str  # "" or " SET `b`=CAST(@v1 AS UNSIGNED), ..."

    def statement(self, db: str, table: str, path: str) -> str:
        """The LOAD DATA statement for ``path`` (escaped here: the path is ours, never user input)."""
        return (
            f"LOAD DATA LOCAL INFILE {quote_string(path)} INTO TABLE {qualified(db, table)} "
            f"{LOAD_DATA_FORMAT} {self.targets}{self.set_clause}"
        )


def load_data_plan(columns: Sequence[ColumnInfo]) -> LoadDataPlan:
    if not columns:
        raise ValueError("a table without columns to copy")
    fields, targets, sets = [], [], []
    for i, col in enumerate(columns):
        var = f"@dts_v{i}"
        expr, set_expr = tsv_field_sql(col, var)
        fields.append(expr)
        if set_expr is None:
            targets.append(quote_ident(col.name))
        else:
            targets.append(var)
            sets.append(f"{quote_ident(col.name)}={set_expr}")
    select_sql = "CAST(CONCAT(" + ",'\\t',".join(fields) + ",'\\n') AS BINARY)"
    return LoadDataPlan(select_sql, "(" + ", ".join(targets) + ")", (" SET " + ", ".join(sets)) if sets else "")
