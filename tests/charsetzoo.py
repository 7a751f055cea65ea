"""The charset zoo (issue 9, cause 3): one table per character set and collation, with awkward bytes, keys that
differ only in letter case (in _bin tables), CHAR/VARCHAR/TEXT/ENUM/SET in the table's character set, and the
writes that exercise them. Compared as HEX() of every column and by CHECKSUM TABLE. Used by
tests/integration/engine/test_charsets.py and tests/e2e/test_charsets_statements_dag.py."""

from __future__ import annotations

import time

import pymysql
from helpers import wait_until

from airflow_provider_dts.demo import (
    sql,  # root SQL on a test server; its last statement's rows
)

DB = "zoo"


LATIN1_ALL = bytes(range(0x20, 0x100)).replace(b"\\", b"")  # every printable byte incl. 0x80-0x9F
LATIN1_FIVE = b"\x81\x8d\x8f\x90\x9d"
CP1250_ALL = bytes(b for b in range(0x20, 0x100) if b not in (0x81, 0x83, 0x88, 0x90, 0x98))

# charset -> (ENUM/SET members as text, awkward values as bytes in that charset)
CHARSETS = {
    "latin1": ("é", "€", [LATIN1_ALL, LATIN1_FIVE, b"caf\xe9", b"\x80\x9f\xff", b"Z\x81 "]),
    "cp1250": ("ř", "Š", [CP1250_ALL, "Příliš žluťoučký kůň".encode("cp1250"), b"\x8a\x9a\x80"]),
    "utf8mb3": ("é", "中", ["naïve 中文 Ω".encode(), b"\xc2\x80\xc2\x9f", "\u20ac\u2028".encode()]),
    "utf8mb4": ("é", "中", ["😀 emoji 𝄞".encode(), "中文 é".encode(), b"\xf0\x9f\x92\xa9"]),
    "gbk": ("中", "文", ["中文字符".encode("gbk"), b"\xa1\xa4\xa1\xaa\xfe\x4f", b"\x81\x40\xfe\xfe"]),
    # A2CE: the server maps it to U+FFFD, Python to U+5345; F9D6..F9FE: ETEN extensions Python cannot decode
    "big5": ("中", "文", ["中文".encode("big5"), b"\xa2\xce", b"\xf9\xd6\xf9\xfe"]),
}
COLLATIONS = {
    "latin1": ("latin1_swedish_ci", "latin1_bin"),
    "cp1250": ("cp1250_general_ci", "cp1250_bin"),
    "utf8mb3": ("utf8mb3_general_ci", "utf8mb3_bin"),
    "utf8mb4": ("utf8mb4_unicode_ci", "utf8mb4_bin"),
    "gbk": ("gbk_chinese_ci", "gbk_bin"),
    "big5": ("big5_chinese_ci", "big5_bin"),
}


