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

__all__ = ["find_flow", "load_flow", "report", "run"]


def load_flow(target: str) -> Any:
    """The ``Flow`` object named by ``path/to/file.py:flow_name``."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise click.BadParameter(f"expected FILE.py:FLOW_NAME, got {target!r}")
    return find_flow(path_text, name)


def find_flow(path_text: str, attribute: str, flow_name: str | None = None) -> Any:
    """Import the file at ``path_text`` (under its own name, so its
    ``if __name__ == "__main__":`` block does not run) and return its flow
    ``attribute``, or else the flow whose name is ``flow_name``. Its code is pickled by
    value, so worker processes need not import the file."""
    from fluvial.flows import Flow

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


def report(state: Any) -> None:
    """Print a finished flow run's result, or its failure (exit status 1)."""
    if state.is_completed():
        result = state.result()
        if result is not None:
            click.echo(repr(result))
        return
    click.echo(f"Flow run ended {state.name}: {state.message}", err=True)
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

    flow_obj = load_flow(target)
    kwargs = dict(_parse_param(p) for p in params)
    try:
        state = flow_obj(**kwargs, return_state=True)
    except ParameterTypeError as exc:
        raise click.UsageError(str(exc)) from None
    report(state)
