"""The ``fluvial`` command against real runs, in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = '''
import os
from fluvial import flow, task, get_run_logger

MARK = os.environ["MARK_DIR"]

@task(persist_result=True)
def load(n: int) -> list[int]:
    with open(os.path.join(MARK, "load-calls"), "a") as fh:
        fh.write("x\\n")
    return list(range(n))

@task(persist_result=True)
def flaky(values: list[int]) -> int:
    get_run_logger().info("summing %d values", len(values))
    if not os.path.exists(os.path.join(MARK, "fixed")):
        raise RuntimeError("transient outage")
    return sum(values)

@flow
def pipeline(n: int) -> int:
    return flaky(load(n))
'''


@pytest.fixture
def cli(tmp_path: Path, fluvial_home: str):
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "MARK_DIR": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                              text=True, env=env, timeout=120, cwd=tmp_path)

    run.script = str(script)  # type: ignore[attr-defined]
    return run


def _first_id(listing: str) -> str:
    return listing.splitlines()[1].split()[0]


def test_run_ls_inspect_logs_and_retry(cli, tmp_path: Path):
    failed = cli("run", f"{cli.script}:pipeline", "--param", "n=4")
    assert failed.returncode == 1
    assert "transient outage" in failed.stderr

    listing = cli("runs", "ls", "--state", "failed")
    assert listing.returncode == 0, listing.stderr
    assert "pipeline" in listing.stdout and "Failed" in listing.stdout
    run_id = _first_id(listing.stdout)

    inspect = cli("runs", "inspect", run_id)
    assert inspect.returncode == 0, inspect.stderr
    for expected in ("load", "flaky", "Completed", "Failed", "transient outage"):
        assert expected in inspect.stdout
    logs = cli("runs", "logs", run_id)
    assert "summing 4 values" in logs.stdout

    (tmp_path / "fixed").touch()
    retried = cli("runs", "retry", run_id)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "6"
    assert (tmp_path / "load-calls").read_text().split() == ["x"], "load must not run again"

    newest = _first_id(cli("runs", "ls", "--limit", "1").stdout)
    assert newest != run_id
    detail = cli("runs", "inspect", newest).stdout
    assert "Cached" in detail

    again = cli("runs", "retry", newest)
    assert again.returncode != 0 and "only failed or crashed" in again.stderr


def test_run_validates_parameters(cli):
    bad = cli("run", f"{cli.script}:pipeline", "--param", "n=abc")
    assert bad.returncode == 2
    assert "'n'" in bad.stderr
    missing = cli("run", f"{cli.script}:nope")
    assert missing.returncode == 2 and "pipeline" in missing.stderr


def test_unknown_run_id(cli):
    out = cli("runs", "inspect", "ffffffff")
    assert out.returncode == 1 and "ffffffff" in out.stderr


def test_concurrency_limit_commands(cli):
    assert cli("concurrency-limit", "create", "db", "3").returncode == 0
    listing = cli("concurrency-limit", "ls").stdout
    assert "db" in listing and "3" in listing
    assert "db" in cli("concurrency-limit", "inspect", "db").stdout
    assert cli("concurrency-limit", "reset", "db").returncode == 0
    assert cli("concurrency-limit", "create", "db", "-1").returncode != 0
    assert cli("concurrency-limit", "delete", "db").returncode == 0
    assert "db" not in cli("concurrency-limit", "ls").stdout


@pytest.mark.parametrize("args", [[], ["run"], ["runs"], ["runs", "retry"],
                                  ["concurrency-limit"], ["concurrency-limit", "create"]])
def test_help_everywhere(cli, args):
    out = cli(*args, "--help")
    assert out.returncode == 0 and "Usage" in out.stdout


KWARGS_FLOW = '''
import os
from fluvial import flow

@flow
def kw(x, **extra):
    marker = os.path.join(os.environ["MARK_DIR"], "kw-tried")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt")
    return x, extra
'''


def test_retry_passes_a_flows_var_keyword_arguments_flat(cli, tmp_path: Path):
    script = tmp_path / "kwflow.py"
    script.write_text(KWARGS_FLOW)
    failed = cli("run", f"{script}:kw", "--param", "x=1", "--param", "foo=2")
    assert failed.returncode == 1 and "first attempt" in failed.stderr
    run_id = _first_id(cli("runs", "ls", "--state", "failed").stdout)
    retried = cli("runs", "retry", run_id)
    assert retried.returncode == 0, retried.stderr
    assert "(1, {'foo': 2})" in retried.stdout


def test_commands_that_read_the_local_record_say_so_when_an_api_url_is_set(cli):
    env_url = {"FLUVIAL_API_URL": "http://127.0.0.1:9"}
    listed = subprocess.run([sys.executable, "-m", "fluvial.cli", "runs", "ls"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env_url})
    assert listed.returncode == 0, listed.stderr
    assert "FLUVIAL_API_URL is set, but `fluvial runs` uses the local record" in listed.stderr
    plain = cli("runs", "ls")
    assert "FLUVIAL_API_URL" not in plain.stderr
