"""The binlog reader in a process of its own, so that decoding and applying use two cores.

Decoding row events in python-mysql-replication is CPU-bound Python; so is building the applier's SQL.
In one process they share one interpreter lock (and inside Airflow's triggerer, both directions and the
triggerer itself share it too). ``ReaderProcess`` has the interface of ``binlog.BinlogReader``
(``transactions()``, ``close()``) but runs the reader in a child interpreter:

    parent (apply loop)                          child (python -m ...reader_process)
      stdin  --- one JSON line: direction, source settings, start position --->
      stdout <-- frames: 4-byte length + pickle of ("ready",) once, then ("batch", [item, ...]) ...
                         where an item is ("txn", Transaction), ("idle",) or ("part", changes) (a large
                         transaction's changes, sent ahead of it in pieces); finally maybe
                         ("error", exception, traceback text), then exit
      stderr <-- anything the child prints (logged by the parent)

A thread of the child (``_Sender``) sends whatever the reader decoded since its last frame as one frame: one
pipe write and one unpickling per batch instead of per transaction, and pickle's memo writes a table's column
names once per frame instead of once per row image (single-row transactions: about a third of the cost). It never
waits to fill a frame: a frame goes as soon as the previous one is written, so batching adds no lag.

Nothing durable lives in the child: it only reads. The parent keeps the checkpoint and applies, so killing
the child at any moment loses nothing; the next session starts a new child at the checkpoint (a child that
dies after "ready" is retried like a lost connection; one that cannot start at all fails the direction with
its error, since retrying would not help; so does an unsupported python-mysql-replication, which the child
checks first: ``binlog_patches.install``). The password
travels only through the stdin pipe (never argv or the environment). The child exits when its stdin
closes, which also happens when the parent dies (even by SIGKILL), so no reader outlives its sync.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, BinaryIO

from airflow_provider_dts.engine import binlog_patches
from airflow_provider_dts.engine.binlog import BinlogReader, StreamResync
from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import Transaction
from airflow_provider_dts.engine.servers import ConnectionSettings

log = logging.getLogger(__name__)

_FRAME = struct.Struct("!I")
_FIX = (
    "Fix: make this package importable by the Python that runs the sync, or set DTS_BINLOG_READER=thread "
    "to read the binlog inside the sync's own process"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def child_environment(environ) -> dict[str, str]:
    """The reader child's environment: this process's, without any variable that carries credentials (the
    child gets the source's settings through its stdin pipe and needs nothing else; an environment is
    readable in /proc/<pid>/environ by the same user)."""

    def secret(name: str) -> bool:
        upper = name.upper()
        return (
            upper.startswith("AIRFLOW_CONN_")
            or upper in ("DTS_SOURCE", "DTS_DESTINATION")
            or any(w in upper for w in ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL"))
        )

    return {k: v for k, v in environ.items() if not secret(k)}


class ReaderProcess:
    """A ``BinlogReader`` running in a child process; yields the same ``Transaction`` objects."""

    part_rows = 10_000  # a transaction with more row changes crosses the pipe in pieces of this many

    def __init__(
        self,
        direction: SyncDirection,
        source: ConnectionSettings,
        start: tuple[str, int],
        *,
        skip_flagged: bool = False,
        expect_server_id: int | None = None,
        logger: logging.Logger | None = None,
    ):
        self.direction = direction
        self.expect_server_id = expect_server_id
        self.source = source
        self.start = (str(start[0]), int(start[1]))
        self.skip_flagged = skip_flagged
        self.log = logger or log
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._lock = threading.Lock()  # close() may come from another thread, even before the spawn
        self._stderr_tail: deque[str] = deque(maxlen=20)

    def command(self) -> list[str]:
        return [sys.executable, "-m", __name__]

    def _spawn(self) -> subprocess.Popen:
        env = child_environment(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        command = self.command()
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                close_fds=True,
            )
        except OSError as e:
            raise SyncFailed(f"cannot start the binlog reader process ({command[0]!r}): {e}. {_FIX}") from None
        init = {
            "direction": self.direction.to_json(),
            "source": asdict(self.source),
            "start": list(self.start),
            "skip_flagged": self.skip_flagged,
            "expect_server_id": self.expect_server_id,
            "part_rows": self.part_rows,
        }
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(init).encode() + b"\n")
            proc.stdin.flush()  # stdin stays open: the child exits when it closes
        except OSError:  # the child is already gone: its exit is reported by transactions()
            pass
        threading.Thread(target=self._drain_stderr, args=(proc,), name="dts-reader-stderr", daemon=True).start()
        return proc

    def _drain_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr_tail.append(line)
                self.log.warning("binlog reader process: %s", line)

    def transactions(self) -> Iterator[Transaction | None]:
        """Like ``BinlogReader.transactions``: transactions, and None when the server's heartbeat says the
        reader is caught up."""
        with self._lock:
            if self._closed:
                return
            self._proc = proc = self._spawn()
        stdout = proc.stdout
        assert stdout is not None  # Popen(stdout=PIPE)
        ready = False
        parts: list = []  # the changes of a large transaction, sent ahead of it in pieces
        while True:
            frame = _read_frame(stdout)
            if frame is None:
                if self._closed:
                    return
                code = proc.wait()
                time.sleep(0.1)  # let the stderr thread take the child's last words
                tail = "; ".join(list(self._stderr_tail)[-3:])
                said = f": {tail}" if tail else ""
                if not ready and code >= 0:  # it could not start (a signal, e.g. an OOM kill, is retried)
                    raise SyncFailed(f"the binlog reader process could not start (exit code {code}){said}. {_FIX}")
                raise StreamResync(f"the binlog reader process exited unexpectedly (exit code {code}){said}")
            message = pickle.loads(frame)
            del frame
            for kind, *payload in message[1] if message[0] == "batch" else (message,):
                if kind == "part":
                    parts.extend(payload[0])
                elif kind == "txn":
                    txn = payload[0]
                    if parts:
                        txn.changes, parts = parts + txn.changes, []
                    yield txn
                elif kind == "idle":
                    yield None
                elif kind == "ready":
                    ready = True
                else:
                    exc, remote_traceback = payload
                    self.log.debug("binlog reader process failed:\n%s", remote_traceback)
                    raise exc
            del message

    def close(self) -> None:
        """Stop the child (from any thread); a ``transactions()`` waiting for a frame then ends."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        # kill first: closing stdout waits for a read in progress in another thread, which ends only when
        # the child's end of the pipe closes (the child holds nothing that must survive)
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except Exception:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child that ignores SIGKILL
            self.log.warning("binlog reader process %s did not exit", proc.pid)


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = _read_exact(stream, _FRAME.size)
    if head is None:
        return None
    return _read_exact(stream, _FRAME.unpack(head)[0])


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    try:
        data = stream.read(n)
    except (OSError, ValueError):  # closed by close() from another thread
        return None
    return data if data is not None and len(data) == n else None


