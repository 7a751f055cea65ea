"""The reader child's frame sender (engine/reader_process._Sender): batches, order, bounded memory, errors."""

from __future__ import annotations

import io
import pickle
import threading
import time

import pytest

from airflow_provider_dts.engine.reader_process import _FRAME, _Sender


class GatedPipe(io.RawIOBase):
    """A pipe end whose writes wait until the test opens the gate; keeps what was written."""

    def __init__(self):
        self.data = bytearray()
        self.gate = threading.Event()
        self.writes = 0
        self.fail: BaseException | None = None

    def writable(self):
        return True

    def write(self, b):
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.data += b
        self.writes += 1
        return len(b)

    def frames(self) -> list:
        out, view = [], memoryview(bytes(self.data))
        while view:
            (n,) = _FRAME.unpack(view[: _FRAME.size])
            out.append(pickle.loads(view[_FRAME.size : _FRAME.size + n]))
            view = view[_FRAME.size + n :]
        return out


def items_of(frames: list) -> list:
    assert all(kind == "batch" for kind, _ in frames)
    return [item for _, batch in frames for item in batch]


def test_everything_arrives_in_order_and_what_waits_goes_as_one_frame():
    pipe = GatedPipe()
    sender = _Sender(pipe, max_rows=10_000)
    sender.put(("txn", 0), 1)
    time.sleep(0.2)  # the sender took item 0 and waits on the pipe; the next ones pile up
    for i in range(1, 100):
        sender.put(("txn", i), 1)
    pipe.gate.set()
    sender.close()
    frames = pipe.frames()
    assert items_of(frames) == [("txn", i) for i in range(100)]
    assert len(frames) == 2  # item 0 alone, then the 99 that waited meanwhile


def test_put_waits_while_the_rows_waiting_would_pass_the_bound():
    pipe = GatedPipe()
    sender = _Sender(pipe, max_rows=100)
    sender.put(("part", "first"), 100)
    time.sleep(0.2)  # taken by the sender, which now waits on the pipe
    sender.put(("part", "second"), 100)  # waits alone: nothing else is waiting
    done = threading.Event()

    def third():
        sender.put(("txn", "third"), 1)  # 100 rows waiting already: must wait for the pipe
        done.set()

    threading.Thread(target=third, daemon=True).start()
    assert not done.wait(0.5)
    pipe.gate.set()
    assert done.wait(5)
    sender.close()
    assert items_of(pipe.frames()) == [("part", "first"), ("part", "second"), ("txn", "third")]


def test_a_broken_pipe_reaches_the_reader_loop():
    pipe = GatedPipe()
    pipe.fail = BrokenPipeError("parent gone")
    pipe.gate.set()
    sender = _Sender(pipe, max_rows=10)
    sender.put(("txn", 1), 1)
    with pytest.raises(BrokenPipeError):
        for i in range(1000):  # a later put sees the failed write
            sender.put(("txn", i), 1)
            time.sleep(0.01)
    with pytest.raises(BrokenPipeError):
        sender.close()


def test_close_sends_what_is_waiting():
    pipe = GatedPipe()
    pipe.gate.set()
    sender = _Sender(pipe, max_rows=10)
    for i in range(25):
        sender.put(("txn", i), 1)
    sender.put(("idle",))
    sender.close()
    assert items_of(pipe.frames()) == [("txn", i) for i in range(25)] + [("idle",)]
