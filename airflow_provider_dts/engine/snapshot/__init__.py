"""Initial full data synchronization: a consistent snapshot of the selected tables, copied exactly.

Snapshot and its binlog position
    MariaDB: ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` then ``SHOW STATUS LIKE 'binlog_snapshot_%'``
    gives the binlog file/position at which the snapshot is consistent, with no global lock at all.
    MySQL: ``FLUSH TABLES WITH READ LOCK`` -> ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` -> binary log
    status -> ``UNLOCK TABLES``. The global read lock is held only for those three statements (the
    shortest possible lock; writes on the source wait for milliseconds, not for the copy). It needs the
    RELOAD privilege.

Positions (the shared contract with incremental sync)
    ``checkpoint.snapshot_file/pos``: the first snapshot's position, written when it is taken. For task two
    it is usually set already: task one records there the start floor taken before it wrote on task two's
    source (``engine.startfloor``); it is kept, so task two replays everything written since.
    ``checkpoint.catchup_file/pos``: the latest snapshot's position (a resumed copy takes a new snapshot).
    ``checkpoint.binlog_file/pos`` = the first snapshot's position, set only once every table is copied:
    that is the moment the direction counts as initialized. Incremental sync replays from there,
    idempotently until it passes the catch-up position.
    Objects added to an initialized direction (``engine.modify``): only the added tables are copied, from a new
    snapshot S; the checkpoint is left as it is and each added table's ``table_progress.catchup_file/pos`` = S
    (its changes in transactions ending at or before S apply idempotently when incremental sync resumes).

Copy
    ``parallel`` pipelines copy at once (default 2, a two-core budget): each is a reader thread on its own
    source connection and a writer thread on its own destination connection, joined by a bounded queue
    (memory stays flat: a few chunks of at most ``chunk_bytes``). All readers hold the SAME snapshot (MariaDB:
    snapshots retried until their binlog positions agree; MySQL: all started under the one brief read lock).
    The work items are tables, and the key ranges of large tables: a table of at least ``split_rows``
    (estimated) rows with a key is split into up to ``RANGES_PER_PIPELINE`` ranges per pipeline
    (``plan.split_table``), so several pipelines copy one large table at the same time. A reader reads a
    table or range in key order with keyset pagination (primary key, or a NOT NULL unique key): each chunk is
    the key range up to the ``n``-th next key, and the source server renders its rows as exact text
    (``values.load_data_plan`` / ``values.row_literal_sql``) concatenated into one value (``GROUP_CONCAT``), so
    Python neither converts a value nor handles a row. The writer
    applies a chunk with ``LOAD DATA LOCAL INFILE`` (about twice as fast as INSERT here; warnings are
    checked, so nothing is silently changed) or one multi-row INSERT, together with the table's
    ``table_progress`` row (last key, or each key range's last key; rows done) and the direction's
    ``checkpoint`` row (the loop mark: the opposite direction's reader drops every transaction that touches
    it) in ONE transaction; the destination's own row count of each chunk is checked. A killed copy therefore
    resumes after the last committed chunk of every range: no row twice, none skipped. A table without a usable
    key is streamed and committed in a single destination transaction (restarted whole).

    ``PrecheckAndIntercept``: a row whose key already exists at the destination is an error (the chunk is
    rolled back). ``Ignore``: such rows are kept as they are (INSERT: ``ON DUPLICATE KEY UPDATE`` of
    nothing; LOAD DATA: duplicate-key warnings accepted, any other warning is an error), so no other
    problem is silenced. Generated columns are never written. Tables in
    ``direction.skip_initial_tables`` are skipped (the opposite direction fills them).

State: ``Initializing`` while running, ``InitializeFailed`` with the message on error (``Stopped`` when
``stop`` was set); on success the state is left for the incremental sync to change.

Split by concern: ``position`` (the consistent snapshot and its binlog position), ``plan`` (``TablePlan``: columns,
key, resume point), ``reader`` (keyset chunks), ``writer`` (chunk + progress + loop mark in one transaction),
``run`` (``full_data_sync``: the orchestration).
"""

from __future__ import annotations

from airflow_provider_dts.engine.errors import FullSyncError
from airflow_provider_dts.engine.snapshot.plan import FullSyncResult, TablePlan, copy_columns_and_key
from airflow_provider_dts.engine.snapshot.position import take_snapshot, take_snapshots
from airflow_provider_dts.engine.snapshot.run import DEFAULT_CHUNK_BYTES, METHODS, full_data_sync

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "METHODS",
    "FullSyncError",
    "FullSyncResult",
    "TablePlan",
    "copy_columns_and_key",
    "full_data_sync",
    "take_snapshot",
    "take_snapshots",
]
