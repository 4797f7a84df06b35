"""``fluvial server``: the command group is defined with the server (``fluvial.server.command``)."""

from fluvial.server.command import server

__all__ = ["server"]
