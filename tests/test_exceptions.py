"""One exception tree: every fluvial exception derives from FluvialError and lives in
``fluvial.exceptions``, whose docstring draws the tree."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
from pathlib import Path

import pytest

import fluvial
import fluvial.exceptions as exceptions
from fluvial.exceptions import (
    ConcurrencySlotTimeout,
    FluvialError,
    FluvialWarning,
    ResultRecordError,
    SerializationError,
    SerializationFailure,
    TaskError,
)

# A worker's SIGTERM signal: a BaseException on purpose (see fluvial.exceptions' docstring).
OUTSIDE_THE_TREE = {"fluvial.workers._flow_process.Terminated"}


def _modules() -> list[str]:
    names = ["fluvial"]
    for info in pkgutil.walk_packages(fluvial.__path__, "fluvial."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return names


def _defined_classes() -> list[type]:
    found = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional extra that is not installed
            if (exc.name or "fluvial").split(".")[0] == "fluvial":
                raise
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == name:
                found.append(obj)
    return found


def _tree_classes() -> list[type]:
    return [
        obj
        for _, obj in inspect.getmembers(exceptions, inspect.isclass)
        if obj.__module__ == exceptions.__name__ and issubclass(obj, BaseException)
    ]


def test_every_exception_in_exceptions_derives_from_fluvial_error() -> None:
    classes = _tree_classes()
    assert len(classes) > 20
    for cls in classes:
        if issubclass(cls, Warning):
            assert issubclass(cls, FluvialWarning), cls
        else:
            assert issubclass(cls, FluvialError), cls


def test_the_docstring_draws_every_class() -> None:
    doc = exceptions.__doc__ or ""
    for cls in _tree_classes():
        assert re.search(rf"^[\s│├└─]*{cls.__name__}\b", doc, re.M), cls.__name__


def test_no_exception_class_is_defined_outside_the_tree() -> None:
    strays = []
    for cls in _defined_classes():
        if not issubclass(cls, BaseException) or cls.__module__ == exceptions.__name__:
            continue
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__name__.startswith("_") or qualified in OUTSIDE_THE_TREE:
            continue  # private control flow, never seen by a user
        strays.append(qualified)
    assert strays == [], "define these in fluvial/exceptions.py (and re-export them)"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("fluvial.concurrency", "ConcurrencySlotTimeout"),
        ("fluvial.serialization", "SerializationError"),
        ("fluvial.serialization", "HashError"),
        ("fluvial.serialization", "ResultRecordError"),
        ("fluvial.store", "StoreError"),
        ("fluvial.store", "RunNotFoundError"),
        ("fluvial.runners.remote", "TaskRunFailure"),
        ("fluvial.visualization", "FlowVisualizationError"),
        ("fluvial.store.writer.wire", "WireError"),
    ],
)
def test_re_exports_are_the_classes_of_the_tree(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(exceptions, name)


def test_the_serialization_errors_are_one_family() -> None:
    assert issubclass(SerializationFailure, SerializationError)
    assert issubclass(SerializationFailure, TaskError)
    assert issubclass(SerializationError, TypeError)  # what callers caught before


@pytest.mark.parametrize(
    "error",
    [
        ConcurrencySlotTimeout(["db", "gpu"], 2, 0.5),
        ResultRecordError(Path("/tmp/x"), "is truncated"),
        exceptions.StoreError("cannot open"),
    ],
)
def test_errors_with_fields_cross_process_boundaries(error: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_fluvial_all_names_only_what_exists() -> None:
    assert len(set(fluvial.__all__)) == len(fluvial.__all__)
    missing = [name for name in fluvial.__all__ if not hasattr(fluvial, name)]
    assert missing == []
