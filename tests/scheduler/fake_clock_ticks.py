"""A competing scheduler process for the tests: ticks along a fake timeline, as fast as it can.

    python fake_clock_ticks.py GO_FILE START END STEP

Waits until GO_FILE exists (so every competitor starts together), then calls
``run_scheduler_once(now=t)`` for t = START, START+STEP, ... END against the store
the environment names, and prints how many runs it created, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

from fluvial.scheduler import run_scheduler_once
from fluvial.store.connection import open_database


def main() -> None:
    go, start, end, step = sys.argv[1], *map(float, sys.argv[2:5])
    conn = open_database()
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("the go file never appeared")
        time.sleep(0.005)
    created = handled = 0
    t = start
    while t <= end:
        summary = run_scheduler_once(conn, t, batch_size=8)
        created += len(summary.created)
        handled += summary.handled
        t += step
    conn.close()
    print(json.dumps({"created": created, "handled": handled}))


if __name__ == "__main__":
    main()
