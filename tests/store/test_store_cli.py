"""`fluvial runs`: the click group, run against a store written by the recorder."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from fluvial.cli.runs import runs


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(runs, list(args), catch_exceptions=False)

    return invoke


def test_ls(cli, make_flow_run) -> None:
    t = time.time()
    ok = make_flow_run(flow_name="etl", tasks=2, start=t)
    bad = make_flow_run(flow_name="report", tasks=3, fail=1, start=t + 5)
    result = cli("ls")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "flow", "name", "state", "start", "duration"]
    assert lines[1].startswith(str(bad)[:8]) and "Failed" in lines[1] and "report" in lines[1]
    assert lines[2].startswith(str(ok)[:8]) and "Completed" in lines[2] and "2.2s" in lines[2]
    only = cli("ls", "--flow", "etl").output
    assert str(ok)[:8] in only and str(bad)[:8] not in only
    failed = cli("ls", "--state", "FAILED", "--limit", "5").output
    assert str(bad)[:8] in failed and str(ok)[:8] not in failed


def test_ls_empty_and_bad_limit(cli, backend) -> None:
    assert cli("ls").output.strip() == "No flow runs recorded."
    result = cli("ls", "--limit", "0")
    assert result.exit_code == 2 and "--limit" in result.output


def test_inspect(cli, make_flow_run) -> None:
    run = make_flow_run(flow_name="report", tasks=3, fail=1)
    result = cli("inspect", str(run)[:8])
    assert result.exit_code == 0, result.output
    out = result.output
    assert str(run) in out
    assert "report" in out and "brave-otter" in out and "1/3 states failed" in out
    assert "n = 3" in out and "nightly" in out
    for name in ["Pending", "Running", "Failed"]:
        assert name in out
    assert "Task runs (3)" in out
    for i in range(3):
        assert f"extract-{i}" in out
    assert "490ms" in out
    assert "Failures" in out and "extract-1: ValueError: bad row 7" in out


def test_inspect_keeps_brackets_literal(cli, recorder) -> None:
    import uuid

    run = uuid.uuid4()
    recorder.flow_run_created(run, "[bold]x[/bold]", "f[1]", {"p": "[red]"}, (), None, time.time())
    recorder.flush()
    out = cli("inspect", str(run)).output
    assert "[bold]x[/bold]" in out and "f[1]" in out and "p = '[red]'" in out


def test_logs(cli, make_flow_run) -> None:
    run = make_flow_run(tasks=2)
    result = cli("logs", str(run))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert "INFO" in lines[0] and "[flow] flow started" in lines[0]
    assert "[extract-0] task 0 working" in lines[1]
    assert "[extract-1] task 1 working" in lines[2]


def test_logs_of_a_run_without_logs(cli, recorder) -> None:
    import uuid

    run = uuid.uuid4()
    recorder.flow_run_created(run, "r", "f", {}, (), None, time.time())
    recorder.flush()
    assert cli("logs", str(run)).output.strip() == "No logs recorded for this run."


@pytest.mark.parametrize("command", ["inspect", "logs"])
def test_unknown_run_id_is_a_clean_error(cli, backend, command) -> None:
    result = cli(command, "0123abcd")
    assert result.exit_code == 1
    assert "Error: no flow run id starts with '0123abcd'" in result.output


def test_the_fluvial_command_reads_the_store(make_flow_run) -> None:
    """The installed CLI, in its own process, finds the store from the environment."""
    import os
    import subprocess
    import sys

    run = make_flow_run(flow_name="report", tasks=2, fail=1)
    env = dict(os.environ, COLUMNS="160")
    command = [sys.executable, "-m", "fluvial.cli"]
    ls = subprocess.run([*command, "runs", "ls"], env=env, capture_output=True, text=True)
    assert ls.returncode == 0, ls.stderr
    assert str(run)[:8] in ls.stdout and "Failed" in ls.stdout
    inspect = subprocess.run(
        [*command, "runs", "inspect", str(run)[:8]], env=env, capture_output=True, text=True
    )
    assert inspect.returncode == 0, inspect.stderr
    assert "extract-1: ValueError: bad row 7" in inspect.stdout
