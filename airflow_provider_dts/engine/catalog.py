"""Facts about a table's columns as the servers report them, decided in one place.

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

from typing import Any

_GENERATED_KINDS = frozenset({"VIRTUAL", "STORED", "PERSISTENT"})


def is_generated_extra(extra: Any) -> bool:
    """True when an ``information_schema.COLUMNS.EXTRA`` value marks a generated (computed) column.

    The word ``GENERATED`` must stand alone next to VIRTUAL / STORED / PERSISTENT: MySQL 8's
    ``DEFAULT_GENERATED`` (an expression default) is not a generated column and must be written.
    """
    if isinstance(extra, (bytes, bytearray)):
        extra = extra.decode("utf-8", "replace")
    words = set(str(extra or "").upper().split())
    return "GENERATED" in words and bool(words & _GENERATED_KINDS)
