"""Dask slot manager: the slots live on the cluster's scheduler.

Owns `SlotsSchedulerPlugin` (a `distributed.SchedulerPlugin` hosting a
`HostedSlots`, reached through the scheduler handler `fluvial_slots`) and
`DaskSlotManager` (the client side, a `RemoteSlotManager` whose messages travel
as scheduler RPCs). Every client of the cluster shares the same
slots. A lease is owned by the client that took it and, when taken inside a task,
by that worker too: the plugin's `remove_worker` / `remove_client` hooks free a
dead worker's or a gone client's slots as soon as the scheduler drops it.

Calls go over the client's event loop: `request` never blocks, `release` is
fire-and-forget; `on_granted` runs on the client's event-loop thread, so it must
not block (dispatching a task with `client.submit` is fine).

Runs of a `.map` on `DaskTaskRunner` are gated on the scheduler itself, with no
round trip to the driver per slot: the runner submits them all at once, annotated
with their limits (`gate_annotation`), and the plugin holds each one back — a
worker restriction no worker satisfies keeps it in Dask's ``no-worker`` state —
until it is ready to run (its upstreams done) *and* holds a slot of each of its
tags from the same `HostedSlots` table every other client uses. When a gated run
leaves ``processing`` (finished, erred, or taken back because its worker died) its
slots are freed in the same transition, and the next queued run is released to a
worker on the scheduler's next event-loop turn. So the number of gated runs in
``processing`` never exceeds the limit, and a freed slot reaches the next run
without leaving the scheduler. The limits come from the driver: a change made there is
sent at once, and while runs a runner gates are unsettled its manager reads the stored
limits once a second (`DaskSlotManager.watch_limits`), so that a change made by another
process gets there too.
distributed is imported only in this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Hashable, Mapping
from typing import Any

from distributed import Client, get_client, get_worker
from distributed.diagnostics.plugin import SchedulerPlugin

from fluvial import settings
from fluvial.concurrency._base import Limit, LimitSource, _store_backed
from fluvial.concurrency._hosted import HostedSlots, RemoteSlotManager

__all__ = ["GATE_ANNOTATION", "DaskSlotManager", "SlotsSchedulerPlugin"]

PLUGIN_NAME = "fluvial-slots"
GATE_ANNOTATION = "fluvial_slots"  # the task annotation: {tag: limit} of a gated run
HELD = "fluvial-slots://held"  # the worker restriction of a run waiting for its slots
# a run in memory stays known: if its result is lost with a worker, Dask computes it
# again, and it queues for its slots again
_DONE = frozenset({"erred", "forgotten"})


class _Gated:
    """One gated run on the scheduler: its limits, its client, its slot request."""

    __slots__ = ("limits", "owners", "rid", "held")

    def __init__(self, limits: dict[str, int], owners: tuple[Hashable, ...]) -> None:
        self.limits = limits
        self.owners = owners
        self.rid: int | None = None  # the table's request (or lease) id
        self.held = False  # the request was granted: ``rid`` is a lease


class SlotsSchedulerPlugin(SchedulerPlugin):
    """The cluster's slot table, hosted by the scheduler (registered idempotently)."""

    name = PLUGIN_NAME
    idempotent = True

    async def start(self, scheduler: Any) -> None:
        self.slots = HostedSlots("fluvial-dask-slot-leases")
        self.scheduler = scheduler
        self.gated: dict[Any, _Gated] = {}
        self._granted: list[tuple[Any, int]] = []  # released on the next loop turn
        self._flush_pending = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        scheduler.handlers["fluvial_slots"] = self.handle

    async def close(self) -> None:
        self.slots.close()

    # -- gated runs: held in ``no-worker`` until they hold their slots ----------------
    def update_graph(self, scheduler: Any, *, client: str, keys: Any, tasks: Any,
                     annotations: dict[str, dict[Any, Any]], **kwargs: Any) -> None:
        gates = annotations.get(GATE_ANNOTATION)
        if not gates:
            return
        for key, limits in gates.items():
            ts = scheduler.tasks.get(key)
            if ts is None or key in self.gated or ts.state not in ("released", "waiting"):
                continue
            self.gated[key] = _Gated(dict(limits), (client,))
            ts.worker_restrictions = {HELD}
            ts.loose_restrictions = False

    def transition(self, key: Any, start: str, finish: str, *args: Any,
                   **kwargs: Any) -> None:
        gated = self.gated.get(key)
        if gated is None:
            return
        if finish == "no-worker":  # ready to run: queue for its slots
            if gated.rid is None:
                self._ask(key, gated)
            return
        if finish == "processing":
            return
        if gated.rid is not None and start in ("processing", "no-worker"):
            self._free(gated)
        if finish in _DONE:
            del self.gated[key]
        elif finish != "memory":  # taken back (its worker died, an input or its result
            # was lost): gate it again
            ts = self.scheduler.tasks.get(key)
            if ts is not None:
                ts.worker_restrictions = {HELD}
                ts.loose_restrictions = False

    def _ask(self, key: Any, gated: _Gated) -> None:
        def granted(rid: int) -> None:
            gated.held = True
            self._release_soon(key, rid)

        rid, now = self.slots.table.request(gated.limits, 1, granted, None, gated.owners)
        gated.rid = rid
        if now:
            gated.held = True
            self._release_soon(key, rid)

    def _free(self, gated: _Gated) -> None:
        rid, held = gated.rid, gated.held
        gated.rid, gated.held = None, False
        assert rid is not None
        if held:
            self.slots.table.release(rid)  # grants the next waiters (their callbacks run now)
        elif not self.slots.table.cancel(rid):  # granted between our check and the cancel
            self.slots.table.release(rid)

    def _release_soon(self, key: Any, rid: int) -> None:
        """Hand the run to a worker on the scheduler's next loop turn (never from inside
        a transition: the scheduler's transitions are not re-entrant)."""
        self._granted.append((key, rid))
        if self._flush_pending:
            return
        self._flush_pending = True
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self._flush)
        else:  # a lease expired on the table's timer thread
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        granted, self._granted = self._granted, []
        tasks, recommendations = self.scheduler.tasks, {}
        for key, rid in granted:
            gated = self.gated.get(key)
            ts = tasks.get(key)
            if gated is None or ts is None or gated.rid != rid:
                continue  # settled or taken back meanwhile (its slots went with it)
            ts.worker_restrictions = None
            if ts.state == "no-worker":
                recommendations[key] = "processing"
        if not recommendations:
            return
        self.scheduler.transitions(recommendations, stimulus_id=f"fluvial-slots-{time.time()}")
        # The scheduler batches what it sends a worker (one write per 5 ms at most): a
        # worker that just freed a slot would idle until then. A released run is one of
        # at most `limit` in flight, so send it now.
        workers = {ts.processing_on for key in recommendations
                   if (ts := tasks.get(key)) is not None and ts.processing_on is not None}
        for ws in workers:
            _send_now(self.scheduler.stream_comms.get(ws.address))

    async def handle(self, action: str, **kw: Any) -> Any:
        if action == "acquire":
            return await self.slots.acquire(**kw)
        return self.slots.control(action, kw)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.slots.drop_owner(worker)

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.slots.drop_owner(client)


