"""Passwords out of every message: database URLs and connection strings redacted.

``FLUVIAL_DATABASE_URL`` may carry a password in any of the forms libpq and SQLAlchemy
accept — ``postgresql://user:pw@host/db``, a percent-encoded one, one holding a raw
``/``, ``@``, ``?`` or ``#`` (which defeat a naive ``user:pw@`` pattern and even
``urllib.parse``), or a query parameter ``?password=…`` (also ``sslpassword``,
``passfile``-style keys, any case). :func:`redact_url` hides them all and keeps the
user, host, database and harmless parameters, so a message still says where;
:func:`redact_text` does it for every URL and every ``password=value`` found in a
free-form message (an error from the driver, a warning, a ``repr``).

Used by ``StoreError`` (its text is redacted when it is raised), the store's loggers
and the CLI's one-line errors. Imports nothing of fluvial: it sits under every layer.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

__all__ = ["MASK", "RedactingFilter", "redact_text", "redact_url"]

MASK = "***"

#: query/conninfo keys whose value is a secret
_SECRET_KEYS = frozenset({
    "password", "passwd", "pwd", "pass", "sslpassword", "sslkey_password", "secret",
    "token", "access_token", "api_key", "apikey",
})
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://\S+")  # to the next space: a password may hold quotes
_KEY_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(" + "|".join(sorted(_SECRET_KEYS, key=len, reverse=True))
    + r")(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)")


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, sep, _ = part.partition("=")
        if sep and unquote(key).strip().lower() in _SECRET_KEYS:
            part = f"{key}={MASK}"
        parts.append(part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its password hidden: the userinfo's password and secret query values.

    The userinfo ends at the *last* ``@``, so a raw ``/``, ``@``, ``?`` or ``#`` in a
    password stays inside it (an ``@`` in a query value makes it hide more than the
    password, never less). A URL without a password is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", url)
    at = rest.rfind("@")
    if at >= 0:
        userinfo, hostpart = rest[:at], rest[at + 1:]
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{hostpart}" if colon else f"{user}@{hostpart}"
        start = len(user) + (len(MASK) + 1 if colon else 0) + 1
    else:
        start = 0
    query_at = rest.find("?", start)
    if query_at >= 0:
        fragment_at = rest.find("#", query_at)
        end = fragment_at if fragment_at >= 0 else len(rest)
        rest = rest[:query_at + 1] + _redact_query(rest[query_at + 1:end]) + rest[end:]
    return f"{scheme}://{rest}"


def redact_text(text: str) -> str:
    """``text`` with every URL's password and every ``password=value`` hidden."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL.sub(lambda m: redact_url(m.group()), text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message of every record it sees (the store's
    logger has one: its warnings quote database errors and URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
