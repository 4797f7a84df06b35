"""``Flow.visualize()`` and ``Flow.generate_mermaid_graph()``: a flow's task graph without
running its tasks.

The flow function is called with a tracer in a context variable; while it is set, every
task call, ``submit`` and ``map`` records a node and returns a *placeholder* instead of
running (``result()``, ``wait()`` and iteration work on it, so ordinary flow code goes
through). A placeholder passed to another task — directly, inside lists, tuples, sets,
dicts, ``unmapped``/``quote``, or in ``wait_for`` — is an edge. A ``map`` is one node
with the number of runs it would make (``×?`` when it maps over a placeholder, whose
length is not known until the flow really runs). A subflow is one node. Task code, hooks
and the run record are never touched.

The graph is Mermaid text (``flowchart TD``); ``visualize()`` prints it and, when the
``graphviz`` package and its ``dot`` program are installed, also renders it to
``<flow name>.<format>`` as Prefect does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fluvial.exceptions import FlowVisualizationError

__all__ = ["FlowVisualizationError", "TaskGraph", "trace_flow"]

logger = logging.getLogger("fluvial.visualization")


@dataclass
class Node:
    id: str
    label: str
    kind: str = "task"  # "task", "map" or "subflow"
    count: int | None = None  # runs of a map; None when not known before running


@dataclass
class TaskGraph:
    """The nodes and edges ``visualize()`` draws."""

    flow_name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str, bool]] = field(default_factory=list)  # (from, to, wait_for)

    def mermaid(self) -> str:
        lines = ["flowchart TD"]
        for node in self.nodes:
            label = node.label.replace('"', "#quot;")
            if node.kind == "map":
                count = "?" if node.count is None else str(node.count)
                lines.append(f'    {node.id}[["{label} ×{count}"]]')
            elif node.kind == "subflow":
                lines.append(f'    {node.id}(["{label} (subflow)"])')
            else:
                lines.append(f'    {node.id}["{label}"]')
        for source, target, ordering in self.edges:
            lines.append(f"    {source} {'-.->' if ordering else '-->'} {target}")
        return "\n".join(lines)

    def render(self, filename: str | None = None, format: str = "png") -> str | None:
        """Render with graphviz when it is installed; the file written, else None."""
        try:
            import graphviz  # type: ignore[import-not-found]
        except ImportError:
            logger.info("graphviz is not installed: only the Mermaid text is shown "
                        "(pip install graphviz, and the graphviz 'dot' program)")
            return None
        graph = graphviz.Digraph(self.flow_name, format=format)
        for node in self.nodes:
            shape = {"map": "box3d", "subflow": "component"}.get(node.kind, "box")
            label = node.label if node.kind != "map" else (
                f"{node.label} ×{'?' if node.count is None else node.count}")
            graph.node(node.id, label, shape=shape)
        for source, target, ordering in self.edges:
            graph.edge(source, target, style="dashed" if ordering else "solid")
        try:
            return str(graph.render(filename or self.flow_name, cleanup=True))
        except graphviz.ExecutableNotFound:
            logger.info("graphviz's 'dot' program is not installed: only the Mermaid text "
                        "is shown")
            return None


class Placeholder:
    """Stands for the result (or future) of a task call while a flow is traced."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    def result(self, *args: Any, **kwargs: Any) -> Placeholder:
        return self

    def wait(self, *args: Any, **kwargs: Any) -> None:
        return None

    def done(self) -> bool:
        return True

    @property
    def state(self) -> Any:
        from fluvial.states import Completed

        return Completed(self)

    def __iter__(self) -> Iterator[Placeholder]:
        yield self  # ``[f.result() for f in futures]`` over a traced map

    def __await__(self) -> Any:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    def __repr__(self) -> str:
        return f"<placeholder of {self.node.label!r}>"


_tracer: ContextVar[_Tracer | None] = ContextVar("fluvial_visualization", default=None)


def active() -> _Tracer | None:
    """The tracer of the flow being visualized in this context, or None."""
    return _tracer.get()


class _Tracer:
    def __init__(self, flow_name: str) -> None:
        self.graph = TaskGraph(flow_name)
        self._labels: dict[str, int] = {}

    def _node(self, name: str, kind: str, count: int | None = None) -> Node:
        seen = self._labels.get(name, 0) + 1
        self._labels[name] = seen
        node = Node(f"n{len(self.graph.nodes)}", name if seen == 1 else f"{name} ({seen})",
                    kind, count)
        self.graph.nodes.append(node)
        return node

    def _edges(self, node: Node, args: tuple, kwargs: dict, wait_for: Any) -> Node:
        for upstream in _placeholders([args, kwargs]):
            self._edge(upstream.node.id, node.id, False)
        if wait_for is not None:
            for upstream in _placeholders(wait_for):
                self._edge(upstream.node.id, node.id, True)
        return node

    def _edge(self, source: str, target: str, ordering: bool) -> None:
        if (source, target, ordering) not in self.graph.edges:
            self.graph.edges.append((source, target, ordering))

    def call(self, task: Any, args: tuple, kwargs: dict, wait_for: Any = None) -> Any:
        node = self._edges(self._node(task.name, "task"), args, kwargs, wait_for)
        return Placeholder(node)

    def map(self, task: Any, args: tuple, kwargs: dict, wait_for: Any = None) -> Any:
        node = self._edges(self._node(task.name, "map", _map_count(args, kwargs)),
                           args, kwargs, wait_for)
        return Placeholder(node)

    def subflow(self, flow: Any, args: tuple, kwargs: dict) -> Any:
        node = self._edges(self._node(flow.name, "subflow"), args, kwargs, None)
        return Placeholder(node)


def _placeholders(value: Any) -> Iterator[Placeholder]:
    if isinstance(value, Placeholder):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _placeholders(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    else:
        inner = getattr(value, "value", None)  # unmapped / quote / opaque / allow_failure
        if inner is not None and type(value).__module__ == "fluvial.annotations":
            yield from _placeholders(inner)


def _map_count(args: tuple, kwargs: dict) -> int | None:
    """How many runs a ``map`` would make; None when it maps over a placeholder."""
    lengths = set()
    for value in [*args, *kwargs.values()]:
        if type(value).__module__ == "fluvial.annotations" or isinstance(value, (str, bytes)):
            continue  # passed whole to every run
        if isinstance(value, Placeholder):
            return None
        if isinstance(value, Iterable) and hasattr(value, "__len__"):
            lengths.add(len(value))  # type: ignore[arg-type]
    return min(lengths) if lengths else None


def trace_flow(flow: Any, args: tuple, kwargs: dict) -> TaskGraph:
    """Call ``flow``'s function with task calls recorded instead of run."""
    try:
        bound = inspect.signature(flow.fn).bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"flow {flow.name!r}: visualize() arguments: {exc}") from None
    bound.apply_defaults()
    tracer = _Tracer(flow.name)
    token = _tracer.set(tracer)
    try:
        result = flow.fn(*bound.args, **bound.kwargs)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    except Exception as exc:
        raise FlowVisualizationError(
            f"flow {flow.name!r} could not be traced for visualize(): "
            f"{type(exc).__name__}: {exc}. While visualizing, task calls return placeholders "
            "instead of results; flow code that needs a real value (arithmetic, indexing, "
            "branching on a result) cannot be traced") from exc
    finally:
        _tracer.reset(token)
    return tracer.graph
