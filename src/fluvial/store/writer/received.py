"""Batches a server receives from remote recorders (``FLUVIAL_API_URL``): checked, applied once.

A remote recorder sends each batch as the wire pickle of one list (see
:mod:`fluvial.store.writer.wire`; its unpickler knows only builtin types): a header
``(BATCH_HEADER, client, seq, pid, hostname)`` followed by the batch's events, as
:func:`fluvial.store.writer.batch.write_events` takes them. ``client`` is random per
recorder and ``seq`` counts its batches, so a batch resent after a lost reply (the server
restarted, the connection dropped after the commit) is recognised: the pair is inserted
into ``received_batches`` in the same transaction as the batch's rows, and a pair that is
there already means "applied before" — nothing is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fluvial.exceptions import StoreError
from fluvial.store.connection import Connection, transaction
from fluvial.store.writer.batch import write_events
from fluvial.store.writer.wire import decode

__all__ = ["BATCH_HEADER", "MAX_BATCH_BYTES", "Received", "apply", "header", "parse", "prune"]

BATCH_HEADER = "fluvial.batch/1"
MAX_BATCH_BYTES = 256 << 20  # a 20 000-event batch is a few MB; anything larger is refused
KEEP_SECONDS = 7 * 86400  # how long a batch's id is remembered (a journal replayed later)


class Received:
    """One parsed batch: who sent it and its events."""

    __slots__ = ("client", "events", "hostname", "pid", "seq")

    def __init__(self, client: str, seq: int, pid: int, hostname: str,
                 events: Sequence[tuple]) -> None:
        self.client = client
        self.seq = seq
        self.pid = pid
        self.hostname = hostname
        self.events = events


def parse(body: bytes) -> Received:
    """The batch in a request body; ``ValueError`` naming what is wrong with it."""
    if len(body) > MAX_BATCH_BYTES:
        raise ValueError(f"a batch of {len(body)} bytes is larger than {MAX_BATCH_BYTES}")
    try:
        message = decode(body)
    except Exception as exc:  # any malformed pickle: the client's bug, not ours
        raise ValueError(f"the body is not a fluvial batch ({type(exc).__name__})") from None
    if not isinstance(message, list) or not message:
        raise ValueError("a batch is a non-empty list: its header, then its events")
    header = message[0]
    if (not isinstance(header, tuple) or len(header) != 5 or header[0] != BATCH_HEADER):
        raise ValueError(f"the batch's first item must be the header ({BATCH_HEADER!r}, "
                         "client, seq, pid, hostname)")
    _, client, seq, pid, hostname = header
    if not isinstance(client, str) or not 1 <= len(client) <= 64:
        raise ValueError("the batch header's client must be a string of 1 to 64 characters")
    for name, value in (("seq", seq), ("pid", pid)):
        if type(value) is not int or not 0 <= value < 2**63:
            raise ValueError(f"the batch header's {name} must be a non-negative integer")
    if not isinstance(hostname, str) or len(hostname) > 255:
        raise ValueError("the batch header's hostname must be a string of at most 255 "
                         "characters")
    events = message[1:]
    if not all(isinstance(e, tuple) and e for e in events):
        raise ValueError("every event of a batch must be a non-empty tuple")
    return Received(client, seq, pid, hostname, events)


def apply(conn: Connection, batch: Received, now: float | None = None) -> tuple[bool, int]:
    """Write ``batch`` in one transaction unless it was applied before.

    Returns ``(applied, skipped)``: ``applied`` False for a resent batch (nothing
    written); ``skipped`` the malformed events left out. Raises on database errors
    (the transaction is rolled back, the batch's id with it: the resend applies it)."""
    now = time.time() if now is None else now
    with transaction(conn):
        inserted = conn.execute(
            "INSERT INTO received_batches (client, seq, received) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING", (batch.client, batch.seq, now)).rowcount
        if not inserted:
            return False, 0
        skipped = write_events(conn, batch.events, batch.pid, batch.hostname)
    return True, skipped


def prune(conn: Connection, now: float | None = None) -> int:
    """Forget batch ids older than :data:`KEEP_SECONDS`; how many."""
    now = time.time() if now is None else now
    try:
        with transaction(conn):
            return int(conn.execute("DELETE FROM received_batches WHERE received < ?",
                                    (now - KEEP_SECONDS,)).rowcount or 0)
    except Exception as exc:  # pruning is housekeeping: it never fails a batch
        raise StoreError(f"could not prune received_batches: {exc}") from exc


def header(client: str, seq: int, pid: int, hostname: str) -> tuple[Any, ...]:
    """The first item of a batch sent by ``client``."""
    return (BATCH_HEADER, client, seq, pid, hostname)
