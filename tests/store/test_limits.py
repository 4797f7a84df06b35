"""Concurrency limits: synchronous CRUD with validation."""

from __future__ import annotations

import time

import pytest

from fluvial.store._limits import LimitRecord, delete_limit, get_limit, list_limits, set_limit


def test_limit_round_trip(backend) -> None:
    before = time.time()
    record = set_limit("db", 3)
    assert isinstance(record, LimitRecord)
    assert (record.tag, record.limit, record.slot_decay_per_second) == ("db", 3, None)
    assert record.created == record.updated >= before
    assert get_limit("db") == record
    assert get_limit("missing") is None


def test_set_limit_replaces_and_keeps_created(backend) -> None:
    first = set_limit("gpu", 2)
    time.sleep(0.01)
    second = set_limit("gpu", 0, slot_decay_per_second=0.5)
    assert (second.limit, second.slot_decay_per_second) == (0, 0.5)
    assert second.created == first.created and second.updated > first.updated
    assert list_limits() == [second]


def test_list_and_delete(backend) -> None:
    for tag in ["b", "a", "c"]:
        set_limit(tag, 1)
    assert [r.tag for r in list_limits()] == ["a", "b", "c"]
    assert delete_limit("b") is True
    assert delete_limit("b") is False
    assert [r.tag for r in list_limits()] == ["a", "c"]


@pytest.mark.parametrize(
    ("tag", "limit", "decay", "match"),
    [
        ("", 1, None, "tag must be a non-empty string"),
        ("   ", 1, None, "tag must be a non-empty string"),
        ("t", -1, None, "limit must be a non-negative integer, got -1"),
        ("t", 1.5, None, "limit must be a non-negative integer, got 1.5"),
        ("t", "3", None, "limit must be a non-negative integer, got '3'"),
        ("t", True, None, "limit must be a non-negative integer, got True"),
        ("t", 1, -0.1, "slot_decay_per_second must be a finite number >= 0"),
        ("t", 1, float("nan"), "slot_decay_per_second must be a finite number >= 0"),
        ("t", 1, "fast", "slot_decay_per_second must be a number or None"),
    ],
)
def test_invalid_limits_are_refused(backend, tag, limit, decay, match) -> None:
    with pytest.raises(ValueError, match=match):
        set_limit(tag, limit, slot_decay_per_second=decay)
    assert list_limits() == []


def test_a_non_string_tag_is_a_type_error(backend) -> None:
    with pytest.raises(TypeError, match="tag must be a string"):
        get_limit(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        delete_limit("")
