"""Streaming maps: ``Task.map`` over an iterator with a bound on the runs in flight.

``task.map(items, max_in_flight=n)`` (or a one-shot iterator on a runner with a
``max_in_flight`` default) returns a ``FutureStream`` instead of a ``FutureList``: the
inputs are read lazily and at most ``n`` runs are *open* at a time — submitted and not
yet handed to the consumer. The consumer takes futures as they complete
(``for f in stream``, ``fluvial.as_completed(stream)``), and each one taken makes room
for the next inputs, which are read and submitted in the consumer's own thread (so a
generator is only ever read by the thread that iterates the stream, as with Dask's
``Client.map`` over an iterator). Once taken, a future is not kept by the stream: a map
of a million items holds about ``n`` futures at any time, whatever its length.

``result()`` (all results, in input order) and ``wait()`` consume the stream too; only
``result()`` keeps what it returns. A stream nobody consumed is drained when its flow
run's function returns (the flow waits for every item, as it waits for every submitted
run; the results are dropped and failures count as unobserved ones). Outside a flow, a
stream runs as far as it is consumed.

The run record is part of the bound: when its writer falls behind (more than
``RECORD_BACKLOG`` events waiting to be written), the stream reads no more inputs
until the backlog is back under it, so a map of a million runs does not pile a
million records up in the driver's memory (it then runs at the record's pace).

Inputs of different lengths cannot be checked upfront: when one mapped argument runs
out while another still has items (or reading an input raises), nothing more is
submitted, the runs already submitted go on and are delivered, and then the consumer
gets ``MappingLengthMismatch`` (or the input's exception).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any

from fluvial._options import check_max_in_flight
from fluvial.exceptions import MappingLengthMismatch

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.runs import Submission

__all__ = ["FutureStream", "StreamInputs", "check_max_in_flight"]  # the last: fluvial._options

logger = logging.getLogger("fluvial.streaming")

RECORD_BACKLOG = 20_000  # record events waiting to be written before a stream pauses
RECORD_WAIT_SECONDS = 10.0  # a writer that stalls longer than this does not stop the map


class StreamInputs:
    """The zipped mapped arguments, read one call at a time."""

    def __init__(self, task_name: str, positional: list[tuple[Any, bool]],
                 keyword: dict[str, tuple[Any, bool]]) -> None:
        self.task_name = task_name
        self.columns: list[Iterator[Any]] = []
        self.labels: list[str | None] = []  # None: a static argument (repeated)
        for i, (value, static) in enumerate(positional):
            self._add(f"argument {i}", value, static)
        self.keys = list(keyword)
        for key, (value, static) in keyword.items():
            self._add(f"parameter {key!r}", value, static)
        self.n_positional = len(positional)
        self.read = 0

    def _add(self, label: str, value: Any, static: bool) -> None:
        self.columns.append(repeat(value) if static else iter(value))
        self.labels.append(None if static else label)

    def next_call(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The next run's ``(args, kwargs)``, or None at the end of every input; raises
        ``MappingLengthMismatch`` when the inputs end at different places."""
        values: list[Any] = []
        for column in self.columns:
            try:
                values.append(next(column))
            except StopIteration:
                self._check_all_ended(len(values))
                return None
        self.read += 1
        args = tuple(values[:self.n_positional])
        kwargs = dict(zip(self.keys, values[self.n_positional:], strict=True))
        return args, kwargs

    def _check_all_ended(self, ended: int) -> None:
        """Column ``ended`` ran out: every other mapped column must have ended too (the
        ones before it already gave a value for this call, so they had more)."""
        longer = [label for label in self.labels[:ended] if label is not None]
        for column, label in zip(self.columns[ended + 1:], self.labels[ended + 1:],
                                 strict=True):
            if label is None:
                continue
            try:
                next(column)
            except StopIteration:
                continue
            longer.append(label)
        if longer:
            raise MappingLengthMismatch(
                f"task {self.task_name!r}: map() got iterables of different lengths: "
                f"{self.labels[ended]} ran out after {self.read} item(s) while "
                f"{', '.join(longer)} had more; the {self.read} run(s) already submitted "
                "were kept")


