"""Cache policies, Prefect 3 style: small objects that compute a task run's cache key,
combined with ``+``.

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
from typing import Any

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
]

ISOLATION_LEVELS = ("READ_COMMITTED", "SERIALIZABLE")


@dataclass(frozen=True)
class CachePolicy:
    isolation_level: str = field(default="READ_COMMITTED", kw_only=True)

    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def configure(self, isolation_level: str | None = None, **_: Any) -> CachePolicy:
        if isolation_level is None:
            return self
        if isolation_level not in ISOLATION_LEVELS:
            raise ValueError(f"isolation_level must be one of {ISOLATION_LEVELS}, "
                             f"got {isolation_level!r}")
        return replace(self, isolation_level=isolation_level)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache) or isinstance(self, _NoCache):
            return other if isinstance(self, _NoCache) else self
        parts = _parts(self) + _parts(other)
        level = "SERIALIZABLE" if "SERIALIZABLE" in (self.isolation_level,
                                                     other.isolation_level) else "READ_COMMITTED"
        return CompoundCachePolicy(tuple(parts), isolation_level=level)

    def __sub__(self, parameter: str) -> CachePolicy:
        raise TypeError(f"only INPUTS can leave out a parameter, not {self!r}")


def _parts(policy: CachePolicy) -> list[CachePolicy]:
    return list(policy.policies) if isinstance(policy, CompoundCachePolicy) else [policy]


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: tuple[CachePolicy, ...] = ()

    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        keys = []
        for policy in self.policies:
            key = policy.compute_key(task, task_run, inputs)
            if key is None:
                return None
            keys.append(key)
        return hashlib.sha256("|".join(keys).encode()).hexdigest()

    def __sub__(self, parameter: str) -> CachePolicy:
        return replace(self, policies=tuple(
            p - parameter if isinstance(p, Inputs) else p for p in self.policies))


@dataclass(frozen=True)
class Inputs(CachePolicy):
    exclude: tuple[str, ...] = ()

    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        from fluvial.serialization import hash_inputs

        return hash_inputs(inputs, exclude=self.exclude)

    def __sub__(self, parameter: str) -> CachePolicy:
        if not isinstance(parameter, str):
            raise TypeError("INPUTS - <parameter name> needs a string")
        return replace(self, exclude=(*self.exclude, parameter))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        from fluvial.serialization import source_hash

        return source_hash(task.fn)


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        return task_run.flow_parameters_hash


@dataclass(frozen=True)
class RunId(CachePolicy):
    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        run_id = task_run.flow_run_id or task_run.id
        return str(run_id)


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        return None


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """Wraps a Prefect-style ``cache_key_fn(context, arguments) -> str | None``."""

    cache_key_fn: Callable[..., str | None] | None = None

    def compute_key(self, task: Any, task_run: Any, inputs: dict[str, Any]) -> str | None:
        from fluvial.context import TaskRunContext

        assert self.cache_key_fn is not None
        key = self.cache_key_fn(TaskRunContext(task, task_run), inputs)
        if key is None:
            return None
        return hashlib.sha256(str(key).encode()).hexdigest()


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = _NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


def needs_flow_parameters(policy: CachePolicy | None) -> bool:
    return policy is not None and any(isinstance(p, FlowParameters) for p in _parts(policy))


