"""What every schedule shares: the per-schedule policies, the slug, the JSON form.

A schedule is an immutable value. Subclasses (:mod:`._cron`, :mod:`._interval`,
:mod:`._rrule`) say when it fires (:meth:`Schedule.fire_times`) and which of their
fields decide that (:meth:`Schedule._timing`); this module does the rest:

- policies: ``catchup`` (``"latest"`` | ``"all"`` | ``"none"``), ``max_catchup_runs``,
  ``overlap`` (``"skip"`` | ``"buffer_one"`` | ``"allow_all"``), ``max_lateness``;
- ``derived_slug``: the explicit ``slug``, or ``<kind>-<digest>`` where the digest is
  a SHA-256 of the normalized timing fields and parameters: stable across processes
  and redeploys, never random;
- ``to_dict()`` / :func:`schedule_from_dict`: the JSON kept in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal

__all__ = [
    "CATCHUP_POLICIES",
    "DEFAULT_MAX_CATCHUP_RUNS",
    "OVERLAP_POLICIES",
    "Catchup",
    "Overlap",
    "Schedule",
    "schedule_from_dict",
]

Catchup = Literal["latest", "all", "none"]
Overlap = Literal["skip", "buffer_one", "allow_all"]
CATCHUP_POLICIES: tuple[str, ...] = ("latest", "all", "none")
OVERLAP_POLICIES: tuple[str, ...] = ("skip", "buffer_one", "allow_all")
DEFAULT_MAX_CATCHUP_RUNS = 100
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

_KINDS: dict[str, type[Schedule]] = {}


class Schedule:
    """Base of :class:`Cron`, :class:`Interval` and :class:`RRule`; not made directly."""

    kind: ClassVar[str]
    __slots__ = ("_active", "_catchup", "_max_catchup_runs", "_max_lateness", "_overlap",
                 "_parameters", "_slug", "_derived_slug", "_timezone", "_tz")
    # set by each subclass's constructor: the IANA zone name as given (None: UTC by
    # default) and the tzinfo it names
    _timezone: str | None
    _tz: tzinfo

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _KINDS[cls.kind] = cls

    def _init_common(
        self,
        active: bool,
        parameters: Mapping[str, Any] | None,
        slug: str | None,
        catchup: str,
        max_catchup_runs: int,
        overlap: str,
        max_lateness: timedelta | float | None,
    ) -> None:
        owner = self._owner()
        if not isinstance(active, bool):
            raise TypeError(f"{owner}: active must be True or False, got {active!r}")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
            raise TypeError(f"{owner}: parameters must be a dict of name -> value, "
                            f"got {parameters!r}")
        try:
            json.dumps(dict(parameters), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{owner}: parameters must be JSON-serializable "
                            f"(they are stored with the schedule): {exc}") from exc
        if slug is not None and (not isinstance(slug, str) or not _SLUG.match(slug)):
            raise ValueError(f"{owner}: slug must be 1-100 letters, digits, '_', '.' or '-', "
                             f"starting with a letter or digit, got {slug!r}")
        if catchup not in CATCHUP_POLICIES:
            raise ValueError(f"{owner}: catchup must be one of "
                             f"{', '.join(map(repr, CATCHUP_POLICIES))}, got {catchup!r}")
        if (not isinstance(max_catchup_runs, int) or isinstance(max_catchup_runs, bool)
                or max_catchup_runs < 1):
            raise ValueError(f"{owner}: max_catchup_runs must be an integer of at least 1, "
                             f"got {max_catchup_runs!r}")
        if overlap not in OVERLAP_POLICIES:
            raise ValueError(f"{owner}: overlap must be one of "
                             f"{', '.join(map(repr, OVERLAP_POLICIES))}, got {overlap!r}")
        self._active = active
        self._parameters = dict(parameters)
        self._slug = slug
        self._catchup = catchup
        self._max_catchup_runs = max_catchup_runs
        self._overlap = overlap
        self._max_lateness = _lateness(max_lateness, owner)
        self._derived_slug = slug or self._digest_slug()

    # -- what subclasses provide ------------------------------------------------------

    def _owner(self) -> str:
        """How errors name this schedule, e.g. ``Cron('0 9 * * *')``."""
        raise NotImplementedError

    def _timing(self) -> dict[str, Any]:
        """The normalized fields that decide the fire times (JSON-able)."""
        raise NotImplementedError

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (aware), ascending, as aware UTC datetimes."""
        raise NotImplementedError

    # -- shared surface ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    @property
    def timezone(self) -> str | None:
        """The zone's IANA name as given, or None (UTC by default)."""
        return self._timezone

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameters this schedule's runs get on top of the deployment's (a copy)."""
        return dict(self._parameters)

    @property
    def slug(self) -> str | None:
        """The slug given by the user, or None (see :attr:`derived_slug`)."""
        return self._slug

    @property
    def derived_slug(self) -> str:
        """The slug, or ``<kind>-<digest of the normalized schedule>``: stable, never random."""
        return self._derived_slug

    @property
    def catchup(self) -> str:
        return self._catchup

    @property
    def max_catchup_runs(self) -> int:
        return self._max_catchup_runs

    @property
    def overlap(self) -> str:
        return self._overlap

    @property
    def max_lateness(self) -> timedelta | None:
        return self._max_lateness

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``, or None if the schedule has ended."""
        return next(iter(self.fire_times(after)), None)

    def _digest_slug(self) -> str:
        body = json.dumps({"kind": self.kind, **self._timing(), "parameters": self._parameters},
                          sort_keys=True, separators=(",", ":"), default=str)
        return f"{self.kind}-{hashlib.sha256(body.encode()).hexdigest()[:12]}"

    def _policies(self) -> dict[str, Any]:
        lateness = self._max_lateness
        return {
            "catchup": self._catchup,
            "max_catchup_runs": self._max_catchup_runs,
            "overlap": self._overlap,
            "max_lateness": None if lateness is None else lateness.total_seconds(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The schedule as JSON-able data; :func:`schedule_from_dict` reads it back. The zone
        is kept as given (None, not UTC, when none was), so the data round-trips."""
        data = {"kind": self.kind, **self._timing(), "active": self._active,
                "parameters": dict(self._parameters), "slug": self._slug, **self._policies()}
        data["timezone"] = self._timezone
        return data

    def _key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = {**self._timing(), "slug": self.derived_slug}
        if not self._active:
            fields["active"] = False
        if self._parameters:
            fields["parameters"] = self._parameters
        policies = self._policies()
        defaults = {"catchup": "latest", "max_catchup_runs": DEFAULT_MAX_CATCHUP_RUNS,
                    "overlap": "allow_all", "max_lateness": None}
        fields.update({k: v for k, v in policies.items() if defaults[k] != v})
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
        return f"{type(self).__name__}({shown})"


def _lateness(value: timedelta | float | None, owner: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise TypeError(f"{owner}: max_lateness must be a timedelta or a number of seconds, "
                        f"got {value!r}")
    lateness = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if lateness <= timedelta(0):
        raise ValueError(f"{owner}: max_lateness must be positive, got {value!r}")
    return lateness


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """The schedule that :meth:`Schedule.to_dict` wrote (``kind`` picks the class)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a schedule's data must be a dict, got {type(data).__name__}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"schedule data has an unknown kind {kind!r}; "
                         f"expected one of {', '.join(sorted(_KINDS))}")
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return cls(**fields)
    except TypeError as exc:
        raise TypeError(f"schedule data for a {kind} schedule: {exc}") from exc
