"""The recorder: the engine's hot-path handle on the store.

Each recording method builds one tuple and appends it to a ``collections.deque``
(thread-safe, lock-free in CPython): no I/O, no locks, no formatting. A daemon
thread drains the deque every ``interval`` seconds, or as soon as it holds
``wake_at`` events, in batches of at most ``max_batch`` events, and each batch
is committed in one transaction (a task-run batch may be cut between its events
to let a flow run's batch in: see below), so a reader never sees half an event.

The commits happen in a **writer process** (:mod:`fluvial.store.writer.process`),
so that turning events into rows and SQL does not take the driver's GIL from
the engine's threads: the drain thread only pickles each batch (UUIDs as
ints, see :mod:`fluvial.store.writer.wire`) onto the process's stdin, and a second
thread reads the acknowledgements. The process holds at most three task-run
batches of at most 2 000 events at a time (one committing, the next ones read
ahead, so it never waits for work); the rest of the backlog waits in the queue.
A flow run's rows and states overtake it there, and in the process too (it
commits an urgent batch before the task-run batches it has not started), so a
flow's final state waits for at most one chunk of the batch being committed (the
process commits the chunks applied so far and lets the urgent batch in), never
behind the backlog. The process is started by the drain thread,
so the first flow does not wait for it: events queue until it is up. If it
cannot be started (or ``FLUVIAL_STORE_WRITER=thread``), or dies, the drain
thread commits the batches itself, as before. The process ends at the end of
its input: when the recorder closes, or when the driver dies (it then commits
every batch it received whole, so a killed driver loses at most the batches
still in its queue).

``flush()`` appends a marker and waits until the writer has committed every
event before it. After ``close()`` (run at exit) further events are discarded.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from fluvial import settings
from fluvial.exceptions import StoreError
from fluvial.store.connection import (
    BUSY_TIMEOUT_S,
    Connection,
    DatabaseTarget,
    connect,
    database_target,
    open_database,
)
from fluvial.store.recovery import recover_once
from fluvial.store.writer import process as _writer_process
from fluvial.store.writer.batch import (
    EDGES,
    EVENT,
    FLOW_RUN,
    HEARTBEAT,
    LOG,
    RETRIES,
    STATE,
    TASK_RUN,
    TASK_RUN_DONE,
    BatchWriter,
    summarize_parameters,
)
from fluvial.store.writer.wire import FrameReader, encode, write_frame

__all__ = ["Recorder"]

logger = logging.getLogger("fluvial.store")

_RETRIES = RETRIES
START_TIMEOUT_S = BUSY_TIMEOUT_S  # the writer process must be up (and connected) by then
STOP_TIMEOUT_S = BUSY_TIMEOUT_S * RETRIES + 5  # the last batch, retried, then the exit
_fallback_logged = False
IN_FLIGHT_BATCHES = 3  # batches handed to the writer process and not yet acknowledged


class _Flush:
    """A marker in the queue: set once every event before it is committed."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class _Sent:
    """A batch in the writer process's hands: its number, size and the flushes waiting on it."""

    __slots__ = ("markers", "seq", "size")

    def __init__(self, seq: int, size: int, markers: list[_Flush]) -> None:
        self.seq = seq
        self.size = size
        self.markers = markers


