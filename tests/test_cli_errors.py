"""The ``fluvial`` command fails with one line, never a traceback (issue 16, item 13).

Each case runs the real command in its own process against a broken world: a store
file that is not a database, a home on a read-only filesystem, a corrupt
``runs/<id>.pkl``, a flow file with a syntax error or a failing import.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LIMIT_COMMANDS = [["create", "db", "3"], ["ls"], ["inspect", "db"], ["reset", "db"],
                  ["delete", "db"]]


def fluvial(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLUVIAL_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd or home.parent)


def assert_one_line_error(out: subprocess.CompletedProcess, *named: str,
                          codes: tuple[int, ...] = (1, 2)) -> str:
    assert out.returncode in codes, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out.stderr
    for text in named:
        assert text in errors[0], (text, errors[0])
    return errors[0]


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` read-only, for real: without write permission for an ordinary user;
    for root (whom permissions do not stop), a read-only bind mount of it."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(directory), str(directory)],
                          capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount read-only: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True,
                       capture_output=True)
        probe = directory / ".write-probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True, capture_output=True)


@pytest.mark.parametrize("args", LIMIT_COMMANDS, ids=[a[0] for a in LIMIT_COMMANDS])
def test_limit_commands_on_a_corrupt_store(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "fluvial.db").write_bytes(os.urandom(40_000))
    out = fluvial(home, "concurrency-limit", *args)
    assert_one_line_error(out, str(home / "fluvial.db"), "not a database")


def test_limit_commands_on_a_read_only_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert fluvial(home, "concurrency-limit", "create", "db", "2").returncode == 0
    with read_only(home):
        for args in LIMIT_COMMANDS:
            out = fluvial(home, "concurrency-limit", *args)
            if out.returncode == 0:  # a read that a read-only store can still serve
                assert "Traceback" not in out.stderr
                continue
            assert_one_line_error(out, str(home))
        assert_one_line_error(fluvial(home, "runs", "ls"), str(home))


FAILING_FLOW = '''
from fluvial import flow, task

@task(persist_result=True)
def boom() -> int:
    raise RuntimeError("first attempt fails")

@flow
def nightly() -> int:
    return boom()
'''


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "not-a-record"])
def test_retry_with_a_corrupt_inputs_file(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "home"
    (tmp_path / "nightly.py").write_text(FAILING_FLOW)
    assert fluvial(home, "run", "nightly.py:nightly", cwd=tmp_path).returncode == 1
    [pkl] = (home / "runs").glob("*.pkl")
    data = pkl.read_bytes()
    pkl.write_bytes({"garbage": os.urandom(300), "truncated": data[: len(data) // 2],
                     "empty": b"", "not-a-record": b"\x80\x04K\x07."}[damage])
    out = fluvial(home, "runs", "retry", "latest", cwd=tmp_path)
    assert_one_line_error(out, str(pkl), "cannot be read")


@pytest.mark.parametrize(("source", "named"), [
    ("from fluvial import flow\n\n@flow\ndef f(:\n    pass\n", ["broken.py:4", "syntax error"]),
    ("import no_such_module_here\n", ["broken.py", "ModuleNotFoundError",
                                      "no_such_module_here"]),
    ("raise RuntimeError('config missing')\n", ["broken.py", "RuntimeError",
                                                "config missing"]),
], ids=["syntax", "import", "raises"])
def test_run_a_file_that_does_not_import(tmp_path: Path, source: str, named: list[str]) -> None:
    (tmp_path / "broken.py").write_text(source)
    out = fluvial(tmp_path / "home", "run", "broken.py:f", cwd=tmp_path)
    assert_one_line_error(out, *named)


def test_run_a_missing_file_or_flow(tmp_path: Path) -> None:
    out = fluvial(tmp_path / "home", "run", "nowhere.py:f", cwd=tmp_path)
    assert_one_line_error(out, "nowhere.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert_one_line_error(fluvial(tmp_path / "home", "run", "ok.py:f", cwd=tmp_path), "ok.py")