def _send_now(stream: Any) -> None:
    """Have a ``distributed.batched.BatchedSend`` write its buffer now rather than at
    the end of its batching interval (a no-op if its internals are not as expected)."""
    if stream is None or not getattr(stream, "buffer", None) or not hasattr(stream, "waker"):
        return
    stream.next_deadline = None
    stream.waker.set()


_registered: set[str] = set()
logger = logging.getLogger("fluvial.concurrency")


class DaskSlotManager(RemoteSlotManager):
    """Slots shared by every client of a Dask cluster (default client: `get_client()`)."""

    def __init__(
        self,
        client: Client | None = None,
        limits: Mapping[str, int | Limit] | LimitSource | None = None,
    ) -> None:
        super().__init__(limits)
        self.client = client if client is not None else get_client()
        owners = [self.client.id]
        try:
            owners.append(get_worker().address)
        except ValueError:
            pass
        self._owners = tuple(owners)
        self._watch: threading.Event | None = None  # set: the limits watch stops
        self._watch_on: str | None = None  # the record it reads
        self._watch_lock = threading.Lock()
        self._watched = 0  # gated runs (or batches) not settled yet
        self._watch_tag = ""
        addr = self.client.scheduler.address
        if addr not in _registered:
            self.client.register_plugin(SlotsSchedulerPlugin(), name=PLUGIN_NAME)
            _registered.add(addr)

    def gate_annotation(self, tags: frozenset[str]) -> dict[str, int] | None:
        """The annotation that has the scheduler gate a run of ``tags`` (``{tag: limit}``
        of its limited tags), or None when none of them has a limit."""
        _, specs = self._resolve(sorted(tags), 1, None)
        return {name: spec.limit for name, spec in specs.items()} or None

    def watch_limits(self, tag: str, dask_future: Any = None) -> None:
        """``dask_future`` is a run (or batch) the scheduler gates for ``tag``'s slots:
        until it settles, read the stored limits once every ``REFRESH_SECONDS`` from a
        thread of this manager (started once, stopped by `close`; a no-op for a manager
        not backed by the store). With no gated run unsettled, nothing is read.

        A limit changed by another process (the CLI, another flow) is otherwise seen
        only when this process next asks for a limit — when it next submits a tagged
        run. Runs the scheduler already holds for their slots would not move if the
        limit grew meanwhile: a map blocked by a limit of 0 would wait for ever. The
        read finds the change and tells the scheduler (``_limit_changed``).

        The watch reads the record the process used when it started; if the process
        points elsewhere later (``FLUVIAL_HOME`` changed, as between tests), it stops
        instead of opening that other record; a gated run there starts a watch of its own.
        """
        if self not in _store_backed:
            return
        if dask_future is not None:
            with self._watch_lock:
                self._watched += 1
            dask_future.add_done_callback(self._settled)
        self._watch_tag = tag
        started_on = settings.get().database_url
        if self._watch is not None:
            if self._watch_on == started_on:
                return
            self._watch.set()  # watching another record: that watch ends, this one starts
        stop = self._watch = threading.Event()
        self._watch_on = started_on

        def watch() -> None:
            from fluvial.concurrency import _limits

            while not stop.wait(_limits.REFRESH_SECONDS):
                if settings.get().database_url != started_on:
                    if self._watch is stop:
                        self._watch = None
                    return
                if self._watched <= 0:
                    continue  # nothing gated is waiting: nothing to read
                try:
                    self.limit_of(self._watch_tag)  # refreshes every limit, wakes what changed
                except Exception:  # noqa: BLE001 - the store is away: try again later
                    logger.debug("could not read the stored limits", exc_info=True)

        threading.Thread(target=watch, name=f"fluvial-dask-limits-{self.client.id}",
                         daemon=True).start()

    def _settled(self, _: Any) -> None:
        with self._watch_lock:
            self._watched -= 1

    def close(self) -> None:
        """Stop the limits watch; later limit changes are not sent to this cluster."""
        if self._watch is not None:
            self._watch.set()
        _store_backed.discard(self)

    def _send(self, action: str, **kw: Any) -> concurrent.futures.Future[Any]:
        async def rpc() -> Any:
            return await self.client.scheduler.fluvial_slots(action=action, **kw)

        loop = self.client.loop.asyncio_loop  # type: ignore[union-attr]
        return asyncio.run_coroutine_threadsafe(rpc(), loop)
