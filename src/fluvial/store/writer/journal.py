"""The spill journal: batches the database would not take, kept on local disk, in order.

A batch that cannot be committed (the database is down, the disk is full, the file is
read-only) after retries with backoff is not dropped: the writer appends it to its
journal, and every later batch goes there too, behind it, until the journal has been
replayed into the database — so the record keeps its order (a flow run's row before its
task runs). The writer tries to replay its journal (with backoff) before each new
batch, and once more when it closes; what is left then, the next fluvial process that
opens the same database replays before anything else (:func:`replay_orphans`).

Layout: ``<root>/<database digest>/<host>-<pid>-<random>/`` per writer, holding
``lock`` (flocked by the writer for its lifetime: a free lock means the writer is gone),
``target`` (the database's URL, for people), and ``<seq>.batch`` files, one encoded
batch each, written to a temporary name, fsynced and renamed. Roots, in order:
``$FLUVIAL_HOME/journal``, then ``<temp dir>/fluvial-journal-<uid>`` (for when the home
itself is the full or read-only disk).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from fluvial.store.writer.wire import decode, encode

__all__ = ["Journal", "drain", "journal_roots", "replay_orphans"]

logger = logging.getLogger("fluvial.store")

Commit = Callable[[Sequence[tuple]], "tuple[int, BaseException | None]"]
CommitFor = Callable[[int, str], Commit]  # a commit for the batches of driver (pid, host)


def journal_roots() -> list[Path]:
    """Where journals live, in the order a writer tries them."""
    from fluvial import settings

    uid = os.getuid() if hasattr(os, "getuid") else 0
    return [settings.get().home / "journal",
            Path(tempfile.gettempdir()) / f"fluvial-journal-{uid}"]


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


class Journal:
    """One writer's journal (created on the first spill)."""

    def __init__(self, url: str, pid: int, hostname: str | None = None) -> None:
        self.url = url
        self.pid = pid
        self.hostname = hostname or socket.gethostname()
        self.name = f"{self.hostname}-{pid}-{uuid.uuid4().hex[:8]}"
        self.dir: Path | None = None
        self._lock_fd = -1
        self._seq = 0
        self._files: list[Path] = []

    @property
    def pending(self) -> int:
        """How many batches wait in the journal."""
        return len(self._files)

    def _open(self) -> Path:
        errors = []
        for root in journal_roots():
            directory = root / _digest(self.url) / self.name
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                (directory / "target").write_text(_redacted(self.url))
                (directory / "origin").write_text(f"{self.pid}\n{self.hostname}\n")
            except OSError as exc:
                errors.append(f"{root}: {exc}")
                continue
            self._lock_fd = fd
            self.dir = directory
            return directory
        raise OSError("no journal directory is writable (" + "; ".join(errors) + ")")

    def append(self, events: Sequence[tuple]) -> Path:
        """Write one batch to the journal, durably; ``OSError`` if no root can take it."""
        data = encode(list(events))[4:]  # the pickle, without the pipe's frame header
        tried: list[str] = []
        for _ in range(2):  # the current directory, then (if it fails) the next root
            directory = self.dir or self._open()
            self._seq += 1
            path = directory / f"{self._seq:012d}.batch"
            try:
                _write_durably(path, data)
            except OSError as exc:
                tried.append(f"{directory}: {exc}")
                if self._files:  # order matters: never split one journal across roots
                    raise
                self._close_dir(remove=True)
                continue
            self._files.append(path)
            return path
        raise OSError("could not write the journal: " + "; ".join(tried))

    def replay(self, commit: Commit) -> bool:
        """Commit the journal's batches in order; True once it is empty."""
        while self._files:
            path = self._files[0]
            try:
                events = decode(path.read_bytes())
            except (OSError, Exception) as exc:  # unreadable: keep it for a person
                logger.warning("fluvial store: journal batch %s cannot be read: %s", path, exc)
                self._files.pop(0)
                continue
            _, error = commit(events)
            if error is not None:
                return False
            path.unlink(missing_ok=True)
            self._files.pop(0)
        if self.dir is not None:
            self._close_dir(remove=True)
        return True

    def _close_dir(self, remove: bool) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        if remove and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def close(self) -> None:
        """Let go of the journal (what is left stays on disk for the next process)."""
        if self._files:
            logger.warning(
                "fluvial store: %d batch(es) of the run record are kept in the journal %s; "
                "the next fluvial process that opens the store writes them", len(self._files),
                self.dir)
            self._close_dir(remove=False)
        else:
            self._close_dir(remove=True)


def drain(journal: Journal, replay: Callable[[], bool], seconds: float) -> None:
    """At close: try ``replay()`` (True once the journal is written) for up to ``seconds``,
    then give up; what is left stays in the journal for the next process."""
    deadline = time.monotonic() + seconds
    while journal.pending and not replay():
        if time.monotonic() > deadline:
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def replay_orphans(url: str, commit_for: CommitFor) -> int:
    """Replay the journals of writers that are gone, for the database at ``url``.

    Returns the number of batches written. A journal whose batch fails stays (and is
    tried again by the next process)."""
    written = 0
    for root in journal_roots():
        base = root / _digest(url)
        try:
            entries = sorted(base.iterdir())
        except OSError:
            continue
        for directory in entries:
            written += _replay_one(directory, commit_for)
    return written


def _replay_one(directory: Path, commit_for: CommitFor) -> int:
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # its writer is alive: it replays it itself
        try:
            pid_text, hostname = (directory / "origin").read_text().split("\n")[:2]
            commit = commit_for(int(pid_text), hostname)
        except (OSError, ValueError):
            return 0
        written = 0
        for path in sorted(directory.glob("*.batch")):
            try:
                events = decode(path.read_bytes())
            except Exception as exc:
                logger.warning("fluvial store: journal batch %s cannot be read: %s", path, exc)
                continue
            _, error = commit(events)
            if error is not None:
                return written
            path.unlink(missing_ok=True)
            written += 1
        if not any(directory.glob("*.batch")):
            shutil.rmtree(directory, ignore_errors=True)
        if written:
            logger.warning("fluvial store: wrote %d batch(es) of the run record that an "
                           "earlier process had kept in %s", written, directory)
        return written
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None and "password" not in parts.query:
            return url
        netloc = parts.hostname or ""
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<database>"
