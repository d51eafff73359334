"""``modelcheck publish`` against LocalHub (tests/hub_server.py) on 127.0.0.1, with the real huggingface_hub client.

The report comes from a real ``pytest --modelcheck --modelcheck-stage deploy`` run over a trained tiny model
(tests/publish_kit.py, once per module); each test publishes a copy of that kit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_server import LocalHub
from huggingface_hub import ModelCard
from huggingface_hub import constants as hf_constants
from publish_kit import build_kit, run_deploy_stage

from modelcheck.cli import main
from modelcheck.hub import publish as publishing
from modelcheck.hub import retry
from modelcheck.hub.card import START
from modelcheck.hub.plan import TRAILER

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),
    # huggingface_hub's LFS PUT passes bytes as data= (httpx deprecates it); a CLI run never shows the warning
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]

TOKEN = "hf_publish_secret_token_4f1d"
REPO_ID = "acme/sentiment"
MODEL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
EXPECTED = MODEL_FILES | {"LICENSE.txt", "README.md", "modelcheck/report.json", "modelcheck/sentiment.json",
                          "modelcheck/sentiment.npz", ".gitattributes"}  # fmt: skip


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, sentiment_model: Path) -> Path:
    folder = build_kit(tmp_path_factory.mktemp("kit") / "kit", sentiment_model)
    assert (folder / "out.json").is_file(), "the deploy stage did not write its report"
    return folder


@pytest.fixture
def release(kit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the kit, as the working directory."""
    folder = tmp_path / "release"
    shutil.copytree(kit, folder)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    """LocalHub needing TOKEN, this process pointed at it, online, HF_TOKEN=TOKEN, retries 100x faster."""
    with LocalHub(token=TOKEN) as server:
        home = tmp_path / "hf-home"
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HOME", str(home))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # LFS files go through the LFS batch API LocalHub speaks
        monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(hf_constants, "ENDPOINT", server.endpoint)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(home / "hub"))
        monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(retry, "BASE_WAIT_S", 0.01)
        yield server


