"""Files and directories fluvial creates are private to the user who runs it.

``FLUVIAL_HOME`` holds parameters and logs (the database), results, resume inputs,
secrets' key and the slot files whose locks gate tagged tasks: another local user must
not read them, nor hold a slot file's lock. So every directory fluvial creates is
``0700`` and every file ``0600`` — the home itself, ``fluvial.db`` (SQLite gives its
``-wal``/``-shm`` files the database's mode), ``storage/`` and its records, ``runs/``,
``slots/``, lock files, journals — whatever the umask. Existing directories and files
are left as they are, but a home that other users can write to is reported once per
process with an :class:`~fluvial.exceptions.InsecureHomeWarning`.

    private_dir(path)          mkdir -p, each created directory 0700
    open_private(path, flags)  os.open creating the file 0600 (its directory private)
    create_private(path)       an empty 0600 file if there is none (e.g. before SQLite opens it)
    check_home(home)           the warning above, once per home and process
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path

from fluvial import settings
from fluvial.exceptions import InsecureHomeWarning

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "check_home",
    "create_private",
    "open_private",
    "private_dir",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_checked: set[str] = set()
_lock = threading.Lock()


def check_home(home: Path | None = None) -> None:
    """Warn (once per process) when ``home`` (default: FLUVIAL_HOME) exists and group or
    other users may write to it."""
    home = settings.home() if home is None else home
    key = str(home)
    if key in _checked:
        return
    try:
        mode = home.stat().st_mode
    except OSError:
        return  # not there yet: it will be created private
    with _lock:
        if key in _checked:
            return
        _checked.add(key)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        warnings.warn(
            f"FLUVIAL_HOME {home} can be written by other users (mode {stat.S_IMODE(mode):04o}): "
            "they can read and alter the run record, results and slot files; "
            f"chmod 700 {home}",
            InsecureHomeWarning, stacklevel=3)


def _is_within(path: Path, home: Path) -> bool:
    try:
        path.relative_to(home)
    except ValueError:
        return False
    return True


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory, creating it and any missing parent with mode 0700.

    When ``path`` is inside FLUVIAL_HOME, the home is checked first (:func:`check_home`).
    """
    path = Path(path)
    home = settings.home()
    if _is_within(path.absolute(), home.absolute()):
        check_home(home)
    if path.is_dir():
        return path
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not directory.is_dir():
                raise
    return path


def open_private(path: str | os.PathLike[str], flags: int = os.O_RDWR) -> int:
    """``os.open(path, flags | O_CREAT | O_CLOEXEC, 0o600)``, its directory made private."""
    path = Path(path)
    private_dir(path.parent)
    return os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)


def create_private(path: str | os.PathLike[str]) -> Path:
    """An empty file at ``path`` with mode 0600 if none exists (an existing one is kept)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return path
    os.close(fd)
    return path
