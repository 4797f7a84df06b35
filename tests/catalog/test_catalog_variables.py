"""Variables: Prefect's API over the run record, with its errors and concurrent writers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from fluvial.variables import Variable


def test_set_get_unset_round_trip_json_values() -> None:
    value = {"threshold": 0.5, "regions": ["eu", "us"], "on": True, "none": None}
    stored = Variable.set("config", value, tags=["prod"])
    assert stored.name == "config" and stored.value == value and stored.tags == ["prod"]
    assert Variable.get("config") == value
    assert Variable.get("missing") is None
    assert Variable.get("missing", default=7) == 7
    assert Variable.unset("config") is True
    assert Variable.unset("config") is False
    assert Variable.get("config", "gone") == "gone"


def test_an_existing_name_needs_overwrite() -> None:
    Variable.set("retries", 3)
    with pytest.raises(ValueError, match="'retries' already exists.*overwrite=True"):
        Variable.set("retries", 5)
    assert Variable.get("retries") == 3
    Variable.set("retries", 5, overwrite=True)
    assert Variable.get("retries") == 5


@pytest.mark.parametrize("name", ["Upper", "with space", "dash-ed", "", "x" * 256, "émoji"])
def test_names_follow_prefects_rule(name: str) -> None:
    with pytest.raises(ValueError, match="invalid variable name"):
        Variable.set(name, 1)


def test_values_must_be_json_and_the_error_names_the_variable() -> None:
    with pytest.raises(TypeError, match="variable 'bad'.*JSON"):
        Variable.set("bad", object())
    with pytest.raises(TypeError, match="variable 'nan'"):
        Variable.set("nan", float("nan"))
    assert Variable.get("bad") is None


def test_async_forms() -> None:
    async def main() -> tuple:
        await Variable.aset("a_async", [1, 2])
        got = await Variable.aget("a_async")
        gone = await Variable.aunset("a_async")
        return got, gone, await Variable.aget("a_async", "default")

    assert asyncio.run(main()) == ([1, 2], True, "default")


def test_two_processes_creating_one_variable_one_wins_cleanly(tmp_path) -> None:
    script = textwrap.dedent("""
        import sys
        from fluvial.variables import Variable
        who = sys.argv[1]
        try:
            Variable.set("race", who * 200_000)
            print("won")
        except ValueError as exc:
            assert "already exists" in str(exc), exc
            print("lost")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, who], stdout=subprocess.PIPE,
                              text=True) for who in "ab"]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outcomes == ["lost", "won"]
    assert Variable.get("race") in ("a" * 200_000, "b" * 200_000)