def publish(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    status = main(["publish", "out.json", "--gate", "gates/release.yaml", "--tag", "v1.0.0", *extra])
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert "Traceback" not in out + err
    return status, out, err


def publish_commits(hub: LocalHub, branch: str = "main") -> list[str]:
    repo = hub.repos[("model", REPO_ID)]
    found, oid = [], repo.branches.get(branch)
    while oid:
        commit = repo.commits[oid]
        if TRAILER in commit.message:
            found.append(oid)
        oid = commit.parent
    return found


def commit_posts(hub: LocalHub) -> list[int]:
    return [r.status for r in hub.requests if r.method == "POST" and "/commit/" in r.path]


def test_a_passing_report_is_published_in_one_verified_commit_then_tagged_and_a_rerun_adds_nothing(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = publish(capsys)
    assert status == 0, err
    repo = hub.repos[("model", REPO_ID)]
    [commit] = publish_commits(hub)
    assert repo.tags == {"v1.0.0": commit} and repo.branches["main"] == commit
    files = repo.commits[commit].files
    assert set(files) == EXPECTED
    for name in MODEL_FILES:  # the bytes the run hashed, byte for byte
        assert files[name] == (release / "model" / name).read_bytes()
    assert files["modelcheck/report.json"] == (release / "out.json").read_bytes()
    assert f"published {REPO_ID}@{commit}" in out and "tagged v1.0.0" in out
    # read back before the tag: paths-info at the commit comes before the tag request
    paths = [r.path for r in hub.requests]
    assert max(i for i, p in enumerate(paths) if "/paths-info/" in p) < max(
        i for i, p in enumerate(paths) if "/tag/" in p
    )
    assert all(TOKEN.encode() not in data for data in files.values())

    status, out, err = publish(capsys)
    assert status == 0, err
    assert "already published" in out
    assert publish_commits(hub) == [commit] and len(commit_posts(hub)) == 1


def test_the_card_loads_and_its_model_index_parses_back_into_the_results(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert publish(capsys)[0] == 0
    repo = hub.repos[("model", REPO_ID)]
    readme = tmp_path / "README.md"
    readme.write_bytes(repo.commits[repo.tags["v1.0.0"]].files["README.md"])
    card = ModelCard.load(readme)
    report = json.loads((release / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    parsed = {r.metric_name: r for r in card.data.eval_results}
    assert set(parsed) == {name for name, c in checks.items() if c["kind"] == "metric"}
    for name, result in parsed.items():
        assert result.metric_value == pytest.approx(checks[name]["value"])
        assert result.metric_type == checks[name]["metric"] and result.verified is False
        assert result.dataset_split == "test" and result.task_type == "text-classification"
    assert card.data.license == "apache-2.0" and "modelcheck" in card.data.tags
    text = card.text
    gate = report["gates"][0]
    for needle in (gate["gate_sha256"], gate["data"]["sha256"], "98.75%", "p95", "VmHWM", "self-reported", "| de |"):
        assert needle in text, needle


def test_the_published_baseline_is_what_the_next_release_reads_as_hub_baseline(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelcheck.report.baselines import read_baseline

    assert publish(capsys)[0] == 0
    baseline = read_baseline(f"hub://{REPO_ID}@v1.0.0", model_id="sentiment")
    report = json.loads((release / "out.json").read_text())
    assert baseline.rows == report["gates"][0]["data"]["rows"]
    assert baseline.data_sha256 == report["gates"][0]["data"]["sha256"]


def test_dry_run_prints_the_plan_and_writes_nothing(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = publish(capsys, "--dry-run")
    assert status == 0
    assert "model.safetensors" in out and "README.md" in out and "tag: v1.0.0" in out and "nothing was written" in out
    report = json.loads((release / "out.json").read_text())
    for record in report["gates"][0]["model"]["files"]:
        assert record["sha256"] in out
    assert hub.writes() == [] and ("model", REPO_ID) not in hub.repos


def test_a_model_file_changed_after_the_run_is_refused_before_any_request(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = release / "model" / "config.json"
    config.write_text(config.read_text().replace("}", ', "x": 1}', 1))
    status, _, err = publish(capsys)
    assert status == 1
    assert "config.json changed since the run" in err and "rerun the stage" in err
    assert hub.requests == []


@pytest.mark.parametrize("status", ["failed", "inconclusive", "error", "skipped"])
def test_a_stage_that_did_not_pass_is_refused(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    report = json.loads((release / "out.json").read_text())
    report["gates"][0]["checks"][0]["status"] = status
    (release / "out.json").write_text(json.dumps(report))
    code, _, err = publish(capsys)
    assert code == 1
    assert f"accuracy {status}" in err and "did not pass" in err
    assert hub.requests == []


def test_a_changed_gate_file_and_an_untested_extra_are_refused(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = release / "gates" / "release.yaml"
    original = gate.read_text()
    gate.write_text(original.replace("min: 0.90", "min: 0.5"))
    code, _, err = publish(capsys)
    assert code == 1 and "changed since the run" in err and "release.yaml" in err

    # the same gate bytes, but a report that never hashed the extras: the extra is untested
    gate.write_text(original)
    report = json.loads((release / "out.json").read_text())
    report["gates"][0]["publish_files"] = []
    (release / "out.json").write_text(json.dumps(report))
    code, _, err = publish(capsys)
    assert code == 1 and "LICENSE.txt" in err and "untested" in err
    assert hub.requests == []


def test_a_git_lfs_pointer_is_refused(hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 96608\n"
    (release / "model" / "model.safetensors").write_text(pointer)
    code, _, err = publish(capsys)
    assert code == 1 and "Git LFS pointer" in err and "lfs: true" in err
    assert hub.requests == []


def test_a_branch_that_moved_between_plan_and_commit_is_refused_and_not_tagged(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add_files(REPO_ID, {"notes.md": "first"})
    hub.before("POST", "/preupload/", lambda h: h.add_files(REPO_ID, {"notes.md": "someone else"}))
    code, _, err = publish(capsys)
    assert code == 1
    assert "moved since planning" in err and "no tag" in err
    repo = hub.repos[("model", REPO_ID)]
    assert repo.tags == {} and publish_commits(hub) == []
    assert repo.commits[repo.branches["main"]].files["notes.md"] == b"someone else"


def test_429_with_retry_after_is_waited_for(hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail("POST", "/commit/", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    code, _, err = publish(capsys)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0 and "retrying in 1 s" in err
    assert commit_posts(hub) == [429, 200] and len(publish_commits(hub)) == 1


def test_503_twice_then_success(hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail("POST", "/commit/", 503, times=2)
    code, _, err = publish(capsys)
    assert code == 0, err
    assert commit_posts(hub) == [503, 503, 200]
    [commit] = publish_commits(hub)
    assert hub.repos[("model", REPO_ID)].tags == {"v1.0.0": commit}


def test_a_lost_commit_answer_makes_no_second_commit_and_the_tag_is_made(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.lose_answer("POST", "/commit/")
    code, _, err = publish(capsys)
    assert code == 0, err
    assert len(commit_posts(hub)) == 1  # landed once; found by its digest instead of being sent again
    [commit] = publish_commits(hub)
    assert hub.repos[("model", REPO_ID)].tags == {"v1.0.0": commit}


def test_a_hub_that_keeps_failing_exits_4_saying_what_is_there_and_a_rerun_finishes(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.fail("POST", "/tag/", 503, times=4)
    code, _, err = publish(capsys)
    assert code == 4
    assert "kept failing" in err and "verified" in err and "Not there: the tag v1.0.0" in err and "Rerun" in err
    [commit] = publish_commits(hub)
    assert hub.repos[("model", REPO_ID)].tags == {}
    code, _, err = publish(capsys)
    assert code == 0, err
    assert publish_commits(hub) == [commit] and hub.repos[("model", REPO_ID)].tags == {"v1.0.0": commit}


def test_a_tag_at_another_commit_is_refused(hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub.add_files(REPO_ID, {"old.txt": "v1"}, tag="v1.0.0")
    before = len(hub.requests)
    code, _, err = publish(capsys)
    assert code == 1 and "already points at commit" in err and "new tag" in err
    assert [r for r in hub.writes() if hub.requests.index(r) >= before] == []


def test_missing_and_wrong_tokens_are_refused_and_never_shown(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    code, out, err = publish(capsys)
    assert code == 1 and "no Hub token" in err and "HF_TOKEN" in err
    assert hub.requests == []

    wrong = "hf_wrong_token_never_printed"
    monkeypatch.setenv("HF_TOKEN", wrong)
    code, out, err = publish(capsys)
    assert code == 1 and "rejected the token" in err
    assert wrong not in out + err and hub.writes() == []


def test_an_existing_readme_keeps_its_prose_and_only_the_section_is_replaced(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    section = "<!-- modelcheck:start -->\nold\n<!-- modelcheck:end -->"
    readme = f"---\ntags: [sentiment]\n---\n# Our model\n\nWritten by hand.\n\n{section}\n\nFooter.\n"
    hub.add_files(REPO_ID, {"README.md": readme})
    assert publish(capsys)[0] == 0
    repo = hub.repos[("model", REPO_ID)]
    text = repo.commits[repo.branches["main"]].files["README.md"].decode()
    assert "Written by hand." in text and "Footer." in text and "\nold\n" not in text
    assert text.count(START) == 1
    (tmp_path / "README.md").write_text(text)
    assert set(ModelCard.load(tmp_path / "README.md").data.tags) >= {"sentiment", "modelcheck"}


def test_create_pr_opens_a_pull_request_and_leaves_the_branch_and_tags_alone(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = hub.add_files(REPO_ID, {"notes.md": "x"})
    code, out, err = publish(capsys, "--create-pr")
    assert code == 0, err
    repo = hub.repos[("model", REPO_ID)]
    assert repo.branches["main"] == head and repo.tags == {}
    assert set(repo.commits[repo.branches["refs/pr/1"]].files) >= MODEL_FILES and "pull request" in out
    assert publish(capsys, "--create-pr")[0] == 0
    assert "refs/pr/2" not in repo.branches  # the rerun found its pull request


def test_usage_errors_exit_2(hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", "out.json", "--gate", "gates/missing.yaml"]) == 2
    assert "gates/missing.yaml not found" in capsys.readouterr().err
    gate = release / "gates" / "release.yaml"
    gate.write_text(
        gate.read_text().replace("  repo_id: acme/sentiment\n", "  repo_id: acme/sentiment\n  colour: red\n")
    )
    assert main(["publish", "out.json", "--gate", "gates/release.yaml"]) == 2
    assert "colour" in capsys.readouterr().err
    assert hub.requests == []


def test_importing_modelcheck_its_plugin_and_cli_does_not_import_huggingface_hub() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modelcheck, modelcheck.pytest_plugin, modelcheck.cli, modelcheck.run.gate; "
        "modelcheck.cli.build_parser(); "
        "print([m for m in ('huggingface_hub', 'github') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_card_the_hub_rejects_is_refused_before_any_upload(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.fail("POST", "/api/validate-yaml", 400)
    code, _, err = publish(capsys)
    assert code == 1 and "rejects the model card's YAML" in err and "injected 400" in err
    assert hub.writes() == []


def test_an_unreachable_hub_while_planning_exits_4_with_nothing_written(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.stop()
    code, _, err = publish(capsys)
    assert code == 4 and "kept failing while planning" in err and "Nothing was written" in err


def test_a_run_of_another_stage_is_judged_on_the_deploy_checks_statuses(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = json.loads((release / "out.json").read_text())
    for check in report["gates"][0]["checks"]:
        check["blocking"] = False  # as in a run of --modelcheck-stage merge: passed, but not blocking
    report["gates"][0]["checks"][1]["status"] = "failed"  # failed without failing that run: warned
    (release / "out.json").write_text(json.dumps(report))
    code, _, err = publish(capsys, "--dry-run")
    assert code == 1 and "accuracy_by_language warned" in err


@pytest.mark.parametrize("path", ["config.json", "model.safetensors"])  # git blob id / LFS sha256
def test_a_commit_that_does_not_hold_the_tested_bytes_is_never_tagged(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    def tamper(server: LocalHub) -> None:
        repo = server.repos[("model", REPO_ID)]
        repo.commits[repo.branches["main"]].files[path] = b"not what was tested"  # type: ignore[index]

    hub.before("POST", "/paths-info/", tamper)
    code, _, err = publish(capsys)
    assert code == 1 and f"other bytes for {path}" in err and "no tag was made" in err
    assert hub.repos[("model", REPO_ID)].tags == {}


# -- races and reruns: a release is the model files + gate + stage ------------------------------------------------


def lfs_requests(hub: LocalHub) -> list[str]:
    return [f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in hub.requests if "/lfs" in r.path]


def test_lfs_files_go_through_the_batch_api_and_the_hub_holds_the_tested_bytes(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish(capsys)[0] == 0
    weights = (release / "model" / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    calls = lfs_requests(hub)
    assert "POST batch" in calls and f"PUT {sha}" in calls and "POST verify" in calls
    assert hub.lfs_objects[sha] == weights
    repo = hub.repos[("model", REPO_ID)]
    assert repo.commits[repo.tags["v1.0.0"]].files["model.safetensors"] == weights


def test_a_model_file_written_between_planning_and_upload_is_refused_before_any_commit(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = publishing.carry_out

    def sync_writes_then_carry_out(*args: Any, **kwargs: Any) -> str:
        (release / "model" / "model.safetensors").write_bytes(b"untested weights from a checkpoint sync")
        return original(*args, **kwargs)

    monkeypatch.setattr(publishing, "carry_out", sync_writes_then_carry_out)
    code, _, err = publish(capsys)
    assert code == 1 and "changed after the plan was made" in err and "no commit was made" in err
    assert publish_commits(hub) == [] and commit_posts(hub) == [] and hub.lfs_objects == {}
    assert ("model", REPO_ID) not in hub.repos or hub.repos[("model", REPO_ID)].tags == {}


def test_a_model_file_written_during_the_upload_does_not_reach_the_commit(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tested = {name: (release / "model" / name).read_bytes() for name in ("model.safetensors", "config.json")}

    def sync(_: LocalHub) -> None:
        for name in tested:  # an LFS file and a regular one
            (release / "model" / name).write_bytes(b"untested")

    hub.before("POST", "/preupload/", sync)
    code, _, err = publish(capsys)
    assert code == 0, err  # what is sent is the private copy hashed before: the tested bytes, and verified as such
    repo = hub.repos[("model", REPO_ID)]
    for name, data in tested.items():
        assert repo.commits[repo.tags["v1.0.0"]].files[name] == data


def test_rerunning_the_release_job_with_a_new_report_finishes_the_same_release(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.fail("POST", "/tag/", 503, times=4)
    assert publish(capsys)[0] == 4
    [commit] = publish_commits(hub)
    before = (release / "out.json").read_bytes()
    assert run_deploy_stage(release).returncode == 0  # "Re-run jobs": the stage runs again, a new report
    assert (release / "out.json").read_bytes() != before
    code, out, err = publish(capsys)
    assert code == 0, err
    assert publish_commits(hub) == [commit] and len(commit_posts(hub)) == 1
    assert hub.repos[("model", REPO_ID)].tags == {"v1.0.0": commit} and "already published" in out
    code, out, err = publish(capsys)  # re-running the finished release job
    assert code == 0 and "already published" in out and len(commit_posts(hub)) == 1


# -- housekeeping ----------------------------------------------------------------------------------------------


def test_no_temp_folder_is_left_and_no_progress_bar_or_http_boilerplate_is_printed(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    hub.add_files(REPO_ID, {"README.md": "---\nlicense: mit\n---\n# Ours\n"})
    hub.fail("POST", "/tag/", 503, times=4)
    code, out, err = publish(capsys)
    assert code == 4
    assert list(temp.iterdir()) == []
    assert "For more information" not in out + err and "it/s" not in out + err and "%|" not in out + err


def test_create_pr_prints_the_command_that_tags_the_verified_commit(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add_files(REPO_ID, {"notes.md": "x"})
    code, out, err = publish(capsys, "--create-pr")
    assert code == 0, err
    commit = hub.repos[("model", REPO_ID)].branches["refs/pr/1"]
    assert f"hf repos tag create {REPO_ID} v1.0.0 --revision {commit}" in out


def test_a_moved_branch_after_the_lfs_upload_says_what_was_uploaded(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add_files(REPO_ID, {"notes.md": "first"})
    hub.before("POST", "/preupload/", lambda h: h.add_files(REPO_ID, {"notes.md": "someone else"}))
    code, _, err = publish(capsys)
    assert code == 1 and "moved since planning" in err
    assert "uploaded to the Hub's LFS storage" in err and "model.safetensors" in err and "no commit was made" in err
    assert "nothing was written" not in err.lower()


# -- hostile reports, refs and tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", ["../../secret.txt", "ABSOLUTE"])
def test_a_report_naming_a_file_outside_the_model_is_refused(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], recorded: str
) -> None:
    secret = release / "secret.txt"
    secret.write_text("password=hunter2\n")
    path = str(secret) if recorded == "ABSOLUTE" else recorded
    (release / "model" / "sub").mkdir()
    report = json.loads((release / "out.json").read_text())
    files = report["gates"][0]["model"]["files"]
    files.append({"path": path, "sha256": hashlib.sha256(secret.read_bytes()).hexdigest(), "size": 16})
    (release / "out.json").write_text(json.dumps(report))
    code, _, err = publish(capsys, "--dry-run")
    assert code == 1 and ("outside the model folder" in err or "absolute" in err)
    assert "Only files under the model folder" in err and hub.requests == []


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [("--tag", "v1 ..2", "space"), ("--tag", "v1\nx", "control character"), ("--branch", "../main", "'..'"),
     ("--tag", "v1.lock", ".lock")],
)  # fmt: skip
def test_ref_names_git_refuses_are_refused_before_anything_is_sent(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, rule: str
) -> None:
    status = main(["publish", "out.json", "--gate", "gates/release.yaml", flag, value])
    err = capsys.readouterr().err
    assert status == 2 and "check-ref-format" in err and rule in err
    assert hub.requests == []


def test_a_token_with_a_trailing_newline_works_and_is_never_shown(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN + "\n")
    code, out, err = publish(capsys)
    assert code == 0, err
    monkeypatch.setenv("HF_TOKEN", TOKEN[:8] + "\n" + TOKEN[8:])
    code, out, err = publish(capsys)
    assert code == 1 and "HF_TOKEN holds white space" in err
    assert TOKEN[:8] not in out + err and TOKEN[8:] not in out + err


def test_a_hand_written_model_index_result_survives_publishing(
    hub: LocalHub, release: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    readme = (
        "---\nmodel-index:\n- name: sentiment\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: imdb, type: imdb, split: test}\n"
        "    metrics: [{type: accuracy, value: 0.875, name: imdb accuracy}]\n---\n# Ours\n"
    )
    hub.add_files(REPO_ID, {"README.md": readme})
    assert publish(capsys)[0] == 0
    assert publish(capsys, "--tag", "v1.0.1")[0] == 0  # a second release: its own results replaced, not doubled
    repo = hub.repos[("model", REPO_ID)]
    (tmp_path / "README.md").write_bytes(repo.commits[repo.branches["main"]].files["README.md"])
    results = ModelCard.load(tmp_path / "README.md").data.eval_results
    assert [(r.dataset_name, r.metric_name) for r in results if r.dataset_name == "imdb"] == [("imdb", "imdb accuracy")]
    assert sorted(r.metric_name for r in results if r.source_name == "modelcheck") == [
        "accuracy", "accuracy_by_language"
    ]  # fmt: skip
