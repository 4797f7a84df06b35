"""Limits are bounded, and reading one costs the same whatever its size (issue 16, item 11).

``concurrency-limit create big 1000000000000`` (and 10**30) is a one-line error naming
the bound; a limit of the largest allowed size can be inspected by a process allowed
only 64 open files, while slots are held by another process, and ``statistics()``
opens no descriptor that it keeps.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from fluvial import concurrency as conc
from fluvial.concurrency import MAX_LIMIT, HostSlotManager

HOLDER = Path(__file__).parent / "host_holder.py"


def _fluvial(*args: str, max_files: int | None = None) -> subprocess.CompletedProcess:
    def limit_files() -> None:
        if max_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    return subprocess.run([sys.executable, "-m", "fluvial.cli", *args], capture_output=True,
                          text=True, timeout=120, preexec_fn=limit_files,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("limit", [str(10**12), str(10**30), str(MAX_LIMIT + 1)])
def test_cli_refuses_a_limit_beyond_the_bound(limit: str) -> None:
    out = _fluvial("concurrency-limit", "create", "big", limit)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "OverflowError" not in out.stderr
    assert "at most 1,000,000" in out.stderr and "'big'" in out.stderr
    assert conc.get_limit("big") is None


@pytest.mark.parametrize("limit", [10**12, 10**30, -1])
def test_api_refuses_a_limit_out_of_bounds(limit: int) -> None:
    with pytest.raises(ValueError, match="'big'"):
        conc.set_limit("big", limit)
    with pytest.raises(ValueError, match="'big'"):
        HostSlotManager(limits={"big": limit})
    assert conc.get_limit("big") is None


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_statistics_do_not_depend_on_the_limit(home: Path) -> None:
    conc.set_limit("huge", MAX_LIMIT)
    holders = []
    try:
        for _ in range(2):  # two slots held by other processes
            proc = subprocess.Popen([sys.executable, str(HOLDER), "hold", "huge"],
                                    stdout=subprocess.PIPE, text=True)
            holders.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        manager = HostSlotManager()
        lease = manager.acquire("huge")  # and one by this process
        before = _open_fds()
        stats = manager.statistics("huge")
        assert (stats.limit, stats.active) == (MAX_LIMIT, 3)
        assert _open_fds() == before, "statistics() kept descriptors open"
        slot_dir = next((home / "slots").iterdir())
        assert len(list(slot_dir.iterdir())) < 10, "statistics() created slot files"

        inspect = _fluvial("concurrency-limit", "inspect", "huge", max_files=64)
        assert inspect.returncode == 0, inspect.stderr
        assert "1000000" in inspect.stdout and "3" in inspect.stdout
        listing = _fluvial("concurrency-limit", "ls", max_files=64)
        assert listing.returncode == 0, listing.stderr
        lease.release()
        assert manager.statistics("huge").active == 2
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
