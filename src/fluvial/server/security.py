"""Who may talk to the server: the bind rule, the token, sessions, Host, Origin and CSRF checks.

* Bound to loopback (the default), the server needs no token: only this machine reaches
  it. Bound anywhere else it needs one — generated on first start into
  ``$FLUVIAL_HOME/server.token`` (mode 0600) — or it refuses to start, unless
  ``--insecure`` is given.
* API clients send ``Authorization: Bearer <token>``. The UI trades the token (at
  ``/login``) for a session cookie: HttpOnly, SameSite=Strict, random, kept in memory.
* Every request's ``Host`` must be one the server answers to (DNS rebinding).
* A state-changing request (POST, PUT, PATCH, DELETE) from a browser is refused when
  its ``Origin`` is another site, and, when it carries the session cookie rather than a
  bearer token, it needs the CSRF token of the page (``X-CSRF-Token`` header or
  ``csrf_token`` form field), which must match the ``fluvial_csrf`` cookie.
* No CORS headers are sent: other sites' pages cannot read the API.
* Tokens and CSRF values are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fluvial.exceptions import InsecureBind

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "Guard",
    "InsecureBind",
    "is_loopback",
    "load_or_create_token",
]

SESSION_COOKIE = "fluvial_session"
CSRF_COOKIE = "fluvial_csrf"
SESSION_SECONDS = 12 * 3600
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_create_token(home: Path) -> str:
    """The token in ``home/server.token``, created (mode 0600) when missing."""
    path = home / "server.token"
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    os.chmod(path, 0o600)
    return token


@dataclass
class Guard:
    """The checks every request goes through (see the module docstring)."""

    token: str | None
    allowed_hosts: set[str]
    sessions: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_bind(cls, host: str, port: int, token: str | None, insecure: bool,
                 extra_hosts: tuple[str, ...] = ()) -> Guard:
        if not is_loopback(host) and token is None and not insecure:
            raise InsecureBind(
                f"refusing to listen on {host}:{port} without a token: anyone who can reach "
                "it could run and cancel flows. Give --token (or use the generated "
                "$FLUVIAL_HOME/server.token), bind 127.0.0.1, or pass --insecure")
        names = {"127.0.0.1", "localhost", "[::1]", "::1", *extra_hosts}
        if host not in ("0.0.0.0", "::"):
            names.add(host)
        allowed = {n for n in names} | {f"{n}:{port}" for n in names}
        return cls(token=token, allowed_hosts=allowed)

    @property
    def requires_auth(self) -> bool:
        return self.token is not None

    # -- checks ---------------------------------------------------------------------------

    def host_ok(self, host_header: str | None) -> bool:
        return bool(host_header) and (host_header in self.allowed_hosts or "*" in
                                      self.allowed_hosts)

    def bearer_ok(self, authorization: str | None) -> bool:
        if self.token is None or not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token)

    def token_ok(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(candidate, self.token)

    def session_ok(self, cookie: str | None) -> bool:
        if not cookie:
            return False
        expires = self.sessions.get(cookie)
        return expires is not None and expires > time.time()

    def new_session(self) -> str:
        now = time.time()
        for sid in [s for s, e in self.sessions.items() if e <= now]:
            del self.sessions[sid]
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = now + SESSION_SECONDS
        return sid

    @staticmethod
    def origin_ok(origin: str | None, host_header: str | None) -> bool:
        """No Origin (not a browser), or an Origin on the host the request was sent to."""
        if origin is None:
            return True
        if origin == "null":
            return False
        return urlsplit(origin).netloc == host_header

    @staticmethod
    def csrf_ok(cookie: str | None, sent: str | None) -> bool:
        return bool(cookie) and bool(sent) and hmac.compare_digest(str(cookie), str(sent))

    @staticmethod
    def is_unsafe(method: str) -> bool:
        return method.upper() in _UNSAFE


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)

