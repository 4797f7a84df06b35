"""``/api/record``: remote recorders (``FLUVIAL_API_URL``) write the run record through here.

``GET`` answers who the server is (a recorder checks its token with it when it opens);
``POST`` takes one batch (content type ``application/octet-stream``: see
:mod:`fluvial.store.writer.received`) and commits it in one transaction, once: a batch
resent after a lost reply answers ``applied: false`` and writes nothing. A database that
will not take the batch answers 503, and the recorder sends it again later.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from fluvial.server.db import connection

router = APIRouter(prefix="/api/record", tags=["record"])
logger = logging.getLogger("fluvial.server")

PRUNE_EVERY = 1000  # batches between two prunes of the remembered batch ids
_count = itertools.count(1)


class RecordOut(BaseModel):
    applied: bool
    skipped: int


@router.get("")
def record_info() -> dict[str, Any]:
    """What a remote recorder needs to know before it sends batches."""
    from fluvial.store.writer.received import BATCH_HEADER, MAX_BATCH_BYTES

    return {"batch_format": BATCH_HEADER, "max_batch_bytes": MAX_BATCH_BYTES}


@router.post("", response_model=RecordOut, openapi_extra={"requestBody": {
    "required": True,
    "content": {"application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}}}})
async def record(request: Request) -> RecordOut:
    """Commit one batch of a remote recorder's events (runs, states, logs, events)."""
    from fluvial.store.writer.received import MAX_BATCH_BYTES, parse

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise HTTPException(413, f"a batch may be at most {MAX_BATCH_BYTES} bytes")
    body = await request.body()
    try:
        batch = parse(body)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    applied, skipped = await run_in_threadpool(_apply, batch)
    return RecordOut(applied=applied, skipped=skipped)


def _apply(batch: Any) -> tuple[bool, int]:
    from fluvial.exceptions import StoreError
    from fluvial.store.connection import database_errors
    from fluvial.store.writer import received

    errors: tuple[type[BaseException], ...] = (StoreError, *database_errors())
    try:
        with connection() as conn:
            result = received.apply(conn, batch)
            if next(_count) % PRUNE_EVERY == 0:
                try:
                    received.prune(conn)
                except Exception as exc:  # noqa: BLE001 - housekeeping never fails a batch
                    logger.warning("%s", exc)
            return result
    except errors as exc:
        logger.warning("a remote batch could not be committed (the sender retries): %s", exc)
        raise HTTPException(503, "the run record does not take writes now; send the batch "
                                 "again later") from None