# --------------------------------------------------------------------------- the child


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (its type decides retries), else a SyncFailed."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return SyncFailed(f"the binlog reader failed: {type(exc).__name__}: {exc}")


def _exit_when_parent_goes(stdin: BinaryIO) -> None:
    while stdin.read(65536):
        pass
    os._exit(0)


def _send(out: BinaryIO, item: Any) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)) + data)
    out.flush()


class _Sender:
    """Sends the reader's items to the parent from a thread of its own, each time everything produced since the
    previous frame as one ``("batch", items)`` frame (see the module docstring). ``put`` waits while ``max_rows``
    row changes (or ``max_items`` items) are waiting, so memory stays bounded when the parent is slower; a
    failed write (the parent is gone) is raised by the next ``put`` or by ``close``."""

    def __init__(self, out: BinaryIO, max_rows: int, max_items: int = 1000):
        self._out = out
        self._max_rows = max(1, max_rows)
        self._max_items = max(1, max_items)
        self._cond = threading.Condition()
        self._items: list[tuple] = []
        self._rows = 0
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dts-reader-sender", daemon=True)
        self._thread.start()

    def put(self, item: tuple, rows: int = 0) -> None:
        with self._cond:
            while (
                self._error is None
                and self._items
                and (self._rows + rows > self._max_rows or len(self._items) >= self._max_items)
            ):
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._items.append(item)
            self._rows += rows
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                items, self._items, self._rows = self._items, [], 0
                self._cond.notify_all()
            try:
                _send(self._out, ("batch", items))
            except BaseException as e:
                with self._cond:
                    self._error = e
                    self._items, self._rows = [], 0
                    self._cond.notify_all()
                return
            del items

    def close(self) -> None:
        """Send what is waiting, then stop the thread; raises the write error, if any."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (Ctrl-C reaches both)
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing but frames on the pipe, whatever a library prints
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    init = json.loads(stdin.readline())
    threading.Thread(target=_exit_when_parent_goes, args=(stdin,), daemon=True).start()
    direction = SyncDirection.from_json(init["direction"])
    source = ConnectionSettings(**init["source"])
    start = (str(init["start"][0]), int(init["start"][1]))
    reader: BinlogReader | None = None
    sender: _Sender | None = None
    try:
        # the library's fixes, before anything is decoded; an unsupported library version reaches the parent
        # as the error itself (the direction fails with its message)
        binlog_patches.install()
        reader = BinlogReader(
            direction,
            source,
            start,
            skip_flagged=bool(init["skip_flagged"]),
            expect_server_id=init.get("expect_server_id"),
        )
        _send(frames, ("ready",))
        part_rows = int(init["part_rows"])
        sender = _Sender(frames, part_rows)
        for txn in reader.transactions():
            if txn is None:  # the server's heartbeat: caught up (the parent's idle lag, incremental._read)
                sender.put(("idle",))
                continue
            if len(txn.changes) > part_rows:  # pickled whole, a huge transaction would be held three times
                changes, txn.changes = txn.changes, []
                for i in range(0, len(changes), part_rows):
                    sender.put(("part", changes[i : i + part_rows]), min(part_rows, len(changes) - i))
                del changes
            sender.put(("txn", txn), len(txn.changes))
            del txn
        sender.close()
    except BrokenPipeError:
        pass
    except BaseException as e:
        try:
            if sender is not None:
                try:
                    sender.close()  # the transactions read before the error first: the parent applies them
                except BrokenPipeError:
                    raise
                except BaseException:
                    pass  # the sender's own failure (e.g. an item it could not pickle): it is ``e``, reported below
            _send(frames, ("error", _portable(e), traceback.format_exc()))
        except BrokenPipeError:
            pass
    finally:
        if reader is not None:
            reader.close()
        os._exit(0)


if __name__ == "__main__":
    main()
