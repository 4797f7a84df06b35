"""The identity of a task's function: ``module.qualname``, whatever way its file was started.

A file run as ``python jobs/nightly.py`` defines its functions in ``__main__``; the same
file loaded by ``fluvial run`` or ``fluvial runs retry`` defines them in a module. Cache
keys and the keys of persisted results are made from this identity, so it must be the
same in both: ``__main__`` is replaced by the module name the file has when imported
(``python -m jobs.nightly`` gives ``jobs.nightly``; ``python jobs/nightly.py`` gives the
dotted name of the file within its packages, found by walking up ``__init__.py`` files).
Code with no file (a REPL, ``python -c``) keeps ``__main__``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["file_module_name", "function_identity", "module_identity"]


def file_module_name(path: str | Path) -> str:
    """The dotted module name of a ``.py`` file: its stem, prefixed by the packages
    (directories holding an ``__init__.py``) it sits in."""
    path = Path(path).resolve()
    parts = [path.stem]
    parent = path.parent
    while (parent / "__init__.py").is_file() and parent.name.isidentifier():
        parts.append(parent.name)
        parent = parent.parent
    return ".".join(reversed(parts))


def module_identity(module: str | None) -> str:
    """``module``, or for ``__main__`` the name its file has when imported."""
    if module != "__main__":
        return module or "?"
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__":
        return str(name)  # python -m package.module
    file = getattr(main, "__file__", None)
    if isinstance(file, str) and file.endswith(".py"):
        return file_module_name(file)  # python path/to/file.py
    return "__main__"


def function_identity(fn: Callable[..., Any], default_name: str = "?") -> str:
    """``module.qualname`` of ``fn`` with ``__main__`` resolved by :func:`module_identity`."""
    module = module_identity(getattr(fn, "__module__", None))
    return f"{module}.{getattr(fn, '__qualname__', default_name)}"
