"""``fluvial deploy`` and ``fluvial init``: store deployments from a file or a fluvial.yaml.

    fluvial deploy path.py:flow --name N [--cron EXPR [--timezone TZ] | --interval S | --rrule R]
        [--param k=v]... [--tag T]... [--pool P] [--concurrency-limit N]
        [--collision-strategy enqueue|cancel-new] [--version V] [--paused]
    fluvial deploy --all [--file fluvial.yaml]
    fluvial init [--force]
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["deploy", "init"]


def _fail(exc: BaseException) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command()
@click.argument("entrypoint", required=False)
@click.option("--name", "-n", help="The deployment's name.")
@click.option("--all", "deploy_all", is_flag=True, help="Every deployment in fluvial.yaml.")
@click.option("--file", "project_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("fluvial.yaml"), show_default=True, help="The project file (--all).")
@click.option("--cron", help="A cron schedule, e.g. '0 8 * * *'.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True),
              help="An interval schedule, in seconds.")
@click.option("--rrule", help="An RFC 5545 recurrence rule schedule.")
@click.option("--timezone", help="The schedule's time zone (IANA name), e.g. Europe/London.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A default parameter; repeat for several.")
@click.option("--tag", "-t", "tags", multiple=True, help="A tag for its runs; repeatable.")
@click.option("--pool", default="default", show_default=True,
              help="The work pool whose workers run it.")
@click.option("--concurrency-limit", type=click.IntRange(min=1), default=None,
              help="At most this many of its runs at once.")
@click.option("--collision-strategy", type=click.Choice(["enqueue", "cancel-new"],
              case_sensitive=False), default="enqueue", show_default=True,
              help="A run due while the limit is reached waits, or is cancelled.")
@click.option("--version", "version", help="A version label for the deployment.")
@click.option("--description", help="What it is for.")
@click.option("--paused", is_flag=True, help="Store it paused: no scheduled runs until resumed.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Schedule a crashed run again this many times.")
@click.option("--trigger", "triggers", multiple=True, metavar="JSON",
              help="An event trigger that runs it, as JSON (a DeploymentEventTrigger); "
                   "repeatable.")
def deploy(entrypoint: str | None, name: str | None, deploy_all: bool, project_file: Path,
           cron: str | None, interval: float | None, rrule: str | None, timezone: str | None,
           params: tuple[str, ...], tags: tuple[str, ...], pool: str,
           concurrency_limit: int | None, collision_strategy: str, version: str | None,
           description: str | None, paused: bool, retries: int,
           triggers: tuple[str, ...]) -> None:
    """Store a deployment of the flow ENTRYPOINT (path.py:flow), or all of fluvial.yaml."""
    from fluvial.cli.run import _parse_param
    from fluvial.deployments._entrypoint import EntrypointError
    from fluvial.deployments._flow_api import build_schedules
    from fluvial.deployments._project import ProjectError, deploy_entrypoint, deploy_project
    from fluvial.exceptions import ParameterTypeError

    if deploy_all:
        if entrypoint or name:
            raise click.UsageError("--all deploys fluvial.yaml; give no ENTRYPOINT or --name")
        try:
            deployments = deploy_project(project_file)
        except (ProjectError, EntrypointError, ParameterTypeError, ValueError) as exc:
            raise _fail(exc) from None
        if not deployments:
            click.echo(f"{project_file} lists no deployments.")
        for dep in deployments:
            click.echo(f"Deployed {dep.full_name} ({dep.id})")
        return
    if not entrypoint or not name:
        raise click.UsageError("give ENTRYPOINT (path.py:flow) and --name, or --all")
    if sum(x is not None for x in (cron, interval, rrule)) > 1:
        raise click.UsageError("give at most one of --cron, --interval, --rrule")
    if timezone and not (cron or rrule or interval):
        raise click.UsageError("--timezone needs --cron, --interval or --rrule")
    trigger_specs = []
    for i, text in enumerate(triggers):
        try:
            trigger_specs.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"trigger {i} is not JSON: {exc}",
                                     param_hint="--trigger") from None
    try:
        schedules = build_schedules(cron=cron, interval=interval, rrule=rrule,
                                    timezone=timezone)
        path_text = entrypoint.rpartition(":")[0]
        source = None if Path(path_text).is_absolute() else Path.cwd()
        dep = deploy_entrypoint(
            entrypoint, name, source=source, schedules=schedules,
            parameters=dict(_parse_param(p) for p in params), tags=list(tags), work_pool=pool,
            concurrency_limit=concurrency_limit, collision_strategy=collision_strategy,
            version=version, description=description, paused=paused, retries=retries,
            triggers=trigger_specs or None,
        )
    except (EntrypointError, ParameterTypeError, ValueError, ImportError) as exc:
        raise _fail(exc) from None
    click.echo(f"Deployed {dep.full_name} ({dep.id}) to pool {pool!r}"
               + (f" with {len(schedules)} schedule(s)" if schedules else "") + ".")
    click.echo(f"Start a worker:  fluvial worker start --pool {pool}")
    click.echo(f"Run it now:      fluvial deployment run {dep.full_name}")


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing fluvial.yaml.")
def init(force: bool) -> None:
    """Write a fluvial.yaml for this directory's deployments (`fluvial deploy --all`)."""
    from fluvial.deployments._project import ProjectError, write_template

    try:
        path = write_template(Path.cwd(), force=force)
    except ProjectError as exc:
        raise _fail(exc) from None
    click.echo(f"Wrote {path}")
