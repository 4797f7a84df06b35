"""Every ``FLUVIAL_*`` environment variable, read in this module and nowhere else.

    FLUVIAL_HOME           directory of the run record, result storage, resume inputs
                           and the concurrency slot files; ``~`` expanded (default ``~/.fluvial``)
    FLUVIAL_DATABASE_URL   ``sqlite:////abs/path.db``, ``sqlite:///relative.db`` or
                           ``postgresql://user:pass@host:5432/db``; overrides the SQLite
                           file under FLUVIAL_HOME
    FLUVIAL_STORE          ``off``/``0``/``false``/``no`` turns the run record off
    FLUVIAL_STORE_WRITER   ``process`` (default) or ``thread``: who commits the record
    FLUVIAL_PROGRESS       ``on``/``off``/``auto`` (default: on when stderr is a terminal)
    FLUVIAL_ENCRYPTION_KEY the Fernet key of secret block fields (default: a key file
                           ``$FLUVIAL_HOME/encryption.key``, created on first use)
    FLUVIAL_EVENTS_RETENTION_DAYS  how long events are kept (default 7)
    FLUVIAL_API_URL        ``http://host:4200`` of a ``fluvial server``: flow runs and
                           workers record through its API instead of opening the database
    FLUVIAL_API_TOKEN      the server's token (sent as ``Authorization: Bearer``; never shown)

:func:`get` returns a frozen :class:`Settings` snapshot. Settings are read at
call time, not import time (tests and long-lived processes change the
environment), yet cheaply: the snapshot is cached and rebuilt only when one of
the variables above changed. An invalid value raises :class:`SettingsError`
naming the variable, wherever settings are first asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fluvial.exceptions import SettingsError

__all__ = ["VARIABLES", "Settings", "SettingsError", "get", "home"]

VARIABLES = (
    "FLUVIAL_HOME",
    "FLUVIAL_DATABASE_URL",
    "FLUVIAL_STORE",
    "FLUVIAL_STORE_WRITER",
    "FLUVIAL_PROGRESS",
    "FLUVIAL_ENCRYPTION_KEY",
    "FLUVIAL_EVENTS_RETENTION_DAYS",
    "FLUVIAL_API_URL",
    "FLUVIAL_API_TOKEN",
)

_OFF = frozenset({"off", "0", "false", "no"})
_ON = frozenset({"on", "1", "true", "yes"})


@dataclass(frozen=True)
class Settings:
    """fluvial's settings, parsed from the environment."""

    home: Path
    """``$FLUVIAL_HOME`` with ``~`` expanded, or ``~/.fluvial``."""
    database_url: str = field(repr=False)
    """``$FLUVIAL_DATABASE_URL``, or ``sqlite:///<home>/fluvial.db`` (not in the repr: it
    may hold a password)."""
    database_url_set: bool
    """Whether ``FLUVIAL_DATABASE_URL`` was given (rather than derived from the home)."""
    store_enabled: bool
    store_writer: str
    """``"process"`` or ``"thread"``."""
    progress: bool | None
    """True/False when forced; None for "when stderr is a terminal"."""
    encryption_key: str | None = field(default=None, repr=False)
    """``$FLUVIAL_ENCRYPTION_KEY``, stripped; None when unset or empty."""
    events_retention_days: float = 7.0
    """``$FLUVIAL_EVENTS_RETENTION_DAYS``: events older than this are cleaned up."""
    api_url: str | None = None
    """``$FLUVIAL_API_URL`` without a trailing ``/``: record through this server; None
    when unset or empty."""
    api_token: str | None = field(default=None, repr=False)
    """``$FLUVIAL_API_TOKEN``, stripped; None when unset or empty (never in the repr)."""


def _parse(values: tuple[str | None, ...]) -> Settings:
    (home_raw, url_raw, store_raw, writer_raw, progress_raw, key_raw, retention_raw,
     api_raw, api_token_raw) = values
    home = Path(home_raw).expanduser() if home_raw else Path.home() / ".fluvial"
    url = (url_raw or "").strip()
    writer = (writer_raw or "").strip().lower() or "process"
    if writer not in ("process", "thread"):
        raise SettingsError(f"FLUVIAL_STORE_WRITER must be 'process' or 'thread', not {writer!r}")
    progress_text = (progress_raw or "auto").strip().lower()
    if progress_text in _OFF:
        progress: bool | None = False
    elif progress_text in _ON:
        progress = True
    elif progress_text in ("auto", ""):
        progress = None
    else:
        raise SettingsError(
            f"FLUVIAL_PROGRESS must be 'on', 'off' or 'auto', not {progress_raw!r}"
        )
    try:
        retention = float(retention_raw) if retention_raw and retention_raw.strip() else 7.0
    except ValueError:
        retention = -1.0
    if not (0 < retention < float("inf")):
        raise SettingsError(
            f"FLUVIAL_EVENTS_RETENTION_DAYS must be a positive number of days, not {retention_raw!r}"
        )
    api_url = (api_raw or "").strip().rstrip("/") or None
    if api_url is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(api_url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            parts = None  # type: ignore[assignment]
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"FLUVIAL_API_URL must be an http:// or https:// URL, not {api_raw!r}")
    return Settings(
        home=home,
        database_url=url or f"sqlite:///{home / 'fluvial.db'}",
        database_url_set=bool(url),
        store_enabled=(store_raw or "").strip().lower() not in _OFF,
        store_writer=writer,
        progress=progress,
        encryption_key=(key_raw or "").strip() or None,
        events_retention_days=retention,
        api_url=api_url,
        api_token=(api_token_raw or "").strip() or None,
    )


_cache: tuple[tuple[str | None, ...], Settings] | None = None


def get() -> Settings:
    """The current settings (a cached snapshot, rebuilt when a variable changed)."""
    global _cache
    environ = os.environ
    key = tuple(environ.get(name) for name in VARIABLES)
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = _parse(key)
    _cache = (key, settings)
    return settings


def home() -> Path:
    """``get().home``: the fluvial home directory."""
    return get().home
