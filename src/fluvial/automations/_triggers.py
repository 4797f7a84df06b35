"""Triggers, as in ``prefect.events``: what an automation waits for.

    EventTrigger(expect={"fluvial.flow-run.Completed"}, match={...}, match_related={...},
                 after=set(), for_each=set(), posture="Reactive", threshold=1,
                 within=timedelta(0))
    DeploymentEventTrigger(..., parameters={...})     an EventTrigger that runs a deployment
    CompoundTrigger(triggers=[...], require="any" | "all" | n, within=...)
    SequenceTrigger(triggers=[...], within=...)

*Reactive*: fires when ``threshold`` matching events arrive within ``within`` (0: no
bound) — one firing per event when ``threshold`` is 1. *Proactive*: fires when no
matching event arrives within ``within`` (once per window). ``after``: events that arm
the trigger first. ``for_each``: labels whose values split the trigger into independent
buckets (one per resource, say). Windows use the time an event was *received*.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fluvial.events._labels import canonical_label, canonical_name
from fluvial.events._matching import normalize_spec

__all__ = [
    "CompoundTrigger",
    "DeploymentEventTrigger",
    "EventTrigger",
    "Posture",
    "SequenceTrigger",
    "Trigger",
]


class Posture:
    """``Posture.Reactive`` / ``Posture.Proactive``, as Prefect spells them."""

    Reactive = "Reactive"
    Proactive = "Proactive"


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventTrigger(_Base):
    """Fire on matching events (Reactive), or on their absence (Proactive)."""

    type: Literal["event"] = "event"
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    match_related: dict[str, str | list[str]] | list[dict[str, str | list[str]]] = Field(
        default_factory=dict)
    after: set[str] = Field(default_factory=set)
    expect: set[str] = Field(default_factory=set)
    for_each: set[str] = Field(default_factory=set)
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: int = Field(default=1, ge=1)
    within: dt.timedelta = dt.timedelta(0)

    @field_validator("expect", "after")
    @classmethod
    def _names(cls, names: set[str]) -> set[str]:
        return {canonical_name(n) for n in names}

    @field_validator("for_each")
    @classmethod
    def _labels(cls, labels: set[str]) -> set[str]:
        return {canonical_label(label) for label in labels}

    @field_validator("match")
    @classmethod
    def _match(cls, spec: dict[str, Any]) -> dict[str, Any]:
        return normalize_spec(spec, "match")

    @field_validator("match_related")
    @classmethod
    def _match_related(cls, spec: Any) -> Any:
        specs = [spec] if isinstance(spec, dict) else spec
        return [normalize_spec(s, "match_related") for s in specs if s]

    @field_validator("within", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        return value

    @model_validator(mode="after")
    def _proactive_needs_a_window(self) -> EventTrigger:
        if self.within < dt.timedelta(0):
            raise ValueError("within must not be negative")
        if self.posture == Posture.Proactive and self.within <= dt.timedelta(0):
            raise ValueError("a Proactive trigger needs within > 0: the window in which the "
                             "expected event must arrive")
        if self.posture == Posture.Proactive and not self.expect:
            raise ValueError("a Proactive trigger needs expect: the event that must arrive")
        return self

    @property
    def related_specs(self) -> list[dict[str, list[str]]]:
        return self.match_related  # type: ignore[return-value]  # normalised by the validator


class DeploymentEventTrigger(EventTrigger):
    """An ``EventTrigger`` on a deployment: when it fires, the deployment runs with
    ``parameters`` (values may be templates: ``"{{ event.payload.x }}"``)."""

    name: str | None = None
    description: str | None = None
    enabled: bool = True
    parameters: dict[str, Any] | None = None


class CompoundTrigger(_Base):
    """Fire when ``require`` of ``triggers`` ("any", "all", or a number) have matched
    within ``within`` of one another."""

    type: Literal["compound"] = "compound"
    triggers: list[EventTrigger] = Field(min_length=1)
    require: Literal["any", "all"] | int = "all"
    within: dt.timedelta = dt.timedelta(0)

    @field_validator("within", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return EventTrigger._seconds(value)

    @model_validator(mode="after")
    def _check(self) -> CompoundTrigger:
        if any(t.posture != Posture.Reactive for t in self.triggers):
            raise ValueError("the triggers of a compound trigger must be Reactive")
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require must be 'any', 'all' or 1..{len(self.triggers)}")
        return self

    @property
    def required(self) -> int:
        if self.require == "any":
            return 1
        if self.require == "all":
            return len(self.triggers)
        return int(self.require)


class SequenceTrigger(_Base):
    """Fire when ``triggers`` match in order, all within ``within`` of the first."""

    type: Literal["sequence"] = "sequence"
    triggers: list[EventTrigger] = Field(min_length=1)
    within: dt.timedelta = dt.timedelta(0)

    @field_validator("within", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return EventTrigger._seconds(value)

    @model_validator(mode="after")
    def _check(self) -> SequenceTrigger:
        if any(t.posture != Posture.Reactive for t in self.triggers):
            raise ValueError("the triggers of a sequence trigger must be Reactive")
        return self


Trigger = Annotated[EventTrigger | CompoundTrigger | SequenceTrigger, Field(discriminator="type")]
