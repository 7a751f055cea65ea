"""The engine's fixes and speed-ups of python-mysql-replication, installed explicitly by ``install()``.

The library (distribution ``mysql-replication``, package ``pymysqlreplication``) loses or slows down some
values; the engine replaces a few of its internals (private methods of ``RowsEvent`` / ``TableMapEvent`` /
``ExecuteLoadQueryEvent``). Importing this module (or ``binlog``, ``model``) changes nothing:
``install()`` does it, once per process, where a reader is built (``binlog.BinlogReader``, the
``reader_process`` child), after checking that the installed library is one the patches were written for:

- exact values: zero-in-date DATE / DATETIME2 (the library gives None), TIME2 with negative fractions,
  text by the column's character set as the server converts it, ENUM/SET member names by their charset,
  MySQL binary JSON as the JSON text MySQL prints (``rowdecode.mysql_json_text``; the library loses a JSON
  null, top-level strings and opaque DECIMAL/DATE/TIME values);
- speed: identical table maps reuse the ``Table`` parsed the first time; common column types are decoded
  by the engine's own per-table plan (``rowdecode.py``, whose ``install`` is called from here);
- LOAD DATA: an Execute_load_query event also keeps its statement and default database
  (``load_query_text``), so the reader can refuse a statement-based LOAD DATA on a selected object.

A library version outside ``SUPPORTED_VERSIONS`` is accepted only inside ``SUPPORTED_RANGE`` (what
pyproject pins) and only when every internal the patches replace or read still has the shape they expect
(``internals_problems``); anything else raises ``UnsupportedLibraryVersion`` before touching the library.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import re
import threading
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from pymysqlreplication.event import BinLogEvent, ExecuteLoadQueryEvent
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import RowsEvent, TableMapEvent

from airflow_provider_dts.engine import rowdecode
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.values import CharsetBytes

log = logging.getLogger(__name__)

DISTRIBUTION = "mysql-replication"
SUPPORTED_VERSIONS = ("1.0.17",)  # written for and tested with these
SUPPORTED_RANGE = ((1, 0, 17), (1, 1, 0))  # [low, high): accepted when the internals below are unchanged
_RANGE_TEXT = ">=1.0.17,<1.1"
_FIX = f"Fix: pip install 'mysql-replication=={SUPPORTED_VERSIONS[-1]}' in the environment that runs the sync"


class UnsupportedLibraryVersion(DtsError):
    """The installed python-mysql-replication is not one the engine's patches fit."""


# --------------------------------------------------------------------------- the patches
# mysql-replication 1.0.17 turns zero-in-date values ('2020-00-15', '2020-01-00 10:00:00') into None, which
# would write NULL / a zero date. Decode them as the strings MySQL itself accepts back.


def _read_date_exact(self):
    raw = self.packet.read_uint24()
    if raw == 0:
        return "0000-00-00"
    year = (raw & ((1 << 15) - 1) << 9) >> 9
    month = (raw & ((1 << 4) - 1) << 5) >> 5
    day = raw & ((1 << 5) - 1)
    if year == 0 or month == 0 or day == 0:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return _dt.date(year=year, month=month, day=day)


def _read_datetime2_exact(self, column):
    data = self.packet.read_int_be_by_size(5)
    sl = self._RowsEvent__read_binary_slice
    ym = sl(data, 1, 17, 40)
    year, month = ym // 13, ym % 13
    day, hour, minute, second = sl(data, 18, 5, 40), sl(data, 23, 5, 40), sl(data, 28, 6, 40), sl(data, 34, 6, 40)
    try:
        t = _dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        us = self._RowsEvent__read_fsp(column)
        text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
        return text + (f".{us:06d}" if us else "")
    return self._RowsEvent__add_fsp_to_time(t, column)


def _read_time2_exact(self, column):
    """TIME2 as MySQL's my_time_packed_from_binary does it (the library gets negative fractions wrong)."""
    value, _ = rowdecode.unpack_time2(self.packet.read(rowdecode.time2_size(column.fsp)), 0, column.fsp)
    return value


