"""Serialization throughput: dumps/loads and cache-key hashing of a ~1 MB dict of plain data.

``run()`` returns rows ``{"group", "name", "value", "unit"}``; throughput is MB of the
input (measured as its msgpack size) per second, best of several repeats.
Run as a script to print a table: ``python benchmarks/bench_serialization.py``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from fluvial.serialization import ResultStore, get_serializer, hash_objects

GROUP = "serialization"


def make_data(target_bytes: int = 1_000_000) -> dict[str, Any]:
    """A dict of records (str, int, float, bool, list, nested dict) of about ``target_bytes``."""
    data: dict[str, Any] = {}
    i = 0
    while True:
        for _ in range(500):
            data[f"record-{i:06d}"] = {
                "id": i,
                "name": f"user {i}",
                "score": i * 0.37,
                "active": i % 3 == 0,
                "tags": ["alpha", "beta", str(i % 17)],
                "address": {"city": "Lyon", "zip": 69000 + i % 100},
            }
            i += 1
        if len(get_serializer("msgpack").dumps(data)) >= target_bytes:
            return data


def best_time(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _json_sorted_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _pickle_hash(obj: Any) -> str:
    return hashlib.sha256(cloudpickle.dumps(obj)).hexdigest()


def run() -> list[dict[str, Any]]:
    data = make_data()
    mb = len(get_serializer("msgpack").dumps(data)) / 1e6
    rows: list[dict[str, Any]] = []

    def row(name: str, seconds: float) -> None:
        rows.append({"group": GROUP, "name": name, "value": round(mb / seconds, 1), "unit": "MB/s"})

    for name in ["msgpack", "cloudpickle", "json", "compressed/msgpack"]:
        serializer = get_serializer(name)
        encoded = serializer.dumps(data)
        row(f"{name} dumps 1MB dict", best_time(lambda s=serializer: s.dumps(data)))
        row(f"{name} loads 1MB dict", best_time(lambda s=serializer, e=encoded: s.loads(e)))
        rows.append(
            {
                "group": GROUP,
                "name": f"{name} size of 1MB dict",
                "value": len(encoded),
                "unit": "bytes",
            }
        )

    row("hash_objects (canonical msgpack) 1MB dict", best_time(lambda: hash_objects(data)))
    row("sha256(cloudpickle) 1MB dict", best_time(lambda: _pickle_hash(data)))
    row("sha256(json sort_keys) 1MB dict", best_time(lambda: _json_sorted_hash(data)))

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp))
        row(
            "ResultStore write 1MB dict (msgpack)",
            best_time(lambda: store.write("k", data, "msgpack")),
        )
        row("ResultStore read 1MB dict (msgpack)", best_time(lambda: store.read("k")))
    return rows


def main() -> None:
    rows = run()
    width = max(len(r["name"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'value':>10}  unit")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>10}  {r['unit']}")


if __name__ == "__main__":
    main()
