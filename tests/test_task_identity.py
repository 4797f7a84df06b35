"""Task identity does not depend on how the flow's file was started (issue 16, item 4).

A flow started with ``python file.py`` defines its tasks in ``__main__``; ``fluvial runs
retry`` loads the same file as a module. Both must give the tasks the same identity, so
persisted results of the first run are found by the retry. Real subprocesses throughout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = '''
import os
from fluvial import flow, task
from fluvial.runners import ProcessPoolTaskRunner

RUNNER = ProcessPoolTaskRunner(2) if os.environ.get("USE_PROCESSES") else None

MARK = os.environ["MARK_DIR"]

@task(persist_result=True)
def step(i: int) -> int:
    with open(os.path.join(MARK, "step-calls"), "a") as fh:
        fh.write(f"{i}\\n")
    return i * 2

@task(persist_result=True)
def last(values: list[int]) -> int:
    if not os.path.exists(os.path.join(MARK, "fixed")):
        raise RuntimeError("transient outage")
    return sum(values)

@flow(task_runner=RUNNER)
def pipeline(n: int = 5) -> int:
    if RUNNER is None:
        return last([step(i) for i in range(n)])
    return last(step.map(range(n)).result())

if __name__ == "__main__":
    pipeline(n=5)
'''


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


@pytest.mark.parametrize("start", ["script", "module", "script-processes"])
def test_retry_of_a_flow_started_as_main_reuses_its_results(tmp_path: Path, fluvial_home: str,
                                                             start: str) -> None:
    """Started as ``python jobs/nightly.py`` or ``python -m jobs.nightly`` (tasks in
    ``__main__``, on threads or in worker processes), retried with ``fluvial runs retry``
    (the file imported as ``jobs.nightly``): the five persisted ``step`` results are reused."""
    package = tmp_path / "jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    script = package / "nightly.py"
    script.write_text(FLOW)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "MARK_DIR": str(tmp_path),
           "PYTHONPATH": str(tmp_path), "USE_PROCESSES": "1" if "processes" in start else ""}
    if start.startswith("script"):
        first = _run([sys.executable, str(script)], tmp_path, env)      # python jobs/nightly.py
    else:
        first = _run([sys.executable, "-m", "jobs.nightly"], tmp_path, env)  # python -m
    assert "transient outage" in first.stderr
    assert sorted((tmp_path / "step-calls").read_text().split()) == ["0", "1", "2", "3", "4"]

    (tmp_path / "fixed").touch()
    retried = _run([sys.executable, "-m", "fluvial.cli", "runs", "retry", "latest"],
                   tmp_path / "..", env)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "20"
    calls = (tmp_path / "step-calls").read_text().split()
    assert len(calls) == 5, f"the retry ran step again instead of reusing its results: {calls}"


def test_identity_of_a_main_task_is_its_file_module(tmp_path: Path) -> None:
    script = tmp_path / "etl_job.py"
    script.write_text(
        "from fluvial import task\n"
        "@task\n"
        "def step(): ...\n"
        "print(step.task_key)\n"
    )
    out = _run([sys.executable, str(script)], tmp_path, dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "etl_job.step"
