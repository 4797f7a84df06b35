"""The single-host manager: shared by processes, freed by the kernel when a holder dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slot_helpers import peak, run_thread_holders

from fluvial import concurrency as conc
from fluvial.concurrency import ConcurrencySlotTimeout, HostSlotManager

HOLDER = str(Path(__file__).with_name("host_holder.py"))


def test_peak_is_exactly_the_limit_threads(tmp_path):
    m = HostSlotManager({"db": 3})
    barrier = tmp_path / "barrier"  # must start empty: tmp_path also holds FLUVIAL_HOME
    barrier.mkdir()
    intervals = run_thread_holders(m, "db", 60, barrier)
    observed = peak(intervals)
    print(f"\nhost (threads) peak concurrency: {observed} (limit 3, 60 holders)")
    assert len(intervals) == 60 and observed == 3
    assert m.statistics("db").active == 0


def test_two_processes_share_one_limit(tmp_path):
    conc.set_limit("shared", 3)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen([sys.executable, HOLDER, "peak", "shared", "30", str(barrier)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    intervals = []
    for p in procs:
        out, _ = p.communicate(timeout=90)
        assert p.returncode == 0
        intervals += [tuple(iv) for iv in json.loads(out)]
    observed = peak(intervals)
    print(f"\nhost (2 processes x 30 holders) peak concurrency: {observed} (limit 3)")
    assert len(intervals) == 60 and observed == 3


@pytest.mark.parametrize("how", ["SIGKILL"])
def test_killed_holder_gives_its_slot_back(how):
    conc.set_limit("k", 1)
    p = subprocess.Popen([sys.executable, HOLDER, "hold", "k"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        m = HostSlotManager()
        assert m.try_acquire("k") is None
        assert m.statistics("k").active == 1
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)
        lease = m.acquire("k", timeout=30)
        recovery = time.monotonic() - t0
        print(f"\nhost slot recovery after SIGKILL of the holder: {recovery * 1000:.1f} ms")
        lease.release()
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def test_waiter_in_another_process_is_woken(tmp_path):
    conc.set_limit("w", 1)
    m = HostSlotManager()
    lease = m.acquire("w")
    p = subprocess.Popen([sys.executable, HOLDER, "hold", "w"], stdout=subprocess.PIPE, text=True)
    try:
        lease.release()
        assert p.stdout.readline().strip() == "held"
        assert m.try_acquire("w") is None
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def test_multi_name_and_timeout():
    m = HostSlotManager({"a": 1, "b": 1})
    ab = m.acquire(["b", "a"])
    with pytest.raises(ConcurrencySlotTimeout, match="'a'"):
        m.acquire(["a"], timeout=0.05)
    assert m.statistics("a").waiters == 0
    ab.release()
    ab.release()
    m.acquire(["a", "b"], timeout=10).release()


def test_reset_and_default_manager():
    conc.set_limit("r", 1)
    m = conc.get_slot_manager()
    assert isinstance(m, HostSlotManager)
    held = m.acquire("r")
    conc.reset("r")
    m.acquire("r", timeout=10).release()
    held.release()
    assert m.statistics("r").active == 0


def test_rate_limit_across_host():
    conc.set_limit("api", 2, slot_decay_per_second=0.01)  # a slot decays in 100 s
    conc.set_limit("fast", 1, slot_decay_per_second=1000.0)
    m = HostSlotManager()
    assert m.take_tokens("api") == 0.0
    assert m.take_tokens("api", 1) == 0.0
    assert m.take_tokens("api") > 0  # full until it decays
    for _ in range(3):  # each waits the computed decay time, however slow the machine
        conc.rate_limit("fast", manager=m, timeout_seconds=30)
