"""A table with every MySQL type and rows with the values that usually break copies (shared test helper).

    create_type_table(conn, db, table)       # CREATE DATABASE/TABLE IF NOT EXISTS
    insert_type_rows(conn, db, table)        # the tricky rows (ids 1..len(TYPE_ROWS)), one transaction
    read_type_rows(conn, db, table)          # rows as comparable tuples, ordered by id

The rows are written as literal SQL text here (independent of ``engine.values``), with a permissive
sql_mode (zero dates) and a UTC session. ``read_type_rows`` reads every column through an expression that
is exact (FLOAT through a double, binary as hex, spatial as SRID + WKB hex, TIMESTAMP in UTC), so two
tables compare equal only when every stored value is equal. Generated columns are read too: equal values
there prove the destination recomputes them.
"""

from __future__ import annotations

from airflow_provider_dts.engine.sqltext import qualified, quote_ident

# (name, definition, read expression ("{c}" = quoted column))
TYPE_COLUMNS: list[tuple[str, str, str]] = [
    ("id", "INT NOT NULL", "{c}"),
    ("ti", "TINYINT NULL", "{c}"),
    ("tiu", "TINYINT UNSIGNED NULL", "{c}"),
    ("si", "SMALLINT NULL", "{c}"),
    ("siu", "SMALLINT UNSIGNED NULL", "{c}"),
    ("mi", "MEDIUMINT NULL", "{c}"),
    ("miu", "MEDIUMINT UNSIGNED NULL", "{c}"),
    ("i", "INT NULL", "{c}"),
    ("iu", "INT UNSIGNED NULL", "{c}"),
    ("bi", "BIGINT NULL", "{c}"),
    ("biu", "BIGINT UNSIGNED NULL", "{c}"),
    ("dec_wide", "DECIMAL(65,30) NULL", "CONCAT({c})"),
    ("dec_money", "DECIMAL(12,2) NULL", "CONCAT({c})"),
    ("f", "FLOAT NULL", "CONCAT({c}+0e0)"),
    ("d", "DOUBLE NULL", "CONCAT({c})"),
    ("dt", "DATE NULL", "CAST({c} AS CHAR)"),
    ("dtm", "DATETIME(6) NULL", "CAST({c} AS CHAR)"),
    ("ts", "TIMESTAMP(6) NULL DEFAULT NULL", "CAST({c} AS CHAR)"),
    ("tm", "TIME(3) NULL", "CAST({c} AS CHAR)"),
    ("y", "YEAR NULL", "CAST({c} AS CHAR)"),
    ("c", "CHAR(10) NULL", "HEX({c})"),
    ("vc", "VARCHAR(255) NULL", "HEX({c})"),
    ("tx", "TEXT NULL", "HEX({c})"),
    ("lat", "VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL", "HEX({c})"),
    ("bn", "BINARY(4) NULL", "HEX({c})"),
    ("vb", "VARBINARY(300) NULL", "HEX({c})"),
    ("bl", "BLOB NULL", "HEX({c})"),
    ("e", "ENUM('a','b','ü') NULL", "CONCAT({c}, '#', {c}+0)"),
    ("st", "SET('x','y','z') NULL", "CONCAT({c}, '#', {c}+0)"),
    ("bt", "BIT(10) NULL", "CONCAT({c}+0)"),
    ("b64", "BIT(64) NULL", "CONCAT({c}+0)"),
    ("j", "JSON NULL", "CAST({c} AS CHAR)"),
    ("g", "GEOMETRY NULL", "CONCAT(ST_SRID({c}), ':', HEX(ST_AsWKB({c})))"),
    ("pt", "POINT NULL", "CONCAT(ST_SRID({c}), ':', HEX(ST_AsWKB({c})))"),
    ("gen_v", "BIGINT AS (i + 1) VIRTUAL", "{c}"),
    ("gen_s", "VARCHAR(300) AS (CONCAT(IFNULL(vc, ''), '!')) STORED", "HEX({c})"),
]

WRITABLE_COLUMNS = [name for name, definition, _ in TYPE_COLUMNS if " AS (" not in definition]

