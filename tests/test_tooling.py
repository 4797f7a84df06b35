"""Strict tooling from day one: the package type-checks and the tree lints clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff():
    out = _run("ruff", "check", "src", "tests", "benchmarks", "examples")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_on_the_package():
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_layers():
    """The layer contract in pyproject.toml ([tool.importlinter]): each layer imports
    only from the layers below it (docs/design.md, "Layers")."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
