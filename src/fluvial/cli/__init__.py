"""The ``fluvial`` command: run flows from files, inspect the run record, manage limits.

    fluvial run path/to/file.py:flow_name --param key=value ...
    fluvial runs ls | inspect RUN_ID | logs RUN_ID
    fluvial concurrency-limit create TAG N | ls | inspect TAG | reset TAG | delete TAG
    fluvial variable set | get | ls | inspect | unset
    fluvial block ls | inspect SLUG/NAME | delete | register -m MODULE | type ls
    fluvial artifact ls | inspect KEY [--all-versions] | delete KEY
    fluvial asset ls | inspect KEY
    fluvial events emit NAME --resource-id ID | stream | cleanup
    fluvial automation ls | inspect | create -f FILE | pause | resume | delete | evaluate
    fluvial server start [--host 127.0.0.1] [--port 4200]
    fluvial deploy path.py:flow --name N [--cron ... | --interval ...] | fluvial deploy --all
    fluvial init
    fluvial deployment ls | inspect | run | pause | resume | delete | schedule ...
    fluvial deployment schedule ticks FLOW/NAME     the scheduler's decisions, and why
    fluvial worker start [--pool P] [--limit N] [--run-once]
    fluvial task serve path.py:task ... [--limit N]
"""

from __future__ import annotations

import click

from fluvial.cli._errors import FluvialGroup
from fluvial.cli.artifacts import artifact
from fluvial.cli.assets import asset
from fluvial.cli.automations import automation
from fluvial.cli.blocks import block
from fluvial.cli.concurrency import concurrency_limit
from fluvial.cli.deploy import deploy, init
from fluvial.cli.deployments import deployment, schedule
from fluvial.cli.events import events
from fluvial.cli.run import run
from fluvial.cli.run_control import cancel, resume
from fluvial.cli.runs import runs
from fluvial.cli.schedule_ticks import ticks
from fluvial.cli.server import server
from fluvial.cli.tasks import task
from fluvial.cli.variables import variable
from fluvial.cli.worker import worker

__all__ = ["main"]


@click.group(cls=FluvialGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fluvial")
def main() -> None:
    """fluvial: plain Python functions as tasks and flows."""
    _recover_crashed_runs()
    _note_local_reads()


# Commands that read or change the record directly, even with FLUVIAL_API_URL set (only
# flow runs' recording and `fluvial worker start` go through the server so far).
_LOCAL_ONLY = frozenset({"runs", "concurrency-limit", "variable", "block", "artifact", "asset",
                         "deploy", "deployment", "events", "automation", "task"})


def _note_local_reads() -> None:
    """With FLUVIAL_API_URL set, say on stderr that a command uses the local record."""
    from fluvial import settings

    try:
        current = settings.get()
    except Exception:  # noqa: BLE001 - an invalid setting: the command says so
        return
    ctx = click.get_current_context(silent=True)
    command = ctx.invoked_subcommand if ctx is not None else None
    if current.api_url is not None and command in _LOCAL_ONLY:
        click.echo(f"fluvial: note: FLUVIAL_API_URL is set, but `fluvial {command}` uses the "
                   "local record (FLUVIAL_HOME / FLUVIAL_DATABASE_URL), not the server's",
                   err=True)


def _recover_crashed_runs() -> None:
    """Crash recovery at CLI start (once per process; reads never recover)."""
    from fluvial import settings
    from fluvial.exceptions import StoreError

    current = settings.get()
    if not current.store_enabled or current.api_url is not None:
        return  # off, or the record is a server's (FLUVIAL_API_URL): not this process's to fix
    from fluvial.store import recover

    try:
        recover()
    except StoreError:
        pass  # a command that needs the store says what is wrong with it


main.add_command(run)
main.add_command(runs)
main.add_command(concurrency_limit)
main.add_command(variable)
main.add_command(block)
main.add_command(artifact)
main.add_command(asset)
main.add_command(deploy)
main.add_command(init)
main.add_command(deployment)
main.add_command(worker)
main.add_command(task)
runs.add_command(cancel)
runs.add_command(resume)
schedule.add_command(ticks)
main.add_command(events)
main.add_command(automation)
main.add_command(server)
