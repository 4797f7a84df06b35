"""``python -m benchmarks.peers [KIND ...] [--quick] [--repeat R] [--out DIR]`` (``make bench-peers``).

The same flows on fluvial and on Prefect 3.8.8, in the same run: a ``.map`` of no-ops and
a chain on threads, a ``.map`` on Dask and on Ray (KIND: ``threads``, ``dask``, ``ray``;
all by default). Prefect runs from ``.venv-peers`` (``--venv``) against a
``prefect server start`` on 127.0.0.1 with a throwaway ``PREFECT_HOME``; fluvial runs here
with its run store recording into a throwaway ``FLUVIAL_HOME``. Each side is warmed up,
then timed ``--repeat`` times (best kept); the Prefect side of a kind runs after the
fluvial side's runner is shut down, so they never share the CPUs.

Prints a Markdown table (fluvial tasks/s, Prefect tasks/s, fluvial / Prefect) and writes
``latest.json``, ``latest.md``, ``history.jsonl`` and ``latest.png`` into
``benchmarks/results/peers/`` (or ``--out``): a history of its own, apart from
``make bench``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.cli import add_output, new_parser, parse
from benchmarks.harness import (
    RESULTS_DIR,
    ROOT,
    render_markdown,
    row,
    throwaway_home,
    timed,
    write_results,
)
from benchmarks.history import track

GROUP = "prefect"
SIDE_SCRIPT = Path(__file__).resolve().parent / "prefect_side.py"
PREFECT_VERSION = "3.8.8"
# kind -> [(shape, full size, quick size)]: Prefect does ~100 tasks/s on threads and a
# few per second on Dask and Ray here, so sizes stay modest (the run takes minutes)
WORKLOADS: dict[str, list[tuple[str, int, int]]] = {
    "threads": [("map", 1_000, 100), ("chain", 200, 20)],
    "dask": [("map", 100, 20)],
    "ray": [("map", 100, 20)],
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser("python -m benchmarks.peers", __doc__, names="kinds", metavar="KIND",
                        choices=list(WORKLOADS), what="runners to compare",
                        quick="smaller sizes: a smoke check")
    parser.add_argument("--repeat", type=int, default=2,
                        help="timed flows per side; the best is kept (default: 2)")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-peers",
                        help="the virtualenv holding Prefect (default: .venv-peers)")
    add_output(parser, RESULTS_DIR / "peers", holds="the results and their history",
               no_history="do not append this run to history.jsonl")
    return parse(parser, argv, names="kinds", choices=list(WORKLOADS), noun="kind",
                 counts=("repeat",))


def _peer_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no Prefect virtualenv at {venv}: `make bench-peers` creates it")
    probe = subprocess.run([str(python), "-c", "import prefect; print(prefect.__version__)"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        raise SystemExit(f"{python} cannot import prefect: {probe.stderr.strip()[-500:]}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prefect_server(venv: Path) -> Iterator[dict[str, str]]:
    """A ``prefect server start`` on 127.0.0.1 with a throwaway home: the environment a
    Prefect client needs to use it (its SQLite database goes away with the home)."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="prefect-home-", ignore_cleanup_errors=True) as home:
        port = _free_port()
        env = {**os.environ, "PREFECT_HOME": home,
               "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
               "PREFECT_LOGGING_LEVEL": "WARNING", "RAY_AUTH_MODE": "disabled"}
        log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [str(venv / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("prefect server start exited: "
                                       + (Path(home) / "server.log").read_text()[-2000:])
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("prefect server did not answer /api/health in 180 s")
                time.sleep(0.5)
            yield env
        finally:
            with _suppress_lookup():
                os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn children
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            log.close()


@contextmanager
def _suppress_lookup() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def _fluvial_times(kind: str, sizes: list[tuple[str, int]], repeat: int) -> dict[str, float]:
    """Best seconds of each of ``kind``'s workloads on fluvial (runner started once)."""
    from benchmarks.bench_threads import flush_store
    from benchmarks.peers.fluvial_side import sides

    best: dict[str, float] = {}
    with sides(kind) as flows:
        for shape, n in sizes:
            flows[shape](min(n, 5))  # warm-up, as on the Prefect side
            flush_store()
            seconds = []
            for _ in range(repeat):
                seconds.append(timed(lambda shape=shape, n=n: flows[shape](n)))
                flush_store()  # untimed: the writer's backlog stays out of the next run
            best[shape] = min(seconds)
    return best


def _prefect_time(python: Path, env: dict[str, str], kind: str, shape: str, n: int,
                  repeat: int) -> dict[str, Any]:
    proc = subprocess.run([str(python), str(SIDE_SCRIPT), f"{kind}-{shape}", str(n),
                           "--repeat", str(repeat)], env=env, capture_output=True,
                          text=True, timeout=1800, cwd=tempfile.gettempdir())
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"Prefect {kind}-{shape} failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return dict(json.loads(lines[-1]))


def _name(kind: str, shape: str, n: int) -> str:
    return f"{kind}: map {n} no-ops" if shape == "map" else f"{kind}: chain of {n}"


def run(kinds: Sequence[str], quick: bool, repeat: int, venv: Path) -> list[dict[str, Any]]:
    """Every workload of ``kinds`` both ways; one row per workload (``raw`` = Prefect)."""
    python = _peer_python(venv)
    rows: list[dict[str, Any]] = []
    with prefect_server(venv) as env, throwaway_home():
        for kind in kinds:
            sizes = [(shape, quick_n if quick else full_n)
                     for shape, full_n, quick_n in WORKLOADS[kind]]
            print(f"[peers] {kind}: fluvial ...", file=sys.stderr, flush=True)
            fluvial = _fluvial_times(kind, sizes, repeat)
            for shape, n in sizes:
                print(f"[peers] {kind} {shape} {n}: Prefect ...", file=sys.stderr, flush=True)
                peer = _prefect_time(python, env, kind, shape, n, repeat)
                fluvial_rate, prefect_rate = n / fluvial[shape], n / peer["best"]
                rows.append(row(
                    GROUP, _name(kind, shape, n), round(fluvial_rate, 1), "tasks/s",
                    raw=round(prefect_rate, 1), ratio=fluvial_rate / prefect_rate,
                    raw_means=f"Prefect {peer['prefect']}", n=n,
                    fluvial_seconds=round(fluvial[shape], 4),
                    prefect_seconds=round(peer["best"], 4), runs_per_side=repeat))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = args.kinds or list(WORKLOADS)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import logging

    logging.getLogger("fluvial").setLevel(logging.WARNING)
    started = time.perf_counter()
    rows = run(kinds, args.quick, args.repeat, args.venv)
    versions = sorted({str(r.get("raw_means")) for r in rows})
    notes = [f"raw = {', '.join(versions)} (its own virtualenv, `prefect server start` on "
             "127.0.0.1, SQLite in a throwaway PREFECT_HOME); ratio = fluvial / Prefect",
             f"best of {args.repeat} flow runs per side, each side warmed up first"]
    if args.quick:
        notes.append("smoke run (--quick): sizes differ from the full run's")
    json_path, md_path = write_results(rows, notes, args.out)
    print(render_markdown(rows).replace("| raw |", "| Prefect |", 1))
    print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s; written to "
          f"{json_path} and {md_path}")
    for note in notes:
        print(f"note: {note}")
    if not args.no_history:
        track(rows, [f"peers:{k}" for k in kinds], args.quick, args.out, ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
