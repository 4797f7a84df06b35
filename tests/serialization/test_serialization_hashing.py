"""Stable input hashing: same key in any process, order-independent, clear errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serialization_helpers import hashables, plain_data

from fluvial.serialization import (
    HashError,
    hash_inputs,
    hash_objects,
    source_hash,
    task_input_hash,
)

# Evaluated in this process and in subprocesses with other PYTHONHASHSEEDs.
SAMPLE_IMPORTS = (
    "from datetime import datetime, timedelta, timezone\n"
    "from decimal import Decimal\n"
    "from fractions import Fraction\n"
    "from uuid import UUID\n"
)
SAMPLE = """{
    "names": {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"},
    "frozen": frozenset({("a", 1), ("b", 2), ("c", 3)}),
    "nested": {"z": [1, 2.5, None], "a": (True, b"raw")},
    3: "int key",
    ("t", 1): {"k": "v"},
    "when": datetime(2024, 3, 1, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "amount": Decimal("10.50"),
    "ratio": Fraction(1, 3),
}"""
# Pins the key format for plain data (SAMPLE minus the pickled "ratio"): if this
# changes, every existing cache is invalidated, so change it deliberately.
PLAIN_SAMPLE_HASH = "f853f2ba3c9e39b8b4c5a97942bfb9ae508d91e6298ae05009b4f2b3a45ae9a8"


def run_in_subprocess(code: str, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def test_hash_is_stable_across_processes_and_hash_seeds() -> None:
    code = (
        f"{SAMPLE_IMPORTS}from fluvial.serialization import hash_objects\n"
        f"sample = {SAMPLE}\n"
        "print(hash_objects(sample), '|', ','.join(sample['names']))"
    )
    first, order1 = run_in_subprocess(code, "1").split(" | ")
    second, order2 = run_in_subprocess(code, "2").split(" | ")
    assert order1 != order2  # the set really iterates differently in the two processes
    namespace: dict = {}
    exec(SAMPLE_IMPORTS, namespace)
    sample = eval(SAMPLE, namespace)
    assert first == second == hash_objects(sample)
    del sample["ratio"]
    assert hash_objects(sample) == PLAIN_SAMPLE_HASH


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(hashables, plain_data, max_size=6), seed=st.randoms())
def test_dict_order_does_not_matter(data: dict, seed) -> None:  # type: ignore[no-untyped-def]
    items = list(data.items())
    seed.shuffle(items)
    assert hash_objects(dict(items)) == hash_objects(data)
    assert hash_inputs({str(i): v for i, (_, v) in enumerate(items)}) == hash_inputs(
        dict(reversed([(str(i), v) for i, (_, v) in enumerate(items)]))
    )


@settings(max_examples=100, deadline=None)
@given(members=st.lists(hashables, max_size=8, unique_by=lambda x: (type(x), repr(x))))
def test_set_order_does_not_matter(members: list) -> None:
    forward, backward = set(members), set(reversed(members))
    assert hash_objects(forward) == hash_objects(backward)
    assert hash_objects(frozenset(members)) == hash_objects(frozenset(reversed(members)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        ((1, 2), [1, 2]),
        ({1, 2}, frozenset({1, 2})),
        ({"a": 1}, {"a": 1.0}),
        (b"x", "x"),
        (datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC)),
        ([[1], 2], [1, [2]]),
        (Decimal("1.0"), Decimal("1.00")),
    ],
)
def test_different_values_give_different_hashes(a: object, b: object) -> None:
    assert hash_objects(a) != hash_objects(b)


def test_hash_objects_positional_and_keyword_arguments() -> None:
    assert hash_objects(1, 2) != hash_objects(2, 1)
    assert hash_objects(1, 2) != hash_objects((1, 2))
    assert hash_objects(x=1, y=2) == hash_objects(y=2, x=1)
    assert hash_objects(1, x=1) != hash_objects(1, 1)


def test_hash_algo_may_be_a_constructor_or_a_name() -> None:
    assert len(hash_objects("x")) == 64
    assert len(hash_objects("x", hash_algo=hashlib.md5)) == 32
    assert hash_objects("x", hash_algo="md5") == hash_objects("x", hash_algo=hashlib.md5)


def test_unpicklable_object_raises_hash_error_with_its_path() -> None:
    with pytest.raises(
        HashError, match=r"argument 1 of type dict .*_thread\.lock at \['conn'\]\[0\]"
    ):
        hash_objects("ok", {"conn": [threading.Lock()]})
    with pytest.raises(TypeError):  # HashError is a TypeError
        hash_objects(threading.Lock())


def test_self_referential_object_raises_hash_error() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(HashError, match="self-referential"):
        hash_objects(loop)


def test_hash_inputs_order_exclude_and_parameter_names() -> None:
    assert hash_inputs({"a": 1, "b": [2]}) == hash_inputs({"b": [2], "a": 1})
    assert hash_inputs({"a": 1, "b": 2}) != hash_inputs({"a": 1, "b": 3})
    assert hash_inputs({"a": 1, "b": 2}) != hash_inputs({"a": 2, "b": 1})  # names matter
    lock = threading.Lock()
    assert hash_inputs({"a": 1, "client": lock}, exclude=["client"]) == hash_inputs({"a": 1})
    assert hash_inputs({"a": 1, "client": lock}, exclude="client") == hash_inputs({"a": 1})


def test_unhashable_parameter_error_names_the_parameter() -> None:
    with pytest.raises(HashError) as info:
        hash_inputs({"x": 1, "client": threading.Lock()})
    message = str(info.value)
    assert message.startswith("parameter 'client' of type _thread.lock cannot be hashed")
    assert "exclude" in message and "INPUTS - 'client'" in message
    with pytest.raises(HashError, match=r"parameter 'config' of type dict .* at \['db'\]"):
        hash_inputs({"config": {"db": threading.Lock()}})


def task_fn() -> None:
    pass


def other_fn() -> None:
    pass


def context_for(fn: object = None, task_key: str | None = None) -> SimpleNamespace:
    task = SimpleNamespace()
    if fn is not None:
        task.fn = fn
    if task_key is not None:
        task.task_key = task_key
    return SimpleNamespace(task=task)


def test_task_input_hash_combines_identity_and_inputs() -> None:
    args = {"x": 1, "when": datetime(2020, 1, 1)}
    key = task_input_hash(context_for(task_fn), args)
    assert key is not None and len(key) == 64
    assert key == task_input_hash(context_for(task_fn), dict(reversed(args.items())))
    assert key != task_input_hash(context_for(other_fn), args)
    assert key != task_input_hash(context_for(task_fn), {"x": 2, "when": datetime(2020, 1, 1)})
    assert key == hash_objects(f"{__name__}.task_fn", hash_inputs(args))


def test_task_input_hash_uses_task_key_or_nothing() -> None:
    by_key = task_input_hash(context_for(task_key="my-task"), {"x": 1})
    assert by_key == hash_objects("my-task", hash_inputs({"x": 1}))
    assert task_input_hash(None, {"x": 1}) == hash_objects(None, hash_inputs({"x": 1}))
    assert by_key != task_input_hash(None, {"x": 1})


def test_task_input_hash_returns_none_and_warns_naming_the_parameter() -> None:
    with pytest.warns(UserWarning, match=r"task_fn.*parameter 'lock' of type _thread\.lock"):
        assert task_input_hash(context_for(task_fn), {"x": 1, "lock": threading.Lock()}) is None


def test_task_input_hash_does_not_warn_for_hashable_inputs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert task_input_hash(None, {"obj": Fraction(1, 2)}) is not None


def test_source_hash_follows_the_source() -> None:
    namespace: dict = {}
    exec("def f(x):\n    return x + 1\n", namespace)  # no source file: falls back to bytecode
    from_code = source_hash(namespace["f"])
    exec("def f(x):\n    return x + 2\n", namespace)
    assert source_hash(namespace["f"]) != from_code
    exec("def f(x):\n    return x + 1\n", namespace)
    assert source_hash(namespace["f"]) == from_code

    assert source_hash(task_fn) == source_hash(task_fn)
    assert source_hash(task_fn) != source_hash(other_fn)
    assert source_hash(SimpleNamespace(fn=task_fn)) == source_hash(task_fn)  # a Task-like wrapper


def test_source_hash_is_stable_across_processes() -> None:
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "import test_serialization_hashing as t; from fluvial.serialization import source_hash\n"
        "print(source_hash(t.task_fn))"
    )
    assert run_in_subprocess(code, "7") == source_hash(task_fn)


def test_source_hash_of_something_without_code_raises() -> None:
    with pytest.raises(HashError, match="source"):
        source_hash(len)
