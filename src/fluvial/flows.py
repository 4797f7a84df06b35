"""``Flow`` and the ``@flow`` decorator.

Calling a flow runs a flow run and returns its result (or its final ``State`` with
``return_state=True``); calling one inside another makes a subflow, which can wait for
futures with ``wait_for=``. Calling an ``async def`` flow returns a coroutine to await.

As in Prefect, a flow's default name is its function's name with ``_`` → ``-``; names
with ``/ % & > <`` are refused. ``@flow`` works on instance methods, classmethods and
staticmethods (above or below ``@classmethod``/``@staticmethod``): the flow is bound to
its instance or class like a method, and ``self``/``cls`` is not a parameter of the run.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from fluvial._options import register_hook
from fluvial.exceptions import InvalidNameError
from fluvial.orchestration.parameters import UNBOUND, ParameterValidator
from fluvial.runners.base import TaskRunner
from fluvial.visualization import active as _visualizing

__all__ = ["BANNED_CHARACTERS", "Flow", "flow"]

BANNED_CHARACTERS = ["/", "%", "&", ">", "<"]


def raise_on_name_with_banned_characters(name: str) -> None:
    """``InvalidNameError`` for a name with a character Prefect bans."""
    if any(c in name for c in BANNED_CHARACTERS):
        raise InvalidNameError(f"Name {name!r} contains an invalid character. "
                               f"Must not contain any of: {BANNED_CHARACTERS}.")


def default_flow_name(fn: Any) -> str:
    """Prefect's default: the function's name with ``_`` → ``-`` (``unknown-lambda``)."""
    name = getattr(fn, "__name__", None)
    if name is None:
        return type(fn).__name__
    return str(name).replace("_", "-").replace("<lambda>", "unknown-lambda")

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function fluvial runs as a tracked flow run, its tasks on ``task_runner``
    (generic in its parameters and return type, as Prefect's ``Flow[P, R]``)."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        task_runner: TaskRunner | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        log_prints: bool | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        on_running: Sequence[Callable[..., Any]] | None = None,
        on_cancellation: Sequence[Callable[..., Any]] | None = None,
        on_crashed: Sequence[Callable[..., Any]] | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        persist_result: bool | None = None,
        result_serializer: str | None = None,
        result_storage: Any = None,
    ) -> None:
        from fluvial._options import (
            as_hooks,
            check_flag,
            check_number,
            check_result_serializer,
            check_result_storage,
            check_text,
        )

        self._method_kind: str | None = None  # "classmethod" or "staticmethod"
        if isinstance(fn, (classmethod, staticmethod)):
            self._method_kind = type(fn).__name__
            fn = fn.__func__
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Expected string for flow parameter 'name'; got "
                            f"{type(name).__name__} instead.")
        self.fn = fn
        self.name: str = name or default_flow_name(fn)
        raise_on_name_with_banned_characters(self.name)
        self._bound_to: Any = UNBOUND  # the instance or class of a flow on a method
        owner = f"flow {self.name!r}"
        check_number(owner, "retries", retries, allow_none=False, integer=True)
        check_number(owner, "retry_delay_seconds", retry_delay_seconds, allow_none=False)
        check_number(owner, "timeout_seconds", timeout_seconds, positive=True)
        check_text(owner, "version", version)
        check_text(owner, "description", description)
        check_flag(owner, "validate_parameters", validate_parameters, allow_none=False)
        check_flag(owner, "log_prints", log_prints)
        check_flag(owner, "persist_result", persist_result)
        check_result_serializer(owner, result_serializer)
        check_result_storage(owner, result_storage)
        if flow_run_name is not None and not (isinstance(flow_run_name, str)
                                              or callable(flow_run_name)):
            raise TypeError(f"{owner}: flow_run_name must be a string template or a callable")
        if isinstance(task_runner, type):
            task_runner = task_runner()
        if task_runner is not None and not isinstance(task_runner, TaskRunner):
            raise TypeError(f"{owner}: task_runner must be a TaskRunner, got {task_runner!r}")
        self.version = version
        self.description = description if description is not None else inspect.getdoc(fn)
        self.task_runner = task_runner
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.validate_parameters = validate_parameters
        self.log_prints = log_prints
        # Prefect's attribute names; ``@my_flow.on_completion`` etc. append to them
        self.on_completion_hooks = list(as_hooks(owner, "on_completion", on_completion))
        self.on_failure_hooks = list(as_hooks(owner, "on_failure", on_failure))
        self.on_running_hooks = list(as_hooks(owner, "on_running", on_running))
        self.on_cancellation_hooks = list(as_hooks(owner, "on_cancellation", on_cancellation))
        self.on_crashed_hooks = list(as_hooks(owner, "on_crashed", on_crashed))
        self.flow_run_name = flow_run_name
        self.persist_result = persist_result
        self.result_serializer = result_serializer
        self.result_storage = result_storage
        self.is_async = inspect.iscoroutinefunction(fn)
        self.validator = ParameterValidator(fn, owner)
        self._options = dict(
            name=name, version=version, description=description, task_runner=task_runner,
            retries=retries, retry_delay_seconds=retry_delay_seconds,
            timeout_seconds=timeout_seconds, validate_parameters=validate_parameters,
            log_prints=log_prints, on_completion=on_completion, on_failure=on_failure,
            on_running=on_running, on_cancellation=on_cancellation, on_crashed=on_crashed,
            flow_run_name=flow_run_name, persist_result=persist_result,
            result_serializer=result_serializer, result_storage=result_storage,
        )

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"flow {self.name!r}: unknown option(s) {sorted(unknown)}")
        merged = {**self._options, **options}
        if merged["name"] is None:
            merged["name"] = self.name
        fn: Any = self.fn
        if self._method_kind == "classmethod":
            fn = classmethod(fn)
        elif self._method_kind == "staticmethod":
            fn = staticmethod(fn)
        twin: Flow[P, R] = Flow(fn, **merged)
        twin._bound_to = self._bound_to
        return twin

    # -- hooks as decorators (Prefect's ``@my_flow.on_completion``) ------------------------
    def on_completion(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` for a Completed run; return it."""
        return register_hook(self, "on_completion", fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` for a Failed run; return it."""
        return register_hook(self, "on_failure", fn)

    def on_running(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` for when the run starts running."""
        return register_hook(self, "on_running", fn)

    def on_cancellation(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` for a Cancelled run; return it."""
        return register_hook(self, "on_cancellation", fn)

    def on_crashed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` for a Crashed run; return it."""
        return register_hook(self, "on_crashed", fn)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """A flow on a method, bound like one: to the instance, or to the class for a
        classmethod; a staticmethod (or access on the class) gives the flow itself."""
        if self._method_kind == "staticmethod":
            return self
        if self._method_kind == "classmethod":
            target = owner if owner is not None else type(instance)
        elif instance is None:
            return self
        else:
            target = instance
        bound = copy.copy(self)
        bound._bound_to = target
        return bound

    def render_run_name(self, parameters: dict[str, Any]) -> str | None:
        template = self.flow_run_name
        if template is None:
            return None
        if callable(template):
            return str(template())
        return template.format(**parameters)

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None,
                 **kwargs: Any) -> Any:
        """Run the flow; ``wait_for=`` futures must complete first (as for a task), or the
        run ends ``NotReady`` without running."""
        from fluvial.orchestration.flow_engine import run_flow

        tracer = _visualizing()
        if tracer is not None:  # a subflow of a flow being visualized: one node
            return tracer.subflow(self, args, kwargs)
        if self.is_async:
            return asyncio.to_thread(run_flow, self, args, kwargs, return_state, wait_for)
        return run_flow(self, args, kwargs, return_state, wait_for)

    # -- the task graph, without running it (fluvial.visualization) ------------------------

    def generate_mermaid_graph(self, *args: Any, **kwargs: Any) -> str:
        """The flow's task graph as Mermaid text: the function is called with task calls
        recorded instead of run (tasks return placeholders); ``args``/``kwargs`` are the
        flow's parameters (defaults apply)."""
        from fluvial.visualization import trace_flow

        return trace_flow(self, args, kwargs).mermaid()

    def visualize(self, *args: Any, filename: str | None = None, format: str = "png",
                  **kwargs: Any) -> str:
        """Print the flow's task graph as Mermaid text and return it; when graphviz (and
        its ``dot`` program) is installed, also render it to ``filename`` (default: the
        flow's name) ``.format``. Tasks do not run."""
        from fluvial.visualization import trace_flow

        graph = trace_flow(self, args, kwargs)
        text = graph.mermaid()
        print(text)
        graph.render(filename, format)
        return text

    # -- deployments (the platform layer: fluvial/deployments/_flow_api.py) ---------------

    def to_deployment(self, name: str, **options: Any) -> Any:
        """A ``Deployment`` of this flow: ``cron=``/``interval=``/``rrule=``/``schedules=``,
        ``parameters=``, ``tags=``, ``work_pool_name=``, ``concurrency_limit=`` ..."""
        from fluvial.deployments._flow_api import to_deployment

        return to_deployment(self, name, **options)

    def serve(self, name: str, *, limit: int | None = None, pause_on_shutdown: bool = False,
              **options: Any) -> None:
        """Store a deployment of this flow and run its runs in this process until stopped."""
        from fluvial.workers import serve

        serve(self.to_deployment(name, **options), limit=limit,
              pause_on_shutdown=pause_on_shutdown)

    def deploy(self, name: str, work_pool_name: str = "default", **options: Any) -> str:
        """Store a deployment of this flow for the workers of ``work_pool_name``; its id."""
        from fluvial.deployments._flow_api import deploy

        return deploy(self, name, work_pool_name, **options)

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[..., Any]:
        """The flow at ``entrypoint`` (``path.py:flow``) in ``source``: a directory or git URL."""
        from fluvial.deployments._flow_api import from_source

        return from_source(source, entrypoint)


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(**options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Make a function a flow: ``@flow`` or ``@flow(task_runner=..., retries=...)``."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
