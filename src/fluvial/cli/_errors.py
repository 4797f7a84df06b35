"""What the ``fluvial`` command prints when something outside its control fails.

A store that cannot be opened (read-only, corrupt, unreachable), a file that cannot be
read or written, a flow file that does not import: the command ends with one line,
``Error: <what> : <cause>``, and exit status 1 — never a Python traceback. The
``FluvialGroup`` class does this for every command under it (the top-level group uses
it, so new commands get it too); ``describe`` is the one-line text of an error. No
message shows a password (:mod:`fluvial._redact`), whichever command raised it.
"""

from __future__ import annotations

from typing import Any

import click

from fluvial._redact import redact_text
from fluvial.cli._terminal import safe

__all__ = ["FluvialGroup", "describe", "import_error"]


def describe(exc: BaseException) -> str:
    """One line naming what failed and why (file name and cause for an ``OSError``)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        target = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return safe(redact_text(f"{target}: {exc.strerror or exc}"))
    text = redact_text(str(exc)) or type(exc).__name__
    if type(exc).__module__ == "sqlite3" or not str(exc):
        text = f"{type(exc).__name__}: {text}"
    return safe(" ".join(text.split()))


def import_error(path: object, exc: BaseException) -> click.ClickException:
    """The one-line error for a flow file that cannot be imported."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else str(path)
        return click.ClickException(safe(f"{where}: syntax error: {exc.msg}"))
    return click.ClickException(
        safe(f"cannot import {path}: {type(exc).__name__}: {' '.join(str(exc).split())}"))


def _handled() -> tuple[type[BaseException], ...]:
    import sqlite3

    from fluvial.store import StoreError

    return (StoreError, OSError, sqlite3.Error)


class FluvialGroup(click.Group):
    """A click group whose commands end with one line, not a traceback, when the store
    or the filesystem fails under them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = redact_text(exc.message)  # type: ignore[misc]  # any command's error
            raise
        except _handled() as exc:
            raise click.ClickException(describe(exc)) from exc