_ALL_BYTES = "X'" + bytes(range(256)).hex().upper()[:600] + "'"  # 256 bytes (VARBINARY(300))
_EMOJI = "'😀 𝄞 中文 \\' \\\" \\\\ \\0 \\n \\r \\Z tab\\t end'"

# One dict per row: column -> SQL literal. Columns left out are NULL.
TYPE_ROWS: list[dict[str, str]] = [
    {"id": "1"},  # NULL in every nullable column
    {  # minimum values
        "id": "2",
        "ti": "-128",
        "tiu": "0",
        "si": "-32768",
        "siu": "0",
        "mi": "-8388608",
        "miu": "0",
        "i": "-2147483648",
        "iu": "0",
        "bi": "-9223372036854775808",
        "biu": "0",
        "dec_wide": "-" + "9" * 35 + "." + "9" * 30,
        "dec_money": "-9999999999.99",
        "f": "-3.4028234663852886e38",
        "d": "-1.7976931348623157e308",
        "dt": "'1000-01-01'",
        "dtm": "'1000-01-01 00:00:00.000000'",
        "ts": "'1970-01-01 00:00:01.000000'",
        "tm": "'-838:59:59.000'",
        "y": "1901",
        "c": "''",
        "vc": "''",
        "tx": "''",
        "lat": "''",
        "bn": "X'00000000'",
        "vb": "X''",
        "bl": "X''",
        "e": "'a'",
        "st": "''",
        "bt": "0",
        "b64": "0",
        "j": "'[]'",
        "g": "ST_GeomFromText('POINT(0 0)')",
        "pt": "ST_GeomFromText('POINT(0 0)')",
    },
    {  # maximum values
        "id": "3",
        "ti": "127",
        "tiu": "255",
        "si": "32767",
        "siu": "65535",
        "mi": "8388607",
        "miu": "16777215",
        "i": "2147483646",
        "iu": "4294967295",
        "bi": "9223372036854775807",
        "biu": "18446744073709551615",
        "dec_wide": "9" * 35 + "." + "9" * 30,
        "dec_money": "9999999999.99",
        "f": "3.4028234663852886e38",
        "d": "1.7976931348623157e308",
        "dt": "'9999-12-31'",
        "dtm": "'9999-12-31 23:59:59.999999'",
        "ts": "'2038-01-19 03:14:07.999999'",
        "tm": "'838:59:59.000'",
        "y": "2155",
        "c": "'abcdefghij'",
        "vc": _EMOJI,
        "tx": "CONCAT(REPEAT('long text ', 300), '🎉')",
        "lat": "'Ünïcödé ÿ àéîõü'",
        "bn": "X'FFFFFFFF'",
        "vb": _ALL_BYTES,
        "bl": "REPEAT(X'00FF275C0A0D1A22', 500)",
        "e": "'ü'",
        "st": "'x,y,z'",
        "bt": "1023",
        "b64": "18446744073709551615",
        "j": '\'{"a": 1.5e300, "b": [true, false, null, -0.5], "ü": "😀", "nested": {"k": "v\\\\"q"}}\'',
        "g": "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))', 4326)",
        "pt": "ST_GeomFromText('POINT(1.5 -2.25)', 4326)",
    },
    {  # tricky values
        "id": "4",
        "ti": "0",
        "tiu": "1",
        "si": "-1",
        "siu": "1",
        "mi": "-1",
        "miu": "1",
        "i": "0",
        "iu": "1",
        "bi": "-1",
        "biu": "9223372036854775808",
        "dec_wide": "0.000000000000000000000000000001",
        "dec_money": "0.01",
        "f": "1.401298464324817e-45",
        "d": "5e-324",
        "dt": "'2024-02-29'",
        "dtm": "'2024-02-29 12:34:56.000001'",
        "ts": "'2024-03-31 01:30:00.500000'",
        "tm": "'-00:00:00.001'",
        "y": "2000",
        "c": "'😀'",
        "vc": "'Tab\\tQuote\\'Back\\\\slash\\0NUL'",
        "tx": "'line1\\nline2\\r\\nend \\Z'",
        "lat": "'quote '' back \\\\ slash'",
        "bn": "X'00'",
        "vb": "X'5C27'",
        "bl": "X'00'",
        "e": "'b'",
        "st": "'y'",
        "bt": "b'1010101010'",
        "b64": "b'1000000000000000000000000000000000000000000000000000000000000001'",
        "j": '\'{"big": 12345678901234567890, "neg": -1e-300, "s": "\\\\u0000 \\\\n"}\'',
        "g": "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1,2 3))')",
        "pt": "ST_GeomFromText('POINT(-179.999999 89.999999)')",
    },
    {  # zero dates (permissive sql_mode), odd times, float mid values
        "id": "5",
        "f": "0.1",
        "d": "0.1",
        "dec_wide": "-0.5",
        "dec_money": "-0.00",
        "dt": "'0000-00-00'",
        "dtm": "'0000-00-00 00:00:00.000000'",
        "ts": "'0000-00-00 00:00:00.000000'",
        "tm": "'100:30:15.5'",
        "y": "0",
        "vc": "'𝔘𝔫𝔦𝔠𝔬𝔡𝔢 4-byte'",
        "e": "'a'",
        "st": "'x,z'",
        "j": "'\"just a string\"'",
        "bt": "1",
        "b64": "1",
    },
    {  # zero-in-date and more times
        "id": "6",
        "f": "-1e-10",
        "d": "123456789.12345679",
        "dt": "'2020-00-15'",
        "dtm": "'2020-01-00 10:00:00.123000'",
        "tm": "'23:59:59.999'",
        "y": "1999",
        "i": "-7",
        "j": "'null'",
        "c": "'trail  '",
        "vc": "'trailing space '",
    },
]


