"""The Dask manager: hosted by the scheduler, shared by clients, freed when a worker dies."""

from __future__ import annotations

import time

import pytest
from slot_helpers import (
    dispatch_through_slots,
    hold_until_three_started,
    kill_while_holding,
    make_dask_manager,
    peak,
    wait_for_file,
)

from fluvial.concurrency import ConcurrencySlotTimeout

pytest.importorskip("distributed")


def test_peak_is_exactly_the_limit_on_workers(dask_client, tmp_path):
    from fluvial.concurrency import DaskSlotManager

    m = DaskSlotManager(dask_client, limits={"dpeak": 3})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    futures = []

    def submit(lease):
        f = dask_client.submit(hold_until_three_started, str(barrier), f"d{len(futures)}", pure=False)
        f.add_done_callback(lambda _f: lease.release())
        futures.append(f)

    dispatch_through_slots(m, "dpeak", 60, submit, lambda: None)
    intervals = dask_client.gather(futures)
    observed = peak(intervals)
    print(f"\ndask peak concurrency: {observed} (limit 3, 60 tasks on 2 workers x 2 threads)")
    assert len(intervals) == 60 and observed == 3


def test_second_client_shares_the_slots(dask_client):
    from distributed import Client

    from fluvial.concurrency import DaskSlotManager

    m1 = DaskSlotManager(dask_client, limits={"dshare": 1})
    with Client(dask_client.scheduler.address) as other:
        m2 = DaskSlotManager(other, limits={"dshare": 1})
        lease = m1.acquire("dshare")
        assert m2.try_acquire("dshare") is None
        with pytest.raises(ConcurrencySlotTimeout, match="'dshare'"):
            m2.acquire("dshare", timeout=0.1)
        lease.release()
        m2.acquire("dshare", timeout=30).release()
        held_by_gone_client = m2.acquire("dshare")
        assert held_by_gone_client is not None
    # the second client closed while holding: the scheduler frees its slot
    m1.acquire("dshare", timeout=30).release()


def test_multi_name_no_deadlock(dask_client):
    import threading

    from fluvial.concurrency import DaskSlotManager

    m = DaskSlotManager(dask_client, limits={"da": 1, "db": 1})
    errors = []

    def worker(names):
        try:
            for _ in range(20):
                m.acquire(names, timeout=60).release()
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (["da", "db"], ["db", "da"], ["da"], ["db"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors and not any(t.is_alive() for t in threads)
    assert m.statistics("da").active == 0


def test_worker_killed_while_holding_frees_slot(dask_client, tmp_path):
    from fluvial.concurrency import DaskSlotManager

    m = DaskSlotManager(dask_client, limits={"dkill": 1})
    marker = str(tmp_path / "killed")
    fut = dask_client.submit(kill_while_holding, marker, make_dask_manager, "dkill", pure=False)
    killed_at = float(wait_for_file(marker))
    lease = m.acquire("dkill", timeout=60)
    recovery = time.monotonic() - killed_at
    print(f"\ndask slot recovery after the holding worker died: {recovery * 1000:.1f} ms")
    lease.release()
    assert fut.result(timeout=60) == "rerun"  # the remaining work finishes