def _read_string_exact(self, size, column):
    """Text by the column's character set as the server converts it (the library decodes MySQL's latin1 as
    Python's cp1252, which fails on 0x81 0x8D 0x8F 0x90 0x9D; see ``values.text_decoder``)."""
    raw = self.packet.read_length_coded_pascal_string(size)
    return rowdecode.column_text_decoder(column)(raw) if raw else ""


def _read_type_values_raw(self, length):
    """ENUM/SET member names as bytes (the library decodes them as UTF-8 and turns anything else into "");
    ``_decode_members`` decodes them by the column's character set once the table map is read."""
    result = []
    read_until = self.packet.read_bytes + length
    while self.packet.read_bytes < read_until:
        count = self.packet.read_length_coded_binary()
        result.append([_RawMember(self.packet.read_variable_length_string()) for _ in range(count)])
    return result


class _RawMember(bytes):
    """An ENUM/SET member name not yet decoded."""


def _decode_members(columns: Iterable[Any]) -> None:
    for col in columns:
        for attr in ("enum_values", "set_values"):
            members = getattr(col, attr, None)
            if not members or not any(isinstance(m, _RawMember) for m in members):
                continue
            dec = rowdecode.column_text_decoder(col)
            out = [dec(bytes(m)) if isinstance(m, _RawMember) else m for m in members]
            if any(isinstance(m, CharsetBytes) for m in out):  # one form per column (SET joins them)
                out = [
                    CharsetBytes(bytes(m), rowdecode.column_charset(col)) if isinstance(m, _RawMember) else m
                    for m in members
                ]
            setattr(col, attr, out)


# The library re-parses every TableMapEvent (column metadata, names, charsets): with small transactions that
# is most of the decode time. A table map's bytes (table id, names, column types and metadata) determine the
# Table completely, so identical maps reuse the Table parsed the first time.
_TABLE_MAP_CACHE: dict[bytes, Any] = {}
_orig_table_map_init = TableMapEvent.__init__  # the library's own (read here, replaced only by install())


def _cached_table_map_init(self, from_packet, event_size, table_map, ctl_connection, **kwargs):
    data = getattr(getattr(from_packet, "packet", None), "_data", None)
    if data is None or from_packet.read_bytes != 0:
        _orig_table_map_init(self, from_packet, event_size, table_map, ctl_connection, **kwargs)
        _decode_members(getattr(self, "columns", None) or ())
        return None
    key = bytes(data[20 : 20 + event_size])
    table = _TABLE_MAP_CACHE.get(key)
    if table is None:
        _orig_table_map_init(self, from_packet, event_size, table_map, ctl_connection, **kwargs)
        _decode_members(getattr(self, "columns", None) or ())
        if self._processed and getattr(self, "table_obj", None) is not None:
            if len(_TABLE_MAP_CACHE) > 4096:
                _TABLE_MAP_CACHE.clear()
            _TABLE_MAP_CACHE[key] = self.table_obj
        return None
    BinLogEvent.__init__(self, from_packet, event_size, table_map, ctl_connection, **kwargs)
    self.table_id, self.schema, self.table = table.table_id, table.schema, table.table
    only_schemas, ignored_schemas = kwargs.get("only_schemas"), kwargs.get("ignored_schemas")
    only_tables, ignored_tables = kwargs.get("only_tables"), kwargs.get("ignored_tables")
    if (
        (only_tables is not None and self.table not in only_tables)
        or (ignored_tables is not None and self.table in ignored_tables)
        or (only_schemas is not None and self.schema not in only_schemas)
        or (ignored_schemas is not None and self.schema in ignored_schemas)
    ):
        self._processed = False
        return None
    self.columns = table.columns
    self.column_count = len(table.columns)
    self.table_obj = table
    table_map[self.table_id] = table
    return None


_orig_execute_load_init = ExecuteLoadQueryEvent.__init__


