"""``python -m fluvial.scheduler [--once] [--duration S] [--poll S]``: a standalone scheduler.

Ticks against the store the environment points at (``FLUVIAL_HOME`` /
``FLUVIAL_DATABASE_URL``) until SIGTERM/SIGINT or ``--duration`` seconds; with
``--once``, one tick. Prints one JSON line per tick that did something (what the
exactly-once tests and benchmarks read). Workers and ``serve()`` tick on their own;
this is for running a scheduler apart from them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from fluvial.scheduler import Scheduler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fluvial.scheduler", description=__doc__)
    parser.add_argument("--once", action="store_true", help="one tick, then exit")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds")
    parser.add_argument("--poll", type=float, default=1.0,
                        help="longest sleep between ticks (seconds, default 1)")
    parser.add_argument("--list-runs", action="store_true",
                        help="print the ids of the runs each tick created, and when it ended")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    deadline = None if args.duration is None else time.monotonic() + args.duration
    with Scheduler(poll_interval=args.poll) as scheduler:
        while not stop.is_set():
            summary = scheduler.run_once()
            if summary.handled or summary.created:
                report: dict[str, Any] = {
                    "created": len(summary.created), "handled": summary.handled,
                    "skipped": summary.skipped, "duplicates": summary.duplicates}
                if args.list_runs:
                    report["run_ids"] = summary.created
                    report["committed_at"] = time.time()
                print(json.dumps(report), flush=True)
            if args.once or (deadline is not None and time.monotonic() >= deadline):
                break
            delay = scheduler.seconds_until_due()
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            stop.wait(delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
