"""SQL text: identifier quoting, the one SQL tokenizer, qualified-name rewriting, and server text values.

Every module that builds or reads SQL text uses these; nothing else quotes an identifier or splits a
statement into tokens.
"""

from __future__ import annotations

from typing import Any


def quote_ident(name: str) -> str:
    """Quote one identifier for MySQL: backticks, inner backticks doubled."""
    return "`" + str(name).replace("`", "``") + "`"


def qualified(db: str, table: str) -> str:
    return f"{quote_ident(db)}.{quote_ident(table)}"


def as_text(value: Any) -> Any:
    """A value read from information_schema or SHOW output: bytes (some servers, some columns) -> str."""
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value
