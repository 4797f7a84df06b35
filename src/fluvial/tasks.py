"""``Task`` and the ``@task`` decorator: ``__call__``, ``submit``, ``map``, ``with_options``.

Calling a task inside a flow runs it at once in the caller's thread and returns its
result; ``submit`` hands a run to the flow's task runner and returns a ``Future``;
``map`` submits one run per element. Outside a flow, calling a task runs it through
the same engine (so retries and hooks apply) and returns its result, as the plain
function would; ``submit``/``map`` outside a flow use a process-wide thread runner.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import io
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, Generic, ParamSpec, TypeVar, overload

from fluvial._options import as_hooks as _as_hooks
from fluvial._options import (
    as_tags,
    check_callable,
    check_flag,
    check_result_serializer,
    check_result_storage,
    check_text,
    register_hook,
)
from fluvial._options import check_number as _check_number
from fluvial.annotations import unmapped
from fluvial.context import _flow_run
from fluvial.exceptions import MappingLengthMismatch, MappingTypeError, ReservedArgumentError
from fluvial.futures import Future, FutureList
from fluvial.orchestration.collector import allocation_burst
from fluvial.orchestration.recording import record_task_run
from fluvial.orchestration.streaming import FutureStream, StreamInputs, check_max_in_flight
from fluvial.orchestration.submission import (
    current_runner,
    dispatch,
    effective_tags,
    prepare,
    tag_slots,
    wait_for_futures,
)
from fluvial.runs import TaskRun
from fluvial.transactions import _current as _transaction
from fluvial.transactions import note_called, note_submitted
from fluvial.visualization import active as _visualizing
from fluvial.worker.arguments import Upstream
from fluvial.worker.task_engine import retry_delay_jittered, run_task

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double each time: ``backoff_factor * 2**attempt`` seconds.

    As in Prefect, the returned callable takes the number of retries and gives the
    list of delays; pass it as ``retry_delay_seconds``.
    """
    if backoff_factor < 0:
        raise ValueError("backoff_factor must be >= 0")

    def retry_backoff(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return retry_backoff


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Prefect-compatible cache key function: the task's identity and its inputs."""
    from fluvial.serialization import task_input_hash as _hash

    return _hash(context, arguments)


def _retry_delays(owner: str, retries: int, delay: Any) -> tuple[float, ...]:
    if callable(delay):
        delay = delay(retries)
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        _check_number(owner, "retry_delay_seconds", delay)
        return (float(delay),)
    if isinstance(delay, (str, bytes)) or not isinstance(delay, Iterable):
        raise TypeError(f"{owner}: retry_delay_seconds must be a number, a list of numbers or "
                        f"a callable returning one, got {delay!r}")
    delays = tuple(delay)
    for d in delays:
        _check_number(owner, "retry_delay_seconds", d, allow_none=False)
    return tuple(float(d) for d in delays) or (0.0,)


class Task(Generic[P, R]):
    """A function fluvial runs as tracked task runs (generic in its parameters and
    return type, as Prefect's ``Task[P, R]``)."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: Any = 0,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        on_running: Sequence[Callable[..., Any]] | None = None,
        on_commit: Sequence[Callable[..., Any]] | None = None,
        on_rollback: Sequence[Callable[..., Any]] | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        cache_policy: Any = _UNSET,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        refresh_cache: bool = False,
        persist_result: bool | None = None,
        result_serializer: str | None = None,
        result_storage: Any = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        _refuse_reserved_parameters(fn)
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        owner = f"task {self.name!r}"
        _check_number(owner, "retries", retries, allow_none=False, integer=True)
        _check_number(owner, "timeout_seconds", timeout_seconds, positive=True)
        _check_number(owner, "retry_jitter_factor", retry_jitter_factor)
        check_callable(owner, "retry_condition_fn", retry_condition_fn)
        check_callable(owner, "cache_key_fn", cache_key_fn)
        check_text(owner, "version", version)
        check_text(owner, "description", description)
        check_flag(owner, "log_prints", log_prints)
        check_flag(owner, "refresh_cache", refresh_cache)
        check_flag(owner, "persist_result", persist_result)
        check_result_serializer(owner, result_serializer)
        check_result_storage(owner, result_storage)
        if task_run_name is not None and not (isinstance(task_run_name, str)
                                              or callable(task_run_name)):
            raise TypeError(f"{owner}: task_run_name must be a string template or a callable")
        if cache_expiration is not None and not isinstance(cache_expiration, datetime.timedelta):
            raise TypeError(f"{owner}: cache_expiration must be a datetime.timedelta")
        tags = as_tags(owner, tags)
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = tags
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self._delays = _retry_delays(owner, retries, retry_delay_seconds)
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        # Prefect's attribute names; ``@my_task.on_completion`` etc. append to them
        self.on_completion_hooks = list(_as_hooks(owner, "on_completion", on_completion))
        self.on_failure_hooks = list(_as_hooks(owner, "on_failure", on_failure))
        self.on_running_hooks = list(_as_hooks(owner, "on_running", on_running))
        # transaction hooks, called with the task run's transaction (fluvial.transactions)
        self.on_commit_hooks = list(_as_hooks(owner, "on_commit", on_commit))
        self.on_rollback_hooks = list(_as_hooks(owner, "on_rollback", on_rollback))
        self.task_run_name = task_run_name
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        if result_storage_key is not None and not isinstance(result_storage_key, str):
            raise TypeError(f"{owner}: result_storage_key must be a string template, "
                            f"got {result_storage_key!r}")
        if not isinstance(cache_result_in_memory, bool):
            raise TypeError(f"{owner}: cache_result_in_memory must be True or False")
        self.result_serializer = result_serializer
        self.result_storage = result_storage
        self.result_storage_key = result_storage_key
        self.cache_result_in_memory = cache_result_in_memory
        self.persist_result, self.cache_policy, self.key_policy = _caching_options(
            owner, persist_result, cache_policy, cache_key_fn, result_storage_key,
            result_storage, result_serializer)
        from fluvial.cache_policies import needs_flow_parameters

        self.ships_flow_parameters = needs_flow_parameters(self.key_policy)
        # a persisted result without a key policy is still found again by its own flow
        # run (Prefect's DEFAULT policy: inputs + the run), unless NO_CACHE was asked for
        self.finds_own_results = self.key_policy is None and self.persist_result and \
            self.cache_policy is not None and type(self.cache_policy).__name__ != "_NoCache"
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature: inspect.Signature | None = None
        if getattr(fn, "__module__", None) == "__main__":
            self.task_key  # noqa: B018 - resolved here: a worker's __main__ is another file
        self._options = dict(
            name=name, description=description, tags=tags, version=version, retries=retries,
            retry_delay_seconds=retry_delay_seconds, retry_jitter_factor=retry_jitter_factor,
            retry_condition_fn=retry_condition_fn, timeout_seconds=timeout_seconds,
            log_prints=log_prints, on_completion=on_completion, on_failure=on_failure,
            on_running=on_running, on_commit=on_commit, on_rollback=on_rollback,
            task_run_name=task_run_name, cache_policy=cache_policy, cache_key_fn=cache_key_fn,
            cache_expiration=cache_expiration, refresh_cache=refresh_cache,
            persist_result=persist_result, result_serializer=result_serializer,
            result_storage=result_storage, result_storage_key=result_storage_key,
            cache_result_in_memory=cache_result_in_memory,
        )

    # -- identity ---------------------------------------------------------------
    @functools.cached_property
    def task_key(self) -> str:
        """``module.qualname`` of the function: the task's identity in records and keys.

        ``__main__`` is replaced by the module name of the file (``python jobs/x.py``
        and ``fluvial runs retry`` agree on ``jobs.x.step``). Computed when the task is
        made, in the process that defines it, and carried with the task to workers."""
        from fluvial.serialization import function_identity

        return function_identity(self.fn, self.name)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"task {self.name!r}: unknown option(s) {sorted(unknown)}")
        merged = {**self._options, **options}
        if "name" not in options and merged["name"] is None:
            merged["name"] = self.name
        return Task(self.fn, **merged)

    # -- hooks as decorators (Prefect's ``@my_task.on_completion``) ------------------------
    def on_completion(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(task, task_run, state)`` to run when a run completes; return it."""
        return register_hook(self, "on_completion", fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(task, task_run, state)`` to run when a run fails; return it."""
        return register_hook(self, "on_failure", fn)

    def on_running(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(task, task_run, state)`` to run when a run starts running."""
        return register_hook(self, "on_running", fn)

    # -- helpers used by the engine -------------------------------------------------
    def retry_delay_for(self, attempt: int) -> float:
        delays = self._delays
        delay = delays[min(attempt, len(delays)) - 1] if attempt > 0 else delays[0]
        return retry_delay_jittered(delay, self.retry_jitter_factor)

    def render_run_name(self, task_run: TaskRun,
                        parameters: dict[str, Any] | None = None) -> str:
        """The run's name: ``"{task name}-{last 8 hex digits of the run id}"`` (the random end
        of a time-ordered id: see :func:`fluvial.runs.time_ordered_id`),
        or ``task_run_name`` (a ``str.format`` template of the parameters, attribute
        access included, or a callable) rendered with ``parameters`` (the run's own by
        default). A template over an upstream's result that is not known here (the
        driver of a process/Dask/Ray run) gives the default name."""
        default = f"{self.name}-{task_run.id.hex[-8:]}"
        template = self.task_run_name
        if template is None:
            return default
        if parameters is None:
            parameters = task_run.parameters
        unresolved = any(_holds_upstream(v) for v in parameters.values())
        try:
            if callable(template):
                try:
                    takes_params = len(inspect.signature(template).parameters) > 0
                except (TypeError, ValueError):
                    takes_params = False
                if unresolved and takes_params:
                    return default
                return str(template(parameters) if takes_params else template())
            if unresolved:
                return default
            return template.format(**parameters)
        except (KeyError, IndexError, AttributeError) as exc:
            raise ValueError(f"task {self.name!r}: task_run_name {template!r} refers to "
                             f"{exc} which is not a parameter (or attribute)") from None

    def _check_arguments(self, args: tuple, kwargs: dict) -> None:
        sig = self._signature
        if sig is None:
            try:
                sig = self._signature = inspect.signature(self.fn)
            except (TypeError, ValueError):
                return
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None

    # -- running ------------------------------------------------------------------
    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None,
                 **kwargs: Any) -> Any:
        """Run the task now, in this thread; return its result (or state)."""
        tracer = _visualizing()
        if tracer is not None:  # Flow.visualize(): record the call, run nothing
            return tracer.call(self, args, kwargs, wait_for)
        if self.is_async and _in_running_loop():
            return self._call_async(args, kwargs, return_state, wait_for)
        return self._call(args, kwargs, return_state, wait_for)

    def _call(self, args: tuple, kwargs: dict, return_state: bool, wait_for: Any) -> Any:
        self._check_arguments(args, kwargs)
        ctx = _flow_run.get()
        flow_run_id = ctx.flow_run.id if ctx is not None else None
        task_run = TaskRun(self, args, kwargs, effective_tags(self), flow_run_id)
        recorder = ctx.tracker.recorder if ctx is not None and ctx.tracker is not None else None
        sub = prepare(task_run, wait_for_futures(self, wait_for))
        for upstream in sub.upstreams:
            upstream.wait()
        with tag_slots(task_run.tags):  # a called run takes its tag slots as a submitted one
            state = run_task(task_run, [u._final_state() for u in sub.upstreams], sub.n_data)
        if recorder is not None:
            record_task_run(recorder, task_run, state)
        if _transaction.get() is not None:
            note_called(self, task_run, state)
        if state.run_id is None:
            state.run_id = task_run.id
        return state if return_state else state.result()

    async def _call_async(self, args: tuple, kwargs: dict, return_state: bool,
                          wait_for: Any) -> Any:
        return await asyncio.to_thread(self._call, args, kwargs, return_state, wait_for)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Queue a background run in the run record for a task worker; its future, at once.

        ``fluvial.task_worker.serve(task)`` (or ``fluvial task serve file.py:task``) runs it.
        """
        from fluvial.workers._task_queue import enqueue

        return enqueue(self, args, kwargs)

    def submit(self, *args: Any, wait_for: Any = None, return_state: bool = False,
               **kwargs: Any) -> Any:
        """Hand one run to the task runner; return its ``Future`` (or final state)."""
        tracer = _visualizing()
        if tracer is not None:
            return tracer.call(self, args, kwargs, wait_for)
        self._check_arguments(args, kwargs)
        runner, tracker, flow_run_id = current_runner()
        task_run = TaskRun(self, args, kwargs, effective_tags(self), flow_run_id)
        submission = prepare(task_run, wait_for_futures(self, wait_for))
        future = dispatch(runner, tracker, [submission])[0]
        if _transaction.get() is not None:
            note_submitted([future])
        if return_state:
            future.wait()
            return future.state
        return future

    def map(self, *args: Any, wait_for: Any = None, return_state: bool = False,
            max_in_flight: int | None = None, **kwargs: Any) -> Any:
        """Submit one run per element of the iterable arguments (zipped); ``unmapped(x)``,
        and any argument that is not iterable (or is a str, bytes or IO object), is passed
        whole to every run. Returns a ``FutureList``.

        With ``max_in_flight=n`` — or over an iterator (a generator, ``map(...)``, ...)
        on a runner given a ``max_in_flight`` default — the map streams instead: the
        inputs are read as runs complete, at most ``n`` runs are open at a time, and a
        ``FutureStream`` is returned, to consume with ``as_completed`` (see
        ``fluvial.orchestration.streaming``)."""
        tracer = _visualizing()
        if tracer is not None:
            return tracer.map(self, args, kwargs, wait_for)
        bound = check_max_in_flight(f"task {self.name!r}", max_in_flight)
        if bound is not None or any(_one_shot(v) for v in (*args, *kwargs.values())):
            runner, tracker, flow_run_id = current_runner()
            if bound is None:
                bound = check_max_in_flight(f"{runner!r}", getattr(runner, "max_in_flight", None))
            if bound is not None:
                return self._stream(args, kwargs, wait_for, return_state, bound,
                                    runner, tracker, flow_run_id)
        positional = [self._map_source(i, None, a) for i, a in enumerate(args)]
        keyword = {k: self._map_source(None, k, v) for k, v in kwargs.items()}
        lengths = {label: len(values) for label, values in
                   [(f"argument {i}", v) for i, (v, _) in enumerate(positional) if not _]
                   + [(f"parameter {k!r}", v) for k, (v, s) in keyword.items() if not s]}
        if not lengths:
            raise MappingTypeError(f"task {self.name!r}: map() needs at least one iterable "
                                   "argument to map over (not unmapped(), str, bytes or IO); "
                                   "call submit() for a single run")
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{label} has {n}" for label, n in lengths.items())
            raise MappingLengthMismatch(
                f"task {self.name!r}: map() got iterables of different lengths: {detail}"
            )
        n = next(iter(lengths.values()))
        waits = wait_for_futures(self, wait_for)
        runner, tracker, flow_run_id = current_runner()
        tags = effective_tags(self)
        subs = []
        # one column per argument (a static one repeats), zipped: each run's arguments
        # come out as one tuple, without per-run Python loops over the arguments
        columns = [repeat(v) if static else v for v, static in positional]
        keys = list(keyword)
        columns += [repeat(v) if static else v for v, static in keyword.values()]
        n_positional = len(positional)
        with allocation_burst(n, flow_run_id):
            for i, call in enumerate(zip(*columns, strict=False)):  # repeat() is endless
                if keys:
                    call_args = call[:n_positional]
                    call_kwargs = dict(zip(keys, call[n_positional:], strict=True))
                else:
                    call_args, call_kwargs = call, {}
                if i == 0:
                    self._check_arguments(call_args, call_kwargs)
                subs.append(prepare(TaskRun(self, call_args, call_kwargs, tags, flow_run_id),
                                    waits))
            futures = FutureList(dispatch(runner, tracker, subs))
        if _transaction.get() is not None:
            note_submitted(futures)
        if return_state:
            futures.wait()
            return [f.state for f in futures]
        return futures

    def on_commit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: call ``fn(transaction)`` when a transaction this task completed in
        commits (``@my_task.on_commit``)."""
        self.on_commit_hooks.append(_as_hooks(f"task {self.name!r}", "on_commit", fn)[0])
        self._options["on_commit"] = tuple(self.on_commit_hooks)
        return fn

    def on_rollback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: call ``fn(transaction)`` when a transaction this task completed in
        rolls back, to undo the task's side effects (``@my_task.on_rollback``)."""
        self.on_rollback_hooks.append(_as_hooks(f"task {self.name!r}", "on_rollback", fn)[0])
        self._options["on_rollback"] = tuple(self.on_rollback_hooks)
        return fn

    def _stream(self, args: tuple, kwargs: dict, wait_for: Any, return_state: bool,
                bound: int, runner: Any, tracker: Any, flow_run_id: Any) -> Any:
        """``map`` as a ``FutureStream`` of at most ``bound`` open runs."""
        positional = [self._map_source(i, None, a, lazy=True) for i, a in enumerate(args)]
        keyword = {k: self._map_source(None, k, v, lazy=True) for k, v in kwargs.items()}
        if all(static for _, static in [*positional, *keyword.values()]):
            raise MappingTypeError(f"task {self.name!r}: map() needs at least one iterable "
                                   "argument to map over (not unmapped(), str, bytes or IO); "
                                   "call submit() for a single run")
        waits = wait_for_futures(self, wait_for)
        tags = effective_tags(self)

        def make(call_args: tuple, call_kwargs: dict) -> Any:
            return prepare(TaskRun(self, call_args, call_kwargs, tags, flow_run_id), waits)

        def submit(subs: list) -> list[Future]:
            futures = dispatch(runner, tracker, subs)
            if _transaction.get() is not None:
                note_submitted(futures)
            return futures

        streams = getattr(tracker, "streams", None)
        stream = FutureStream(self.name, StreamInputs(self.name, positional, keyword), make,
                              submit, bound,
                              on_done=None if streams is None else streams.discard,
                              check_first=self._check_arguments,
                              backlog=_backlog_of(getattr(tracker, "recorder", None)))
        if streams is not None and not stream.done:
            streams.add(stream)  # drained at the flow's end if nobody consumes it
        if return_state:
            return [f.state for f in stream.futures_in_order()]
        return stream

    def _map_source(self, index: int | None, key: str | None, value: Any,
                    lazy: bool = False) -> tuple[Any, bool]:
        """``(values, is_static)`` for one argument of ``map``.

        As in Prefect, what cannot be iterated — and ``str``, ``bytes`` and IO objects,
        which are iterable but used as single values — is passed whole to every run,
        exactly like ``unmapped(...)``.
        """
        if isinstance(value, unmapped):
            return value.value, True
        if isinstance(value, Future):
            value = value.result()
        if not _is_mappable(value):
            return value, True
        if lazy or isinstance(value, (list, tuple, range)):
            return value, False
        return list(value), False

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        bound = Task.__new__(Task)
        bound.__dict__.update(self.__dict__)
        bound.fn = self.fn.__get__(instance, owner)  # type: ignore[attr-defined]
        return bound


def _holds_upstream(value: Any) -> bool:
    """Whether an argument template still holds an upstream marker (a future's place)."""
    if type(value) is Upstream:
        return True
    if type(value) in (list, tuple, set, frozenset):
        return any(_holds_upstream(v) for v in value)
    if type(value) is dict:
        return any(_holds_upstream(v) for v in value.values())
    return False


def _refuse_reserved_parameters(fn: Callable[..., Any]) -> None:
    """A task parameter cannot be called ``wait_for``: the call itself takes it."""
    try:
        names = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if "wait_for" in names:
        raise ReservedArgumentError("'wait_for' is a reserved argument name and cannot be "
                                    "used in task functions.")


def _is_mappable(value: Any) -> bool:
    """Whether ``map`` iterates ``value`` (Prefect's ``isiterable``)."""
    if isinstance(value, (str, bytes, io.IOBase)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _backlog_of(recorder: Any) -> Callable[[], int] | None:
    """How many of the run record's events wait to be written (None: no record)."""
    if recorder is None or not hasattr(recorder, "pending"):
        return None
    return lambda: int(recorder.pending)


def _one_shot(value: Any) -> bool:
    """Whether ``value`` is an iterator (a generator...): it can be read only once, and
    on a runner with a ``max_in_flight`` default its map streams."""
    return _is_mappable(value) and not isinstance(value, unmapped) and iter(value) is value


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _caching_options(owner: str, persist_result: bool | None, policy: Any, cache_key_fn: Any,
                     storage_key: str | None, storage: Any, serializer: Any
                     ) -> tuple[bool, Any, Any]:
    """``(persist_result, cache_policy, key_policy)`` by Prefect 3's rules.

    ``persist_result`` left unset is implied by a cache policy (other than ``NO_CACHE``),
    ``cache_key_fn``, ``result_storage_key``, ``result_storage`` or ``result_serializer``.
    ``cache_policy`` is what the task reports (``DEFAULT`` when none was given, ``NO_CACHE``
    when results are not persisted); ``key_policy`` is what computes the cache key of a run
    (None: no cache lookup by key; a task with only persisted results still finds the
    results of its own flow run, see ``fluvial.worker.task_engine``).
    """
    from fluvial.cache_policies import DEFAULT, NO_CACHE, CachePolicy, StorageKeyPolicy

    if cache_key_fn is not None:
        if not callable(cache_key_fn):
            raise TypeError(f"{owner}: cache_key_fn must be callable, got {cache_key_fn!r}")
        policy = CachePolicy.from_cache_key_fn(cache_key_fn)
    if policy is not _UNSET and policy is not None and not isinstance(policy, CachePolicy):
        raise TypeError(f"{owner}: cache_policy must be a CachePolicy (e.g. INPUTS), "
                        f"got {policy!r}")
    explicit = policy is not _UNSET and policy is not None and policy is not NO_CACHE
    if persist_result is False:
        return False, (None if policy is None else NO_CACHE), None
    if persist_result is None:
        persist_result = bool(explicit or storage_key is not None or storage is not None
                              or serializer is not None)
    if not persist_result:  # results are not kept: DEFAULT has nothing to find
        return False, (DEFAULT if policy is _UNSET else policy), None
    if storage_key is not None:
        return True, None, StorageKeyPolicy(template=storage_key)
    if policy is _UNSET:
        return True, DEFAULT, None
    return True, policy, policy if explicit else None


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Any = None, **options: Any) -> Any:
    """Make a function a task: ``@task`` or ``@task(retries=3, ...)``."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)

