"""The serializer registry: lookup, errors, third-party and lazy registration."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

import fluvial.serialization as ser
from fluvial.serialization import (
    Serializer,
    get_serializer,
    register_lazy_serializer,
    register_serializer,
    serializer_names,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_builtins_are_registered() -> None:
    assert {"cloudpickle", "json", "msgpack"} <= set(serializer_names())
    serializer = get_serializer("msgpack")
    assert isinstance(serializer, Serializer) and serializer.name == "msgpack"
    with pytest.raises(AttributeError):
        serializer.name = "other"  # type: ignore[misc]


def test_unknown_name_lists_the_known_names_sorted() -> None:
    with pytest.raises(ValueError, match="unknown serializer 'yaml'") as info:
        get_serializer("yaml")
    message = str(info.value)
    positions = [message.index(f"'{name}'") for name in serializer_names()]
    assert positions == sorted(positions)
    assert "compressed/<name>" in message


def test_unknown_compressed_name_names_the_inner_serializer() -> None:
    with pytest.raises(ValueError, match="unknown serializer 'nope'"):
        get_serializer("compressed/nope")


def test_third_party_serializer_round_trips_and_can_be_compressed() -> None:
    name = unique("rot13")
    register_serializer(name, lambda s: s[::-1].encode(), lambda b: b.decode()[::-1])
    assert name in serializer_names()
    assert get_serializer(name).loads(get_serializer(name).dumps("hello")) == "hello"
    compressed = get_serializer(f"compressed/{name}")
    assert compressed.name == f"compressed/{name}"
    assert compressed.loads(compressed.dumps("hello" * 100)) == "hello" * 100


def test_duplicate_registration_needs_replace() -> None:
    name = unique("dup")
    register_serializer(name, lambda o: b"1", lambda b: 1)
    get_serializer(f"compressed/{name}")  # cache the derived one too
    with pytest.raises(ValueError, match="replace=True"):
        register_serializer(name, lambda o: b"2", lambda b: 2)
    register_serializer(name, lambda o: b"2", lambda b: 2, replace=True)
    assert get_serializer(name).loads(b"") == 2
    compressed = get_serializer(f"compressed/{name}")  # the derived one follows the replacement
    assert compressed.loads(compressed.dumps(None)) == 2


@pytest.mark.parametrize(
    ("name", "dumps", "loads", "error"),
    [
        ("", bytes, bytes, TypeError),
        (3, bytes, bytes, TypeError),
        ("compressed/x", bytes, bytes, ValueError),
        ("ok-name", "not callable", bytes, TypeError),
        ("ok-name", bytes, None, TypeError),
    ],
)
def test_invalid_registration(name: object, dumps: object, loads: object, error: type) -> None:
    with pytest.raises(error):
        register_serializer(name, dumps, loads)  # type: ignore[arg-type]


def test_lazy_serializer_factory_runs_once_on_first_use() -> None:
    calls: list[int] = []

    def factory():  # type: ignore[no-untyped-def]
        calls.append(1)
        return (lambda o: repr(o).encode()), (lambda b: eval(b))  # noqa: S307

    name = unique("lazy")
    register_lazy_serializer(name, factory)
    assert calls == []
    assert get_serializer(name).loads(get_serializer(name).dumps([1, 2])) == [1, 2]
    get_serializer(name)
    assert calls == [1]


def test_import_is_cheap_and_cloudpickle_is_lazy() -> None:
    code = textwrap.dedent(
        """
        import sys
        import fluvial.serialization as s
        assert "cloudpickle" not in sys.modules, "cloudpickle imported eagerly"
        s.get_serializer("cloudpickle").dumps(1)
        assert "cloudpickle" in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_complete() -> None:
    public = {n for n in dir(ser) if not n.startswith("_") and n != "storage"}
    assert set(ser.__all__) == public
    for name in ser.__all__:  # defined here, or an error of the one tree, re-exported
        module = getattr(ser, name).__module__
        assert module == "fluvial.exceptions" or module.startswith("fluvial.serialization")
