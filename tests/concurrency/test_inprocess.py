"""The in-process manager: limits, FIFO, all-or-nothing, timeouts, errors, async use."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from slot_helpers import peak, run_thread_holders

from fluvial import concurrency as conc
from fluvial.concurrency import (
    ConcurrencySlotTimeout,
    InProcessSlotManager,
    Limit,
    SlotStatistics,
)


def test_peak_is_exactly_the_limit(tmp_path):
    m = InProcessSlotManager({"db": 3})
    barrier = tmp_path / "barrier"  # must start empty: tmp_path also holds FLUVIAL_HOME
    barrier.mkdir()
    intervals = run_thread_holders(m, "db", 60, barrier)
    assert len(intervals) == 60
    observed = peak(intervals)
    print(f"\nin-process peak concurrency: {observed} (limit 3, 60 holders)")
    assert observed == 3
    assert m.statistics("db") == SlotStatistics("db", 3, 0, 0, 0)


def test_names_without_limit_grant_synchronously():
    m = InProcessSlotManager({})
    got = []
    req = m.request(["free"], 1, got.append)
    assert req.granted and got == [req.lease]
    assert got[0].names == ("free",)
    got[0].release()


def test_fifo_order_and_big_occupy_not_starved():
    m = InProcessSlotManager({"x": 3})
    first = m.acquire("x", 2)
    order = []
    m.request("x", 3, lambda lease: order.append(("big", lease)))  # waits for all 3
    m.request("x", 1, lambda lease: order.append(("small", lease)))  # would fit now, but queued behind
    assert order == []
    first.release()
    assert [o[0] for o in order] == ["big"]
    order[0][1].release()
    assert [o[0] for o in order] == ["big", "small"]


def test_multi_name_no_deadlock():
    m = InProcessSlotManager({"a": 1, "b": 1})
    errors = []

    def worker(names):
        try:
            for _ in range(300):
                m.acquire(names, timeout=30).release()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (["a", "b"], ["b", "a"], ["a"], ["b"]) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)


def test_all_or_nothing():
    m = InProcessSlotManager({"a": 1, "b": 1})
    held_b = m.acquire("b")
    assert m.try_acquire(["a", "b"]) is None
    assert m.statistics("a").active == 0  # nothing partially taken
    held_b.release()
    lease = m.try_acquire(["b", "a"])
    assert lease is not None and lease.names == ("a", "b")
    lease.release()


def test_timeout_names_the_limit():
    m = InProcessSlotManager({"db": 1})
    lease = m.acquire("db")
    with pytest.raises(ConcurrencySlotTimeout, match="'db'") as info:
        m.acquire("db", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert m.statistics("db").waiters == 0  # the waiter was withdrawn
    lease.release()


def test_release_twice_and_renew():
    m = InProcessSlotManager({"db": 1})
    lease = m.acquire("db", lease_seconds=60)
    lease.renew()
    lease.release()
    lease.release()
    assert m.statistics("db").active == 0
    m.acquire("db").release()


def test_lease_expiry_frees_slot():
    m = InProcessSlotManager({"db": 1})
    expired = m.acquire("db", lease_seconds=0.05)  # never released nor renewed
    second = m.acquire("db", timeout=30)  # granted once the first lease expires
    assert set(m.live_leases()) == {second.lease_id}
    expired.release()  # too late: it frees nothing of the new holder's
    assert m.statistics("db").active == 1
    second.release()
    assert m.statistics("db").active == 0


def test_cancel_withdraws_waiter():
    m = InProcessSlotManager({"db": 1})
    lease = m.acquire("db")
    got = []
    req = m.request("db", 1, got.append)
    assert req.cancel() is True
    lease.release()
    assert got == [] and m.statistics("db").active == 0
    granted = m.request("db", 1, got.append)
    assert granted.cancel() is False and got
    got[0].release()


@pytest.mark.parametrize(
    "names,occupy,exc",
    [([""], 1, ValueError), ([], 1, ValueError), (["db"], 0, ValueError), (["db"], 3, ValueError),
     (["db"], 1.5, TypeError)],
)
def test_bad_arguments(names, occupy, exc):
    m = InProcessSlotManager({"db": 2})
    with pytest.raises(exc):
        m.acquire(names, occupy)


def test_occupy_above_limit_message():
    m = InProcessSlotManager({"db": 2})
    with pytest.raises(ValueError, match="occupy=3 is greater than concurrency limit 'db' \\(2\\)"):
        m.request("db", 3, lambda lease: None)


def test_limit_zero_blocks_and_warns_once(caplog):
    m = InProcessSlotManager({"blocked": 0})
    with caplog.at_level(logging.WARNING, logger="fluvial.concurrency"):
        assert m.try_acquire("blocked") is None
        with pytest.raises(ConcurrencySlotTimeout):
            m.acquire("blocked", timeout=0.01)
    warnings = [r for r in caplog.records if "blocked" in r.getMessage()]
    assert len(warnings) == 1 and "is 0" in warnings[0].getMessage()


def test_stored_limits_and_in_process_updates_wake_waiters():
    conc.set_limit("db", 0)
    m = InProcessSlotManager()
    got = []
    m.request("db", 1, got.append)
    assert got == []
    conc.set_limit("db", 2)  # raising the limit in this process wakes the waiter
    assert len(got) == 1
    got[0].release()
    assert conc.get_limit("db").limit == 2
    assert [r.tag for r in conc.list_limits()] == ["db"]
    assert conc.delete_limit("db") is True and conc.delete_limit("db") is False


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_limit_rejects_bad_limits(bad):
    with pytest.raises((ValueError, TypeError)):
        conc.set_limit("db", bad)
    with pytest.raises(ValueError):
        conc.set_limit(" ", 1)


def test_concurrency_context_manager_sync_and_async():
    m = InProcessSlotManager({"db": 1})
    with conc.use_slot_manager(m):
        assert conc.get_slot_manager() is m
        with conc.concurrency("db") as lease:
            assert m.statistics("db").active == 1
            assert lease.names == ("db",)
        with pytest.raises(ConcurrencySlotTimeout):
            with conc.concurrency("db"), conc.concurrency("db", timeout_seconds=0.01):
                pass

        async def main():
            async with conc.concurrency("db"):
                assert m.statistics("db").active == 1
                with pytest.raises(ConcurrencySlotTimeout):
                    async with conc.concurrency("db", timeout_seconds=0.01):
                        pass

            async def holder(i, out):
                async with conc.concurrency("db"):
                    out.append(i)
                    await asyncio.sleep(0)

            out = []
            await asyncio.gather(*(holder(i, out) for i in range(20)))
            return out

        assert sorted(asyncio.run(main())) == list(range(20))
    assert m.statistics("db").active == 0


def test_reset_frees_every_slot():
    m = InProcessSlotManager({"db": 2})
    a, b = m.acquire("db"), m.acquire("db")
    got = []
    m.request("db", 2, got.append)
    conc.reset("db", manager=m)
    assert len(got) == 1  # the waiter got the freed slots
    a.release()
    b.release()  # old holders' releases no longer count
    assert m.statistics("db").active == 2
    got[0].release()


def test_rate_limit_token_bucket():
    m = InProcessSlotManager({
        "api": Limit(2, slot_decay_per_second=0.01),  # a slot decays in 100 s
        "fast": Limit(1, slot_decay_per_second=1000.0),
        "plain": 2,
    })
    with pytest.raises(ValueError, match="slot decay"):
        conc.rate_limit("plain", manager=m)
    assert m.take_tokens("api") == 0.0
    assert m.take_tokens("api") == 0.0
    assert m.take_tokens("api") > 0  # the bucket is full until it decays
    assert m.statistics("api").active == 2
    for _ in range(3):  # each waits the computed decay time, however slow the machine
        conc.rate_limit("fast", manager=m, timeout_seconds=30)
    with pytest.raises(ConcurrencySlotTimeout):
        m2 = InProcessSlotManager({"slow": Limit(1, slot_decay_per_second=0.001)})
        conc.rate_limit("slow", manager=m2)
        conc.rate_limit("slow", manager=m2, timeout_seconds=0.01)


def test_prefect_import_paths():
    from fluvial.concurrency import asyncio as casync
    from fluvial.concurrency import sync as csync

    assert csync.concurrency is conc.concurrency
    assert casync.concurrency is conc.concurrency
    assert asyncio.iscoroutinefunction(casync.rate_limit)


def test_exports_complete():
    for name in conc.__all__:
        if name not in ("DaskSlotManager", "RaySlotManager"):
            assert hasattr(conc, name), name
