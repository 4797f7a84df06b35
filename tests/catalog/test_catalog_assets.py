"""Assets: materializations recorded with their run, status and metadata, and lineage."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fluvial import flow
from fluvial.assets import Asset, AssetProperties, add_asset_metadata, materialize
from fluvial.cli import main as cli
from fluvial.exceptions import MissingContextError
from fluvial.runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from fluvial.store import catalog

RAW = Asset(key="s3://lake/raw.parquet", properties=AssetProperties(name="Raw", owners=["ops"]))
CLEAN = Asset(key="s3://lake/clean.parquet")
REPORT = Asset(key="s3://lake/report.md")


@materialize(RAW)
def extract() -> list[int]:
    add_asset_metadata(RAW, {"rows": 3})
    return [1, 2, 3]


@materialize(CLEAN, by="pandas")
def transform(rows: list[int]) -> list[int]:
    CLEAN.add_metadata({"rows": len(rows)})
    return [r * 2 for r in rows]


@materialize(REPORT, asset_deps=["postgres://warehouse/public.customers"])
def summarise(rows: list[int]) -> int:
    return sum(rows)


@materialize("s3://lake/broken")
def broken() -> None:
    raise RuntimeError("disk full")


@flow
def pipeline() -> int:
    raw = extract.submit()
    clean = transform.submit(raw)
    return summarise.submit(clean).result()


@flow
def direct_calls() -> int:
    return summarise(transform(extract()))


@pytest.mark.parametrize("make", [lambda: ThreadPoolTaskRunner(max_workers=2),
                                  lambda: ProcessPoolTaskRunner(max_workers=2)],
                         ids=["threads", "processes"])
def test_materializations_and_lineage_from_futures(make) -> None:
    assert pipeline.with_options(task_runner=make())() == 12
    raw = catalog.materializations(RAW.key)
    assert [(m.status, m.metadata, m.task_name) for m in raw] == [("success", {"rows": 3}, "extract")]
    assert raw[0].flow_run_id is not None and raw[0].task_run_id is not None
    clean = catalog.materializations(CLEAN.key)[0]
    assert clean.metadata == {"rows": 3, "materialized_by": "pandas"}
    assert catalog.get_asset(RAW.key).properties == {"name": "Raw", "owners": ["ops"]}
    up, down = catalog.lineage(CLEAN.key)
    assert up == [(RAW.key, CLEAN.key)]
    assert down == [(CLEAN.key, REPORT.key)]
    report_up, _ = catalog.lineage(REPORT.key)
    assert ("postgres://warehouse/public.customers", REPORT.key) in report_up


def test_lineage_from_direct_calls_in_a_flow() -> None:
    assert direct_calls() == 12
    up, _ = catalog.lineage(REPORT.key)
    assert (CLEAN.key, REPORT.key) in up and (RAW.key, CLEAN.key) in up


def test_a_failed_materialization_is_recorded_as_failed() -> None:
    @flow
    def fails() -> None:
        broken()

    state = fails(return_state=True)
    assert state.is_failed()
    [m] = catalog.materializations("s3://lake/broken")
    assert m.status == "failed"


def test_bad_assets_and_metadata_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="invalid asset key 'no-scheme'"):
        Asset(key="no-scheme")
    with pytest.raises(ValueError, match="invalid asset key"):
        materialize("s3://has space/x")
    with pytest.raises(ValueError, match="at least one asset"):
        materialize()
    with pytest.raises(MissingContextError, match="inside a run of a @materialize task"):
        add_asset_metadata(RAW, {"x": 1})

    @materialize(RAW)
    def wrong_asset() -> None:
        add_asset_metadata("s3://lake/other", {"x": 1})

    @flow
    def f() -> None:
        wrong_asset()

    state = f(return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="does not materialize asset 's3://lake/other'"):
        state.result()


def test_asset_cli_shows_materializations_and_lineage_both_ways() -> None:
    pipeline()
    result = CliRunner().invoke(cli, ["asset", "ls"])
    assert result.exit_code == 0
    for asset in (RAW, CLEAN, REPORT):
        assert asset.key in result.output
    result = CliRunner().invoke(cli, ["asset", "inspect", CLEAN.key, "-o", "json"])
    shown = json.loads(result.output)
    assert shown["upstream"] == [[RAW.key, CLEAN.key]]
    assert shown["downstream"] == [[CLEAN.key, REPORT.key]]
    assert shown["materializations"][0]["status"] == "success"
    result = CliRunner().invoke(cli, ["asset", "inspect", "s3://nope/x"])
    assert result.exit_code == 1 and "No asset" in result.output
