"""Cache policies, Prefect 3 style: small objects that compute a task run's cache key,
combined with ``+``.

A policy is a ``CachePolicy`` with ``compute_key(task_ctx, inputs, flow_parameters,
**kwargs)``, Prefect's signature: ``task_ctx`` is the ``TaskRunContext`` (``.task``,
``.task_run``), ``inputs`` the run's arguments by parameter name, ``flow_parameters``
the flow run's parameters. Custom policies written for Prefect (a subclass overriding
``compute_key``, with or without ``@dataclass``) work unchanged.

``INPUTS`` hashes the task's arguments (``INPUTS - "client"`` leaves a parameter out),
``TASK_SOURCE`` the function's source, ``FLOW_PARAMETERS`` the flow run's parameters,
``RUN_ID`` the flow run id; ``DEFAULT`` is ``INPUTS + TASK_SOURCE + RUN_ID``;
``NO_CACHE`` turns caching off. A key of ``None`` means "do not cache this call".

``policy.configure(isolation_level="SERIALIZABLE")`` makes concurrent runs with the
same key compute once: the first takes a lock on the key (a file lock under the result
storage directory, so it holds across processes on one machine or on a shared file
system) and the others wait, then read its record. The default ``"READ_COMMITTED"``
lets a race compute twice; the last atomic write wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluvial.context import TaskRunContext

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "Inputs",
    "RunId",
    "TaskSource",
]

ISOLATION_LEVELS = ("READ_COMMITTED", "SERIALIZABLE")


@dataclass
class CachePolicy:
    """Computes a task run's cache key; ``None`` means "do not cache this call"."""

    isolation_level: str = field(default="READ_COMMITTED", kw_only=True)
    # where this policy's records go (a directory; default: the task's result storage)
    key_storage: Any = field(default=None, kw_only=True)
    lock_manager: Any = field(default=None, kw_only=True)  # accepted for Prefect; file locks

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        raise NotImplementedError

    @classmethod
    def from_cache_key_fn(cls, cache_key_fn: Callable[..., str | None]) -> CacheKeyFnPolicy:
        """A policy from a Prefect-style ``cache_key_fn(context, inputs)``."""
        return CacheKeyFnPolicy(cache_key_fn=cache_key_fn)

    def configure(self, isolation_level: str | None = None, key_storage: Any = None,
                  lock_manager: Any = None, **_: Any) -> CachePolicy:
        """A copy with another isolation level, record directory or lock manager."""
        changes: dict[str, Any] = {}
        if isolation_level is not None:
            level = getattr(isolation_level, "value", isolation_level)
            if level not in ISOLATION_LEVELS:
                raise ValueError(f"isolation_level must be one of {ISOLATION_LEVELS}, "
                                 f"got {isolation_level!r}")
            changes["isolation_level"] = level
        if key_storage is not None:
            changes["key_storage"] = key_storage
        if lock_manager is not None:
            changes["lock_manager"] = lock_manager
        return _with_changes(self, changes) if changes else self

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache) or isinstance(self, _NoCache):
            return other if isinstance(self, _NoCache) else self
        parts = _parts(self) + _parts(other)
        level = "SERIALIZABLE" if "SERIALIZABLE" in (self.isolation_level,
                                                     other.isolation_level) else "READ_COMMITTED"
        return CompoundCachePolicy(policies=list(parts), isolation_level=level)

    def __sub__(self, parameter: str) -> CachePolicy:
        """Leave parameter ``parameter`` out of the key (only ``Inputs`` looks at them:
        for other policies this is the policy itself, as in Prefect)."""
        if not isinstance(parameter, str):
            raise TypeError("<policy> - <parameter name> needs a string")
        return self


def _with_changes(policy: CachePolicy, changes: dict[str, Any]) -> CachePolicy:
    import copy
    import dataclasses

    if dataclasses.is_dataclass(policy):
        try:
            return replace(policy, **changes)
        except TypeError:  # a subclass whose __init__ does not take the fields
            pass
    twin = copy.copy(policy)
    for name, value in changes.items():
        object.__setattr__(twin, name, value)
    return twin


def _parts(policy: CachePolicy) -> list[CachePolicy]:
    return list(policy.policies) if isinstance(policy, CompoundCachePolicy) else [policy]


