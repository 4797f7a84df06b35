"""The writer process: commits the batches a driver's recorder sends it on stdin.

Started by :class:`fluvial.store.recorder.Recorder` as
``python -c <entry>`` (see :func:`command`), which loads only ``fluvial.store``
(and the dependency-free ``fluvial.exceptions`` and ``fluvial.settings``):
neither ``fluvial``'s engine nor the user's ``__main__``. The protocol (frames,
see :mod:`fluvial.store.writer.wire`):

    driver -> writer   ("hello", url, driver pid, hostname)
                       then (seq, urgent, [events]) per batch, seq counting from 1
    writer -> driver   ("ready", writer pid) or ("failed", reason)
                       then ("ack", seq, skipped, error or None, [warnings]) per batch,
                       after the batch's transaction committed (or failed)

Urgent batches (flow runs' rows and states) are committed before the task-run
batches the writer holds but has not started, and between the chunks of the one it
is committing; each kind in the order sent.

Each batch is committed only once the whole frame arrived. An urgent batch is one
transaction. A task-run batch is prepared and applied :data:`~fluvial.store.writer.batch.CHUNK`
events at a time in one transaction, unless an urgent batch arrives meanwhile: then
the chunks applied so far are committed, the urgent batch next, and the rest of the
task-run batch in a transaction of its own (cut between events, so a run settled in
one event is never cut). A task-run batch is acknowledged once all of it is committed.
A second thread reads and decodes the next batch while the main one commits. At
end of input (the driver closed the pipe, or died) the writer commits what it
fully received and exits; it also exits when its parent is gone even if the
pipe stays open (a forked grandchild holding it). Runs are recorded with the
*driver's* pid, which crash recovery checks. SIGINT is ignored: a Ctrl-C in the
terminal reaches the driver, which records its runs as crashed and then closes
the pipe; the writer must outlive it long enough to commit that.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

__all__ = ["command", "main"]

_ENTRY = """\
import sys, types
package = types.ModuleType("fluvial")
package.__path__ = [{package_dir!r}]
sys.modules["fluvial"] = package
from fluvial.store.writer.process import main
sys.exit(main())
"""


def command() -> list[str]:
    """The argv that starts a writer process with this interpreter."""
    if not sys.executable:
        raise RuntimeError("sys.executable is unknown")
    package_dir = str(Path(__file__).resolve().parents[2])  # .../fluvial
    # -P: the current directory is not put on sys.path (3.11+)
    flags = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *flags, "-c", _ENTRY.format(package_dir=package_dir)]


class _Collect(logging.Handler):
    """Keeps the writer's warnings to send back with the next acknowledgement."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._taking = threading.Lock()  # warnings come from both of the writer's threads

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken message must not stop the writer
            return
        with self._taking:
            self.messages.append(message)

    def take(self) -> list[str]:
        with self._taking:
            messages, self.messages = self.messages, []
        return messages


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol gets private descriptors; stray prints go to stderr, stray reads get EOF.
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    from fluvial.store.connection import connect, database_target
    from fluvial.store.writer.batch import BatchWriter
    from fluvial.store.writer.wire import FrameReader, encode, write_frame

    collect = _Collect()
    store_logger = logging.getLogger("fluvial.store")
    store_logger.addHandler(collect)
    store_logger.setLevel(logging.WARNING)
    store_logger.propagate = False

    def send(message: object) -> None:
        try:
            write_frame(out_fd, encode(message))
        except OSError:  # the driver is gone: keep committing what it sent
            pass

    parent = os.getppid()
    reader = FrameReader(in_fd, give_up=lambda: os.getppid() != parent)
    try:
        hello = reader.read()
        if hello is None:
            return 0
        _, url, pid, hostname = hello
        target = database_target(url)
        writer = BatchWriter(target, connect(target), int(pid), str(hostname))
    except Exception as exc:
        send(("failed", f"{type(exc).__name__}: {exc}"))
        return 1
    send(("ready", os.getpid()))
    # Batches are read and decoded (the unpickler is C) in a thread of their own while
    # this one commits the one before. Not prepared there: turning events into rows is
    # Python, and two threads taking turns at the GIL made the commit slower, not faster.
    lanes = _Lanes()
    threading.Thread(target=_read_batches, args=(reader, lanes),
                     name="fluvial-writer-read", daemon=True).start()

    def commit(batch: tuple) -> None:
        """Commit a batch whole, and acknowledge it."""
        seq, events, problem = batch
        if problem is not None:
            send(("ack", seq, 0, problem, collect.take()))
            return
        skipped, error = writer.commit(events) if events else (0, None)
        send(("ack", seq, skipped, None if error is None else str(error), collect.take()))

    def commit_giving_way(batch: tuple) -> None:
        """Commit a task-run batch, letting urgent batches in between its chunks; and
        acknowledge it once all of it is committed."""
        seq, rest, _ = batch
        skipped, error = 0, None
        while rest:
            part_skipped, error, rest = writer.commit_yielding(rest, lanes.urgent_waiting)
            skipped += part_skipped
            if error is not None:
                break
            while rest and (urgent := lanes.take_urgent()) is not None:
                commit(urgent)
        send(("ack", seq, skipped, None if error is None else str(error), collect.take()))

    try:
        while True:
            taken = lanes.get()
            if taken is None:
                break  # the end of the input, or the driver died mid-frame
            batch, urgent = taken
            if urgent or batch[2] is not None:
                commit(batch)
            else:
                commit_giving_way(batch)
    finally:
        writer.close()
    return 0


class _Lanes:
    """Decoded batches waiting to be committed: urgent ones (flow runs' rows and states)
    first, each lane in the order it was sent. The driver keeps at most a few task-run
    batches here; the rest of its backlog waits in its own queue."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._urgent: deque[tuple] = deque()
        self._tasks: deque[tuple] = deque()
        self._ended = False

    def put(self, batch: tuple, urgent: bool) -> None:
        with self._ready:
            (self._urgent if urgent else self._tasks).append(batch)
            self._ready.notify()

    def end(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify()

    def get(self) -> tuple[tuple, bool] | None:
        """The next batch to commit, ``(seq, events, problem)``, and whether it is urgent;
        None once all are done."""
        with self._ready:
            while not (self._urgent or self._tasks or self._ended):
                self._ready.wait()
            if self._urgent:
                return self._urgent.popleft(), True
            if self._tasks:
                return self._tasks.popleft(), False
            return None

    def urgent_waiting(self) -> bool:
        """Whether an urgent batch waits (read without the lock: a hint, checked often)."""
        return bool(self._urgent)

    def take_urgent(self) -> tuple | None:
        """The next urgent batch, if one waits."""
        with self._ready:
            return self._urgent.popleft() if self._urgent else None


def _read_batches(reader: Any, lanes: _Lanes) -> None:
    """Frames from the driver, each ``(seq, urgent, events)``, into their lanes."""
    from fluvial.store.writer.wire import WireError, decode

    try:
        while True:
            try:
                payload = reader.read_payload()
            except (OSError, WireError):
                break  # the driver died mid-frame: that batch was never whole
            if payload is None:
                break
            try:
                seq, urgent, events = decode(payload)
            except Exception as exc:  # never from our driver: acknowledged, unnumbered
                lanes.put((None, (), f"undecodable batch: {exc}"), True)
                continue
            lanes.put((seq, events, None), bool(urgent))
    finally:
        lanes.end()


if __name__ == "__main__":
    sys.exit(main())
