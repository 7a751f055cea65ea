"""Errors raised by the sync engine.

Every message names what is wrong and how to fix it. No message ever contains a password:
connection settings render themselves without it (see ``servers.ConnectionSettings``).
"""

from __future__ import annotations


class DtsError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(DtsError, ValueError):
    """Invalid task configuration. ``problems`` lists every bad field at once."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid DTS task configuration ({len(self.problems)} problem(s)):\n{lines}")


class ServerError(DtsError):
    """A server cannot be reached or does not fit (version, settings)."""


class PrecheckFailed(DtsError):
    """One or more precheck items failed and were not ignored."""

    def __init__(self, failed: list):
        self.failed = list(failed)
        lines = "\n".join(f"  - {r.name}: {r.reason} Fix: {r.fix}" for r in self.failed)
        super().__init__(f"precheck failed ({len(self.failed)} item(s)):\n{lines}")


class ConflictError(DtsError):
    """A conflict under the TaskFailed policy: the direction stops before the transaction."""


class SyncFailed(DtsError):
    """The direction cannot continue (purged binlog, retry window exceeded, ...)."""


class LeaseHeld(DtsError):
    """Another applier holds the lease of this direction."""


class FullSyncError(DtsError):
    """The full data sync cannot continue (the message names the table and the fix)."""


class DestinationMismatch(FullSyncError):
    """The destination does not fit the copy (a table missing or different, a row already there): running the
    copy again cannot help until the user changes the destination or the settings (the message says how)."""


class DestinationTableMissing(DestinationMismatch):
    """A table the full data sync copies does not exist at the destination."""


class DestinationTableDiffers(DestinationMismatch):
    """A destination table's columns do not match the source's (missing, or generated there)."""


class DestinationRowExists(DestinationMismatch):
    """The destination already holds a row with a copied row's key (existing_table_mode is not Ignore)."""
