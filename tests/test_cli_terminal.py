"""Nothing from the record reaches the terminal as a control sequence (issue 16, item 7).

A flow whose run name, task run name, log line and exception message carry OSC
(title, hyperlink), CSI (clear screen, cursor home, colour, the one-byte C1 CSI), a
carriage return and a bidi override is run for real; every ``fluvial`` command that
prints from the record is then run in its own process and its output checked byte by
byte.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fluvial.cli._terminal import safe

EVIL = ("\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
        "\x9b31m\x9d0;t\x07\r\u202eevil\x08\x00")

FLOW = f'''
from fluvial import flow, task, get_run_logger

EVIL = {EVIL!r}

@task(task_run_name="t" + EVIL, tags=["tag" + EVIL])
def step(p: str) -> int:
    get_run_logger().info("log" + EVIL)
    raise ValueError("boom" + EVIL)

@flow(flow_run_name="run" + EVIL)
def evil_flow(p: str = "param" + EVIL) -> None:
    step(p)
'''

# Anything a terminal acts on, except the newline that ends a printed line.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def fluvial_cli(tmp_path: Path, fluvial_home: str):
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "COLUMNS": "300"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                              text=True, env=env, timeout=120, cwd=tmp_path)

    return run


def _assert_clean(out: subprocess.CompletedProcess, *expected: str) -> None:
    for stream in (out.stdout, out.stderr):
        found = CONTROL.findall(stream)
        assert not found, f"control characters reached the terminal: {found!r} in {stream!r}"
    for text in expected:
        assert text in out.stdout + out.stderr


def test_runs_commands_escape_what_the_record_holds(tmp_path: Path, fluvial_cli) -> None:
    (tmp_path / "evil.py").write_text(FLOW)
    ran = fluvial_cli("run", "evil.py:evil_flow")
    assert ran.returncode == 1
    # The flow's own console logs are the user's; the CLI's report of the outcome is ours.
    report = ran.stderr.splitlines()[-1]
    assert report.startswith("Flow run ended Failed: ValueError: boom\\x1b]0;pwned")
    assert not CONTROL.findall(report)

    _assert_clean(fluvial_cli("runs", "ls"), "run\\x1b]0;pwned\\x07")
    inspect = fluvial_cli("runs", "inspect", "latest")
    assert inspect.returncode == 0, inspect.stderr
    _assert_clean(inspect, "run\\x1b]0;pwned", "t\\x1b]0;pwned", "pwned\\x07\\x1b[2J\\x1b[H",
                  "\\x9b31m", "\\u202eevil", "param\\x1b")
    logs = fluvial_cli("runs", "logs", "latest")
    assert logs.returncode == 0, logs.stderr
    _assert_clean(logs, "log\\x1b]0;pwned\\x07", "8;;http://evil.example/\\x1b")


def test_concurrency_limit_commands_escape_tags(fluvial_cli) -> None:
    tag = "db" + EVIL.replace("\x00", "")  # argv cannot hold NUL
    _assert_clean(fluvial_cli("concurrency-limit", "create", tag, "2"), "db\\x1b]0;pwned")
    _assert_clean(fluvial_cli("concurrency-limit", "ls"), "db\\x1b]0;pwned")
    _assert_clean(fluvial_cli("concurrency-limit", "inspect", tag), "db\\x1b]0;pwned")
    _assert_clean(fluvial_cli("concurrency-limit", "reset", tag))
    _assert_clean(fluvial_cli("concurrency-limit", "delete", tag))
    _assert_clean(fluvial_cli("concurrency-limit", "inspect", tag), "No concurrency limit")


def test_safe_shows_every_control_character() -> None:
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("\x9b\x9d\x7f\r\t\n") == "\\x9b\\x9d\\x7f\\x0d\\x09\\x0a"
    assert safe("line1\nline2\tx\r", lines=True) == "line1\nline2\tx\\x0d"
    assert safe("\u202e\u2066ok") == "\\u202e\\u2066ok"
    assert safe("héllo ✓ 日本") == "héllo ✓ 日本"
    assert safe(42) == "42"
