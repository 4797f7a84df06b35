"""Text from the run record made safe to print on a terminal.

The record is shared (a team's PostgreSQL database, a home another user can write),
so names, log lines, messages, parameters and tags may hold escape sequences: OSC
(window titles, hyperlinks, clipboard writes), CSI (clear screen, cursor moves,
colours), a carriage return that overwrites a line. Every command prints such text
through :func:`safe` — the one helper for it (``fluvial.cli._output.safe`` wraps it in
a rich ``Text``) — which shows each character that is not printable as a visible escape
(``\\x1b``, ``\\r``, ``\\u202e``) instead of sending it to the terminal: C0 and C1
controls (``\\x9b`` is a one-byte CSI), DEL, the bidirectional overrides and isolates
that reorder what is displayed, zero-width and line/paragraph separators.
"""

from __future__ import annotations

__all__ = ["safe"]


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _escape_line(text: str) -> str:
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in text)


def safe(value: object, *, lines: bool = False) -> str:
    """``str(value)`` with every character that is not printable shown as an escape.

    ``lines=True`` keeps newlines and tabs (multi-line log messages and tracebacks);
    otherwise they are escaped too, so one value stays on one line.
    """
    text = value if isinstance(value, str) else str(value)
    if not lines:
        return _escape_line(text)
    return "\n".join("\t".join(_escape_line(part) for part in line.split("\t"))
                     for line in text.split("\n"))