def _execute_load_init(self, from_packet, event_size, table_map, ctl_connection, **kwargs):
    """Also read the status variables, default database and statement (laid out as in a Query event after
    the 13 + 13 bytes of post-header)."""
    _orig_execute_load_init(self, from_packet, event_size, table_map, ctl_connection, **kwargs)
    self.schema, self._dts_query = b"", None
    try:
        self.packet.read(self.status_vars_length)
        self.schema = self.packet.read(self.schema_length)
        self.packet.advance(1)
        n = event_size - 26 - self.status_vars_length - self.schema_length - 1
        self._dts_query = self.packet.read(n).decode("utf-8", "replace") if n > 0 else ""
    except Exception:
        pass


def load_query_text(ev: ExecuteLoadQueryEvent) -> str | None:
    """The LOAD DATA statement of an Execute_load_query event (the library reads only its fixed fields), or
    None when it could not be read."""
    return getattr(ev, "_dts_query", None)


_orig_read_binary_json = BinLogPacketWrapper.read_binary_json


def _read_binary_json_text(self, size, is_partial):
    """A whole JSON value as the JSON text MySQL prints for it (``rowdecode.mysql_json_text``), never None:
    the library's own decoding loses a JSON null (None, as SQL NULL), top-level strings (bytes) and opaque
    DECIMAL/DATE/TIME values. Partial JSON updates stay the library's (the reader refuses those events)."""
    if is_partial:
        return _orig_read_binary_json(self, size, is_partial)
    length = self.read_uint_by_size(size)
    return rowdecode.mysql_json_text(bytes(self.read(length)) if length else b"")


# (class, attribute, replacement): every assignment into the library, in the order install() makes them
_PATCHES: tuple[tuple[type, str, Callable[..., Any]], ...] = (
    (RowsEvent, "_RowsEvent__read_date", _read_date_exact),
    (RowsEvent, "_RowsEvent__read_time2", _read_time2_exact),
    (RowsEvent, "_RowsEvent__read_datetime2", _read_datetime2_exact),
    (RowsEvent, "_RowsEvent__read_string", _read_string_exact),
    (TableMapEvent, "_read_type_values", _read_type_values_raw),
    (TableMapEvent, "__init__", _cached_table_map_init),
    (ExecuteLoadQueryEvent, "__init__", _execute_load_init),
    (BinLogPacketWrapper, "read_binary_json", _read_binary_json_text),
)


# --------------------------------------------------------------------------- version check

_INIT = ("self", "from_packet", "event_size", "table_map", "ctl_connection", "kwargs")
# Parameters of every library function the patches replace or call (the replacements keep these names).
_SIGNATURES: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (RowsEvent, "_RowsEvent__read_date", ("self",)),
    (RowsEvent, "_RowsEvent__read_time2", ("self", "column")),
    (RowsEvent, "_RowsEvent__read_datetime2", ("self", "column")),
    (RowsEvent, "_RowsEvent__read_string", ("self", "size", "column")),
    (RowsEvent, "_RowsEvent__read_binary_slice", ("self", "binary", "start", "size", "data_length")),
    (RowsEvent, "_RowsEvent__read_fsp", ("self", "column")),
    (RowsEvent, "_RowsEvent__add_fsp_to_time", ("self", "time", "column")),
    (
        RowsEvent,
        "_RowsEvent__read_values_name",
        ("self", "column", "null_bitmap", "null_bitmap_index", "is_partial", "cols_bitmap", "unsigned", "i"),
    ),
    (RowsEvent, "_read_column_data", ("self", "cols_bitmap", "row_image_type")),
    (TableMapEvent, "_read_type_values", ("self", "length")),
    (TableMapEvent, "__init__", _INIT),
    (ExecuteLoadQueryEvent, "__init__", _INIT),
    (
        BinLogEvent,
        "__init__",  # called with the keywords the library gives TableMapEvent (only_schemas, ... are read)
        (
            *_INIT[:-1],
            "mysql_version",
            "only_tables",
            "ignored_tables",
            "only_schemas",
            "ignored_schemas",
            "freeze_schema",
            "ignore_decode_errors",
            "verify_checksum",
            "use_checksum",
            "optional_meta_data",
            "enable_logging",
            "use_column_name_cache",
            "post_header_lengths",
        ),
    ),
    (BinLogPacketWrapper, "read", ("self", "size")),
    (BinLogPacketWrapper, "advance", ("self", "size")),
    (BinLogPacketWrapper, "read_uint24", ("self",)),
    (BinLogPacketWrapper, "read_int_be_by_size", ("self", "size")),
    (BinLogPacketWrapper, "read_length_coded_binary", ("self",)),
    (BinLogPacketWrapper, "read_length_coded_pascal_string", ("self", "size")),
    (BinLogPacketWrapper, "read_variable_length_string", ("self",)),
    (BinLogPacketWrapper, "read_binary_json", ("self", "size", "is_partial")),
    (BinLogPacketWrapper, "read_uint_by_size", ("self", "size")),
)
# Instance attributes the patches read, by the library function that sets them (checked in its source).
_ATTRIBUTES: tuple[tuple[Callable[..., Any], tuple[str, ...]], ...] = (
    (RowsEvent.__init__, ("self.__none_sources",)),
    (BinLogPacketWrapper.__init__, ("self.read_bytes", "self.__data_buffer", "self.packet")),
    (BinLogEvent.__init__, ("self.packet", "self._processed")),
    (_orig_table_map_init, ("self.table_id", "self.schema", "self.table", "self.columns", "self.table_obj")),
    (_orig_execute_load_init, ("self.schema_length", "self.status_vars_length")),
)
_ORIGINALS: dict[tuple[type, str], Callable[..., Any]] = {  # the library's own, also once install() ran
    (TableMapEvent, "__init__"): _orig_table_map_init,
    (ExecuteLoadQueryEvent, "__init__"): _orig_execute_load_init,
    (RowsEvent, "_read_column_data"): rowdecode._original_read_column_data,
    (BinLogPacketWrapper, "read_binary_json"): _orig_read_binary_json,
}


