"""Finding a deployment's flow: entrypoints, sources, code versions.

An entrypoint is ``path/to/file.py:attribute``; a relative path is relative to
the deployment's *source* (a local directory, or a git repository cloned with
the ``git`` command into ``$FLUVIAL_HOME/sources``), or to the current
directory when it has none. The file is imported under its own stem (so its
``if __name__ == "__main__":`` block does not run).

The *code version* a run used is the git commit of the file's repository
(``git rev-parse HEAD``, ``+dirty`` when the file has uncommitted changes), or
else ``sha256:`` and the first 16 hex digits of the file's hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import EntrypointError

if TYPE_CHECKING:
    from fluvial.flows import Flow

__all__ = [
    "EntrypointError",
    "code_version",
    "is_git_url",
    "load_task",
    "entrypoint_of",
    "load_flow",
    "resolve_source",
    "split_entrypoint",
]


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    """``("path/to/file.py", "attribute")`` from ``path/to/file.py:attribute``."""
    path, sep, attribute = entrypoint.rpartition(":")
    if not sep or not path or not attribute or not attribute.isidentifier():
        raise EntrypointError(f"entrypoint must be PATH.py:FLOW, got {entrypoint!r}")
    return path, attribute


def is_git_url(source: str) -> bool:
    return source.startswith(("https://", "http://", "git@", "ssh://", "git://", "file://")) or (
        source.endswith(".git") and not Path(source).is_dir()
    )


def resolve_source(source: str | None, home: Path | None = None) -> Path | None:
    """The local directory of ``source``: itself, or a clone of the git URL (updated)."""
    if source is None:
        return None
    if not is_git_url(source):
        path = Path(source).expanduser()
        if not path.is_dir():
            raise EntrypointError(f"source {source!r} is not a directory")
        return path.resolve()
    from fluvial._files import private_dir
    from fluvial.store import store_path

    base = private_dir((home or store_path().parent) / "sources")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    target = base / digest
    if (target / ".git").is_dir():
        cmd = ["git", "-C", str(target), "pull", "--ff-only", "--quiet"]
    else:
        cmd = ["git", "clone", "--quiet", "--depth", "1", source, str(target)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise EntrypointError("cloning a git source needs the `git` command") from None
    except subprocess.CalledProcessError as exc:
        raise EntrypointError(f"git could not fetch {source!r}: {exc.stderr.strip()}") from None
    return target


def _file_of(entrypoint: str, source_dir: Path | None) -> tuple[Path, str]:
    path_text, attribute = split_entrypoint(entrypoint)
    path = Path(path_text)
    if not path.is_absolute() and source_dir is not None:
        path = source_dir / path
    if not path.is_file():
        raise EntrypointError(f"entrypoint {entrypoint!r}: no such file {path}")
    return path, attribute


def load_flow(entrypoint: str, source_dir: Path | None = None) -> Flow:
    """The ``Flow`` object named by ``entrypoint``."""
    from fluvial.flows import Flow

    found: Flow = _load(entrypoint, source_dir, Flow, "flow")
    return found


def load_task(entrypoint: str, source_dir: Path | None = None) -> Any:
    """The ``Task`` object named by ``entrypoint`` (``path.py:task``)."""
    from fluvial.tasks import Task

    return _load(entrypoint, source_dir, Task, "task")


def _load(entrypoint: str, source_dir: Path | None, kind: type, label: str) -> Any:
    from fluvial.serialization import file_module_name

    path, attribute = _file_of(entrypoint, source_dir)
    name = file_module_name(path)  # the name `python file.py` gives its tasks: one identity
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"entrypoint {entrypoint!r}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec.loader.exec_module(module)
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # process/Dask/Ray workers need not import it
    found = getattr(module, attribute, None)
    if not isinstance(found, kind):
        there = sorted(k for k, v in vars(module).items() if isinstance(v, kind))
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: {path} has no {label} named {attribute!r}; "
            f"{label}s there: {there}"
        )
    return found


def entrypoint_of(flow: Flow) -> str:
    """``/abs/path/file.py:attribute`` for a flow defined at the top level of a file."""
    fn = inspect.unwrap(flow.fn)
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if path is None:
        raise EntrypointError(f"flow {flow.name!r}: cannot tell which file defines it")
    module = sys.modules.get(getattr(fn, "__module__", ""))
    attribute = None
    if module is not None:
        for key, value in vars(module).items():
            if value is flow or getattr(value, "fn", None) is flow.fn:
                attribute = key
                break
    attribute = attribute or getattr(fn, "__name__", None)
    if not attribute or not attribute.isidentifier():
        raise EntrypointError(f"flow {flow.name!r}: cannot tell its name in {path}")
    return f"{Path(path).resolve()}:{attribute}"


def code_version(entrypoint: str, source_dir: Path | None = None) -> str | None:
    """The git commit of the entrypoint's repository, or a hash of its file."""
    try:
        path, _ = _file_of(entrypoint, source_dir)
    except EntrypointError:
        return None
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        head = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, env=env,
        )
        if head.returncode == 0 and head.stdout.strip():
            sha = head.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(path.parent), "status", "--porcelain", "--", path.name],
                capture_output=True, text=True, timeout=10, env=env,
            )
            return sha + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
