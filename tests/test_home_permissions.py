"""FLUVIAL_HOME and everything in it are private to the user (issue 16, item 8).

A real flow run — a tagged task under a limit, a persisted result, a SERIALIZABLE
cache lock, the run record and its resume inputs — in a process whose umask is 0 (the
worst case: nothing masked), into a home that does not exist yet. Every directory
created must be 0700 and every file 0600. An existing home that others can write to is
reported.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fluvial._files import check_home, private_dir
from fluvial.exceptions import InsecureHomeWarning

FLOW = '''
from fluvial import flow, task
from fluvial.cache_policies import INPUTS

@task(tags=["db"], persist_result=True)
def load(i: int) -> int:
    return i * 2

@task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
def cached(i: int) -> int:
    return i + 1

@flow
def nightly(n: int = 3) -> int:
    return sum(load.map(range(n)).result()) + cached(1)
'''


def _run(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "FLUVIAL_HOME": str(home)}, cwd=cwd,
                          timeout=120, preexec_fn=lambda: os.umask(0))


def test_everything_created_in_a_new_home_is_private(tmp_path: Path) -> None:
    (tmp_path / "nightly.py").write_text(FLOW)
    home = tmp_path / "new" / "home"
    created = _run(home, tmp_path, "concurrency-limit", "create", "db", "2")
    assert created.returncode == 0, created.stderr
    ran = _run(home, tmp_path, "run", "nightly.py:nightly")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "8"
    assert _run(home, tmp_path, "concurrency-limit", "reset", "db").returncode == 0

    paths = [home, *home.rglob("*")]
    names = {p.relative_to(home).as_posix() for p in paths}
    for expected in ("fluvial.db", "storage", "storage/.locks", "runs", "slots"):
        assert expected in names, sorted(names)
    assert any(n.startswith("slots/") and n.endswith("/gate") for n in names), sorted(names)
    assert any(n.startswith("runs/") and n.endswith(".pkl") for n in names), sorted(names)
    assert len([n for n in names if n.startswith("storage/") and "/." not in n]) >= 4
    exposed = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode))
               for p in [home.parent, *paths]
               if stat.S_IMODE(p.stat().st_mode) & 0o077
               or (p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o111)}
    assert exposed == {}, f"readable or writable by others: {exposed}"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_an_existing_home_writable_by_others_is_reported(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    listing = _run(home, tmp_path, "runs", "ls")
    assert listing.returncode == 0, listing.stderr
    assert "InsecureHomeWarning" in listing.stderr and str(home) in listing.stderr
    assert "chmod 700" in listing.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o777, "an existing home is left as it is"


def test_check_home_warns_once_per_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "group-writable"
    home.mkdir()
    home.chmod(0o770)
    monkeypatch.setenv("FLUVIAL_HOME", str(home))
    with pytest.warns(InsecureHomeWarning, match="0770"):
        private_dir(home / "storage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_home(home)  # once is enough
        private_dir(tmp_path / "elsewhere")  # outside the home: not checked
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_home(private)
