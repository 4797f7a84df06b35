"""Clients for the server tests (imported by name: the test directories are on sys.path)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from fluvial.server.app import create_app
from fluvial.server.security import Guard


def client(host: str = "127.0.0.1", token: str | None = None, **kwargs: Any) -> TestClient:
    """A test client for a server bound to ``host`` (``Host`` header set to match)."""
    guard = Guard.for_bind(host, 4200, token, insecure=False)
    return TestClient(create_app(guard), base_url=f"http://{host}:4200", **kwargs)