class Recorder:
    """Records runs, states and logs into the store through a background writer."""

    def __init__(
        self,
        target: DatabaseTarget | None = None,
        *,
        interval: float = 0.1,
        max_batch: int = 2_000,
        wake_at: int = 2_000,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be greater than 0")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if wake_at < 1:
            raise ValueError("wake_at must be at least 1")
        self.target = target or database_target()
        self._mode = settings.get().store_writer
        self._conn: Connection | None = self._open_store()
        self._interval = interval
        self._max_batch = max_batch
        self._wake_at = wake_at
        self._queue: deque[Any] = deque()
        self._urgent: deque[Any] = deque()  # flow runs' rows and states: written first
        self._flow_ids: set[UUID] = set()  # the flow runs created here (their states: urgent)
        self._wake = threading.Event()
        self._nudge = threading.Event()  # an acknowledgement came, or a flush waits
        self._stopping = False
        self._closed = False
        self._pid = os.getpid()
        self._hostname = socket.gethostname()
        self.batches_committed = 0
        self.events_committed = 0
        self.events_dropped = 0
        # the writer process, once up: its pipes, and the batches it has not acknowledged
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_writer = -1
        self._from_writer = -1
        self._sent: dict[int, _Sent] = {}  # by batch number, in the order sent
        self._seq = 0
        self._sent_lock = threading.Lock()
        self._writer_gone = False
        self._acks: threading.Thread | None = None
        # the in-thread writer, when there is no process
        self._writer: BatchWriter | None = None
        self._thread = threading.Thread(target=self._run, name="fluvial-store-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        _flush_on_sigterm(self)

    def _open_store(self) -> Connection | None:
        """The driver's connection, migrated, crashed runs recovered (once per process):
        errors surface here. (A recorder that writes elsewhere overrides this.)"""
        conn = open_database(self.target)
        try:
            # batches an earlier process could not write come first: a run it finished
            # must not be taken for a crashed one
            _replay_orphans_once(self.target, conn, self._pid_now(), socket.gethostname())
            recover_once(self.target, conn)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- hot path: one tuple, one append -------------------------------------------------

    def flow_run_created(
        self,
        id: UUID,
        name: str,
        flow_name: str,
        parameters: dict,
        tags: Iterable[str],
        parent_task_run_id: UUID | None,
        ts: float,
    ) -> None:
        self._flow_ids.add(id)
        q = self._urgent
        q.append((FLOW_RUN, id, name, flow_name, parameters, tags, parent_task_run_id, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def task_run_created(
        self,
        id: UUID,
        flow_run_id: UUID | None,
        name: str,
        task_key: str,
        tags: Iterable[str],
        ts: float,
    ) -> None:
        q = self._queue
        q.append((TASK_RUN, id, flow_run_id, name, task_key, tags, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def task_run_finished(
        self,
        id: UUID,
        flow_run_id: UUID | None,
        name: str,
        task_key: str,
        tags: Iterable[str],
        start_ts: float | None,
        type: str,
        state_name: str,
        message: str | None,
        ts: float,
        default_name: bool = False,
    ) -> None:
        """A settled task run in one event: its creation, when it started running (if
        known) and its final state — one append instead of three. With ``default_name``,
        ``name`` is the task's and the writer names the run ``"{name}-{last 8 hex of id}"``."""
        q = self._queue
        # the id as its int: pickled in C, where a UUID costs the drain thread a Python call
        q.append((TASK_RUN_DONE, id.int if id.__class__ is UUID else id, flow_run_id, name,
                  task_key, tags, start_ts, type, state_name, message, ts, default_name))
        if len(q) == self._wake_at:
            self._wake.set()

    def state(
        self,
        run_id: UUID,
        type: str,
        name: str,
        message: str | None,
        ts: float,
        result_location: str | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        """A state of a run; a flow run's goes ahead of the task-run backlog."""
        if urgent or run_id in self._flow_ids:
            q = self._urgent
            q.append((STATE, run_id, type, name, message, ts, result_location))
            if len(q) == self._wake_at:
                self._wake.set()
            return
        q = self._queue
        q.append((STATE, run_id, type, name, message, ts, result_location))
        if len(q) == self._wake_at:
            self._wake.set()

    def log(self, run_id: UUID | None, level: int, message: str, ts: float) -> None:
        q = self._queue
        q.append((LOG, run_id, level, message, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def event(self, event_id: UUID, name: str, occurred: float, resource: dict[str, str],
              related: list[dict[str, str]], payload: dict[str, Any],
              follows: UUID | None = None) -> None:
        """An emitted event (see :mod:`fluvial.events`), written with the next batch."""
        q = self._queue
        # the id as its int, as for task runs: pickled in C (a UUID costs a Python call)
        q.append((EVENT, event_id.int if event_id.__class__ is UUID else event_id, name,
                  occurred, resource, related, payload, follows))
        if len(q) == self._wake_at:
            self._wake.set()

    def edges(self, flow_run_id: UUID | None, downstream: UUID,
              upstreams: Iterable[UUID]) -> None:
        """The task runs whose futures fed task run ``downstream`` (for the run graph)."""
        q = self._queue
        q.append((EDGES, flow_run_id, downstream, upstreams))
        if len(q) == self._wake_at:
            self._wake.set()

    def heartbeat(self, flow_run_id: UUID) -> None:
        self._queue.append((HEARTBEAT, flow_run_id, time.time()))

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events appended but not yet taken by the writer."""
        return len(self._queue) + len(self._urgent)

    def _pid_now(self) -> int:
        return os.getpid()

    @property
    def writer_pid(self) -> int | None:
        """The pid of the writer process; None while it starts, or when writing in-thread."""
        proc = self._proc
        return None if proc is None or self._writer_gone else proc.pid

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event appended so far is committed.

        Raises ``TimeoutError`` after ``timeout`` seconds, ``StoreError`` if a batch
        it waited for could not be written, ``RuntimeError`` after ``close()``.
        """
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("flush() on a closed recorder")
        deadline = None if timeout is None else time.monotonic() + timeout
        markers = (_Flush(), _Flush())
        self._urgent.append(markers[0])
        self._queue.append(markers[1])
        self._wake.set()
        self._nudge.set()
        for marker in markers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not marker.done.wait(left):
                raise TimeoutError(f"the store writer did not commit within {timeout} s")
            if marker.error is not None:
                raise StoreError(f"events could not be written: {marker.error}") from marker.error

    def flush_urgent(self, timeout: float | None = None) -> None:
        """Block until the flow runs' rows and states appended so far are committed (or
        kept in the spill journal), without waiting for the task-run backlog."""
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("flush_urgent() on a closed recorder")
        marker = _Flush()
        self._urgent.append(marker)
        self._wake.set()
        self._nudge.set()
        if not marker.done.wait(timeout):
            raise TimeoutError(f"the store writer did not commit within {timeout} s")
        if marker.error is not None:
            raise StoreError(f"events could not be written: {marker.error}") from marker.error

    def close(self) -> None:
        """Write everything still queued, stop the writer (process) and release the
        database. Idempotent. When that takes long, a progress line on stderr says so."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + START_TIMEOUT_S + STOP_TIMEOUT_S + 5
        shown = time.monotonic() + PROGRESS_AFTER_S
        progressed = False
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.25)
            if self._thread.is_alive() and time.monotonic() >= shown:
                left = self.pending + self._unacknowledged()
                if left or progressed:  # nothing to say while only the writer exits
                    progressed = _progress_line(left)
        if progressed:
            _progress_line(None)
        self._queue = deque(maxlen=0)  # later events are discarded, not kept forever
        self._urgent = deque(maxlen=0)

    def _unacknowledged(self) -> int:
        with self._sent_lock:
            return sum(s.size for s in self._sent.values())

    def _forget_after_fork(self) -> None:
        """In a forked child: the writer threads are gone; record nothing, write nothing.

        The pipes to the parent's writer process are closed here, so that the
        process still sees the end of its input when the parent exits.
        """
        self._closed = True
        self._queue = deque(maxlen=0)
        atexit.unregister(self.close)
        self._writer_gone = True
        proc = self._proc
        if proc is not None:  # not our child: never wait for it, never kill it
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()  # unbuffered: closes this process's descriptor, nothing else
            proc.returncode = 0
        self._to_writer = self._from_writer = -1
        for conn in (self._conn, self._writer.conn if self._writer is not None else None):
            forget = getattr(conn, "forget_after_fork", None)
            if forget is not None:  # PostgreSQL: the socket is the parent's
                forget()

    # -- drain thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._start_writer()
            queue = self._queue
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                while queue or self._urgent:
                    if self._urgent:  # flow runs first, ahead of the task-run backlog
                        self._write_batch(self._urgent)
                    if queue:
                        if self._writer_is_behind():  # the backlog waits here, where
                            self._nudge.wait(0.05)  # a flow's state can overtake it
                            self._nudge.clear()
                            continue
                        self._write_batch(queue)
                if self._stopping:
                    break
        finally:
            self._stop_writer()

    def _writer_is_behind(self) -> bool:
        """Whether the writer process holds as many batches as it works on at once.

        Task-run batches are handed over only as the writer takes them (one being
        committed, the next ones read ahead): the backlog stays here, bounded by
        nothing but memory, where the process's progress is visible (``pending``)."""
        return (self._proc is not None and not self._writer_gone
                and len(self._sent) >= IN_FLIGHT_BATCHES)

    def _write_batch(self, queue: deque[Any]) -> None:
        popleft = queue.popleft  # only this thread takes from the queues
        taken = [popleft() for _ in range(min(len(queue), self._max_batch))]
        events: list[tuple] = taken
        markers: list[_Flush] = []
        # the task-run queue holds only events (and flush markers): no per-event Python
        if queue is self._urgent or _Flush in map(type, taken):
            events = []
            append = events.append
            for item in taken:
                if type(item) is _Flush:
                    markers.append(item)
                else:
                    if item[0] == FLOW_RUN:  # the one event whose contents stay in the driver
                        item = _summarized(item)
                    append(item)
        if self._proc is not None and self._send(events, markers, queue is self._urgent):
            return
        error: BaseException | None = None
        if events:
            error = self._commit_here(events)
        for marker in markers:
            marker.error = error
            marker.done.set()

    # -- the writer process ----------------------------------------------------------------

    def _start_writer(self) -> None:
        """Start the writer process, or else write in this thread."""
        if self._mode == "process":
            try:
                self._start_process()
            except Exception as exc:
                _log_fallback(f"cannot start the writer process ({exc})")
            else:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return
        self._use_thread()

    def _start_process(self) -> None:
        proc = subprocess.Popen(
            _writer_process.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        to_writer, from_writer = proc.stdin.fileno(), proc.stdout.fileno()
        _widen(to_writer)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            write_frame(to_writer, encode(("hello", self.target.url, self._pid, self._hostname)))
            reply = FrameReader(from_writer, give_up=lambda: time.monotonic() > deadline).read()
            if reply is None:
                raise StoreError(f"it exited with status {proc.wait(5)}")
            if reply[0] != "ready":
                raise StoreError(str(reply[1]))
        except BaseException:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            raise
        self._proc = proc
        self._to_writer, self._from_writer = to_writer, from_writer
        self._acks = threading.Thread(
            target=self._read_acks,
            args=(FrameReader(from_writer),),
            name="fluvial-store-acks",
            daemon=True,
        )
        self._acks.start()

    def _send(self, events: list[tuple], markers: list[_Flush], urgent: bool) -> bool:
        """Hand a batch to the writer process; False if it is gone (write it here then).

        An ``urgent`` batch (flow runs' rows and states) is committed by the process
        before the task-run batches it holds but has not started."""
        self._seq += 1
        sent = _Sent(self._seq, len(events), markers)
        with self._sent_lock:
            gone = self._writer_gone
            if not gone:
                self._sent[sent.seq] = sent
        if gone:
            self._lost_writer()
            return False
        try:
            frame = encode((sent.seq, urgent, events))
        except Exception as exc:  # pragma: no cover - encode turns any value into a builtin
            self._discard(sent, exc)
            return True
        try:
            write_frame(self._to_writer, frame)
        except OSError:  # it died
            with self._sent_lock:
                # gone already: the acknowledgement reader failed it
                handled = self._sent.pop(sent.seq, None) is None
                self._writer_gone = True
            self._lost_writer()
            return handled
        return True

    def _discard(self, sent: _Sent, exc: BaseException) -> None:
        with self._sent_lock:
            if self._sent.pop(sent.seq, None) is None:
                return
        self.events_dropped += sent.size
        logger.warning("fluvial store: dropped a batch of %d events: %s", sent.size, exc)
        for marker in sent.markers:
            marker.error = exc
            marker.done.set()

    def _lost_writer(self) -> None:
        """The writer process died: write in this thread from now on."""
        _log_fallback("the writer process exited")
        self._close_process(wait=False)
        try:
            self._use_thread()
        except StoreError as exc:  # _commit_here tries again, batch by batch
            logger.warning("fluvial store: %s", exc)

    def _read_acks(self, reader: FrameReader) -> None:
        """Acknowledgements, by batch number: count them, release flushes."""
        try:
            while True:
                message = reader.read()
                if message is None:
                    break
                _, seq, skipped, error, warnings = message
                for warning in warnings:
                    logger.warning("%s", warning)
                with self._sent_lock:  # (no number: an undecodable frame, the oldest)
                    sent = self._sent.pop(seq if seq is not None else next(iter(self._sent)))
                failure = None if error is None else StoreError(error)
                if failure is None:
                    if sent.size:
                        self.batches_committed += 1
                    self.events_committed += sent.size - skipped
                    self.events_dropped += skipped
                else:
                    self.events_dropped += sent.size
                for marker in sent.markers:
                    marker.error = failure
                    marker.done.set()
                self._nudge.set()
        except Exception as exc:
            logger.warning("fluvial store: lost the writer process's acknowledgements: %s", exc)
        finally:
            with self._sent_lock:
                self._writer_gone = True
                lost = list(self._sent.values())
                self._sent.clear()
            failure = StoreError("the writer process exited before committing these events")
            if lost:
                logger.warning(
                    "fluvial store: the writer process exited with %d events unacknowledged",
                    sum(s.size for s in lost),
                )
            for sent in lost:
                self.events_dropped += sent.size
                for marker in sent.markers:
                    marker.error = failure
                    marker.done.set()
            self._nudge.set()

    def _close_process(self, wait: bool = True) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.stdin is not None:
            proc.stdin.close()  # the end of its input: it commits, acknowledges, exits
            self._to_writer = -1
        if self._acks is not None and wait:
            self._acks.join(STOP_TIMEOUT_S)
        try:
            proc.wait(STOP_TIMEOUT_S if wait else 5)
        except subprocess.TimeoutExpired:
            logger.warning("fluvial store: the writer process %d did not exit", proc.pid)
            return  # it exits on its own once done: its input is closed
        if self._acks is not None:
            self._acks.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
            self._from_writer = -1

    def _stop_writer(self) -> None:
        self._close_process()
        if self._writer is not None:
            self._writer.close()
        if self._conn is not None:
            self._conn.close()

    # -- the in-thread writer --------------------------------------------------------------

    def _use_thread(self) -> None:
        if self._writer is None:
            conn = self._conn if self._conn is not None else connect(self.target)
            self._conn = None
            self._writer = BatchWriter(self.target, conn, self._pid, self._hostname)

    def _commit_here(self, events: list[tuple]) -> BaseException | None:
        if self._writer is None:
            try:
                self._use_thread()
            except StoreError as exc:
                self.events_dropped += len(events)
                logger.warning("fluvial store: dropped a batch of %d events: %s", len(events), exc)
                return exc
        assert self._writer is not None
        skipped, error = self._writer.commit(events)
        if error is not None:
            self.events_dropped += len(events)
            return error
        self.batches_committed += 1
        self.events_committed += len(events) - skipped
        self.events_dropped += skipped
        return None


PROGRESS_AFTER_S = 1.0  # an exit that waits longer than this for the record says so
_progress_shown = False


def _progress_line(left: int | None) -> bool:
    """Show (or, with None, end) the "writing the run record" line on stderr."""
    import sys

    global _progress_shown
    stream = sys.__stderr__
    if stream is None:
        return False
    try:
        if left is None:
            if _progress_shown:
                stream.write("\rfluvial: run record written.                                \n")
                _progress_shown = False
        else:
            stream.write(f"\rfluvial: writing the run record before exit: {left} events left ")
            _progress_shown = True
        stream.flush()
    except (OSError, ValueError):
        return False
    return True


_replayed: set[str] = set()


def _replay_orphans_once(target: DatabaseTarget, conn: Connection, pid: int,
                         hostname: str) -> None:
    """Replay (once per process and database) what writers now gone kept in a journal."""
    from fluvial.store.connection import database_key

    key = database_key(target)
    if key in _replayed:
        return
    _replayed.add(key)
    try:
        BatchWriter(target, conn, pid, hostname).replay_orphans()
    except Exception as exc:  # the journal stays for the next process
        logger.warning("fluvial store: could not replay the spill journal: %s", exc)


_sigterm_recorders: list[Recorder] = []


def _flush_on_sigterm(recorder: Recorder) -> None:
    """On SIGTERM, write the run record before the process ends (as at a clean exit),
    then end by SIGTERM as before. Installed only where SIGTERM was left at its default,
    from the main thread."""
    import signal

    _sigterm_recorders.append(recorder)
    if len(_sigterm_recorders) > 1 or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        pass


def _default_sigterm_in_child() -> None:
    """A forked child (a multiprocessing pool's worker) ends on SIGTERM at once, as before."""
    import signal

    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        pass


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    try:
        for recorder in list(_sigterm_recorders):
            if recorder._pid == os.getpid():
                recorder.close()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _summarized(event: tuple) -> tuple:
    """A FLOW_RUN event with its parameters summarized (they may hold any object)."""
    try:
        return event[:4] + (summarize_parameters(event[4]),) + event[5:]
    except Exception:
        return event  # malformed: write_events skips it, with a warning


def _widen(fd: int) -> None:
    """Give the pipe a 1 MiB buffer where Linux allows: fewer writes for a batch."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def _log_fallback(reason: str) -> None:
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        logger.warning("fluvial store: %s; writing the run record from a thread instead", reason)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_default_sigterm_in_child)