def _library_version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _parse(version: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def internals_problems() -> list[str]:
    """What the installed library lacks of the internals the patches replace or read (empty: all there)."""
    problems: list[str] = []
    for cls, name, params in _SIGNATURES:
        func = _ORIGINALS.get((cls, name)) or getattr(cls, name, None)
        if func is None:
            problems.append(f"{cls.__name__}.{name} is missing")
            continue
        try:
            got = tuple(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            got = ()
        if got != params:
            problems.append(f"{cls.__name__}.{name}{got} is not {name}{params}")
    for func, attributes in _ATTRIBUTES:
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            problems.append(f"the source of {func.__qualname__} cannot be read to check it")
            continue
        problems.extend(f"{func.__qualname__} no longer sets {a}" for a in attributes if a not in source)
    return problems


def check_library() -> str:
    """The installed library's version, when the patches fit it; else ``UnsupportedLibraryVersion``."""
    version = _library_version()
    if version is None:
        raise _unsupported("(version unknown)", f"not installed as the distribution {DISTRIBUTION}")
    if version in SUPPORTED_VERSIONS:
        return version
    parsed = _parse(version)
    low, high = SUPPORTED_RANGE
    if parsed is None or not low <= parsed < high:
        raise _unsupported(version, f"outside {_RANGE_TEXT}")
    problems = internals_problems()
    if problems:
        raise _unsupported(version, "a version whose internals changed: " + "; ".join(problems))
    log.info(
        "python-mysql-replication %s: not a version the binlog patches were tested with (%s), but every internal "
        "they replace or read is unchanged",
        version,
        ", ".join(SUPPORTED_VERSIONS),
    )
    return version


def _unsupported(version: str, reason: str) -> UnsupportedLibraryVersion:
    return UnsupportedLibraryVersion(
        f"python-mysql-replication ({DISTRIBUTION}) {version} is not supported by the binlog reader: its fixes "
        f"were written for {', '.join(SUPPORTED_VERSIONS)} (other {_RANGE_TEXT} versions only with the same "
        f"internals), and this one is {reason}. {_FIX}"
    )


# --------------------------------------------------------------------------- install

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Check the library's version, then patch it (once per process: later calls do nothing)."""
    global _installed
    with _lock:
        if _installed:
            return
        check_library()  # raises before anything is changed
        for cls, name, func in _PATCHES:
            setattr(cls, name, func)
        rowdecode.install()
        _installed = True
