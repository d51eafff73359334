"""A two-leg matrix under act: each leg runs ``--modelcheck-shard i/2``; one job merges, judges and comments.

Artifacts go through offline stand-ins of upload-/download-artifact that copy to a folder of this test
(``$MODELCHECK_ARTIFACTS``), so the merge job really reads what each leg uploaded.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from github_server import LocalGitHub
from test_github_act import BIN, STUBS, repo_copy, tool

__all__ = ["repo_copy"]  # the fixture, shared with the other act tests


def run_act(repo: Path, model: Path, tmp: Path, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    command = [
        tool("act"), "pull_request", "-W", "tests/data/act/shards.yml", "-P", "ubuntu-latest=-self-hosted",
        "--no-cache-server", "--json",
        "--local-repository", f"acme/modelcheck@v1={repo}",
        "--local-repository", f"actions/setup-python@v5={STUBS / 'setup-python'}",
        "--local-repository", f"actions/cache@v4={STUBS / 'cache'}",
        "--local-repository", f"actions/upload-artifact@v4={STUBS / 'artifact-upload'}",
        "--local-repository", f"actions/download-artifact@v4={STUBS / 'artifact-download'}",
        "--env", f"MODELCHECK_SENTIMENT_MODEL={model}",
        "--env", f"MODELCHECK_ARTIFACTS={tmp / 'artifacts'}",
        "--env", "HF_HUB_OFFLINE=1", "--env", "HF_DATASETS_OFFLINE=1",
        "--env", f"PATH={BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=480, env=env)
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return result.returncode, records, result.stderr[-3000:]


@pytest.mark.act
@pytest.mark.e2e
def test_two_legs_upload_and_one_job_merges_judges_and_comments(
    repo_copy: Path, sentiment_model: Path, tmp_path: Path
) -> None:
    head = "5" * 40
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 9, "head": {"sha": head, "ref": "shards"}}}))
    with LocalGitHub(token="act-token") as gh:
        gh.add_pull("acme/app", 9, head_sha=head)
        code, records, stderr = run_act(
            repo_copy, sentiment_model, tmp_path,
            "-e", str(event), "-s", "GITHUB_TOKEN=act-token",
            "--env", f"GITHUB_API_URL={gh.api_url}", "--env", "GITHUB_REPOSITORY=acme/app",
        )  # fmt: skip
        comments = gh.comments("acme/app", 9)
    messages = [str(r.get("msg", "")) for r in records]
    results = [r.get("jobResult") for r in records if r.get("jobResult")]
    assert code == 0 and results == ["success"] * 3, (messages[-60:], stderr)

    # Each leg uploaded its own report (its shard, one gate file) with the per-example outputs beside it.
    for index, gate in ((1, "gates/sentiment.yaml"), (2, "gates/sentiment_copy.yaml")):
        report = json.loads((tmp_path / "artifacts" / f"modelcheck-shard-{index}" / "report.json").read_text())
        assert report["shard"] == {"index": index, "count": 2}
        assert [g["file"] for g in report["gates"]] == [gate]
        assert (tmp_path / "artifacts" / f"modelcheck-shard-{index}" / report["gates"][0]["outputs"]["path"]).is_file()

    merged = next(m for m in messages if "merged-gates" in m).split()
    assert merged == ["merged-gates", "gates/sentiment.yaml", "gates/sentiment_copy.yaml", "shards", "1", "2"]
    assert any("merged 2 reports (shards 1/2, 2/2): 2 gate files, 12 checks" in m for m in messages)
    assert any("gate-outputs status=passed failed=0" in m for m in messages)
    summaries = [r["content"] for r in records if r.get("command") == "summary"]
    merged_summary = [s for s in summaries if "sentiment_copy.yaml" in s and "gates/sentiment.yaml" in s]
    assert merged_summary and merged_summary[-1].startswith("## ✅ modelcheck: passed — stage `merge`")
    assert len(comments) == 1, "only the merge job comments, once"
    assert "✅ modelcheck: passed" in comments[0].body and f"sha={head}" in comments[0].body