def create_type_table(conn, db: str, table: str = "every_type") -> None:
    """Create ``db`` (utf8mb4) and the every-type table (primary key ``id``) if they do not exist."""
    cols = ",\n  ".join(f"{quote_ident(n)} {d}" for n, d, _ in TYPE_COLUMNS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {qualified(db, table)} (\n  {cols},\n  PRIMARY KEY (`id`),\n"
            f"  KEY `by_bi` (`bi`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
        )


def type_row_statements(db: str, table: str = "every_type", id_offset: int = 0) -> list[str]:
    """One INSERT per sample row (ids shifted by ``id_offset``); run them with ``permissive_session``."""
    out = []
    for row in TYPE_ROWS:
        values = dict(row)
        values["id"] = str(int(values["id"]) + id_offset)
        names = [c for c in WRITABLE_COLUMNS if c in values]
        out.append(
            f"INSERT INTO {qualified(db, table)} ({', '.join(map(quote_ident, names))}) "
            f"VALUES ({', '.join(values[c] for c in names)})"
        )
    return out


def permissive_session(cur) -> None:
    """sql_mode that accepts the zero dates of the sample, and UTC for TIMESTAMP."""
    cur.execute("SET SESSION sql_mode='NO_ENGINE_SUBSTITUTION', time_zone='+00:00'")


def insert_type_rows(conn, db: str, table: str = "every_type", id_offset: int = 0) -> int:
    """Insert every sample row in one transaction; returns the number of rows."""
    stmts = type_row_statements(db, table, id_offset)
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode, @@SESSION.time_zone")
        old_mode, old_tz = cur.fetchone()
        permissive_session(cur)
        try:
            cur.execute("START TRANSACTION")
            for s in stmts:
                cur.execute(s)
            cur.execute("COMMIT")
        finally:
            cur.execute("SET SESSION sql_mode=%s, time_zone=%s", (old_mode, old_tz))
    return len(stmts)


def read_type_rows(conn, db: str, table: str = "every_type", where: str = "") -> list[tuple]:
    """Every row as a tuple of exact comparable values, ordered by id (UTC session)."""
    exprs = ", ".join(expr.format(c=quote_ident(n)) for n, _, expr in TYPE_COLUMNS)
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.time_zone")
        (old_tz,) = cur.fetchone()
        cur.execute("SET SESSION time_zone='+00:00'")
        try:
            cur.execute(
                f"SELECT {exprs} FROM {qualified(db, table)} {('WHERE ' + where) if where else ''} ORDER BY `id`"
            )
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.execute("SET SESSION time_zone=%s", (old_tz,))


def column_names() -> list[str]:
    return [n for n, _, _ in TYPE_COLUMNS]
