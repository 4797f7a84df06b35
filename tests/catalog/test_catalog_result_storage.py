"""``result_storage=`` takes a filesystem block or its slug: results and caches live there."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial import flow, task
from fluvial.cache_policies import INPUTS
from fluvial.filesystems import LocalFileSystem, RemoteFileSystem
from fluvial.runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

CALLS: list[int] = []


def test_a_remote_filesystem_block_holds_the_cache() -> None:
    fs = RemoteFileSystem(basepath="memory://results-test/cache")

    @task(cache_policy=INPUTS, result_storage=fs)
    def square(x: int) -> int:
        CALLS.append(x)
        return x * x

    @flow
    def twice() -> list[int]:
        return [square(3), square(3), square(4)]

    CALLS.clear()
    assert twice() == [9, 9, 16]
    assert CALLS == [3, 4]
    stored = fs.filesystem.find("results-test/cache")
    assert len(stored) == 2


@pytest.mark.parametrize("make", [lambda: ThreadPoolTaskRunner(max_workers=2),
                                  lambda: ProcessPoolTaskRunner(max_workers=2)],
                         ids=["threads", "processes"])
def test_a_saved_local_filesystem_by_slug_holds_persisted_results(tmp_path: Path, make) -> None:
    LocalFileSystem(basepath=str(tmp_path / "shared")).save("results")

    @task(persist_result=True, cache_policy=INPUTS, result_storage="local-file-system/results")
    def double(x: int) -> int:
        return x * 2

    @flow
    def run() -> list[int]:
        return double.map([1, 2, 3]).result()

    assert run.with_options(task_runner=make())() == [2, 4, 6]
    assert len([p for p in (tmp_path / "shared").iterdir() if p.is_file()]) == 3


def test_a_plain_directory_still_works_and_an_odd_value_is_named(tmp_path: Path) -> None:
    @task(persist_result=True, result_storage=str(tmp_path / "dir"))
    def one() -> int:
        return 1

    @flow
    def f() -> int:
        return one()

    assert f() == 1
    assert any((tmp_path / "dir").iterdir())

    with pytest.raises(TypeError, match="task 'bad': result_storage must be a directory, a filesys"):
        @task(persist_result=True, result_storage=42)
        def bad() -> int:
            return 1


def test_a_slug_naming_a_missing_block_fails_the_run_instead_of_writing_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    @task(persist_result=True, result_storage="local-file-system/never-saved")
    def one() -> int:
        return 1

    @flow
    def f() -> int:
        return one()

    state = f(return_state=True)
    assert state.is_failed()
    assert "never-saved" in str(state.message)
    assert not (tmp_path / "local-file-system").exists()
