"""One crash rule on every runner: a crash counts as an attempt and is retried while the
task has retries left (docs/behaviour.md, "Crashes").

The crash here is a ``BaseException`` escaping the engine where the task runs — the
one kind of crash every runner can survive in a test, threads included. Worker deaths
(``os._exit``, SIGKILL, segfaults) go through the same driver rule; they are tested
on the out-of-process runners in tests/runners/test_remote_common.py.
"""

from __future__ import annotations

from pathlib import Path

import fluvial
from fluvial import StateType, flow, task


class WorkerCrash(BaseException):
    """Not an ``Exception``: the task engine does not catch it, so the run crashes."""


def _attempts(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


@task
def crashes_first(path: str, crashes: int) -> str:
    with open(path, "a") as fh:
        fh.write("x\n")
    if len(open(path).read().split()) <= crashes:
        raise WorkerCrash("the worker broke")
    return "survived"


@task
def length(text: str) -> int:
    return len(text)


def test_a_crash_counts_as_an_attempt_and_is_retried_while_retries_remain(runner,
                                                                          tmp_path: Path):
    once, twice, never = tmp_path / "once", tmp_path / "twice", tmp_path / "never"

    @flow(task_runner=runner)
    def crashing():
        retried = crashes_first.with_options(retries=1).submit(str(once), 1)
        downstream = length.submit(retried)  # waits through the retry on every runner
        exhausted = crashes_first.with_options(retries=1).submit(str(twice), 2)
        no_retries = crashes_first.submit(str(never), 1)
        fluvial.wait([exhausted, no_retries])
        return (retried.result(), downstream.result(), exhausted.state.type,
                exhausted.state.message, no_retries.state.type)

    survived, size, exhausted, message, no_retries = crashing()
    assert survived == "survived" and size == len("survived")
    assert _attempts(once) == 2  # the crash was attempt 1, the retry attempt 2
    assert exhausted is StateType.CRASHED and _attempts(twice) == 2  # 1 + 1 retry
    assert "WorkerCrash" in message and "the worker broke" in message
    assert no_retries is StateType.CRASHED and _attempts(never) == 1