class FutureStream:
    """The runs of a streaming ``Task.map``: iterate it (or ``as_completed(stream)``)
    to take each future as it completes; at most ``max_in_flight`` runs are open."""

    def __init__(self, task_name: str, inputs: StreamInputs,
                 make: Callable[[tuple[Any, ...], dict[str, Any]], Submission],
                 submit: Callable[[list[Submission]], list[Future]],
                 max_in_flight: int, on_done: Callable[[FutureStream], None] | None = None,
                 check_first: Callable[[tuple[Any, ...], dict[str, Any]], None] | None = None,
                 backlog: Callable[[], int] | None = None) -> None:
        self.task_name = task_name
        self.max_in_flight = max_in_flight
        self._inputs = inputs
        self._make = make
        self._submit = submit
        self._on_done = on_done
        self._check_first = check_first
        self._backlog = backlog  # how many record events wait to be written
        self._completed: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._index: dict[Any, int] = {}  # open runs: task run id -> input position
        self._open = 0  # submitted and not yet taken by the consumer
        self._exhausted = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # one consumer at a time reads the inputs
        self.submitted = 0  # runs submitted so far
        self.taken = 0  # futures handed to the consumer so far
        self.peak_open = 0
        # refill in chunks (a backend sends each chunk as one message / batch)
        self._chunk = max(1, max_in_flight // 4)
        self._top_up(first=True)

    # -- feeding ---------------------------------------------------------------------
    def _top_up(self, first: bool = False) -> None:
        if self._exhausted:
            return
        room = self.max_in_flight - self._open
        if not first and room < self._chunk and self._open > 0:
            return
        self._wait_for_the_record()
        subs: list[Submission] = []
        try:
            while len(subs) < room:
                call = self._inputs.next_call()
                if call is None:
                    self._exhausted = True
                    break
                if first and not subs and self._check_first is not None:
                    self._check_first(*call)  # a bad call raises from map(), nothing lost
                subs.append(self._make(*call))
        except MappingLengthMismatch as exc:
            self._stop(exc)
        except Exception as exc:
            if first and not subs and self.submitted == 0:
                raise  # the first input is bad: map() itself raises
            self._stop(exc)
        if subs:
            futures = self._submit(subs)
            index = self._index
            for i, future in enumerate(futures, self.submitted):
                index[future.task_run.id] = i
            self.submitted += len(futures)
            self._open += len(futures)
            self.peak_open = max(self.peak_open, self._open)
            put = self._completed.put
            for future in futures:
                future.add_done_callback(put)
        if self._exhausted and self._open == 0:
            self._finished()

    def _wait_for_the_record(self) -> None:
        backlog = self._backlog
        if backlog is None or backlog() <= RECORD_BACKLOG:
            return
        deadline = time.monotonic() + RECORD_WAIT_SECONDS
        while backlog() > RECORD_BACKLOG:
            if time.monotonic() > deadline:
                logger.warning("map of task %r: the run record's writer is %d events behind; "
                               "going on without waiting for it", self.task_name, backlog())
                return
            time.sleep(0.002)

    def _stop(self, exc: BaseException) -> None:
        self._exhausted = True
        self._error = exc

    def _finished(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(self)

    # -- consuming -------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether every input was read and every run taken by the consumer."""
        return self._exhausted and self._open == 0

    def _take(self, deadline: float | None) -> tuple[Future, int] | None:
        """The next completed future and its input position (None at the end)."""
        with self._lock:
            self._top_up()
            if self._open == 0:
                if self._exhausted:
                    self._finished()
                    return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{self._open} run(s) of {self.task_name!r} did not "
                                   "finish in time")
            try:
                future = self._completed.get(timeout=remaining)
            except queue.Empty:
                raise TimeoutError(f"{self._open} run(s) of {self.task_name!r} did not "
                                   "finish in time") from None
            self._open -= 1
            self.taken += 1
            future._observed = True
            position = self._index.pop(future.task_run.id)
            self._top_up()
            return future, position

    def _items(self, timeout: float | None) -> Iterator[tuple[Future, int]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            taken = self._take(deadline)
            if taken is None:
                break
            yield taken
        if self._error is not None:
            raise self._error

    def as_completed(self, timeout: float | None = None) -> Iterator[Future]:
        """Yield each run's future as it completes; then raise the inputs' error, if any."""
        for future, _ in self._items(timeout):
            yield future

    _stream_as_completed = as_completed  # what fluvial.as_completed looks for

    def __iter__(self) -> Iterator[Future]:
        return self.as_completed()

    def wait(self, timeout: float | None = None) -> None:
        """Run the whole map, dropping every result (failures stay in the run record)."""
        for _ in self.as_completed(timeout):
            pass

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        """Every run's result, in input order (this keeps them all: asked for)."""
        return [f.result(raise_on_failure=raise_on_failure)
                for f in self.futures_in_order(timeout)]

    def futures_in_order(self, timeout: float | None = None) -> list[Future]:
        """Consume the stream; every future, in input order (kept: asked for)."""
        by_position = dict((position, future) for future, position in self._items(timeout))
        return [by_position[i] for i in sorted(by_position)]

    def drain(self) -> None:
        """Consume what nobody consumed (the flow run's function returned): every input
        is read and run, and the results are dropped. An inputs' error is logged."""
        try:
            self.wait()
        except Exception as exc:  # noqa: BLE001 - nobody is left to raise it to
            logger.error("map of task %r stopped early: %s", self.task_name, exc)

    def __repr__(self) -> str:
        return (f"<FutureStream {self.task_name!r} submitted={self.submitted} "
                f"taken={self.taken} max_in_flight={self.max_in_flight}>")
