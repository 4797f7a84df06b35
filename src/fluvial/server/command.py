"""``fluvial server start`` (and ``python -m fluvial.server``): serve the API and UI with uvicorn.

The command lives with the server (``fluvial.cli`` adds it to the ``fluvial`` group), so
``python -m fluvial.server`` needs nothing above this package.
"""

from __future__ import annotations

import click

__all__ = ["server", "server_start"]


@click.group()
def server() -> None:
    """The API and web UI server (pip install 'fluvial[server]')."""


@server.command(name="start")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=4200, show_default=True)
@click.option("--no-scheduler", is_flag=True,
              help="Do not run the scheduler and the automations evaluator in the server.")
@click.option("--require-token", is_flag=True,
              help="Require the token on loopback too.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Another Host header to answer to (a DNS name clients use); repeatable.")
@click.option("--insecure", is_flag=True,
              help="Listen beyond loopback WITHOUT a token (anyone who can reach it can "
                   "run and cancel flows).")
def server_start(host: str, port: int, no_scheduler: bool, require_token: bool,
                 allowed_hosts: tuple[str, ...], insecure: bool) -> None:
    """Serve the API (/api/, OpenAPI at /api/openapi.json) and the web UI."""
    try:
        import uvicorn

        from fluvial.server.app import create_app
        from fluvial.server.background import Background
        from fluvial.server.security import Guard, InsecureBind, is_loopback, load_or_create_token
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs its extra: pip install 'fluvial[server]' ({exc})") from None
    from fluvial import settings

    token = None
    if require_token or (not is_loopback(host) and not insecure):
        token = load_or_create_token(settings.home())
    try:
        guard = Guard.for_bind(host, port, token, insecure, allowed_hosts)
    except InsecureBind as exc:
        raise click.ClickException(str(exc)) from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"fluvial server on http://{shown}:{port}"
               + (f" (token in {settings.home() / 'server.token'})" if token else ""))
    background = None if no_scheduler else Background()
    if background is not None:
        background.start()
    try:
        uvicorn.run(create_app(guard), host=host, port=port, log_level="warning",
                    proxy_headers=False, server_header=False)
    finally:
        if background is not None:
            background.stop()
