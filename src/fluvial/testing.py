"""Test helpers: ``fluvial_test_harness()`` gives a throwaway ``FLUVIAL_HOME`` (store,
results, limits) for the duration of a block. ``prefect_test_harness`` is the same, under
Prefect's name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

__all__ = ["fluvial_test_harness", "prefect_test_harness"]


@contextlib.contextmanager
def fluvial_test_harness() -> Iterator[str]:
    """Point ``FLUVIAL_HOME`` at a new temporary directory; restore it afterwards."""
    previous = os.environ.get("FLUVIAL_HOME")
    with tempfile.TemporaryDirectory(prefix="fluvial-test-") as home:
        os.environ["FLUVIAL_HOME"] = home
        try:
            yield home
        finally:
            from fluvial.store import get_recorder

            recorder = get_recorder()
            if recorder is not None:
                recorder.close()
            if previous is None:
                os.environ.pop("FLUVIAL_HOME", None)
            else:
                os.environ["FLUVIAL_HOME"] = previous


prefect_test_harness = fluvial_test_harness
