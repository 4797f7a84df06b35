"""``fluvial run FILE:FLOW --param key=value``: run a flow defined in a file.

Parameters arrive as strings and go through the flow's own validation, exactly as in a
direct call (``--param n=41`` for ``n: int`` becomes ``41``). A value that parses as
JSON (numbers, lists, objects, true/false/null) is passed as that JSON value.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from fluvial.cli._errors import import_error

__all__ = ["find_flow", "load_flow", "report", "run"]


def load_flow(target: str) -> Any:
    """The ``Flow`` object named by ``path/to/file.py:flow_name``."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise click.BadParameter(f"expected FILE.py:FLOW_NAME, got {target!r}")
    return find_flow(path_text, name)


def find_flow(path_text: str, attribute: str, flow_name: str | None = None,
              module_name: str | None = None) -> Any:
    """Import the file at ``path_text`` and return its flow ``attribute``, or else the
    flow whose name is ``flow_name``.

    The file is imported as a module (so its ``if __name__ == "__main__":`` block does
    not run) named ``module_name``, by default its dotted name within its packages: the
    name its tasks had when it was started with ``python file.py`` or ``python -m``, so
    their identity (cache and resume keys) is the same. Its code is pickled by value, so
    worker processes need not import the file.
    """
    from fluvial.flows import Flow
    from fluvial.serialization import file_module_name

    path = Path(path_text)
    if not path.is_file():
        raise click.BadParameter(f"no such file: {path}")
    name = module_name or file_module_name(path)
    module = _import_file(path, name)
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    flows = {k: v for k, v in vars(module).items() if isinstance(v, Flow)}
    flow_obj = flows.get(attribute)
    if flow_obj is None and flow_name is not None:
        flow_obj = next((f for f in flows.values() if f.name == flow_name), None)
    if flow_obj is None:
        raise click.BadParameter(f"{path} has no flow named {attribute!r}; flows there: "
                                 f"{sorted(flows)}")
    return flow_obj


def _import_file(path: Path, name: str) -> ModuleType:
    """The module of the file at ``path``, imported under ``name``.

    A dotted name is imported normally when the directory above its top package holds
    it (so relative imports and package ``__init__`` code work); otherwise, and for
    plain names, the file is executed as a module of that name.
    """
    resolved = path.resolve()
    depth = min(name.count("."), len(resolved.parents) - 1)
    root = resolved.parents[depth]
    for directory in {str(resolved.parent), str(root)}:
        if directory not in sys.path:
            sys.path.insert(0, directory)
    if depth:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - loaded from the file below, which reports it
            module = None
        if module is not None and Path(getattr(module, "__file__", "") or "").resolve() == resolved:
            return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.BadParameter(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: a syntax error, a failing import ...
        sys.modules.pop(name, None)
        raise import_error(path, exc) from exc
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def report(state: Any) -> None:
    """Print a finished flow run's result, or its failure (exit status 1)."""
    from fluvial.cli._terminal import safe

    if state.is_completed():
        result = state.result()
        if result is not None:
            click.echo(safe(repr(result), lines=True))
        return
    click.echo(safe(f"Flow run ended {state.name}: {state.message}", lines=True), err=True)
    sys.exit(1)


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"--param expects key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


@click.command()
@click.argument("target")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A flow parameter; repeat for several.")
def run(target: str, params: tuple[str, ...]) -> None:
    """Run the flow TARGET, given as path/to/file.py:flow_name."""
    from fluvial.exceptions import ParameterTypeError
    from fluvial.orchestration.flow_engine import refused_for_parameters

    flow_obj = load_flow(target)
    kwargs = dict(_parse_param(p) for p in params)
    try:
        state = flow_obj(**kwargs, return_state=True)
    except ParameterTypeError as exc:  # arguments that do not bind
        raise click.UsageError(str(exc)) from None
    if refused_for_parameters(state):  # failed validation: the body never ran
        raise click.UsageError(str(state.data))
    report(state)
