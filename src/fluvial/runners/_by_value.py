"""Which user code a cluster must receive by value rather than import.

cloudpickle pickles a function or class *by reference* (module + name) when its module
is importable in the driver; a worker that cannot import that module (a script's
directory, a notebook's folder, a test directory — on the driver's ``sys.path`` only)
then fails with ``No module named ...``. ``ship_by_value(fn)`` registers with
``cloudpickle.register_pickle_by_value`` the modules of user code that ``fn`` refers to:
its own module and the modules of the classes, functions and modules named in its
globals and closure (one level). User code is a module whose file is outside the Python
installation (standard library, site-packages); fluvial itself and installed packages
are left to be imported. ``__main__`` is pickled by value by cloudpickle already. Ray
pickles with its own copy of cloudpickle (``ray.cloudpickle``): both are told.
"""

from __future__ import annotations

import inspect
import os
import site
import sys
import sysconfig
import types
from collections.abc import Iterator
from functools import cache
from typing import Any

import cloudpickle

__all__ = ["ship_by_value"]

_shipped: set[tuple[int, str]] = set()  # (id of the pickler module, module name)


@cache
def _installed_prefixes() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                    "platlib")}
    paths.update(getattr(site, "getsitepackages", list)())
    paths.add(site.getusersitepackages())
    paths.add(os.path.dirname(os.__file__))
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def _user_module(name: str | None) -> types.ModuleType | None:
    if not name or name == "__main__" or name.split(".")[0] in ("fluvial", "builtins"):
        return None
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or not path:
        return None
    real = os.path.realpath(path)
    if real.startswith(_installed_prefixes()):
        return None
    return module


def _referred(fn: Any) -> Iterator[Any]:
    """``fn`` and what its code names: globals it uses and its closure's contents."""
    yield fn
    code = getattr(fn, "__code__", None)
    globals_ = getattr(fn, "__globals__", None) or {}
    if code is not None:
        names = set(code.co_names)
        for const in code.co_consts:  # nested functions and comprehensions
            if inspect.iscode(const):
                names.update(const.co_names)
        for name in names:
            if name in globals_:
                yield globals_[name]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue


def ship_by_value(*functions: Any, picklers: tuple[Any, ...] = (cloudpickle,)) -> None:
    """Register the user modules ``functions`` refer to for pickling by value, with each
    of ``picklers`` (cloudpickle, and a backend's vendored copy such as Ray's). When a
    function cannot be pickled by value (its module holds a lock, a client ...), its
    modules go back to being pickled by reference, as before."""
    for fn in functions:
        modules = {}
        for obj in _referred(fn):
            name: str | None
            if isinstance(obj, types.ModuleType):
                name = obj.__name__
            elif isinstance(obj, type) or callable(obj):
                name = getattr(obj, "__module__", None)
            else:
                name = getattr(type(obj), "__module__", None)
            module = _user_module(name)
            if module is not None:
                modules[module.__name__] = module
        for pickler in picklers:
            added = [m for n, m in modules.items() if (id(pickler), n) not in _shipped]
            if not added:
                continue
            for module in added:
                pickler.register_pickle_by_value(module)
            try:
                pickler.dumps(fn)
            except Exception:  # noqa: BLE001 - by reference, as it was
                for module in added:
                    pickler.unregister_pickle_by_value(module)
                continue
            _shipped.update((id(pickler), m.__name__) for m in added)
