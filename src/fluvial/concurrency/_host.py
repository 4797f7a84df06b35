"""Single-host slot manager: every process of the machine shares the limits.

Owns `HostSlotManager`. Choice: `flock(2)` on slot files, measured against
a SQLite `BEGIN IMMEDIATE` counter row (benchmarks/bench_concurrency.py; on the
2-CPU dev box: ~10.6 µs vs ~19.7 µs per uncontended acquire+release, WAL,
synchronous=NORMAL). Above all, the kernel drops a flock the moment its holder
dies — no lease, no sweep (recovery measured at ~1 ms after SIGKILL). A SQLite
counter is left behind by a killed holder and needs a lease plus a sweeper.

Layout under `$FLUVIAL_HOME/slots/h-<digest>/`, one directory per limit name, named by
the first 32 hex digits of the SHA-256 of the name (a fixed length, so a tag of any
length or script fits in a file name):

- `name`: the limit's name itself, for people looking at the directory.

- `<gen>.<i>` for i in range(limit): one file per slot; holding slot i = holding
  an exclusive flock on it. A process keeps one open descriptor per slot file and
  tracks which ones its own leases hold, so threads share descriptors safely.
- `gate`: every acquirer holds this flock while it takes slots, and a waiter keeps
  holding it while it waits, so waiters queue in the kernel (roughly FIFO across
  processes) and a big `occupy` cannot be overtaken. Gates are taken in name
  order, so {a, b} and {b, a} cannot deadlock.
- `gen`: its size is the generation; `reset(name)` appends a byte, so new
  acquirers use fresh slot files and old holders no longer count.
- `bucket`: the decay clock of `rate_limit` (wall time at which the bucket is empty).

Wake-ups, honestly: a release in the same process wakes the waiting thread at
once (a condition variable). A release in *another* process, or a holder killed
by the kernel, is noticed by the gate holder's re-check, which backs off from
0.1 ms up to `max_backoff` (2 ms by default) — a bounded wait, one flock probe per
slot each time, done only by the single process at the head of the queue.

Caveat: a descriptor shared with a `fork()`ed child keeps the lock until both
close it; the child side closes its copies right after the fork.
"""

from __future__ import annotations

