"""What a server says about a table, read once and decided in one place: columns, keys, the row key.

``load_table`` reads ``information_schema`` (COLUMNS, STATISTICS, REFERENTIAL_CONSTRAINTS) once per table
and returns a ``TableInfo``. Every reader of table definitions uses it: the applier (``apply``), the copy
(``snapshot``), verification (``verify``), the self-check (``selfcheck``) and the precheck.

The row key (which columns identify a row) is decided here, once (``TableInfo.match_key``,
``TableInfo.chunk_key``, ``TableInfo.row_key_problem``); see ``_row_key_candidates``.

``information_schema.COLUMNS.EXTRA`` differs by flavour and version:

=====================================  ==============================================================
value                                  meaning
=====================================  ==============================================================
``VIRTUAL GENERATED``                  generated column (MySQL 5.7+, MariaDB 10.2+)
``STORED GENERATED``                   generated column (MySQL 5.7+, MariaDB 10.2+)
``PERSISTENT GENERATED``               generated column (older MariaDB spelling of STORED)
``DEFAULT_GENERATED``                  MySQL 8: an expression default (``DEFAULT CURRENT_TIMESTAMP``,
                                       ``DEFAULT (uuid())``): an ordinary, writable column
``DEFAULT_GENERATED on update ...``    MySQL 8: the same with ``ON UPDATE CURRENT_TIMESTAMP``: writable
``on update current_timestamp()``      MariaDB: writable
``INVISIBLE``                          MySQL 8.0.23+ / MariaDB 10.3+: invisible, writable by name
``auto_increment``                     writable
=====================================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_dts.engine.sqltext import as_text, qualified

_GENERATED_KINDS = frozenset({"VIRTUAL", "STORED", "PERSISTENT"})


def _extra_words(extra: Any) -> set[str]:
    if isinstance(extra, (bytes, bytearray)):
        extra = extra.decode("utf-8", "replace")
    return set(str(extra or "").upper().split())


def is_generated_extra(extra: Any) -> bool:
    """True when an ``information_schema.COLUMNS.EXTRA`` value marks a generated (computed) column.

    The word ``GENERATED`` must stand alone next to VIRTUAL / STORED / PERSISTENT: MySQL 8's
    ``DEFAULT_GENERATED`` (an expression default) is not a generated column and must be written.
    """
    words = _extra_words(extra)
    return "GENERATED" in words and bool(words & _GENERATED_KINDS)


# ----------------------------------------------------------------------------------------- column kinds

INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
DECIMAL_TYPES = frozenset({"decimal", "numeric", "dec", "fixed"})
FLOAT_TYPES = frozenset({"float"})
DOUBLE_TYPES = frozenset({"double", "real", "double precision"})
TEMPORAL_TYPES = frozenset({"date", "datetime", "timestamp", "time"})
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
SPATIAL_TYPES = frozenset(
    {
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
    }
)


@dataclass(frozen=True)
class ColumnInfo:
    """One column as information_schema.COLUMNS describes it."""

    name: str
    data_type: str  # lower-case DATA_TYPE
    column_type: str = ""  # full COLUMN_TYPE, e.g. "int(10) unsigned"
    charset: str | None = None  # CHARACTER_SET_NAME (None for non-string columns)
    nullable: bool = True
    generated: bool = False  # VIRTUAL or STORED generated column: never written, never compared
    invisible: bool = False  # INVISIBLE: left out of SELECT *, written and read by name

    @property
    def kind(self) -> str:
        """integer | decimal | float | double | year | timestamp | temporal (date, datetime, time) | bit |
        enum | set | json | spatial | binary | text."""
        t = self.data_type.lower()
        if t in INTEGER_TYPES:
            return "integer"
        if t in DECIMAL_TYPES:
            return "decimal"
        if t in FLOAT_TYPES:
            return "float"
        if t in DOUBLE_TYPES:
            return "double"
        if t == "year":
            return "year"
        if t == "timestamp":
            return "timestamp"
        if t in TEMPORAL_TYPES:
            return "temporal"
        if t == "bit":
            return "bit"
        if t == "enum":
            return "enum"
        if t == "set":
            return "set"
        if t == "json":
            return "json"
        if t in SPATIAL_TYPES:
            return "spatial"
        if t in BINARY_TYPES or (t in TEXT_TYPES and (self.charset or "").lower() == "binary"):
            return "binary"
        return "text"

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "decimal", "float", "double", "year", "bit")


@dataclass(frozen=True)
class UniqueKey:
    """A PRIMARY or UNIQUE index: its columns in index order; ``prefixed`` when a part indexes only a prefix
    of its column (``KEY (t(10))``); ``expression`` when a part is an expression (MySQL 8 functional key)."""

    name: str
    columns: tuple[str, ...]
    prefixed: bool = False
    expression: bool = False


NO_ROW_KEY = "no PRIMARY KEY and no UNIQUE key on NOT NULL columns"


@dataclass
class TableInfo:
    """A table's definition as one server reports it (``load_table``).

    The first fields are what the applier uses on its hot path (names only); ``column_info`` and ``keys``
    carry the full facts the other readers need.
    """

    db: str
    table: str
    columns: list[str]  # every column, ordinal order
    writable: set[str]  # columns that are written (not generated)
    primary_key: tuple[str, ...]
    unique_keys: list[tuple[str, ...]]  # every unique key's columns (not expression keys), primary first
    match_key: tuple[str, ...]  # THE row key (see _row_key_candidates); () when there is none
    match_all: bool = False  # no row key: rows are matched on every column
    # In a foreign key at the destination, as child or parent: its changes keep their binlog order relative to
    # every other such table, and rows are never replaced by delete + insert (that would cascade).
    foreign_keys: bool = False
    column_info: list[ColumnInfo] = field(default_factory=list)  # every column, ordinal order
    keys: list[UniqueKey] = field(default_factory=list)  # every unique key, primary first, then by name

    @property
    def qname(self) -> str:
        return qualified(self.db, self.table)

    @cached_property
    def colset(self) -> frozenset[str]:
        """``columns`` as a set (the applier tests every row image against it)."""
        return frozenset(self.columns)

    @property
    def only_primary_unique(self) -> bool:
        """The primary key is the table's only unique index (expression keys count: MySQL 8 functional keys).
        Only then may the applier reorder and upsert rows in batches by primary key alone."""
        # ``keys`` is every unique index as the catalog read it; a TableInfo built by hand may give only
        # ``unique_keys`` (no expression keys to count then)
        return bool(self.primary_key) and len(self.keys or self.unique_keys) == 1

    def column(self, name: str) -> ColumnInfo:
        for c in self.column_info:
            if c.name == name:
                return c
        raise KeyError(name)

    def stored_columns(self) -> list[ColumnInfo]:
        """The columns that are copied, compared and written: every column except generated ones."""
        return [c for c in self.column_info if not c.generated]

    def row_key_problem(self) -> str | None:
        """None when rows can be identified (``match_key``), else why not (for precheck's message)."""
        return None if self.match_key else NO_ROW_KEY

    @property
    def chunk_key(self) -> tuple[str, ...] | None:
        """The key the copy orders keyset chunks by: the first row-key candidate it can ORDER BY and compare
        exactly (the row key itself whenever it can); None when there is none (``chunk_key_problem``)."""
        for key in _row_key_candidates(self):
            if _chunk_problem(self, key) is None:
                return key.columns
        return None

    def chunk_key_problem(self) -> str | None:
        """None when there is a ``chunk_key``, else why not."""
        reasons = []
        for key in _row_key_candidates(self):
            problem = _chunk_problem(self, key)
            if problem is None:
                return None
            reasons.append(problem)
        return "; ".join(reasons) or NO_ROW_KEY


def _row_key_candidates(info: TableInfo) -> list[UniqueKey]:
    """The keys that identify a row, best first: the primary key, then every UNIQUE key whose columns are
    all NOT NULL (by index name). A key with an expression part is never one (no column holds its value).

    THE row key (``TableInfo.match_key``) is the first of them; it is what the applier, verify and the
    self-check match rows by and what precheck requires. A prefix key (``UNIQUE (t(10))``) still identifies a
    row (rows unique on a prefix are unique on the whole value), so it may be the row key.

    The copy walks keyset chunks (``ORDER BY key``, ``WHERE key > last``), which needs more: no prefix part
    (the order would not be the index's), no generated column, no JSON or spatial column (no exact ordering
    literal). ``TableInfo.chunk_key`` is therefore the first candidate that also allows that; it is the row
    key whenever the row key allows it, so the two only differ on such tables.
    """
    nullable = {c.name for c in info.column_info if c.nullable}
    names = {c.name for c in info.column_info}
    out = []
    for k in info.keys:
        if k.expression or not k.columns or any(c not in names for c in k.columns):
            continue
        if k.name == "PRIMARY" or not any(c in nullable for c in k.columns):
            out.append(k)
    return out


def _chunk_problem(info: TableInfo, key: UniqueKey) -> str | None:
    if key.prefixed:
        return f"key {key.name} indexes a prefix of a column"
    for name in key.columns:
        col = info.column(name)
        if col.generated:
            return f"key {key.name} has the generated column {name}"
        if col.kind in ("json", "spatial"):
            return f"key {key.name} has the {col.kind} column {name}"
    return None


def load_table(cur: Any, db: str, table: str) -> TableInfo | None:
    """Read ``db.table``'s definition over ``cur`` (a PyMySQL cursor); None when the table does not exist."""
    cur.execute(
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, CHARACTER_SET_NAME, IS_NULLABLE, EXTRA "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
        (db, table),
    )
    rows = cur.fetchall()
    if not rows:
        return None
    cols = []
    for name, dtype, ctype, charset, nullable, extra in rows:
        words = _extra_words(extra)
        cols.append(
            ColumnInfo(
                str(as_text(name)),
                str(as_text(dtype) or "").lower(),
                str(as_text(ctype) or ""),
                str(as_text(charset)) if charset else None,
                as_text(nullable) == "YES",
                is_generated_extra(extra),
                "INVISIBLE" in words,
            )
        )
    cur.execute(
        "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND NON_UNIQUE=0 ORDER BY INDEX_NAME='PRIMARY' DESC, "
        "INDEX_NAME, SEQ_IN_INDEX",
        (db, table),
    )
    parts: dict[str, list[tuple[str | None, Any]]] = {}
    for index, col, sub in cur.fetchall():
        parts.setdefault(str(as_text(index)), []).append((as_text(col), sub))
    keys = [
        UniqueKey(
            name,
            tuple(c for c, _ in p if c is not None),
            prefixed=any(sub is not None for _, sub in p),
            expression=any(c is None for c, _ in p),
        )
        for name, p in parts.items()
    ]
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE (CONSTRAINT_SCHEMA=%s AND "
        "TABLE_NAME=%s) OR (UNIQUE_CONSTRAINT_SCHEMA=%s AND REFERENCED_TABLE_NAME=%s)",
        (db, table, db, table),
    )
    fks = bool(cur.fetchone()[0])
    pk = next((k.columns for k in keys if k.name == "PRIMARY"), ())
    info = TableInfo(
        db,
        table,
        [c.name for c in cols],
        {c.name for c in cols if not c.generated},
        pk,
        [k.columns for k in keys if not k.expression],  # an expression's value is in no column
        (),
        foreign_keys=fks,
        column_info=cols,
        keys=keys,
    )
    candidates = _row_key_candidates(info)
    info.match_key = candidates[0].columns if candidates else ()
    info.match_all = not info.match_key
    return info


def read_table(conn: Any, db: str, table: str) -> TableInfo | None:
    """``load_table`` over a new cursor of ``conn``."""
    with conn.cursor() as cur:
        return load_table(cur, db, table)


def load_columns(conn: Any, db: str, table: str) -> list[ColumnInfo]:
    """Columns of ``db.table`` in ordinal order (generated columns flagged); [] when it does not exist."""
    info = read_table(conn, db, table)
    return info.column_info if info is not None else []
