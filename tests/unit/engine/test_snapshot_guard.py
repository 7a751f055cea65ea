"""The LOAD DATA LOCAL guard of the full data sync (pure: a fake connection, no server)."""

from __future__ import annotations

import pytest


def test_load_data_local_sender_only_sends_the_writer_file(tmp_path):
    """A server may ask a LOAD DATA LOCAL client for any file: our writer connections send only theirs."""
    import pymysql

    import airflow_provider_dts.engine.snapshot  # noqa: F401 - installs the guard

    secret, ours = tmp_path / "secret", tmp_path / "chunk.tsv"
    secret.write_bytes(b"password=hunter2")
    ours.write_bytes(b"1\t2\n")

    class FakeConn:
        _sock = True
        _closed = False
        max_allowed_packet = 1 << 20

        def __init__(self, allowed):
            self._dts_infile = allowed
            self.sent = []

        def write_packet(self, data):
            self.sent.append(data)

    conn = FakeConn(str(ours))
    pymysql.connections.LoadLocalFile(str(ours).encode(), conn).send_data()
    assert conn.sent == [b"1\t2\n", b""]
    conn = FakeConn(str(ours))
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connections.LoadLocalFile(str(secret).encode(), conn).send_data()
    assert conn.sent == [b""]  # nothing of the file, just the end-of-data packet
    conn = FakeConn("")
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connections.LoadLocalFile(str(ours).encode(), conn).send_data()
    assert conn.sent == [b""]
