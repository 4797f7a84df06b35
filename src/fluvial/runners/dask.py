"""``DaskTaskRunner``: task runs on a Dask distributed cluster.

With no ``address`` the runner starts a cluster (``cluster_class``, default
``distributed.LocalCluster``; a class or an import path such as
``"dask_jobqueue.SLURMCluster"``) and closes it when the flow ends; with ``address``
(or ``cluster=``) it joins an existing cluster and leaves it running.

Each task run is one Dask task keyed ``<task name>-<run id>``. Upstream runs are handed
to Dask as Dask futures, so the scheduler orders the work and results move worker to
worker; the driver receives nothing but the completion notice until ``.result()`` is
called. On the worker the run goes through fluvial's engine (retries, timeouts,
caching, hooks) and returns its ``State``; a run that does not complete raises
``TaskRunFailure`` carrying its state, so Dask marks it erred and does not run its
dependents, which end ``NotReady``. A worker that dies is first Dask's to handle: Dask
re-runs the tasks it held (it cannot tell the task that killed the worker from the
others running there), and after ``distributed.scheduler.allowed-failures`` deaths
reports ``KilledWorker``; the run is then reported ``Crashed`` and the driver's crash
rule applies (retried while it has retries left).

Tag limits are enforced on the scheduler (``gates_tags``): a tagged run goes to Dask
at once, annotated with its limits, and the scheduler plugin of
``fluvial.concurrency._dask`` holds it until it holds its slots, so a freed slot
reaches the next run without a round trip to the driver. A batch of tagged runs (one
tag set) is gated as one: it holds one slot of each tag while its runs run, one after
the other, so no more than ``limit`` of them ever run at once.

Inside a task, ``get_dask_client()`` gives a client for Dask work of your own
(``dask.dataframe`` and the like) without deadlocking the worker.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import RunnerError
from fluvial.logging.shipping import LoggedState, record_shipped
from fluvial.runners.base import require_extra
from fluvial.runners.remote import RemoteFuture, RemoteTaskRunner, TaskRunFailure
from fluvial.states import State, StateType
from fluvial.worker.batch import Runs, run_batch
from fluvial.worker.entry import run_in_worker

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.runs import Submission

__all__ = ["DaskTaskRunner", "get_async_dask_client", "get_dask_client"]

logger = logging.getLogger("fluvial.runners.dask")


def _distributed() -> Any:
    return require_extra("distributed", "DaskTaskRunner", "dask")


def _resolve_class(cluster_class: Any) -> Any:
    if not isinstance(cluster_class, str):
        return cluster_class
    module_name, _, name = cluster_class.rpartition(".")
    if not module_name:
        raise ValueError(f"cluster_class {cluster_class!r} must be an import path like "
                         "'dask_jobqueue.SLURMCluster'")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cluster_class {cluster_class!r} cannot be imported: {exc}") from exc


class DaskTaskRunner(RemoteTaskRunner):
    """Run tasks on a Dask cluster: a new local one, or an existing one by address."""

    def __init__(
        self,
        address: str | None = None,
        cluster_class: Any = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        cluster: Any = None,
        *,
        max_in_flight: int | None = None,
    ) -> None:
        super().__init__(max_in_flight)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string like 'tcp://127.0.0.1:8786', "
                            f"got {address!r}")
        if address is not None and (cluster_class is not None or cluster is not None):
            raise ValueError("give either address (an existing scheduler) or "
                             "cluster/cluster_class (a cluster to use or start), not both")
        for label, value in (("cluster_kwargs", cluster_kwargs), ("adapt_kwargs", adapt_kwargs),
                             ("client_kwargs", client_kwargs)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{label} must be a dict, got {type(value).__name__}")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = adapt_kwargs
        self.client_kwargs = dict(client_kwargs or {})
        self.cluster = cluster
        self._client: Any = None
        self._own_cluster: Any = None
        self._shared: DaskTaskRunner | None = None
        self._threads: tuple[float, int] = (0.0, 1)  # (when counted, worker threads)
        self._gates: Any = None  # the DaskSlotManager that resolves tagged runs' limits
        self._times: Any = None  # RunTimes: start/end of the runs sent one by one

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the running flow."""
        self._check_started()
        return self._client

    def duplicate(self) -> DaskTaskRunner:
        """A runner for a subflow: it shares this runner's client when this one is running."""
        twin = DaskTaskRunner(self.address, self.cluster_class, self.cluster_kwargs,
                              self.adapt_kwargs, self.client_kwargs, self.cluster,
                              max_in_flight=self.max_in_flight)
        if self._started:
            twin._shared = self
        return twin

    def __repr__(self) -> str:
        where = self.address or (type(self.cluster).__name__ if self.cluster else "LocalCluster")
        return f"DaskTaskRunner({where})"

    # -- lifecycle ------------------------------------------------------------
    def _start(self) -> None:
        self._connect()
        from fluvial.runners._dask_times import RunTimes

        self._times = RunTimes.of(self._client)

    def _connect(self) -> None:
        distributed = _distributed()
        if self._shared is not None:
            self._client = self._shared._client
            return
        client_kwargs = {"set_as_default": False, **self.client_kwargs}
        try:
            if self.address is not None:
                self._client = distributed.Client(self.address, **client_kwargs)
                return
            cluster = self.cluster
            if cluster is None:
                cls = _resolve_class(self.cluster_class) or distributed.LocalCluster
                kwargs = dict(self.cluster_kwargs)
                if cls is distributed.LocalCluster:  # loopback only, unless asked otherwise
                    if kwargs.get("processes", True):
                        kwargs.setdefault("host", "127.0.0.1")
                    kwargs.setdefault("dashboard_address", "127.0.0.1:0")
                cluster = self._own_cluster = cls(**kwargs)
            if self.adapt_kwargs is not None:
                cluster.adapt(**self.adapt_kwargs)
            self._client = distributed.Client(cluster, **client_kwargs)
        except OSError as exc:
            raise RunnerError(f"DaskTaskRunner cannot reach the scheduler at "
                              f"{self.address!r}: {exc}") from exc
        link = getattr(self._client, "dashboard_link", None)
        if link:
            logger.info("Dask dashboard: %s", link)

    def _shutdown(self, wait: bool) -> None:
        gates, self._gates = self._gates, None
        if gates is not None:
            gates.close()
        client, self._client = self._client, None
        if self._shared is not None:
            self._shared = None
            return
        if client is not None:
            client.close()
        cluster, self._own_cluster = self._own_cluster, None
        if cluster is not None:
            cluster.close()

    # -- submission (see RemoteTaskRunner) -------------------------------------------
    def slot_manager(self) -> Any:
        """Tag slots counted cluster-wide, on the Dask scheduler."""
        from fluvial.concurrency import DaskSlotManager

        return DaskSlotManager(self.client)

    def _owns(self, ref: Any) -> bool:
        return getattr(ref, "client", None) is self._client

    #: tagged runs are not gated by the driver: the scheduler plugin holds each one until
    #: it holds its slots (see fluvial.concurrency._dask)
    gates_tags = True

    def submit_many(self, submissions: Sequence[Submission]) -> list[Future]:
        if self._gates is None and any(s.task_run.tags for s in submissions):
            # made here, in the submitting thread: making it registers the scheduler
            # plugin, a blocking call that must not run on the client's event loop
            # (where a run waiting on another runner's upstream is launched later)
            self._gates = self.slot_manager()
        return super().submit_many(submissions)

    def _gate(self, tags: frozenset[str]) -> dict[str, int] | None:
        """The scheduler plugin's annotation for a run of ``tags`` ({tag: limit} of its
        limited tags), or None when it takes no slots."""
        if not tags:
            return None
        if self._gates is None:
            self._gates = self.slot_manager()
        gate: dict[str, int] | None = self._gates.gate_annotation(tags)
        return gate

    def _watch_limits(self, dask_future: Any, gate: dict[str, int]) -> None:
        """The scheduler holds ``dask_future`` for its slots: until it settles, a limit
        changed by another process must reach the scheduler (see ``watch_limits``)."""
        self._gates.watch_limits(next(iter(gate)), dask_future)

    def _launch(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        if not any(s.task_run.tags for s, _ in pairs):
            self._launch_group(pairs)
            return
        by_tags: dict[frozenset[str], list[tuple[Submission, RemoteFuture]]] = {}
        for pair in pairs:
            by_tags.setdefault(pair[0].task_run.tags, []).append(pair)
        for tags, group in by_tags.items():
            gate = self._gate(tags)
            if gate is None:
                self._launch_group(group)
                continue
            with _annotated(gate):
                self._launch_group(group)
            for _, future in group:
                self._watch_limits(future.backend_ref, gate)

    def _launch_group(self, pairs: Sequence[tuple[Submission, RemoteFuture]]) -> None:
        client = self._client
        independent = [(s, f) for s, f in pairs if not s.upstreams]
        if len(independent) > 1:  # one graph message for a whole map
            keys = [self._unique_key(_key(s), client.futures.__contains__)
                    for s, _ in independent]
            if self._times is not None:
                for key in keys:
                    self._times.watch(key)
            dask_futures = client.map(_run_on_worker, [s.task_run for s, _ in independent],
                                      key=keys, pure=False)
            for (submission, future), dask_future in zip(independent, dask_futures,
                                                         strict=True):
                self._watch(submission, future, dask_future)
            pairs = [(s, f) for s, f in pairs if s.upstreams]
        for submission, future in pairs:
            args = [self._backend_arg(u) for u in submission.upstreams]
            key = self._unique_key(_key(submission), client.futures.__contains__)
            if self._times is not None:
                self._times.watch(key)
            dask_future = client.submit(_run_on_worker, submission.task_run, submission.n_data,
                                        *args, key=key, pure=False)
            self._watch(submission, future, dask_future)

    def _slots(self) -> int:
        when, threads = self._threads
        now = time.monotonic()
        if now - when > _SLOTS_REFRESH_SECONDS:  # the cluster may scale: count again
            try:
                threads = max(1, sum(self._client.nthreads().values()))
            except Exception:  # noqa: BLE001 - keep the last count; the run goes on
                pass
            self._threads = (now, threads)
        return threads

    def _launch_batch(self, task: Any, pairs: Sequence[tuple[Submission, RemoteFuture]],
                      options: Any, done: Any) -> None:
        key = f"{task.name}-batch-{uuid.uuid4().hex}"
        # a batch of tagged runs (one tag set: see _batches) is gated as one: it holds
        # one slot of each tag while its runs run, one after the other
        gate = self._gate(pairs[0][0].task_run.tags)
        with contextlib.nullcontext() if gate is None else _annotated(gate):
            batch = self._client.submit(run_batch, task,
                                        Runs([s.task_run.detached() for s, _ in pairs]),
                                        key=key, pure=False)
        if gate is not None:
            self._watch_limits(batch, gate)

        def on_done(finished: Any) -> None:
            try:  # the states (with their small results) come to the driver at once
                value = finished.result()
            except BaseException as exc:  # noqa: BLE001 - lost (KilledWorker), cancelled
                done(None, exc)
                return
            finally:  # Dask forgets the batch: a later worker death does not redo it
                finished.release()
            done(value, None)

        batch.add_done_callback(on_done)

    def _watch(self, submission: Submission, future: RemoteFuture, dask_future: Any) -> None:
        future.backend_ref = dask_future

        def on_done(done: Any) -> None:
            times = self._times.take(done.key) if self._times is not None else None
            self._backend_done(future, None if times is None else max(0.0, times[1] - times[0]))
            if done.status == "finished":  # the full state stays on the worker until asked for
                if done.type is LoggedState:  # unless the run logged: then it comes now
                    _fetch_logged(future, done)
                start_ts, ts = times if times is not None else (None, None)
                future._report(State(StateType.COMPLETED, "Completed", ts=ts,
                                     start_ts=start_ts), submission)
                return
            try:
                exc = done.exception()
            except BaseException as error:  # cancelled, or the client is closing
                exc = error
            self._on_backend_error(future, submission, exc)

        dask_future.add_done_callback(on_done)

    def _gather_states(self, futures: list[RemoteFuture]) -> list[State]:
        refs = [f.backend_ref for f in futures]
        client = self._client if self._client is not None else refs[0].client
        try:
            return client.gather(refs)
        except Exception as exc:  # the results were lost from the cluster
            raise RunnerError(f"task results could not be fetched from the Dask cluster: "
                              f"{exc}") from exc


_SLOTS_REFRESH_SECONDS = 2.0


def _fetch_logged(future: RemoteFuture, done: Any) -> None:
    """Fetch the state of a run that logged on its worker, record its logs, and keep it:
    its result is not fetched again."""
    try:
        state = done.result()
    except BaseException:  # noqa: BLE001 - lost meanwhile: the result fetch will say so
        return
    record_shipped(state)
    future._fetched = state


def _annotated(gate: dict[str, int]) -> Any:
    """Dask annotations that have the slots plugin gate what is submitted in them."""
    import dask

    from fluvial.concurrency._dask import GATE_ANNOTATION

    return dask.annotate(**{GATE_ANNOTATION: gate})


def _key(submission: Submission) -> str:
    task_run = submission.task_run
    return f"{task_run.task.name}-{task_run.id.hex}"


class _QuietFailures(logging.Filter):
    """Drops the worker's "Compute Failed" report for runs fluvial already reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "TaskRunFailure" not in record.getMessage()


_quiet = _QuietFailures()

def _run_on_worker(task_run: Any, n_data: int = 0, *upstream_states: State) -> State:
    """The Dask task: run the engine; raise if the run did not complete."""
    state = run_in_worker(task_run, upstream_states, n_data, picklable=True)
    if state.type is not StateType.COMPLETED:
        worker_logger = logging.getLogger("distributed.worker")
        if _quiet not in worker_logger.filters:
            worker_logger.addFilter(_quiet)
        raise TaskRunFailure(state, task_run.task.name, task_run.id)
    return state


# -- clients for tasks ----------------------------------------------------------------


@contextlib.contextmanager
def get_dask_client(timeout: float | None = None, **client_kwargs: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for Dask work inside a task.

    On a Dask worker this is ``distributed.worker_client()``, which secedes the task
    from the worker's thread pool while you wait, so the worker cannot deadlock. In a
    flow running on ``DaskTaskRunner`` it is that runner's client.
    """
    distributed = _distributed()
    try:
        distributed.get_worker()
    except ValueError:
        yield _flow_client(distributed, client_kwargs)
        return
    kwargs = {"timeout": timeout} if timeout is not None else {}
    with distributed.worker_client(**kwargs, separate_thread=True) as client:
        yield client


@contextlib.asynccontextmanager
async def get_async_dask_client(timeout: float | None = None,
                                **client_kwargs: Any) -> AsyncIterator[Any]:
    """An asynchronous ``distributed.Client`` connected to the current cluster."""
    distributed = _distributed()
    try:
        address = distributed.get_worker().scheduler.address
    except ValueError:
        address = _flow_client(distributed, {}).scheduler.address
    kwargs = {"timeout": timeout} if timeout is not None else {}
    async with distributed.Client(address, asynchronous=True, set_as_default=False,
                                  **kwargs, **client_kwargs) as client:
        yield client


def _flow_client(distributed: Any, client_kwargs: dict[str, Any]) -> Any:
    from fluvial.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is not None and isinstance(ctx.task_runner, DaskTaskRunner):
        return ctx.task_runner.client
    try:
        return distributed.get_client(**client_kwargs)
    except ValueError as exc:
        raise RunnerError("get_dask_client() needs a Dask worker or a flow running on "
                          "DaskTaskRunner") from exc
