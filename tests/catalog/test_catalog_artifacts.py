"""Artifacts: created in runs and linked to them, versioned by key, rendered safely."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fluvial import flow, task
from fluvial.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    render_markdown,
    update_progress_artifact,
)
from fluvial.cli import main as cli
from fluvial.store import catalog


def test_artifacts_created_in_runs_are_linked_to_them() -> None:
    @task
    def report(n: int) -> str:
        return str(create_table_artifact([{"n": n, "sq": n * n}], key="squares"))

    @flow
    def publish() -> tuple:
        md = create_markdown_artifact("# Done", key="summary", description="the summary")
        table_id = report(3)
        return md, table_id

    from fluvial.context import FlowRunContext  # noqa: F401

    state = publish(return_state=True)
    md_id, table_id = state.result()
    md = catalog.get_artifact(str(md_id))
    table = catalog.get_artifact(table_id)
    assert md.type == "markdown" and md.data == "# Done" and md.description == "the summary"
    assert md.flow_run_id is not None and md.task_run_id is None
    assert table.flow_run_id == md.flow_run_id and table.task_run_id is not None
    assert table.data == [{"n": 3, "sq": 9}]


def test_keys_keep_versions_and_listings_show_the_latest() -> None:
    create_markdown_artifact("v1", key="daily")
    create_markdown_artifact("v2", key="daily")
    create_link_artifact("https://example.com", link_text="site", key="link")
    assert [a.data for a in catalog.artifact_versions("daily")] == ["v2", "v1"]
    latest = {a.key: a.data for a in catalog.latest_artifacts()}
    assert latest["daily"] == "v2" and latest["link"]["link_text"] == "site"
    result = CliRunner().invoke(cli, ["artifact", "inspect", "daily", "--all-versions"])
    assert result.exit_code == 0 and result.output.index("v2") < result.output.index("v1")
    result = CliRunner().invoke(cli, ["artifact", "delete", "daily"])
    assert result.exit_code == 0 and "2 version" in result.output
    assert catalog.artifact_versions("daily") == []


def test_table_shapes_and_non_finite_numbers() -> None:
    rows = catalog.get_artifact(str(create_table_artifact([[1, float("nan")], [2, 3.5]])))
    assert rows.data == [[1, None], [2, 3.5]]
    cols = catalog.get_artifact(str(create_table_artifact({"a": [1, 2], "b": ["x", "y"]})))
    assert cols.data == {"a": [1, 2], "b": ["x", "y"]}
    with pytest.raises(ValueError, match="equal-length"):
        create_table_artifact({"a": [1], "b": [1, 2]})
    with pytest.raises(TypeError, match="list of dicts"):
        create_table_artifact("not a table")  # type: ignore[arg-type]


def test_progress_is_updated_in_place() -> None:
    artifact_id = create_progress_artifact(0.0, description="loading")
    update_progress_artifact(artifact_id, 42)
    assert catalog.get_artifact(str(artifact_id)).data == 42.0
    with pytest.raises(ValueError, match="from 0 to 100"):
        update_progress_artifact(artifact_id, 101)
    image = create_image_artifact("https://example.com/x.png")
    with pytest.raises(ValueError, match="no progress artifact"):
        update_progress_artifact(image, 10)


@pytest.mark.parametrize("key", ["Upper", "with space", "under_score", "a/b"])
def test_keys_are_lowercase_letters_digits_and_dashes(key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        create_markdown_artifact("x", key=key)


def test_markdown_is_rendered_and_sanitised() -> None:
    html = render_markdown("# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n"
                           "<img src=x onerror=alert(1)>\n\n[ok](https://example.com)\n\n"
                           "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h1>Title</h1>" in html and "<table>" in html
    assert '<a href="https://example.com"' in html
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript' not in html


def test_cli_escapes_terminal_control_sequences() -> None:
    create_markdown_artifact("title\x1b]0;owned\x07\x1b[2J", key="evil")
    for args in (["artifact", "ls"], ["artifact", "inspect", "evil"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        assert "\x1b" not in result.output and "\x07" not in result.output
