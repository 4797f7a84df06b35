"""How a moment and a length of time read to a person, written the same way by the CLI's
tables and the server's pages: local time to the second (``2026-11-29 08:03:28``) and
durations such as ``250ms``, ``4.2s``, ``3m07s``, ``1h02m03s``; ``-`` for an unknown one."""

from __future__ import annotations

import datetime as dt

__all__ = ["readable_duration", "readable_time"]


def readable_time(ts: float | None) -> str:
    """``ts`` (seconds since the epoch) in local time, ``YYYY-MM-DD HH:MM:SS``."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def readable_duration(seconds: float | None, *, seconds_past_an_hour: bool = True) -> str:
    """``seconds`` as ``250ms``, ``4.2s`` (under two minutes), ``3m07s`` or ``1h02m03s``
    (``1h02m`` with ``seconds_past_an_hour=False``, for narrow columns)."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m{secs:02d}s"
    return f"{hours}h{minutes:02d}m" + (f"{secs:02d}s" if seconds_past_an_hour else "")
