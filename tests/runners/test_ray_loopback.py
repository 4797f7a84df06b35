"""A local Ray started by ``RayTaskRunner()`` listens on loopback only (issue 16, item 10).

A fresh process starts the runner's own local Ray, runs tasks on it, and lists with
psutil every listening socket of itself and its descendants (GCS, raylet, workers,
runtime-env agent): each must be bound to a loopback address. A cluster the user names
is left alone.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

SCRIPT = '''
import json, os, psutil
from fluvial import flow, task
from fluvial.runners.ray import RayTaskRunner

@task
def inc(x):
    return x + 1

@flow(task_runner=RayTaskRunner(init_kwargs={"num_cpus": 2}))
def on_ray():
    results = inc.map(range(4)).result()
    me = psutil.Process()
    listening = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append([proc.name(), conn.laddr.ip, conn.laddr.port])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return results, listening

print(json.dumps(on_ray()))
'''


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_local_ray_listens_on_loopback_only(tmp_path: Path) -> None:
    script = tmp_path / "on_ray.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "FLUVIAL_STORE": "off"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=240, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    results, listening = json.loads(out.stdout.strip().splitlines()[-1])
    assert results == [1, 2, 3, 4]
    names = {name for name, _, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening  # the check sees Ray's servers
    exposed = [entry for entry in listening if not _is_loopback(entry[1])]
    assert exposed == [], f"listening beyond loopback: {exposed}"


def test_a_named_cluster_is_left_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from fluvial.runners._ray_local import starts_local_instance

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not starts_local_instance("auto", {})
    assert not starts_local_instance("ray://head:10001", {})
    assert not starts_local_instance(None, {"_node_ip_address": "10.0.0.5"})
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert not starts_local_instance(None, {})
    monkeypatch.delenv("RAY_ADDRESS")
    assert starts_local_instance(None, {"_temp_dir": "/nonexistent-fluvial"}) is True
