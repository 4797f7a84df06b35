"""Who may use the server: loopback by default, a token elsewhere, sessions, Origin and CSRF."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from server_helpers import client

from fluvial.server.security import CSRF_COOKIE, Guard, InsecureBind, load_or_create_token

TOKEN = "s3cret-token-for-tests"


def test_a_non_loopback_bind_needs_a_token_or_insecure() -> None:
    with pytest.raises(InsecureBind, match="without a token"):
        Guard.for_bind("0.0.0.0", 4200, None, insecure=False)
    assert Guard.for_bind("0.0.0.0", 4200, None, insecure=True).requires_auth is False
    assert Guard.for_bind("127.0.0.1", 4200, None, insecure=False).requires_auth is False


def test_the_generated_token_file_is_private(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path / "h")
    path = tmp_path / "h" / "server.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32 and load_or_create_token(tmp_path / "h") == token


def test_without_the_token_the_api_answers_401(recorded: dict[str, str]) -> None:
    api = client(host="10.1.2.3", token=TOKEN)
    assert api.get("/api/flow_runs").status_code == 401
    assert api.get("/api/flow_runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = api.get("/api/flow_runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["items"]
    page = api.get("/runs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert api.get("/api/health").status_code == 200


def test_the_ui_trades_the_token_for_a_strict_httponly_session(recorded: dict[str, str]) -> None:
    api = client(host="10.1.2.3", token=TOKEN)
    refused = api.post("/login", data={"token": "nope", "next": "/runs"}, follow_redirects=False)
    assert refused.status_code == 401
    signed = api.post("/login", data={"token": TOKEN, "next": "https://evil.example/"},
                      follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert "fluvial_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert api.get("/runs").status_code == 200  # the client keeps the cookie


def test_cross_origin_and_csrf_less_posts_are_refused(recorded: dict[str, str]) -> None:
    api = client()
    dep = recorded["deployment_id"]
    evil = api.post(f"/api/deployments/{dep}/run", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.text
    page = api.get("/deployments")
    csrf = page.cookies.get(CSRF_COOKIE) or api.cookies.get(CSRF_COOKIE)
    assert csrf and f'content="{csrf}"' in page.text
    same_origin = {"Origin": "http://127.0.0.1:4200"}
    no_token = api.post(f"/deployments/{dep}/quick-run", headers=same_origin)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    ok = api.post(f"/deployments/{dep}/quick-run", headers={**same_origin, "X-CSRF-Token": csrf})
    assert ok.status_code == 200 and "Created" in ok.text


def test_a_bearer_token_needs_no_csrf_and_scripts_on_loopback_need_none() -> None:
    api = client(host="10.1.2.3", token=TOKEN)
    made = api.post("/api/events", json={"event": "e", "resource": {"fluvial.resource.id": "r"}},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert made.status_code == 202
    local = client()
    assert local.post("/api/events", json={"event": "e",
                                           "resource": {"fluvial.resource.id": "r"}}
                      ).status_code == 202


def test_unknown_hosts_are_refused_against_dns_rebinding() -> None:
    api = client()
    assert api.get("/api/health", headers={"Host": "attacker.example:4200"}).status_code == 421
    assert api.get("/api/health", headers={"Host": "localhost:4200"}).status_code == 200


def test_no_cors_headers() -> None:
    answer = client().get("/api/health", headers={"Origin": "https://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in answer.headers)


def test_text_from_the_record_is_escaped_in_pages(recorded: dict[str, str]) -> None:
    page = client().get(f"/runs/{recorded['run_id']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_server_start_refuses_nothing_on_loopback_and_generates_a_token_elsewhere(
        home: Path) -> None:
    from fluvial.cli import main

    result = CliRunner().invoke(main, ["server", "start", "--host", "0.0.0.0", "--port", "0",
                                       "--no-scheduler", "--insecure", "--help"])
    assert result.exit_code == 0 and "--insecure" in result.output
