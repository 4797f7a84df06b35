"""The Ray manager: a named actor with expiring leases."""

from __future__ import annotations

import time

import pytest
from slot_helpers import (
    dispatch_through_slots,
    hold_until_three_started,
    kill_while_holding,
    make_ray_manager,
    peak,
    wait_for_file,
)

from fluvial.concurrency import ConcurrencySlotTimeout

pytest.importorskip("ray")


def test_peak_is_exactly_the_limit_on_ray(ray_session, tmp_path):
    ray = ray_session
    from fluvial.concurrency import RaySlotManager

    m = RaySlotManager(limits={"rpeak": 3})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    hold = ray.remote(num_cpus=0.5)(hold_until_three_started)
    refs = []

    def submit(lease):
        ref = hold.remote(str(barrier), f"r{len(refs)}")
        ref.future().add_done_callback(lambda _f: lease.release())
        refs.append(ref)

    dispatch_through_slots(m, "rpeak", 60, submit, lambda: None)
    intervals = ray.get(refs)
    observed = peak(intervals)
    print(f"\nray peak concurrency: {observed} (limit 3, 60 tasks)")
    assert len(intervals) == 60 and observed == 3
    m.close()


def test_actor_is_shared_and_times_out(ray_session):
    from fluvial.concurrency import RaySlotManager

    m1 = RaySlotManager(limits={"rshare": 1})
    m2 = RaySlotManager(limits={"rshare": 1})  # same named actor (get_if_exists)
    lease = m1.acquire("rshare")
    assert m2.try_acquire("rshare") is None
    with pytest.raises(ConcurrencySlotTimeout, match="'rshare'"):
        m2.acquire("rshare", timeout=0.1)
    deadline = time.monotonic() + 30  # the withdrawal is fire-and-forget: wait for it to land
    while m1.statistics("rshare").waiters and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m1.statistics("rshare").waiters == 0
    lease.release()
    lease.release()
    m2.acquire(["rshare", "other"], timeout=30).release()
    m1.close()
    m2.close()


def test_killed_holder_slot_expires_within_lease(ray_session, tmp_path):
    ray = ray_session
    from fluvial.concurrency import RaySlotManager

    m = RaySlotManager(limits={"rkill": 1})
    marker = str(tmp_path / "killed")
    killer = ray.remote(max_retries=0, num_cpus=0.5)(kill_while_holding)
    ref = killer.remote(marker, make_ray_manager, "rkill")
    killed_at = float(wait_for_file(marker))
    lease = m.acquire("rkill", timeout=60)
    recovery = time.monotonic() - killed_at
    print(f"\nray slot recovery after the holder died: {recovery * 1000:.0f} ms (lease 2 s)")
    lease.release()
    with pytest.raises(ray.exceptions.RayError):
        ray.get(ref)
    m.close()
