"""The catalog's tables on both databases: variables, blocks, artifacts, asset lineage."""

from __future__ import annotations

import pytest

from fluvial.store import catalog


def test_variables_insert_without_overwrite_never_replaces(backend: str) -> None:
    assert catalog.put_variable("x", '"one"', ["a"], overwrite=False) is not None
    assert catalog.put_variable("x", '"two"', [], overwrite=False) is None
    assert catalog.get_variable("x").value == "one"
    row = catalog.put_variable("x", '{"n": 2}', ["b"], overwrite=True)
    assert row is not None and row.value == {"n": 2} and row.tags == ("b",)
    assert [r.name for r in catalog.list_variables()] == ["x"]
    assert catalog.delete_variable("x") and not catalog.delete_variable("x")


def test_blocks_are_unique_per_type_and_name(backend: str) -> None:
    assert catalog.put_block("secret", "pw", {"value": 1}, overwrite=False) is not None
    assert catalog.put_block("string", "pw", {"value": "s"}, overwrite=False) is not None
    assert catalog.put_block("secret", "pw", {"value": 2}, overwrite=False) is None
    assert catalog.get_block("secret", "pw").data == {"value": 1}
    assert [(r.block_type_slug, r.name) for r in catalog.list_blocks()] == [
        ("secret", "pw"), ("string", "pw")]
    assert catalog.delete_block("secret", "pw")
    assert catalog.get_block("secret", "pw") is None


def test_artifact_versions_and_latest_per_key(backend: str) -> None:
    first = catalog.add_artifact("report", "markdown", "# v1", None, None, None)
    second = catalog.add_artifact("report", "markdown", "# v2", "desc", "run-1", None)
    loose = catalog.add_artifact(None, "progress", 10.0, None, None, None)
    versions = catalog.artifact_versions("report")
    assert [v.data for v in versions] == ["# v2", "# v1"]
    latest = {(r.key, r.data) for r in catalog.latest_artifacts()}
    assert latest == {("report", "# v2"), (None, 10.0)}
    assert catalog.update_artifact_data(loose.id, 50.0)
    assert catalog.get_artifact(loose.id).data == 50.0
    assert [r.id for r in catalog.latest_artifacts(flow_run_id="run-1")] == [second.id]
    assert catalog.delete_artifacts("report") == 2
    assert catalog.get_artifact(first.id) is None


def test_materializations_record_lineage_only_when_successful(backend: str) -> None:
    catalog.record_materialization({"s3://b/clean": {"name": "Clean"}}, ["s3://b/raw"],
                                   "fr", "tr", "transform", "success", {"s3://b/clean": {"n": 3}})
    catalog.record_materialization({"s3://b/bad": {}}, ["s3://b/raw"],
                                   None, None, "broken", "failed", {})
    catalog.record_lineage(["s3://b/clean"], ["s3://b/report"])
    assert catalog.get_asset("s3://b/clean").properties == {"name": "Clean"}
    mats = catalog.materializations("s3://b/clean")
    assert [(m.status, m.metadata, m.task_name) for m in mats] == [("success", {"n": 3}, "transform")]
    up, down = catalog.lineage("s3://b/clean")
    assert up == [("s3://b/raw", "s3://b/clean")]
    assert down == [("s3://b/clean", "s3://b/report")]
    assert catalog.lineage("s3://b/bad") == ([], [])
    keys = [a.key for a, _ in catalog.list_assets()]
    assert keys == sorted(keys) and "s3://b/report" in keys


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_writers_of_one_name_leave_one_whole_value(backend: str, overwrite: bool) -> None:
    import threading

    big = {w: ("x" * 100_000 + w) for w in ("a", "b")}
    results: dict[str, object] = {}

    def write(who: str) -> None:
        for _ in range(5):
            results[who] = catalog.put_variable("shared", f'"{big[who]}"', [], overwrite)

    threads = [threading.Thread(target=write, args=(w,)) for w in big]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert catalog.get_variable("shared").value in big.values()
