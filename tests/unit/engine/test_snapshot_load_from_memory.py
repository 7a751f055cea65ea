"""The full data sync's LOAD DATA LOCAL body is answered from memory, and only for the name the writer gave
(pure: a fake connection, no server; the real path is covered by tests/integration/engine/test_snapshot*.py)."""

from __future__ import annotations

import pytest


class FakeConn:
    _sock = True
    _closed = False

    def __init__(self, allowed: str, body: bytes | None, max_allowed_packet: int = 1 << 20):
        self._dts_infile = allowed
        self._dts_body = body
        self.max_allowed_packet = max_allowed_packet
        self.sent: list[bytes] = []

    def write_packet(self, data):
        self.sent.append(bytes(data))


def test_the_body_is_sent_from_memory_in_packets_then_the_end_packet():
    import pymysql

    from airflow_provider_dts.engine.snapshot.writer import IN_MEMORY_NAME, LOAD_PACKET

    body = b"".join(b"%d\tx\n" % i for i in range(40000))  # more than two packets
    conn = FakeConn(IN_MEMORY_NAME, body)
    pymysql.connections.LoadLocalFile(IN_MEMORY_NAME.encode(), conn).send_data()
    assert conn.sent[-1] == b""
    assert b"".join(conn.sent) == body
    assert len(conn.sent) == 1 + -(-len(body) // LOAD_PACKET) and max(map(len, conn.sent)) == LOAD_PACKET
    small = FakeConn(IN_MEMORY_NAME, body, max_allowed_packet=1000)  # never a packet above the client's limit
    pymysql.connections.LoadLocalFile(IN_MEMORY_NAME, small).send_data()
    assert b"".join(small.sent) == body and max(map(len, small.sent)) == 1000


def test_another_name_gets_nothing_of_the_body(tmp_path):
    import pymysql

    from airflow_provider_dts.engine.snapshot.writer import IN_MEMORY_NAME

    secret = tmp_path / "secret"
    secret.write_bytes(b"password=hunter2")
    for asked in (str(secret), "dts-chunk-in-memory.tsv.other", ""):
        conn = FakeConn(IN_MEMORY_NAME, b"1\t2\n")
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connections.LoadLocalFile(asked.encode(), conn).send_data()
        assert conn.sent == [b""]  # only the end-of-data packet
    idle = FakeConn("", None)  # between chunks: every name is refused
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connections.LoadLocalFile(IN_MEMORY_NAME.encode(), idle).send_data()
    assert idle.sent == [b""]
