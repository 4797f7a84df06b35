"""Text from the run record made safe to print on a terminal.

The record is shared (a team's PostgreSQL database, a home another user can write),
so names, log lines, messages, parameters and tags may hold escape sequences: OSC
(window titles, hyperlinks, clipboard writes), CSI (clear screen, cursor moves,
colours), a carriage return that overwrites a line. Every command prints such text
through :func:`safe`, which shows each control character as a visible escape
(``\\x1b``, ``\\r``, ``\\u202e``) instead of sending it to the terminal. Replaced: C0
controls, DEL, C1 controls (``\\x9b`` is a one-byte CSI), and the Unicode bidirectional
overrides and isolates that reorder what is displayed.
"""

from __future__ import annotations

import re

__all__ = ["safe"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_INLINE_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: object, *, lines: bool = False) -> str:
    """``str(value)`` with every control character shown as an escape.

    ``lines=True`` keeps newlines and tabs (multi-line log messages and tracebacks);
    otherwise they are escaped too, so one value stays on one line.
    """
    text = value if isinstance(value, str) else str(value)
    pattern = _UNSAFE_INLINE_KEEP_LINES if lines else _UNSAFE
    return pattern.sub(_visible, text)
