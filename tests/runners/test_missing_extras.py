"""Using a runner without its extra is an ImportError that names the install command."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
sys.modules[{module!r}] = None  # as if it were not installed
from fluvial.exceptions import MissingDependencyError
from fluvial.runners.{runner_module} import {runner}
try:
    {runner}().start()
except MissingDependencyError as exc:
    assert isinstance(exc, ImportError)
    print(exc)
"""


@pytest.mark.parametrize(
    ("module", "runner_module", "runner", "extra"),
    [("distributed", "dask", "DaskTaskRunner", "fluvial[dask]"),
     ("ray", "ray", "RayTaskRunner", "fluvial[ray]")],
)
def test_missing_extra_names_the_install_command(module, runner_module, runner, extra):
    code = SCRIPT.format(module=module, runner_module=runner_module, runner=runner)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"pip install '{extra}'" in out.stdout


def test_import_fluvial_does_not_import_dask_or_ray():
    code = ("import sys, fluvial, fluvial.runners; "
            "print(sorted(m for m in ('dask', 'distributed', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
