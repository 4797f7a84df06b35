"""Start and end times of the Dask runs sent one by one, as the scheduler saw them.

A run sent alone to Dask leaves its state — with its start and end times — on the
worker until its result is asked for; the driver only hears that the task finished.
The times come from the scheduler instead: ``RunTimesPlugin``, a small scheduler
plugin, sees each task finish with the worker's compute start and stop, and sends them
to the clients that subscribed, as a ``fluvial-run-times`` message on the client's
stream. The scheduler sends it before its own "finished" notice for the key, on the
same stream, so the driver has the times when the run's future settles.

A scheduler that cannot load the plugin (fluvial not installed next to it) leaves the
times unknown; nothing else changes. distributed is imported only by the Dask runner,
which imports this module.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["RunTimes", "RunTimesPlugin"]

logger = logging.getLogger("fluvial.runners.dask")

PLUGIN_NAME = "fluvial-run-times"
_OP = "fluvial-run-times"


class RunTimesPlugin(SchedulerPlugin):
    """On the scheduler: forwards the compute times of finished tasks to subscribers."""

    name = PLUGIN_NAME
    idempotent = True

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.clients: set[str] = set()
        scheduler.handlers["fluvial_run_times"] = self.subscribe

    def subscribe(self, client: str) -> None:
        self.clients.add(client)

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.clients.discard(client)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start != "processing" or finish != "memory" or not self.clients:
            return
        compute = next((s for s in kwargs.get("startstops") or ()
                        if s.get("action") == "compute"), None)
        task = self.scheduler.tasks.get(key)
        if compute is None or task is None:
            return
        for wanted_by in task.who_wants or ():
            client = wanted_by.client_key
            if client in self.clients:
                comm = self.scheduler.client_comms.get(client)
                if comm is not None:
                    comm.send({"op": _OP, "key": key, "start": compute["start"],
                               "stop": compute["stop"]})


class RunTimes:
    """On the client: the times of the keys a runner watches, until it takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[Any, tuple[float, float] | None] = {}

    @classmethod
    def of(cls, client: Any) -> RunTimes | None:
        """The times of ``client`` (subscribed once per client), or None when the
        scheduler would not take the plugin."""
        known: Any = getattr(client, "_fluvial_run_times", False)
        if known is not False:
            return known  # type: ignore[no-any-return]
        times: RunTimes | None = cls()
        try:
            client.register_plugin(RunTimesPlugin(), name=PLUGIN_NAME)
            client._stream_handlers[_OP] = times._on_times  # type: ignore[union-attr]
            client.sync(client.scheduler.fluvial_run_times, client=client.id)
        except Exception as exc:  # noqa: BLE001 - the run times stay unknown
            logger.debug("Dask run start times unavailable: %r", exc)
            times = None
        client._fluvial_run_times = times
        return times

    def watch(self, key: Any) -> None:
        with self._lock:
            self._watched[key] = None

    def take(self, key: Any) -> tuple[float, float] | None:
        """The (start, end) of ``key`` if the scheduler sent them; stops watching it."""
        with self._lock:
            return self._watched.pop(key, None)

    def _on_times(self, key: Any = None, start: float = 0.0, stop: float = 0.0) -> None:
        with self._lock:
            if key in self._watched:
                self._watched[key] = (start, stop)
