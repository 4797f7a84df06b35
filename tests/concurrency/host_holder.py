"""Run as a script: hold slots of the host manager from a separate OS process.

    host_holder.py peak NAME N BARRIER   -> N thread holders, prints their intervals as JSON
    host_holder.py hold NAME             -> takes one slot, prints "held", then sleeps forever
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from slot_helpers import run_thread_holders  # noqa: E402

from fluvial.concurrency import HostSlotManager  # noqa: E402

if __name__ == "__main__":
    mode, name = sys.argv[1], sys.argv[2]
    manager = HostSlotManager()
    if mode == "peak":
        intervals = run_thread_holders(manager, name, int(sys.argv[3]), Path(sys.argv[4]))
        print(json.dumps(intervals), flush=True)
    else:
        lease = manager.acquire(name)
        print("held", flush=True)
        time.sleep(3600)
