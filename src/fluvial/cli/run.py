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
from typing import Any

import click

__all__ = ["load_flow", "run"]


def load_flow(target: str) -> Any:
    """The ``Flow`` object named by ``path/to/file.py:flow_name``."""
    from fluvial.flows import Flow

    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise click.BadParameter(f"expected FILE.py:FLOW_NAME, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise click.BadParameter(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise click.BadParameter(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    sys.path.insert(0, str(path.parent.resolve()))
    spec.loader.exec_module(module)
    flow_obj = getattr(module, name, None)
    if not isinstance(flow_obj, Flow):
        flows = sorted(k for k, v in vars(module).items() if isinstance(v, Flow))
        raise click.BadParameter(f"{path} has no flow named {name!r}; flows there: {flows}")
    return flow_obj


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

    flow_obj = load_flow(target)
    kwargs = dict(_parse_param(p) for p in params)
    try:
        state = flow_obj(**kwargs, return_state=True)
    except ParameterTypeError as exc:
        raise click.UsageError(str(exc)) from None
    if state.is_completed():
        result = state.result()
        if result is not None:
            click.echo(repr(result))
        return
    click.echo(f"Flow run ended {state.name}: {state.message}", err=True)
    sys.exit(1)
