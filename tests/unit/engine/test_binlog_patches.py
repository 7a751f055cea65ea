"""The library patches (engine/binlog_patches.py): installed only by install(), once, on a known library."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pymysqlreplication.event import ExecuteLoadQueryEvent
from pymysqlreplication.row_event import RowsEvent, TableMapEvent

from airflow_provider_dts.engine import binlog_patches, rowdecode
from airflow_provider_dts.engine.errors import DtsError

_CLASSES = (RowsEvent, TableMapEvent, ExecuteLoadQueryEvent)


def _library_state() -> dict:
    return {(cls.__name__, name): value for cls in _CLASSES for name, value in vars(cls).items()}


def test_importing_the_engine_leaves_the_library_untouched():
    code = textwrap.dedent(
        """
        from pymysqlreplication.event import ExecuteLoadQueryEvent
        from pymysqlreplication.row_event import RowsEvent, TableMapEvent

        def state():
            return {(c.__name__, n): v for c in (RowsEvent, TableMapEvent, ExecuteLoadQueryEvent)
                    for n, v in vars(c).items()}

        before = state()
        import airflow_provider_dts.engine.binlog
        import airflow_provider_dts.engine.binlog_patches
        import airflow_provider_dts.engine.incremental
        import airflow_provider_dts.engine.model
        import airflow_provider_dts.engine.reader_process
        import airflow_provider_dts.engine.rowdecode
        assert state() == before, sorted(k for k in before if state()[k] is not before[k])
        airflow_provider_dts.engine.binlog_patches.install()
        changed = sorted(n for (c, n) in before if state()[(c, n)] is not before[(c, n)])
        print(changed)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # and install() does change it: every patch, the row decoder included
    assert done.stdout.split("\n")[-2] == str(
        sorted(
            ["_RowsEvent__read_date", "_RowsEvent__read_time2", "_RowsEvent__read_datetime2"]
            + ["_RowsEvent__read_string", "_read_type_values", "__init__", "__init__", "_read_column_data"]
        )
    )


def test_install_twice_is_fine():
    binlog_patches.install()
    after_first = _library_state()
    binlog_patches.install()
    assert _library_state() == after_first
    assert TableMapEvent.__init__ is binlog_patches._cached_table_map_init
    assert RowsEvent._read_column_data is rowdecode._fast_read_column_data


def test_an_unknown_library_version_raises_before_patching(monkeypatch):
    monkeypatch.setattr(binlog_patches, "_installed", False)
    monkeypatch.setattr(binlog_patches, "_library_version", lambda: "2.3.0")
    before = _library_state()
    with pytest.raises(binlog_patches.UnsupportedLibraryVersion) as info:
        binlog_patches.install()
    message = str(info.value)
    assert isinstance(info.value, DtsError)
    assert "2.3.0" in message and "1.0.17" in message
    assert "pip install 'mysql-replication==1.0.17'" in message
    assert _library_state() == before
    assert binlog_patches._installed is False


def test_a_version_in_the_pinned_range_needs_the_same_internals(monkeypatch):
    monkeypatch.setattr(binlog_patches, "_library_version", lambda: "1.0.18")
    assert binlog_patches.internals_problems() == []
    assert binlog_patches.check_library() == "1.0.18"
    monkeypatch.setattr(binlog_patches, "_SIGNATURES", (*binlog_patches._SIGNATURES, (RowsEvent, "_gone", ("self",))))
    with pytest.raises(binlog_patches.UnsupportedLibraryVersion, match=r"1\.0\.18 .*RowsEvent\._gone is missing"):
        binlog_patches.check_library()


@pytest.mark.parametrize("version", ["1.1.0", "1.0.16", "1.0.18rc1", None])
def test_versions_outside_the_range_or_unreadable_are_refused(monkeypatch, version):
    monkeypatch.setattr(binlog_patches, "_library_version", lambda: version)
    with pytest.raises(binlog_patches.UnsupportedLibraryVersion, match="Fix: pip install"):
        binlog_patches.check_library()


def test_the_reader_child_reports_an_unsupported_library_as_that_error(monkeypatch):
    """The reader process installs the patches itself; the parent gets the version error, not a bare exit."""
    from airflow_provider_dts.engine.config import SyncDirection
    from airflow_provider_dts.engine.reader_process import ReaderProcess
    from airflow_provider_dts.engine.servers import ConnectionSettings

    child = (
        "from airflow_provider_dts.engine import binlog_patches, reader_process\n"
        "binlog_patches._library_version = lambda: '9.9.9'\n"
        "reader_process.main()\n"
    )
    monkeypatch.setattr(ReaderProcess, "command", lambda self: [sys.executable, "-c", child])
    direction = SyncDirection.from_dict(
        {"task_name": "t", "source_conn_id": "a", "destination_conn_id": "b", "objects": ["shop"]}
    )
    reader = ReaderProcess(direction, ConnectionSettings(port=1), ("binlog.000001", 4))
    try:
        with pytest.raises(binlog_patches.UnsupportedLibraryVersion, match=r"9\.9\.9 .*outside >=1\.0\.17,<1\.1"):
            next(iter(reader.transactions()))
    finally:
        reader.close()
