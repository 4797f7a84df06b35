"""Mapping and submitting, the same on every runner."""

from __future__ import annotations

import pytest

from fluvial import flow, task, unmapped
from fluvial.exceptions import MappingLengthMismatch, MappingTypeError


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def double(x: int) -> int:
    return 2 * x


def test_map_returns_one_future_per_element(runner):
    @flow(task_runner=runner)
    def mapped():
        futures = double.map(range(50))
        assert len(futures) == 50
        return futures.result()

    assert mapped() == [2 * i for i in range(50)]


def test_map_zips_iterables_and_passes_unmapped_whole(runner):
    @flow(task_runner=runner)
    def mapped():
        zipped = add.map([1, 2, 3], [10, 20, 30]).result()
        broadcast = add.map([1, 2, 3], unmapped(100)).result()
        by_keyword = add.map(x=[1, 2], y=unmapped(5)).result()
        return zipped, broadcast, by_keyword

    assert mapped() == ([11, 22, 33], [101, 102, 103], [6, 7])


def test_map_over_futures_and_over_a_future_of_a_list(runner):
    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @flow(task_runner=runner)
    def mapped():
        firsts = double.map(range(3))
        seconds = double.map(firsts).result()
        of_list = double.map(numbers.submit(4)).result()
        return seconds, of_list

    assert mapped() == ([0, 4, 8], [0, 2, 4, 6])


def test_map_length_mismatch_names_task_and_lengths(runner):
    @flow(task_runner=runner)
    def mapped():
        add.map([1, 2, 3], [1, 2])

    with pytest.raises(MappingLengthMismatch) as info:
        mapped()
    message = str(info.value)
    assert "'add'" in message and "3" in message and "2" in message


class Dataset:
    def __init__(self, name: str) -> None:
        self.name = name


@task
def train(dataset: Dataset, config: str) -> str:
    return f"{dataset.name}:{config}"


@task
def query(n: int, log: str) -> str:
    return f"{n}>{log}"


def test_map_broadcasts_what_it_cannot_iterate(runner):
    @flow(task_runner=runner)
    def mapped():
        scalar = add.map(1, [1, 2, 3]).result()
        instance = train.map(dataset=Dataset("x"), config=["a", "b"]).result()
        text = query.map(range(12), log="path.txt").result()
        none = add.map([1, 2], unmapped(0)).result()
        return scalar, instance, text, none

    scalar, instance, text, none = mapped()
    assert scalar == [2, 3, 4]
    assert instance == ["x:a", "x:b"]
    assert text == [f"{i}>path.txt" for i in range(12)]
    assert none == [1, 2]


def test_map_passes_bytes_and_io_whole(runner):
    import io

    @task
    def describe(x: int, blob: bytes, stream: object) -> tuple:
        return x, blob, type(stream).__name__

    @flow(task_runner=runner)
    def mapped():
        return describe.map([1, 2], b"raw", io.BytesIO(b"data")).result()

    assert mapped() == [(1, b"raw", "BytesIO"), (2, b"raw", "BytesIO")]


@pytest.mark.parametrize("static", [5, None, "abc", b"xy"])
def test_map_without_any_iterable_is_a_clear_error(runner, static):
    @flow(task_runner=runner)
    def mapped():
        add.map(static, unmapped([1, 2]))

    with pytest.raises(MappingTypeError) as info:
        mapped()
    assert "'add'" in str(info.value) and "iterable" in str(info.value)


def test_submit_with_wrong_arguments_fails_before_running(runner):
    @flow(task_runner=runner)
    def bad_call():
        add.submit(1, 2, 3)

    with pytest.raises(TypeError, match="'add'"):
        bad_call()


def test_empty_map_gives_an_empty_list(runner):
    @flow(task_runner=runner)
    def mapped():
        return double.map([]).result()

    assert mapped() == []
