"""``fluvial automation ls | inspect | create -f FILE | pause | resume | delete | evaluate``."""

from __future__ import annotations

import json
import signal
import threading

import click

from fluvial.cli._output import output_option, print_json, print_table, safe, timestamp

__all__ = ["automation"]


def _find(ref: str):  # type: ignore[no-untyped-def]
    from fluvial.automations import Automation, AutomationNotFound

    try:
        return Automation.read(id=ref)
    except AutomationNotFound:
        try:
            return Automation.read(name=ref)
        except AutomationNotFound as exc:
            raise click.ClickException(f"{exc} (looked for {ref!r} as an id and as a name)") from None


@click.group()
def automation() -> None:
    """Manage automations (a trigger on events, and actions)."""


@automation.command(name="ls")
@output_option
def ls(output: str) -> None:
    """List automations."""
    from fluvial.automations import list_automations

    items = list_automations()
    if output == "json":
        print_json([a.to_json() for a in items])
        return
    print_table("Automations", ("ID", "Name", "Enabled", "Trigger", "Actions", "Created"),
                ((a.id[:8], a.name, "yes" if a.enabled else "paused", a.trigger.type,
                  ", ".join(x.type for x in a.actions), timestamp(a.created)) for a in items))


@automation.command()
@click.argument("ref")
@output_option
def inspect(ref: str, output: str) -> None:
    """Show automation REF (an id, id prefix or name) and its recent firings."""
    from fluvial.store.connection import open_database

    found = _find(ref)
    conn = open_database()
    try:
        firings = conn.execute(
            "SELECT key, fired_at, status, error FROM automation_firings WHERE automation_id = ? "
            "ORDER BY fired_at DESC LIMIT 20", (found.id,)).fetchall()
    finally:
        conn.close()
    if output == "json":
        print_json({**found.to_json(), "firings": [
            {"key": k, "fired_at": t, "status": s, "error": e} for k, t, s, e in firings]})
        return
    click.echo(safe(json.dumps(found.to_json(), indent=2)).plain)
    print_table("Recent firings", ("Fired", "Status", "Error"),
                ((timestamp(t), s, e or "") for _, t, s, e in firings))


@automation.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="A YAML or JSON file with name, trigger and actions.")
def create(path: str) -> None:
    """Create an automation from a file."""
    from fluvial.automations import load_automation_file

    try:
        created = load_automation_file(path).create()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created automation {created.name!r} ({created.id}).")


def _change(verb: str, done: str, doc: str) -> click.Command:
    """``fluvial automation VERB REF``: call the automation's method ``verb``, say ``done``."""

    @automation.command(name=verb, help=doc)
    @click.argument("ref")
    def command(ref: str) -> None:
        found = _find(ref)
        getattr(found, verb)()
        click.echo(f"{done} automation {found.name!r}.")

    return command


pause = _change("pause", "Paused", "Stop automation REF from firing.")
resume = _change("resume", "Resumed",
                 "Let automation REF fire again (events while paused are not evaluated).")
delete = _change("delete", "Deleted", "Delete automation REF.")


@automation.command()
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True)
@click.option("--once", is_flag=True, help="One pass, then exit.")
def evaluate(interval: float, once: bool) -> None:
    """Run the evaluator in the foreground (workers and serve() run one too)."""
    from fluvial.evaluator import Evaluator

    evaluator = Evaluator()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while True:
            evaluator.run_once()
            if once or stop.wait(interval):
                break
    except KeyboardInterrupt:
        pass
    finally:
        evaluator.close()
