"""The PostgreSQL test server's provisioning: where it cannot be had, the reason is clear."""

from __future__ import annotations

import subprocess

import pg_server
import pytest


@pytest.fixture
def no_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_server, "find_binaries", lambda: None)


def test_not_root_and_no_binaries_is_unavailable(no_binaries, monkeypatch) -> None:
    monkeypatch.setattr(pg_server.os, "geteuid", lambda: 1000)
    with pytest.raises(pg_server.Unavailable, match="not root"):
        pg_server.find_or_install_binaries()


def test_a_failing_install_is_unavailable_with_apt_gets_words(no_binaries, monkeypatch) -> None:
    calls: list[tuple[str, ...]] = []

    def apt_get(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 100, "", "E: Unable to locate package postgresql")

    monkeypatch.setattr(pg_server.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pg_server.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(pg_server, "_apt_get", apt_get)
    with pytest.raises(pg_server.Unavailable, match="Unable to locate package postgresql"):
        pg_server.find_or_install_binaries()
    # a clean machine has no package lists: update, then install again
    assert [c[0] for c in calls] == ["install", "update", "install"]


def test_an_install_that_hangs_is_unavailable(no_binaries, monkeypatch) -> None:
    def apt_get(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(["apt-get", *args], timeout)

    monkeypatch.setattr(pg_server.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pg_server.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(pg_server, "_apt_get", apt_get)
    with pytest.raises(pg_server.Unavailable, match="did not finish within"):
        pg_server.find_or_install_binaries()
