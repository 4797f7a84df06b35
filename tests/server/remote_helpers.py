"""A real ``fluvial server`` process for the remote-recording tests (imported by name)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


class ServerProcess:
    """``python -m fluvial.server`` on 127.0.0.1 with its own FLUVIAL_HOME (and record),
    requiring its token; stoppable and restartable on the same port."""

    def __init__(self, home: Path, scheduler: bool = False) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scheduler = scheduler
        self.proc: subprocess.Popen | None = None
        self.log = home.parent / f"server-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.home / "server.token").read_text().strip()

    @property
    def db(self) -> Path:
        return self.home / "fluvial.db"

    def start(self, timeout: float = 60.0) -> None:
        args = [sys.executable, "-m", "fluvial.server", "--port", str(self.port),
                "--require-token"]
        if not self.scheduler:
            args.append("--no-scheduler")
        env = child_env(FLUVIAL_HOME=str(self.home), FLUVIAL_PROGRESS="off")
        env.pop("FLUVIAL_API_URL", None)
        env.pop("FLUVIAL_API_TOKEN", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not start within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params,
                             headers={"authorization": f"Bearer {self.token}"}, timeout=30)
        response.raise_for_status()
        return response.json()

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, args).fetchall()