@dataclass
class CompoundCachePolicy(CachePolicy):
    """Several policies' keys hashed together. As in Prefect, nested compounds are
    flattened, several ``Inputs`` merge into one (their exclusions combined), a part whose
    key is None is left out, and the key is None only when every part's is."""

    policies: list[CachePolicy] = field(default_factory=list)

    def __post_init__(self) -> None:
        flat: list[CachePolicy] = []
        for policy in self.policies:
            flat.extend(_parts(policy))
        inputs = [p for p in flat if type(p) is Inputs]
        if len(inputs) > 1:
            merged = Inputs(exclude=sorted({e for p in inputs for e in p.exclude}))
            first = flat.index(inputs[0])
            flat = [p for p in flat if type(p) is not Inputs]
            flat.insert(first, merged)
        self.policies = flat

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        keys = []
        for policy in self.policies:
            key = policy.compute_key(task_ctx=task_ctx, inputs=inputs,
                                     flow_parameters=flow_parameters, **kwargs)
            if key is not None:
                keys.append(key)
        if not keys:
            return None
        return hashlib.sha256("|".join(keys).encode()).hexdigest()

    def __sub__(self, parameter: str) -> CachePolicy:
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self
        return replace(self, policies=[
            p - parameter if isinstance(p, Inputs) else p for p in self.policies])


@dataclass
class Inputs(CachePolicy):
    """The run's arguments (``exclude``: parameters left out, e.g. a client)."""

    exclude: list[str] = field(default_factory=list)

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        from fluvial.serialization import hash_inputs

        return hash_inputs(inputs or {}, exclude=tuple(self.exclude))

    def __sub__(self, parameter: str) -> CachePolicy:
        if not isinstance(parameter, str):
            raise TypeError("INPUTS - <parameter name> needs a string")
        return replace(self, exclude=[*self.exclude, parameter])


@dataclass
class TaskSource(CachePolicy):
    """The task function's source (its bytecode when there is no source); None when
    neither can be read."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        from fluvial.serialization import HashError, source_hash

        if task_ctx is None:
            return None
        task: Any = task_ctx.task
        try:
            return source_hash(getattr(task, "fn", task))
        except HashError:
            return None


@dataclass
class FlowParameters(CachePolicy):
    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        from fluvial.serialization import hash_inputs

        return hash_inputs(flow_parameters or {})


@dataclass
class RunId(CachePolicy):
    """The flow run's id (a retried flow run's lineage, so ``fluvial runs retry`` finds
    the results of the first attempt); the task run's id outside a flow."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        if task_ctx is None:
            return None
        task_run = task_ctx.task_run
        run_id = getattr(task_run, "lineage_id", None) or task_run.flow_run_id or task_run.id
        return str(run_id)


@dataclass
class _NoCache(CachePolicy):
    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        return None


@dataclass
class CacheKeyFnPolicy(CachePolicy):
    """Wraps a Prefect-style ``cache_key_fn(context, arguments) -> str | None``."""

    cache_key_fn: Callable[..., str | None] | None = None

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        assert self.cache_key_fn is not None
        key = self.cache_key_fn(task_ctx, inputs)
        if key is None:
            return None
        return hashlib.sha256(str(key).encode()).hexdigest()


@dataclass
class StorageKeyPolicy(CachePolicy):
    """``result_storage_key=``: the key is the template, formatted with ``parameters``
    (the run's inputs) and ``flow_run``/``task_run`` (``fluvial.runtime``), as Prefect's."""

    template: str = ""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        from fluvial.runtime import deployment, flow_run, task_run

        try:
            return self.template.format(parameters=inputs, flow_run=flow_run,
                                        task_run=task_run, deployment=deployment)
        except (KeyError, IndexError, AttributeError) as exc:
            raise ValueError(f"result_storage_key {self.template!r} refers to {exc}, which "
                             "is not known (use {parameters[name]}, {flow_run.id}, "
                             "{task_run.name} ...)") from None


_None = _NoCache  # Prefect's name of NO_CACHE's class

INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = _NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


_OWN_KEYS = (Inputs, TaskSource, RunId, _NoCache, CacheKeyFnPolicy, StorageKeyPolicy)


def needs_flow_parameters(policy: CachePolicy | None) -> bool:
    """Whether computing ``policy``'s key needs the flow run's parameters on the worker
    (``FLOW_PARAMETERS``, or a policy fluvial does not know, which may read them)."""
    return policy is not None and any(not isinstance(p, _OWN_KEYS) for p in _parts(policy))


