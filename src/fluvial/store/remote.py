"""The run record through a fluvial server: ``FLUVIAL_API_URL`` (and ``FLUVIAL_API_TOKEN``).

With ``FLUVIAL_API_URL`` set, :func:`fluvial.store.get_recorder` returns a
:class:`RemoteRecorder` instead of opening the database: the same hot-path queue and
drain thread as :class:`fluvial.store.recorder.Recorder`, whose batches an
:class:`HttpBatchWriter` posts to the server's ``POST /api/record`` (the server applies
them with the store's own batch writer, see :mod:`fluvial.store.writer.received`).

* A batch the server does not take (it is down, restarting, overloaded) is retried with
  backoff for ``retry_seconds``, then kept in the recorder's spill journal on local
  disk (:mod:`fluvial.store.writer.journal`), and every later batch behind it, in order,
  until the journal is replayed; what a process leaves there the next one replays.
* Each batch carries the recorder's random client id and its sequence number: a batch
  resent after a lost reply is not applied twice.
* The token is checked when the recorder opens: a server that refuses it raises
  :class:`fluvial.exceptions.ApiAuthError` (the flow run does not start unrecorded). A
  server that cannot be reached then is not an error: the batches wait in the journal.
* The token is sent as ``Authorization: Bearer`` and never logged or shown.

:class:`ApiClient` is the small JSON client the worker (``fluvial worker start``) uses
against the same server.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from fluvial.exceptions import ApiAuthError, ApiError
from fluvial.store.connection import Connection, DatabaseTarget
from fluvial.store.recorder import Recorder
from fluvial.store.writer.batch import BatchWriter
from fluvial.store.writer.received import header
from fluvial.store.writer.wire import encode

__all__ = ["ApiClient", "HttpBatchWriter", "RemoteRecorder", "api_client"]

logger = logging.getLogger("fluvial.store")

BATCH_CONTENT_TYPE = "application/octet-stream"
TIMEOUT_S = 30.0


class ApiClient:
    """Requests to one fluvial server, with its token (never in the repr)."""

    def __init__(self, url: str, token: str | None, timeout: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._local = threading.local()  # one httpx client per thread (they pool connections)

    def __repr__(self) -> str:
        return f"ApiClient({self.url!r})"

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            import httpx

            headers = {"user-agent": "fluvial"}
            if self._token:
                headers["authorization"] = f"Bearer {self._token}"
            client = httpx.Client(base_url=self.url, headers=headers, timeout=self._timeout)
            self._local.client = client
        return client

    def request(self, method: str, path: str, *, json: Any = None,
                content: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        """The response's JSON; :class:`ApiAuthError` on 401/403, :class:`ApiError` when
        the server cannot be reached or answers with an error."""
        import httpx

        try:
            response = self._client().request(method, path, json=json, content=content,
                                              headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"the fluvial server at {self.url} cannot be reached "
                           f"({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            given = "the token in FLUVIAL_API_TOKEN" if self._token else "no token"
            raise ApiAuthError(
                f"the fluvial server at {self.url} refused {method} {path} with {given} "
                f"(HTTP {response.status_code}: {_detail(response)}); set FLUVIAL_API_TOKEN "
                "to the server's token ($FLUVIAL_HOME/server.token on the server)")
        if response.status_code >= 400:
            raise ApiError(f"the fluvial server at {self.url} answered {method} {path} with "
                           f"HTTP {response.status_code}: {_detail(response)}",
                           status=response.status_code)
        if not response.content:
            return None
        return response.json()

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))[:500]
    except Exception:  # noqa: BLE001 - not JSON: its text, shortened
        return response.text[:200]


def api_client() -> ApiClient | None:
    """A client of the server in ``FLUVIAL_API_URL``; None when it is not set."""
    from fluvial import settings

    current = settings.get()
    if current.api_url is None:
        return None
    return ApiClient(current.api_url, current.api_token)


class HttpBatchWriter(BatchWriter):
    """Posts batches to ``POST /api/record``: retried, kept in the journal when the server
    will not take them, replayed in order, applied once (see the module docstring)."""

    retry_seconds = 5.0

    def __init__(self, api: ApiClient, pid: int, hostname: str) -> None:
        from fluvial.store.writer.journal import Journal

        self.api = api
        self.target = DatabaseTarget(url=api.url, dialect="http")
        self.pid = pid
        self.hostname = hostname
        self.client_id = uuid.uuid4().hex
        self.seq = 0
        self.journal = Journal(api.url, pid, hostname)
        self.events_spilled = 0
        self.batches_resent = 0  # batches the server had applied already (a lost reply)
        self.failed_posts = 0  # posts the server did not take (retried or journalled)
        self._next_replay = 0.0
        self._replay_wait = 0.1
        self._refused_logged = False

    def commit(self, events: Sequence[tuple]) -> tuple[int, BaseException | None]:
        """Send ``events`` as the next batch (numbered once: a resend is the same batch)."""
        self.seq += 1
        return super().commit([header(self.client_id, self.seq, self.pid, self.hostname),
                               *events])

    def commit_once(self, events: Sequence[tuple]) -> tuple[int, BaseException | None]:
        """Post one batch (its header first); ``(skipped, None)`` once the server has it."""
        try:
            body = encode(list(events))[4:]  # the pickle, without the pipe's frame header
            reply = self.api.request("POST", "/api/record", content=body,
                                     headers={"content-type": BATCH_CONTENT_TYPE})
        except ApiAuthError as exc:
            if not self._refused_logged:
                self._refused_logged = True
                logger.warning("fluvial store: %s; the run record is kept in the journal", exc)
            self.failed_posts += 1
            return 0, exc
        except ApiError as exc:
            self.failed_posts += 1
            return 0, exc
        if not reply.get("applied", True):
            self.batches_resent += 1
        return int(reply.get("skipped", 0)), None

    def _reconnect(self) -> None:
        """Nothing to do: httpx opens a new connection when the old one is gone."""

    def _usable(self) -> bool:
        return True

    def replay_orphans(self) -> int:
        """Send what processes now gone kept in their journals for this server."""
        from fluvial.store.writer.journal import replay_orphans

        return replay_orphans(self.api.url, lambda pid, hostname: self.commit_once)

    def close(self, drain_seconds: float = 5.0) -> None:
        from fluvial.store.writer.journal import drain

        drain(self.journal, lambda: self._replay(force=True), drain_seconds)
        self.journal.close()
        self.api.close()


class RemoteRecorder(Recorder):
    """A :class:`Recorder` whose batches go to a fluvial server (see the module docstring)."""

    def __init__(self, api: ApiClient, **options: Any) -> None:
        self.api = api
        super().__init__(DatabaseTarget(url=api.url, dialect="http"), **options)

    def _open_store(self) -> Connection | None:
        """Check the token (:class:`ApiAuthError` if refused), send what an earlier process
        left in the journal; no database connection."""
        try:
            self.api.request("GET", "/api/record")
        except ApiError as exc:  # down for now: batches wait in the journal until it is up
            logger.warning("fluvial store: %s; the run record is kept until it answers", exc)
        else:
            writer = HttpBatchWriter(self.api, self._pid_now(), _hostname())
            try:
                writer.replay_orphans()
            except Exception as exc:  # noqa: BLE001 - the journal stays for the next process
                logger.warning("fluvial store: could not replay the spill journal: %s", exc)
        return None

    def _start_writer(self) -> None:
        self._writer = HttpBatchWriter(self.api, self._pid, self._hostname)

    def _use_thread(self) -> None:
        if self._writer is None:
            self._writer = HttpBatchWriter(self.api, self._pid, self._hostname)


def _hostname() -> str:
    import socket

    return socket.gethostname()
