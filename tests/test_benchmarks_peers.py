"""``make bench-peers``'s own logic, without Prefect (which lives in ``.venv-peers``, made by
the Makefile target, not by ``make test``): the fluvial side runs the same flows and gets
the right results, the Prefect side script refuses to run without a server to talk to,
and a missing Prefect virtualenv is a clear error naming the make target.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.harness import throwaway_home
from benchmarks.peers.__main__ import WORKLOADS, _name, _peer_python, parse_args
from benchmarks.peers.fluvial_side import sides

ROOT = Path(__file__).resolve().parent.parent
SIDE = ROOT / "benchmarks" / "peers" / "prefect_side.py"


def test_fluvial_side_runs_the_same_flows() -> None:
    with throwaway_home(), sides("threads") as flows:
        assert flows["map"](50) == list(range(50))
        assert flows["chain"](10) is None  # asserts the chain's value itself
    with pytest.raises(ValueError, match="unknown runner kind 'spark'"):
        with sides("spark"):
            pass


def test_every_kind_has_workloads_and_readable_names() -> None:
    assert set(WORKLOADS) == {"threads", "dask", "ray"}
    for shapes in WORKLOADS.values():
        for shape, full, quick in shapes:
            assert shape in ("map", "chain") and full > quick > 0
    assert _name("dask", "map", 100) == "dask: map 100 no-ops"
    assert _name("threads", "chain", 200) == "threads: chain of 200"


def test_missing_prefect_venv_names_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="make bench-peers"):
        _peer_python(tmp_path / "no-venv")
    with pytest.raises(SystemExit):
        parse_args(["spark"])
    with pytest.raises(SystemExit):
        parse_args(["--repeat", "0"])
    assert parse_args(["dask", "--quick"]).kinds == ["dask"]


def test_prefect_side_needs_its_server_settings(tmp_path: Path) -> None:
    # run with this interpreter: the check comes before Prefect is imported
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(SIDE), "threads-map", "10"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "PREFECT_HOME must be set" in proc.stderr