def cut(v: bytes, n: int, cs: str) -> bytes:
    """The first ``n`` characters of ``v`` (never half a multi-byte character)."""
    if cs.startswith("utf8"):
        return v.decode()[:n].encode()
    if cs in ("gbk", "big5"):  # the values are all two-byte characters
        return v[: 2 * (n // 2)]
    return v[:n]


def zoo_tables(db: str = DB, prefix: bytes = b"") -> list[tuple[str, str, str, list[tuple[bytes, ...]]]]:
    """(table, CREATE TABLE, column list, rows as bytes per column) for every charset and collation; every key
    starts with ``prefix`` (disjoint rows for writes on both servers)."""
    out = []
    for cs, (m1, m2, vals) in CHARSETS.items():
        for coll in COLLATIONS[cs]:
            name = coll
            ddl = (
                f"CREATE TABLE IF NOT EXISTS {db}.{name} (k VARCHAR(40) NOT NULL, c CHAR(12), v VARCHAR(300), "
                f"t TEXT, "
                f"e ENUM('x','{m1}','{m2}'), s SET('x','{m1}','{m2}'), PRIMARY KEY (k)) "
                f"CHARACTER SET {cs} COLLATE {coll}"
            )
            py = {"latin1": "cp1252"}.get(cs, "utf-8" if cs.startswith("utf8") else cs)
            e1, e2 = m1.encode(py), m2.encode(py)
            rows = [
                (
                    prefix + b"k%d" % i + (cut(v, 20, cs) if i % 2 else b""),
                    cut(v, 12, cs).rstrip(b" "),
                    v,
                    v * 3,
                    [b"x", e1, e2][i % 3],
                    b",".join([b"x", e1, e2][: 1 + i % 3]),
                )
                for i, v in enumerate(vals)
            ]
            if coll.endswith("_bin"):  # keys that differ only in letter case, and a non-ASCII case pair
                upper = {"latin1": (b"\xe9", b"\xc9"), "cp1250": (b"\xf8", b"\xd8")}.get(
                    cs, ("é".encode(), "É".encode())
                )
                if cs in ("gbk", "big5"):
                    upper = (b"q", b"Q")
                for lo, up in ((b"a", b"A"), upper):
                    rows.append((prefix + b"case-" + lo, lo, lo, lo, b"x", b""))
                    rows.append((prefix + b"case-" + up, up, up, up, b"x", b""))
            out.append((name, ddl, "k, c, v, t, e, s", rows))
    out.append(
        (
            "bin",
            f"CREATE TABLE IF NOT EXISTS {db}.bin (k VARBINARY(40) NOT NULL PRIMARY KEY, c BINARY(8), "
            "v VARBINARY(300), "
            "t BLOB, e CHAR(1), s CHAR(1)) CHARACTER SET binary",
            "k, c, v, t, e, s",
            [
                (prefix + b"k" + bytes([i]), bytes([i]) * 8, bytes(range(256))[i:], bytes(range(256)) * 2, None, None)
                for i in (0, 0x27, 0x5C, 0x81, 0xFF)
            ]
            + [(prefix + b"a", b"a", b"a", b"a", None, None), (prefix + b"A", b"A", b"A", b"A", None, None)],
        )
    )
    return out


def lit(b: bytes | None, cs: str) -> str:
    return "NULL" if b is None else (f"_{cs} X'{b.hex()}'" if b else "''")


def table_charset(name: str) -> str:
    return "binary" if name == "bin" else name.split("_")[0]


def insert_sql(db: str, name: str, cols: str, rows) -> str:
    cs = table_charset(name)
    return f"INSERT INTO {db}.{name} ({cols}) VALUES " + ",".join(
        "(" + ",".join(lit(v, cs) for v in r) + ")" for r in rows
    )


def create_zoo(server, with_rows: bool, db: str = DB) -> None:
    stmts = [f"CREATE DATABASE IF NOT EXISTS {db}"]
    for name, ddl, cols, rows in zoo_tables(db):
        stmts.append(ddl)
        if with_rows:
            stmts.append(insert_sql(db, name, cols, rows))
    sql(server, *stmts)


def hex_rows(server, name: str, db: str = DB) -> list[tuple]:
    return sql(server, f"SELECT HEX(k), HEX(c), HEX(v), HEX(t), HEX(e), HEX(s) FROM {db}.{name} ORDER BY HEX(k)")


def checksum(server, name: str, db: str = DB) -> int:
    return sql(server, f"CHECKSUM TABLE {db}.{name}")[0][1]


def zoo_differences(a, b, db: str = DB) -> dict[str, str]:
    """Zoo tables whose rows (HEX of every column) or CHECKSUM TABLE differ between servers ``a`` and ``b``."""
    out = {}
    for name, *_ in zoo_tables(db):
        ra, rb = hex_rows(a, name, db), hex_rows(b, name, db)
        if ra != rb:
            out[name] = f"rows differ: {ra} vs {rb}"
        elif not ra:
            out[name] = "empty: nothing was written"
        elif checksum(a, name, db) != checksum(b, name, db):
            out[name] = "CHECKSUM TABLE differs"
    return out


def assert_zoo_equal(a, b, timeout: float = 30, db: str = DB) -> None:
    try:
        wait_until(lambda: not zoo_differences(a, b, db), timeout, "every zoo table equal byte for byte")
    except AssertionError:
        raise AssertionError(f"tables differ: {zoo_differences(a, b, db)}") from None


def write_changes(server, db: str = DB, prefix: bytes = b"") -> None:
    """Inserts, updates (values, ENUM/SET, a key changed to its case twin) and deletes on every zoo table, on
    rows whose keys start with ``prefix`` and on no other row: with a prefix per server, the two servers of a
    two-way sync never write the same row (the spec's rule for two-way sync; a row written on both while the
    other side's change is in flight is a real conflict, and the sides may end different)."""
    DB = db
    assert not set(prefix) & set(b"%_\\"), prefix  # used in LIKE below
    stmts = []
    for name, _ddl, cols, rows in zoo_tables(db, prefix):
        cs = table_charset(name)
        mine = f" WHERE k LIKE {lit(prefix + b'%', cs)}" if prefix else ""
        stmts.append(insert_sql(db, name, cols, rows))
        first = rows[0]
        # value updates, in the column's own bytes
        for r in rows[1:]:
            stmts.append(
                f"UPDATE {DB}.{name} SET v={lit(first[2], cs)}, t={lit((r[3] or b'') + first[3][:50], cs)}, "
                f"c={lit(r[1][::-1] if cs in ('latin1', 'cp1250', 'binary') else r[1], cs)} "
                f"WHERE k={lit(r[0], cs)}"
            )
        # a batched multi-row update (one statement, many rows), and one transaction of single-row updates of
        # every row (applied as one batch: the applier must find each row by its key, whatever its bytes)
        stmts.append(f"UPDATE {DB}.{name} SET s=e{mine}")
        stmts += [
            "START TRANSACTION",
            *(f"UPDATE {DB}.{name} SET c=NULL WHERE k={lit(r[0], cs)}" for r in rows),
            "COMMIT",
        ]
        # delete one awkward row and re-key another
        stmts.append(f"DELETE FROM {DB}.{name} WHERE k={lit(rows[-1][0], cs)}")
        stmts.append(f"UPDATE {DB}.{name} SET k={lit(b'new-' + rows[1][0], cs)} WHERE k={lit(rows[1][0], cs)}")
        if name.endswith("_bin") or name == "bin":
            # rename the lower-case twin to a third case, leaving the upper-case one alone
            old, new = (b"case-a", b"case-z") if name != "bin" else (b"a", b"z")
            stmts.append(f"UPDATE {DB}.{name} SET k={lit(prefix + new, cs)} WHERE k={lit(prefix + old, cs)}")
    _write(server, stmts)


def _write(server, stmts: list[str], attempts: int = 20) -> None:
    """Run ``stmts`` as a user's application would while an applier writes the same tables: a statement (or a
    START TRANSACTION ... COMMIT block) chosen as a deadlock victim (1213) or timed out on a lock (1205) is rolled
    back by the server, so it is run again."""
    units: list[list[str]] = []
    i = 0
    while i < len(stmts):
        j = stmts.index("COMMIT", i) + 1 if stmts[i] == "START TRANSACTION" else i + 1
        units.append(stmts[i:j])
        i = j
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            for unit in units:
                for attempt in range(attempts):
                    try:
                        for s in unit:
                            cur.execute(s)
                        break
                    except pymysql.err.OperationalError as e:
                        if not (e.args and e.args[0] in (1205, 1213)) or attempt == attempts - 1:
                            raise
                        cur.execute("ROLLBACK")
                        time.sleep(0.05)
    finally:
        conn.close()
