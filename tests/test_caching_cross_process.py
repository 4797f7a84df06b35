"""A task cached by one ``python script.py`` is a hit in the next run of the script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = '''
from fluvial import flow, task
from fluvial.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def expensive(x):
    return {"x": x, "squares": [i * i for i in range(x)]}

@flow
def cached():
    state = expensive.submit(5, return_state=True)
    print(state.name, state.result()["squares"])

if __name__ == "__main__":
    cached()
'''


def test_cache_hit_in_a_new_interpreter(tmp_path: Path, fluvial_home: str):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "PYTHONHASHSEED": "random"}
    outputs = [
        subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       timeout=120).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == ["Completed [0, 1, 4, 9, 16]", "Cached [0, 1, 4, 9, 16]"]
    assert any((Path(fluvial_home) / "storage").iterdir())
