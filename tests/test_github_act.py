"""The gate action under act, referenced the way a user writes it, on the reference gate; and the lint of every
workflow and action file.

act runs the job on this host (``-P ubuntu-latest=-self-hosted``); remote actions are mapped to offline
stand-ins (tests/data/act/stubs) and ``acme/modelcheck/.github/actions/gate@v1`` to a clean copy of this
repository. The action's ``install: "false"`` uses the modelcheck already on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from github_server import LocalGitHub

from modelcheck.gatefile import load_gate

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "data" / "act" / "stubs"
BIN = Path(sys.executable).parent
WORKFLOWS = [*sorted((REPO / ".github" / "workflows").glob("*.yml")), *sorted((REPO / "tests/data/act").glob("*.yml"))]
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml")) + sorted(STUBS.glob("*/action.yml"))


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e '.[dev]'", pytrace=False)
    return str(path)


# -- lint -----------------------------------------------------------------------------------------


def test_workflows_pass_actionlint() -> None:
    result = subprocess.run([tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "files"), [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)]
)
def test_workflow_and_action_files_match_githubs_schemas(schema: str, files: list[Path]) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- act ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's files (tracked and new, not ignored: no .venv) in a fresh git repository."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    target = tmp_path_factory.mktemp("act") / "repo"
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=target, check=True)
    return target


def act(
    repo: Path, event: str, model: Path, tmp: Path, *extra: str, workflow: str = "gate.yml", cwd: Path | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``workflow`` (under tests/data/act, or the workflows of ``cwd``: a user's repository) under act."""
    home = tmp / "home"  # act's cache (~/.cache/act) of its own, not the user's
    home.mkdir(exist_ok=True)
    path = f"tests/data/act/{workflow}" if cwd is None else f".github/workflows/{workflow}"
    command = [
        tool("act"), event, "-W", path, "-P", "ubuntu-latest=-self-hosted",
        "--no-cache-server", "--json",
        "--local-repository", f"acme/modelcheck@v1={repo}",
        "--local-repository", f"actions/setup-python@v5={STUBS / 'setup-python'}",
        "--local-repository", f"actions/cache@v4={STUBS / 'cache'}",
        "--local-repository", f"actions/upload-artifact@v4={STUBS / 'upload-artifact'}",
        "--env", f"MODELCHECK_SENTIMENT_MODEL={model}",
        "--env", "HF_HUB_OFFLINE=1", "--env", "HF_DATASETS_OFFLINE=1",
        "--env", f"PATH={BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    result = subprocess.run(command, cwd=cwd or repo, capture_output=True, text=True, timeout=240, env=env)
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return result.returncode, records


def outputs_line(records: list[dict[str, Any]]) -> str:
    found = [r["msg"] for r in records if "gate-outputs status=" in str(r.get("msg"))]
    assert found, "the workflow's output step did not run"
    return str(found[-1]).strip()


@pytest.mark.act
@pytest.mark.e2e
def test_a_passing_gate_succeeds_with_status_passed(repo_copy: Path, sentiment_model: Path, tmp_path: Path) -> None:
    code, records = act(repo_copy, "push", sentiment_model, tmp_path)
    results = [r.get("jobResult") for r in records if r.get("jobResult")]
    assert code == 0 and results == ["success"], [r.get("msg") for r in records][-40:]
    assert outputs_line(records) == "gate-outputs status=passed failed=0 report=modelcheck-report.json"
    summaries = [r["content"] for r in records if r.get("command") == "summary"]
    assert any(s.startswith("## ✅ modelcheck: passed — stage `merge`") for s in summaries)
    # the HTML page was written and uploaded with the report, and the summary says where it is
    assert any("📄 The plots behind each verdict: `modelcheck-report.html` in the artifact" in s for s in summaries)
    assert not [r for r in records if r.get("command") == "error"]


@pytest.mark.act
@pytest.mark.e2e
def test_the_untrained_model_fails_with_annotations_summary_and_a_comment(
    repo_copy: Path, untrained_model: Path, tmp_path: Path
) -> None:
    head = "3" * 40
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": head, "ref": "fix"}}}))
    with LocalGitHub(token="act-token") as gh:
        gh.add_pull("acme/app", 7, head_sha=head)
        code, records = act(
            repo_copy, "pull_request", untrained_model, tmp_path,
            "-e", str(event), "-s", "GITHUB_TOKEN=act-token",
            "--env", f"GITHUB_API_URL={gh.api_url}", "--env", "GITHUB_REPOSITORY=acme/app",
        )  # fmt: skip
        comments = gh.comments("acme/app", 7)
    results = [r.get("jobResult") for r in records if r.get("jobResult")]
    assert code == 1 and results == ["failure"], [r.get("msg") for r in records][-40:]
    assert outputs_line(records) == "gate-outputs status=failed failed=2 report=modelcheck-report.json"

    lines = {c.name: c.line for c in load_gate(REPO / "gates" / "sentiment.yaml").checks}
    errors = {
        (r["kvPairs"].get("file"), r["kvPairs"].get("line"))
        for r in records
        if r.get("command") == "error" and r["kvPairs"].get("file")
    }
    verdicts = [str(r.get("raw")) for r in records if r.get("command") == "error" and not r["kvPairs"].get("file")]
    assert len(verdicts) == 1 and "stage merge: FAILED — 1 passed, 2 failed" in verdicts[0], verdicts
    assert errors == {
        ("gates/sentiment.yaml", str(lines["accuracy"])),
        ("gates/sentiment.yaml", str(lines["macro_f1"])),
    }
    raw = [str(r.get("raw", "")) for r in records if r.get("command") == "error"]
    assert any(f"::error file=gates/sentiment.yaml,line={lines['accuracy']},title=" in line for line in raw)
    warnings = [r["kvPairs"] for r in records if r.get("command") == "warning" and r.get("kvPairs", {}).get("line")]
    assert warnings and warnings[0]["line"] == str(lines["accuracy_by_language"])

    summaries = [r["content"] for r in records if r.get("command") == "summary"]
    summary = next(s for s in summaries if "modelcheck:" in s)
    assert summary.startswith("## ❌ modelcheck: failed — stage `merge`")
    assert "| ❌ failed | gates/sentiment.yaml::accuracy | 0.5 |" in summary and "xychart-beta" in summary

    assert len(comments) == 1 and "❌ modelcheck: failed" in comments[0].body
    assert f"sha={head}" in comments[0].body


def test_readme_workflows_pass_the_linters(tmp_path: Path) -> None:
    readme = (REPO / "docs" / "github-actions.md").read_text(encoding="utf-8")  # the workflows users copy
    blocks = re.findall(r"```yaml\n(# \.github/workflows/.*?)```", readme, flags=re.S)
    files = []
    for block in blocks:
        for i, document in enumerate(block.split("\n---\n")):
            path = tmp_path / f"readme-{len(files)}-{i}.yml"
            path.write_text(document.replace("OWNER/", "acme/"), encoding="utf-8")
            files.append(str(path))
    assert len(files) == 4, "the docs show the copyable workflow, the two-workflow fork pattern and the sharded matrix"
    lint = subprocess.run([tool("actionlint"), *files], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    schema = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


@pytest.mark.act
def test_report_mode_posts_on_a_fork_pr_found_from_the_workflow_run_event(repo_copy: Path, tmp_path: Path) -> None:
    from test_github import mixed

    from modelcheck.report.document import write_report

    head = "4" * 40
    report = tmp_path / "downloaded" / "modelcheck-report.json"
    write_report(report, mixed())
    event = tmp_path / "event.json"
    run = {"pull_requests": [], "head_sha": head, "head_branch": "patch-1",
           "head_repository": {"owner": {"login": "forker"}}}  # fmt: skip
    event.write_text(json.dumps({"workflow_run": run}))
    with LocalGitHub(token="act-token") as gh:
        gh.add_pull("acme/app", 9, head_sha=head, owner="forker", branch="patch-1")
        code, records = act(
            repo_copy, "workflow_run", tmp_path / "no-model", tmp_path,
            "-e", str(event), "-s", "GITHUB_TOKEN=act-token", "--env", f"MODELCHECK_REPORT={report}",
            "--env", f"GITHUB_API_URL={gh.api_url}", "--env", "GITHUB_REPOSITORY=acme/app",
            workflow="report.yml",
        )  # fmt: skip
        comments = gh.comments("acme/app", 9)
    assert code == 1, [r.get("msg") for r in records][-40:]
    assert outputs_line(records) == "gate-outputs status=failed failed=1"
    assert not any("pytest" in str(r.get("msg")) and "session starts" in str(r.get("msg")) for r in records)
    assert len(comments) == 1 and f"sha={head}" in comments[0].body and "❌ modelcheck: failed" in comments[0].body


USER_WORKFLOW = """\
name: user-gate
on: [push]
jobs:
  gate:  # as README shows it: only the gates run, the broken test module beside them is not collected
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: gate
        uses: acme/modelcheck/.github/actions/gate@v1
        with: {stage: merge, install: "false", pytest-args: "-p no:cacheprovider"}
      - if: always()
        run: echo "gate-outputs status=${{ steps.gate.outputs.status }} failed=${{ steps.gate.outputs.failed }}"
  with-tests:  # the user adds their tests: pytest stops at the collection error, and every output says so
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/modelcheck/.github/actions/gate@v1
        with: {stage: merge, install: "false", pytest-args: "tests -p no:cacheprovider"}
  bad-args:  # pytest refuses its arguments and writes no report: the step's error and the summary say so
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/modelcheck/.github/actions/gate@v1
        with: {stage: merge, install: "false", pytest-args: "--no-such-option"}
  vendored:  # a copy of the action in the user's repository, with the default install: refused, not misinstalled
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/gate
        with: {stage: merge, cache: "false"}
"""


@pytest.fixture()
def user_repo(tmp_path: Path) -> Path:
    """A user's repository: the reference gate and its data, a copy of the action, and a test module the gate
    job cannot import."""
    target = tmp_path / "user"
    (target / "gates").mkdir(parents=True)
    shutil.copy2(REPO / "gates" / "sentiment.yaml", target / "gates" / "sentiment.yaml")
    (target / "examples" / "sentiment").mkdir(parents=True)
    shutil.copy2(REPO / "examples" / "sentiment" / "test.csv", target / "examples" / "sentiment" / "test.csv")
    (target / "tests").mkdir()
    (target / "tests" / "test_app.py").write_text("import flask_not_installed\n\n\ndef test_app():\n    pass\n")
    (target / ".github" / "actions" / "gate").mkdir(parents=True)
    shutil.copy2(REPO / ".github" / "actions" / "gate" / "action.yml", target / ".github/actions/gate/action.yml")
    (target / ".github" / "workflows").mkdir()
    (target / ".github" / "workflows" / "gate.yml").write_text(USER_WORKFLOW)
    (target / "pyproject.toml").write_text('[project]\nname = "acme-app"\nversion = "1.0"\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "app"], cwd=target, check=True)
    return target


@pytest.mark.act
@pytest.mark.e2e
def test_in_a_user_repository_a_broken_test_module_and_a_vendored_copy(
    repo_copy: Path, user_repo: Path, sentiment_model: Path, tmp_path: Path
) -> None:
    code, records = act(repo_copy, "push", sentiment_model, tmp_path, workflow="gate.yml", cwd=user_repo)
    messages = [str(r.get("msg")) for r in records]
    results = {r.get("jobID") or r.get("job"): r.get("jobResult") for r in records if r.get("jobResult")}
    expected = {"gate": "success", "with-tests": "failure", "bad-args": "failure", "vendored": "failure"}
    assert code == 1 and results == expected, (
        results,
        messages[-60:],
    )

    def of(job: str, command: str) -> list[dict[str, Any]]:
        return [r for r in records if (r.get("jobID") or r.get("job")) == job and r.get("command") == command]

    # The good model passes; only the stage's 3 checks are counted, the 3 others said to be outside it.
    assert any("gate-outputs status=passed failed=0" in m for m in messages)
    summary = next(r["content"] for r in of("gate", "summary") if "modelcheck:" in r["content"])
    assert summary.startswith("## ✅ modelcheck: passed — stage `merge`")
    assert "✅ 3 passed (of 3 in the stage; 3 outside it) in 1 gate file" in summary
    assert not of("gate", "error")

    # The user's tests on the command line: the collection error is in the summary and the step's error.
    summary = next(r["content"] for r in of("with-tests", "summary") if "modelcheck:" in r["content"])
    assert summary.startswith("## ❔ modelcheck: inconclusive — stage `merge`")
    assert "**pytest stopped before the gates ran** (exit 2): 1 error during collection" in summary
    assert "`tests/test_app.py`: ModuleNotFoundError: No module named 'flask_not_installed'" in summary
    errors = [str(r.get("raw") or r.get("msg")) for r in of("with-tests", "error")]
    assert any(
        "stage merge: INCONCLUSIVE" in e and "tests/test_app.py: ModuleNotFoundError: No module named" in e
        for e in errors
    ), errors

    # No report at all: said as the step's error and in the summary.
    errors = [str(r.get("raw") or r.get("msg")) for r in of("bad-args", "error")]
    assert any("pytest exited 4 and wrote no report" in e for e in errors), errors
    summary = next(r["content"] for r in of("bad-args", "summary") if "modelcheck:" in r["content"])
    assert summary.startswith("## 💥 modelcheck: error — stage `merge`") and "pytest ended before writing" in summary

    # The vendored copy refuses to pip-install the user's project and names the package input.
    errors = [str(r.get("raw") or r.get("msg")) for r in of("vendored", "error")]
    assert any("not inside a modelcheck checkout" in e and "package input" in e for e in errors), errors
    assert not any("Successfully installed" in m or "acme-app" in m for m in messages)