import fcntl
import hashlib
import heapq
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from fluvial._files import PRIVATE_FILE, private_dir
from fluvial.concurrency._base import (
    Lease,
    Limit,
    LimitSource,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._inprocess import DeadlineTimer
from fluvial.concurrency._limits import fluvial_home
from fluvial.concurrency._table import take_from_buckets

__all__ = ["HostSlotManager"]

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
_managers: weakref.WeakSet[HostSlotManager] = weakref.WeakSet()

Key = tuple[int, int]  # (generation, slot index)


def slot_dir_name(name: str) -> str:
    """The directory of `name`'s slot files: fixed length, whatever the name."""
    return "h-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _NameFiles:
    """This process's view of one name: descriptors, the slots its leases hold, its waiters."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / slot_dir_name(name)
        private_dir(self.dir)
        label = self.dir / "name"
        if not label.exists():
            tmp = self.dir / f"name.{os.getpid()}.{threading.get_ident()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(name)
            os.replace(tmp, label)
        self.gen_path = str(self.dir / "gen")
        self.gate_fd = os.open(self.dir / "gate", _OPEN_FLAGS, PRIVATE_FILE)
        self.gate_lock = threading.Lock()
        self.fds: dict[Key, int] = {}
        self.held: set[Key] = set()
        self.waiting = 0

    def generation(self) -> int:
        try:
            return os.stat(self.gen_path).st_size
        except FileNotFoundError:
            return 0

    def fd(self, key: Key) -> int:
        fd = self.fds.get(key)
        if fd is None:
            fd = self.fds[key] = os.open(self.dir / f"{key[0]}.{key[1]}", _OPEN_FLAGS,
                                         PRIVATE_FILE)
        return fd

    def close(self) -> None:
        for fd in [self.gate_fd, *self.fds.values()]:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
        self.held.clear()


class _Waiter:
    __slots__ = ("specs", "occupy", "on_granted", "lease_seconds", "req", "counted")

    def __init__(self, specs, occupy, on_granted, lease_seconds, req) -> None:  # type: ignore[no-untyped-def]
        self.specs = specs
        self.occupy = occupy
        self.on_granted = on_granted
        self.lease_seconds = lease_seconds
        self.req = req
        self.counted = True


class HostSlotManager(SlotManager):
    """Slots shared by every process on this machine, freed by the kernel when a holder dies."""

    def __init__(
        self,
        limits: Mapping[str, int | Limit] | LimitSource | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        max_backoff: float = 0.002,
    ) -> None:
        super().__init__(limits)
        self.root = Path(home) if home is not None else fluvial_home()
        self.root = self.root / "slots"
        self.max_backoff = max_backoff
        self._init_state()
        _managers.add(self)

    def _init_state(self) -> None:
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self._files: dict[str, _NameFiles] = {}
        self._leases: dict[int, dict[str, list[Key]]] = {}
        self._queues: dict[tuple[str, ...], deque[_Waiter]] = {}
        self._ids = itertools.count(1)
        self._deadlines: list[tuple[float, int]] = []
        self._lease_deadline: dict[int, float] = {}
        self._timer = DeadlineTimer(self._expire, "fluvial-host-slot-leases")

    # -- files ----------------------------------------------------------------------

    def _nf(self, name: str) -> _NameFiles:
        nf = self._files.get(name)
        if nf is None:
            with self._mutex:
                nf = self._files.get(name)
                if nf is None:
                    nf = self._files[name] = _NameFiles(self.root, name)
        return nf

    def _grab(self, nf: _NameFiles, limit: int, occupy: int, have: list[Key]) -> bool:
        """Take free slot files until `have` holds `occupy` (mutex held). True when complete."""
        gen = nf.generation()
        for key in [k for k in have if k[0] != gen or k[1] >= limit]:
            have.remove(key)
            self._unlock(nf, key)
        i = 0
        while len(have) < occupy and i < limit:
            key = (gen, i)
            i += 1
            if key in nf.held:
                continue
            try:
                fcntl.flock(nf.fd(key), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            nf.held.add(key)
            have.append(key)
        return len(have) >= occupy

    def _unlock(self, nf: _NameFiles, key: Key) -> None:
        if key in nf.held:
            nf.held.discard(key)
            fcntl.flock(nf.fds[key], fcntl.LOCK_UN)

    def _take_gates(self, nfs: list[_NameFiles], blocking: bool) -> list[_NameFiles]:
        taken: list[_NameFiles] = []
        try:
            for nf in nfs:
                if not nf.gate_lock.acquire(blocking):
                    raise BlockingIOError
                try:
                    fcntl.flock(nf.gate_fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BaseException:
                    nf.gate_lock.release()
                    raise
                taken.append(nf)
        except BlockingIOError:
            self._drop_gates(taken)
            return []
        return taken

    @staticmethod
    def _drop_gates(nfs: list[_NameFiles]) -> None:
        for nf in reversed(nfs):
            fcntl.flock(nf.gate_fd, fcntl.LOCK_UN)
            nf.gate_lock.release()

    # -- backend primitives -------------------------------------------------------------

    def _try_take(self, specs: dict[str, Limit], occupy: int) -> dict[str, list[Key]] | None:
        nfs = [self._nf(n) for n in specs]
        if any(nf.waiting for nf in nfs):
            return None
        gates = self._take_gates(nfs, blocking=False)
        if not gates:
            return None
        try:
            have: dict[str, list[Key]] = {n: [] for n in specs}
            with self._mutex:
                ok = [self._grab(nf, specs[n].limit, occupy, have[n]) for n, nf in zip(specs, nfs, strict=True)]
                if all(ok):
                    return have
                self._undo(have)
                return None
        finally:
            self._drop_gates(gates)

    def _undo(self, have: dict[str, list[Key]]) -> None:
        for n, keys in have.items():
            nf = self._files[n]
            for key in keys:
                self._unlock(nf, key)
        self._changed.notify_all()

    def _lease(self, specs: dict[str, Limit], occupy: int, have: dict[str, list[Key]],
               lease_seconds: float | None) -> Lease:
        lid = next(self._ids)
        with self._mutex:
            self._leases[lid] = have
            if lease_seconds is not None:
                self._set_deadline(lid, lease_seconds)
        return Lease(self, tuple(specs), occupy, lid, lease_seconds)

    def _try_acquire(self, specs: dict[str, Limit], occupy: int,
                     lease_seconds: float | None) -> Lease | None:
        have = self._try_take(specs, occupy)
        return None if have is None else self._lease(specs, occupy, have, lease_seconds)

    def _request(self, specs: dict[str, Limit], occupy: int,
                 on_granted: Callable[[Lease], None], lease_seconds: float | None) -> SlotRequest:
        names = tuple(specs)
        have = self._try_take(specs, occupy)
        if have is not None:
            lease = self._lease(specs, occupy, have, lease_seconds)
            on_granted(lease)
            return SlotRequest(names, occupy, lease=lease)

        def cancel() -> None:
            with self._mutex:
                self._uncount(w)
                self._changed.notify_all()

        req = SlotRequest(names, occupy, cancel=cancel)
        w = _Waiter(specs, occupy, on_granted, lease_seconds, req)
        with self._mutex:
            for n in names:
                self._files[n].waiting += 1
            queue = self._queues.get(names)
            if queue is None:
                queue = self._queues[names] = deque()
                threading.Thread(
                    target=self._serve, args=(names, queue), name=f"fluvial-slots-{names}", daemon=True
                ).start()
            queue.append(w)
        return req

    def _serve(self, names: tuple[str, ...], queue: deque[_Waiter]) -> None:
        """One thread per distinct name set: serves its waiters in arrival order."""
        nfs = [self._files[n] for n in names]
        while True:
            with self._mutex:
                if not queue:
                    del self._queues[names]
                    return
                w = queue[0]
            have = self._wait_for_slots(w, nfs) if not w.req.cancelled else None
            with self._mutex:
                queue.popleft()
                self._uncount(w)
            if have is None:
                continue
            lease = self._lease(w.specs, w.occupy, have, w.lease_seconds)
            if w.req._mark_granted(lease):
                w.on_granted(lease)
            else:
                lease.release()

    def _uncount(self, w: _Waiter) -> None:
        """Take `w` out of the waiter counts once (mutex held)."""
        if w.counted:
            w.counted = False
            for n in w.specs:
                self._files[n].waiting -= 1

    def _wait_for_slots(self, w: _Waiter, nfs: list[_NameFiles]) -> dict[str, list[Key]] | None:
        gates = self._take_gates(nfs, blocking=True)
        try:
            have: dict[str, list[Key]] = {n: [] for n in w.specs}
            backoff = 1e-4
            with self._mutex:
                while True:
                    if w.req.cancelled:
                        self._undo(have)
                        return None
                    ok = [self._grab_current(n, nf, w.occupy, have)
                          for n, nf in zip(w.specs, nfs, strict=True)]
                    if all(ok):
                        return have
                    self._changed.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            self._drop_gates(gates)

    def _grab_current(self, name: str, nf: _NameFiles, occupy: int,
                      have: dict[str, list[Key]]) -> bool:
        """`_grab` against the limit as it is now; a deleted limit needs no slot at all."""
        lim = self.limit_of(name)
        if lim is None:
            self._undo({name: have[name]})
            have[name] = []
            return True
        return self._grab(nf, lim.limit, occupy, have[name])

    def _limit_changed(self, tag: str) -> None:
        with self._mutex:
            self._changed.notify_all()

    def _release(self, lease: Lease) -> None:
        with self._mutex:
            have = self._leases.pop(lease.lease_id, None)
            self._lease_deadline.pop(lease.lease_id, None)
            if have is not None:
                self._undo(have)

    # -- leases with a deadline -----------------------------------------------------------

    def _set_deadline(self, lid: int, lease_seconds: float) -> None:
        deadline = time.monotonic() + lease_seconds
        self._lease_deadline[lid] = deadline
        heapq.heappush(self._deadlines, (deadline, lid))
        self._timer.schedule(deadline)

    def _renew(self, lease: Lease, lease_seconds: float | None) -> None:
        with self._mutex:
            if lease_seconds is not None and lease.lease_id in self._leases:
                self._set_deadline(lease.lease_id, lease_seconds)

    def _expire(self) -> float | None:
        now = time.monotonic()
        with self._mutex:
            while self._deadlines and self._deadlines[0][0] <= now:
                deadline, lid = heapq.heappop(self._deadlines)
                if self._lease_deadline.get(lid) == deadline:
                    del self._lease_deadline[lid]
                    self._undo(self._leases.pop(lid))
            return self._deadlines[0][0] if self._deadlines else None

    # -- rate limits, statistics, reset ---------------------------------------------------

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        fds = []
        try:
            for n in specs:
                fd = os.open(self._nf(n).dir / "bucket", _OPEN_FLAGS, PRIVATE_FILE)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            full_at = []
            for fd in fds:
                raw = os.pread(fd, 64, 0)
                full_at.append(float(raw) if raw.strip() else 0.0)
            buckets = [(s.limit, float(s.slot_decay_per_second or 0)) for s in specs.values()]
            wait, new_full_at = take_from_buckets(full_at, buckets, occupy, time.time())
            for fd, t in zip(fds, new_full_at, strict=False):  # empty when it must wait
                os.ftruncate(fd, 0)
                os.pwrite(fd, repr(t).encode(), 0)
            return wait
        finally:
            for fd in fds:
                os.close(fd)

    def statistics(self, name: str) -> SlotStatistics:
        lim = self.limit_of(name)
        if lim is None:
            return SlotStatistics(name, None, 0, 0, 0)
        nf = self._nf(name)
        with self._mutex:
            active = self._count_held(nf, lim.limit)
            waiters = nf.waiting
        if not waiters and nf.gate_lock.acquire(blocking=False):
            try:
                fcntl.flock(nf.gate_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(nf.gate_fd, fcntl.LOCK_UN)
            except BlockingIOError:
                waiters = 1  # another process is queued at the gate
            finally:
                nf.gate_lock.release()
        return SlotStatistics(name, lim.limit, active, active, waiters)

    @staticmethod
    def _count_held(nf: _NameFiles, limit: int) -> int:
        """Slots of the current generation held by anyone (mutex held).

        Only slot files that exist can be held, and they exist only as far as slots were
        ever taken at once, so this looks at those — not at ``range(limit)`` — and opens
        one descriptor at a time, closed at once: the cost is independent of the limit.
        """
        gen = nf.generation()
        prefix = f"{gen}."
        active = 0
        with os.scandir(nf.dir) as entries:
            for entry in entries:
                if not entry.name.startswith(prefix):
                    continue
                index = entry.name[len(prefix):]
                if not index.isdigit() or int(index) >= limit:
                    continue
                if (gen, int(index)) in nf.held:
                    active += 1
                    continue
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    active += 1
                finally:
                    os.close(fd)  # closing drops the probe's lock, if it got one
        return active

    def reset(self, name: str) -> None:
        nf = self._nf(name)
        fd = os.open(nf.gen_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     PRIVATE_FILE)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
        with self._mutex:
            self._changed.notify_all()

    def close(self) -> None:
        self._timer.close()
        with self._mutex:
            for nf in self._files.values():
                nf.close()
            self._files.clear()
            self._leases.clear()

    def _after_fork_in_child(self) -> None:
        for nf in self._files.values():
            nf.close()
        self._init_state()


def _reinit_after_fork() -> None:
    for m in list(_managers):
        m._after_fork_in_child()


os.register_at_fork(after_in_child=_reinit_after_fork)
