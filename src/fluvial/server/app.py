"""The ASGI application: the JSON API, the web UI, static files, and the guard in front of them.

``create_app(guard)`` builds it; ``fluvial server start`` serves it with uvicorn. The
OpenAPI document is at ``/api/openapi.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from fluvial.server.security import CSRF_COOKIE, SESSION_COOKIE, Guard

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
_PUBLIC = ("/static/", "/login", "/api/health")


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


class GuardMiddleware:
    """Host, authentication, Origin and CSRF checks before any route runs."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        path: str = scope["path"]
        method: str = scope["method"]
        guard = self.guard
        if not guard.host_ok(host):
            await _reply(send, 421, {"detail": f"this server does not answer to host {host!r}"})
            return
        cookies = _cookies(headers)
        bearer = guard.bearer_ok(headers.get(b"authorization", b"").decode("latin-1") or None)
        session = guard.session_ok(cookies.get(SESSION_COOKIE))
        api = path.startswith(("/api/", "/hooks/"))
        if guard.requires_auth and not (bearer or session) and not path.startswith(_PUBLIC):
            if api or method != "GET":
                await _reply(send, 401, {"detail": "send Authorization: Bearer <token>"},
                             [(b"www-authenticate", b"Bearer")])
            else:
                await _redirect(send, "/login?next=" + quote(path))
            return
        if guard.is_unsafe(method) and not path.startswith("/login"):
            origin = headers.get(b"origin")
            if not guard.origin_ok(origin.decode("latin-1") if origin else None, host):
                await _reply(send, 403, {"detail": "cross-origin request refused"})
                return
            browser = origin is not None or bool(cookies)
            if not bearer and browser and not guard.csrf_ok(
                    cookies.get(CSRF_COOKIE),
                    headers.get(b"x-csrf-token", b"").decode("latin-1") or None):
                await _reply(send, 403, {"detail": "missing or wrong CSRF token"})
                return
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, body: dict[str, Any],
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def create_app(guard: Guard) -> ASGIApp:
    """The server's application, guarded by ``guard``."""
    from fluvial.server.api import deployments, hooks, platform, record, runs, work
    from fluvial.server.ui import pages, stream

    app = FastAPI(title="fluvial", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.guard = guard
    app.include_router(runs.router)
    app.include_router(deployments.router)
    app.include_router(platform.router)
    app.include_router(hooks.router)
    app.include_router(record.router)
    app.include_router(work.router)
    app.include_router(pages.router)
    app.include_router(stream.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return GuardMiddleware(app, guard)
