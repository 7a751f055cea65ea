"""The named lock an operation of a sync holds on both servers (``servers.NamedLock``: switch direction's DDL owner
lock, the answer lock of conflicts), on the real pair: taken A first, then B; released on every way out; a lock
that cannot be taken in time is a clear error that names the lock, the server and the fix."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from airflow_provider_dts.engine.errors import ServerError
from airflow_provider_dts.engine.servers import NamedLock

LOCK = NamedLock("dts_test", "test lock", "a test holds it", "wait for the test", wait_seconds=1)


def lock_owner(server, name: str):
    """The connection id holding ``name`` on ``server`` (None: free), asked from a session of its own."""
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
        return cur.fetchone()[0]


def connection_id(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        return cur.fetchone()[0]


@pytest.fixture
def name():
    return "dts_test:" + uuid.uuid4().hex


@pytest.fixture
def conns(pair):
    a, b = pair.a.root_connect(), pair.b.root_connect()
    yield a, b
    a.close()
    b.close()


def test_held_on_both_servers_and_released_after(pair, conns, name):
    a, b = conns
    with LOCK.held(name, a=(a, "server A"), b=(b, "server B")):
        assert lock_owner(pair.a, name) == connection_id(a)
        assert lock_owner(pair.b, name) == connection_id(b)
    assert lock_owner(pair.a, name) is None and lock_owner(pair.b, name) is None


def test_released_on_both_servers_when_the_work_fails(pair, conns, name):
    a, b = conns
    with pytest.raises(ZeroDivisionError), LOCK.held(name, a=(a, "server A"), b=(b, "server B")):
        _ = 1 / 0
    assert lock_owner(pair.a, name) is None and lock_owner(pair.b, name) is None


def test_busy_on_b_is_an_error_naming_lock_server_and_fix_and_a_is_released(pair, conns, name):
    a, b = conns
    blocker = pair.b.root_connect()
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
            assert cur.fetchone()[0] == 1
        with pytest.raises(ServerError) as err, LOCK.held(name, a=(a, "server A"), b=(b, "server B")):
            pytest.fail("the work ran without the lock on B")
        assert str(err.value) == (
            f"could not take the test lock {name!r} on server B within 1 s (a test holds it). Fix: wait for the test"
        )
        assert lock_owner(pair.a, name) is None  # A was taken first and given back
        assert lock_owner(pair.b, name) == connection_id(blocker)
    finally:
        blocker.close()


def test_a_is_taken_before_b_whatever_the_caller(pair, conns, name):
    """While B is busy, the waiting holder already has A: two holders always queue on A first, so they never
    wait for each other in a circle."""
    a, b = conns
    slow = NamedLock("dts_test", "test lock", "a test holds it", "wait for the test", wait_seconds=20)
    blocker = pair.b.root_connect()
    done: list[str] = []
    a_id = connection_id(a)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (name,))

        def take() -> None:
            with slow.held(name, b=(b, "server B"), a=(a, "server A")):
                done.append("held")

        t = threading.Thread(target=take)
        t.start()
        for _ in range(100):
            if lock_owner(pair.a, name) is not None:
                break
            time.sleep(0.1)
        assert lock_owner(pair.a, name) == a_id
        assert not done  # still waiting for B
        with blocker.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
        t.join(20)
        assert done == ["held"]
        assert lock_owner(pair.a, name) is None and lock_owner(pair.b, name) is None
    finally:
        blocker.close()
