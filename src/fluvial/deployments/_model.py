"""``Deployment``: a flow, how to find its code, and how and when to run it.

What ``Flow.to_deployment`` returns and ``fluvial.serve`` / ``Flow.deploy``
store. ``apply()`` writes it to the run record (a second apply of the same
flow name and deployment name updates it in place: same id, schedules whose
slug did not change keep their next fire time).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import DeploymentNotFound

if TYPE_CHECKING:
    from fluvial.flows import Flow

__all__ = ["ConcurrencyLimitStrategy", "Deployment", "DeploymentNotFound", "RunnerDeployment"]


class ConcurrencyLimitStrategy(enum.StrEnum):
    """What happens to a run that is due while its deployment runs ``concurrency_limit`` runs."""

    ENQUEUE = "ENQUEUE"  # it waits for a slot
    CANCEL_NEW = "CANCEL_NEW"  # it is cancelled

    @classmethod
    def parse(cls, value: Any) -> ConcurrencyLimitStrategy:
        if isinstance(value, cls):
            return value
        text = str(value).strip().upper().replace("-", "_")
        try:
            return cls(text)
        except ValueError:
            raise ValueError(
                f"collision_strategy must be ENQUEUE or CANCEL_NEW, got {value!r}"
            ) from None


@dataclass
class Deployment:
    """One deployment of a flow. ``flow`` is the loaded flow when there is one."""

    name: str
    flow_name: str
    entrypoint: str | None = None
    source: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_schema: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    version: str | None = None
    work_pool: str | None = None
    concurrency_limit: int | None = None
    collision_strategy: ConcurrencyLimitStrategy = ConcurrencyLimitStrategy.ENQUEUE
    paused: bool = False
    schedules: list[Any] = field(default_factory=list)
    retries: int = 0
    triggers: list[Any] | None = field(default=None, compare=False)
    """Event triggers that run this deployment; None leaves stored ones as they are."""
    id: str | None = None
    created: float | None = None
    updated: float | None = None
    flow: Flow | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"deployment {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
            raise ValueError(f"deployment name must be a non-empty string without '/', "
                             f"got {self.name!r}")
        if self.concurrency_limit is not None and (
            isinstance(self.concurrency_limit, bool)
            or not isinstance(self.concurrency_limit, int)
            or self.concurrency_limit < 1
        ):
            raise ValueError(f"{where}: concurrency_limit must be an integer >= 1, "
                             f"got {self.concurrency_limit!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"{where}: retries must be an integer >= 0, got {self.retries!r}")
        self.collision_strategy = ConcurrencyLimitStrategy.parse(self.collision_strategy)
        for tag in self.tags:
            if not isinstance(tag, str) or not tag:
                raise ValueError(f"{where}: tags must be non-empty strings, got {tag!r}")

    @property
    def full_name(self) -> str:
        """``flow-name/deployment-name``, as the CLI and ``run_deployment`` name it."""
        return f"{self.flow_name}/{self.name}"

    def apply(self) -> str:
        """Store this deployment (create or update) and its schedules; returns its id."""
        from fluvial.deployments import _records

        self.id = _records.apply_deployment(self)
        return self.id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``deployment inspect -o json``)."""
        return {
            "id": self.id,
            "name": self.name,
            "flow_name": self.flow_name,
            "entrypoint": self.entrypoint,
            "source": self.source,
            "parameters": self.parameters,
            "parameter_schema": self.parameter_schema,
            "tags": list(self.tags),
            "description": self.description,
            "version": self.version,
            "work_pool": self.work_pool,
            "concurrency_limit": self.concurrency_limit,
            "collision_strategy": self.collision_strategy.value,
            "paused": self.paused,
            "retries": self.retries,
            "created": self.created,
            "updated": self.updated,
        }


RunnerDeployment = Deployment  # Prefect's name for what to_deployment() returns
