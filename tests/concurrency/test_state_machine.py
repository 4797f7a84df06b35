"""Property: slots in use never exceed the limit and always equal the live leases."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from fluvial.concurrency import InProcessSlotManager

LIMITS = {"a": 2, "b": 3, "c": 1}
names = st.lists(st.sampled_from(sorted(LIMITS)), min_size=1, max_size=3, unique=True)


class Slots(RuleBasedStateMachine):
    leases = Bundle("leases")
    waiters = Bundle("waiters")

    def __init__(self) -> None:
        super().__init__()
        self.m = InProcessSlotManager(LIMITS)
        self.live: list = []

    def _granted(self, lease) -> None:
        self.live.append(lease)

    @rule(target=leases, ns=names, occupy=st.integers(1, 2))
    def try_acquire(self, ns, occupy):
        if occupy > min(LIMITS[n] for n in ns):
            return None
        lease = self.m.try_acquire(ns, occupy)
        if lease is not None:
            self.live.append(lease)
        return lease

    @rule(target=waiters, ns=names, occupy=st.integers(1, 2))
    def request(self, ns, occupy):
        if occupy > min(LIMITS[n] for n in ns):
            return None
        return self.m.request(ns, occupy, self._granted)

    @rule(lease=consumes(leases))
    def release(self, lease):
        if lease is not None:
            lease.release()
            lease.release()
            if lease in self.live:
                self.live.remove(lease)

    @rule(req=consumes(waiters))
    def cancel(self, req):
        if req is not None and not req.cancel() and req.lease in self.live:
            self.live.remove(req.lease)
            req.lease.release()

    @rule()
    def release_oldest_granted(self):
        if self.live:
            self.live.pop(0).release()

    @invariant()
    def slots_match_live_leases(self):
        for n, limit in LIMITS.items():
            used = sum(lease.occupy for lease in self.live if n in lease.names)
            stats = self.m.statistics(n)
            assert stats.active == used <= limit
            assert stats.holders == sum(1 for lease in self.live if n in lease.names)
        assert len(self.m.live_leases()) == len(self.live)


TestSlots = Slots.TestCase
TestSlots.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
