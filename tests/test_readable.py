"""Times and durations as the CLI and the server's pages write them (``fluvial._readable``)."""

from __future__ import annotations

import datetime as dt

from fluvial._readable import readable_duration, readable_time


def test_a_duration_reads_in_the_unit_that_fits() -> None:
    assert readable_duration(None) == "-"
    assert readable_duration(0.49) == "490ms"
    assert readable_duration(4.25) == "4.2s"
    assert readable_duration(119.9) == "119.9s"
    assert readable_duration(187) == "3m07s"
    assert readable_duration(3723) == "1h02m03s"
    # the server's narrow columns: past an hour, hours and minutes only
    assert readable_duration(3723, seconds_past_an_hour=False) == "1h02m"
    assert readable_duration(187, seconds_past_an_hour=False) == "3m07s"


def test_a_time_reads_in_local_time_to_the_second() -> None:
    assert readable_time(None) == "-"
    moment = dt.datetime(2026, 11, 29, 8, 3, 28, 750_000)
    assert readable_time(moment.timestamp()) == "2026-11-29 08:03:28"
    assert readable_time(int(moment.timestamp())) == "2026-11-29 08:03:28"
