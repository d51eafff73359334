"""``baseline: hub://org/name@revision``: the real huggingface_hub client fetches a published baseline over HTTP.

The Hub is ``tests/hub_server.py``'s LocalHub on 127.0.0.1; nothing leaves the machine. huggingface_hub read
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when conftest imported it (offline), so in this process the ``hub_env``
fixture patches the constants the download path reads; subprocesses get the environment variables.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hub_server import LocalHub
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants
from test_regression import (  # the same gate, baselines and models as the local-file tests
    DATA_SHA,
    GATE,
    assert_untrained_candidate_fails,
    good_model,
    write_baseline,
)

from modelcheck.checks.regression import judge_regression
from modelcheck.cli import main
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.report.baselines import read_baseline
from modelcheck.report.results import CheckResult

pytestmark = [
    pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread"),
    # huggingface_hub's LFS PUT passes bytes as data= (httpx deprecates it)
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]

TOKEN = "hf_localhub_test_token"
LABELS = ("negative", "positive")
RELEASE = "hub://acme/sentiment@v1.0.0"


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    """A Hub on 127.0.0.1 where writes and private repos need ``TOKEN``."""
    with LocalHub(token=TOKEN) as server:
        yield server


@pytest.fixture
def hub_env(hub: LocalHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LocalHub:
    """This process (and the subprocesses it starts) talk to ``hub``, online, with an empty cache and no token."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # LocalHub speaks the LFS batch API, not Xet
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    # What hf_hub_download / HfApi read from huggingface_hub.constants (set at import) on their way to a request.
    monkeypatch.setattr(hf_constants, "ENDPOINT", hub.endpoint)
    template = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"  # hf_hub_url formats this one
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(home / "token"))
    return hub


def release_files(folder: Path, outputs: Outputs, *, model_id: str = "sentiment") -> dict[str, bytes]:
    """What a release publishes under ``modelcheck/``: ``modelcheck baseline update``'s files for a good run."""
    written = write_baseline(folder, outputs, model_id=model_id)
    return {f"modelcheck/{p.name}": p.read_bytes() for p in (written, written.with_suffix(".npz"))}


def judge(baseline: str, targets: np.ndarray, labels: np.ndarray, *, on_missing: str = "inconclusive") -> CheckResult:
    """The check of a gate with ``baseline:`` and ``max_drop: 0.01`` on accuracy, judged on the model's ``labels``."""
    check = CheckSpec(
        name="no_regression", kind="regression", metric="accuracy", max_drop=0.01, baseline=baseline,
        on_missing=on_missing,
    )  # fmt: skip
    frame = pd.DataFrame({"row": range(len(targets))})
    return judge_regression(
        check, targets, Outputs(labels=labels), LABELS, frame, model_id="sentiment", data_sha256=DATA_SHA
    )


def resolves(hub: LocalHub, start: int = 0) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in hub.requests[start:]]


def downloads(revision: str, commit: str, model_id: str = "sentiment") -> list[tuple[str, str, int]]:
    """What hf_hub_download sends for a baseline not yet cached: HEAD, then GET, of the .json at ``revision``,
    then of the .npz at the commit the .json came from (so a branch that moves in between cannot mix them)."""
    return [
        (method, f"/acme/sentiment/resolve/{rev}/modelcheck/{model_id}{suffix}", 200)
        for suffix, rev in ((".json", revision), (".npz", commit))
        for method in ("HEAD", "GET")
    ]


def test_a_hub_baseline_is_fetched_at_its_tag_and_cached(
    hub_env: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets, base = good_model(2000, 0.92)
    released = hub_env.add_files("acme/sentiment", release_files(tmp_path / "v1", Outputs(labels=base)), tag="v1.0.0")
    # main has moved on since the release: the check must read the tagged commit, not main.
    hub_env.add_files("acme/sentiment", release_files(tmp_path / "main", Outputs(labels=targets.copy())))

    baseline = read_baseline(RELEASE, model_id="sentiment")
    cache = Path(hf_constants.HF_HUB_CACHE) / "models--acme--sentiment"
    assert baseline.path == str(cache / "snapshots" / released / "modelcheck" / "sentiment.json")
    assert baseline.rows == 2000 and baseline.data_sha256 == DATA_SHA
    assert (cache / "refs" / "v1.0.0").read_text() == released
    assert resolves(hub_env) == downloads("v1.0.0", released)
    assert {r.authorization for r in hub_env.requests} == {None}  # a public repo: no token needed, none sent

    same = judge(RELEASE, targets, base.copy())
    assert same.status == "passed", same.message
    assert same.details["baseline"] == pytest.approx(0.92) and same.details["difference"] == 0.0

    candidate = base.copy()
    correct = np.flatnonzero(base == targets)
    flipped = np.random.default_rng(1).choice(correct, size=int(0.03 * 2000), replace=False)
    candidate[flipped] = 1 - candidate[flipped]
    worse = judge(RELEASE, targets, candidate)
    assert worse.status == "failed" and worse.details["regressed"] == 60
    assert "accuracy 0.89 vs baseline 0.92: drop +0.0300 beyond max_drop 0.01" in worse.message
    # cached: one HEAD per read checks where the tag points; the .npz at that commit comes from the cache
    assert [m for m, _, _ in resolves(hub_env, 4)] == ["HEAD"] * 2

    seen = len(hub_env.requests)
    hub_env.stop()  # the Hub is unreachable (connection refused): the cached release still answers
    unreachable = judge(RELEASE, targets, base.copy())
    assert unreachable.status == "passed" and unreachable.details["baseline_file"] == baseline.path
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # and so it does offline
    offline = judge(RELEASE, targets, candidate)
    assert offline.status == "failed" and offline.details["baseline_file"] == baseline.path
    assert len(hub_env.requests) == seen


def test_a_private_release_needs_hf_token(hub_env: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets, base = good_model(500, 0.9)
    files = release_files(tmp_path, Outputs(labels=base))
    hub_env.add_files("acme/private-sentiment", files, tag="v1.0.0", private=True)
    where = "hub://acme/private-sentiment@v1.0.0"

    anonymous = judge(where, targets, base.copy())
    assert anonymous.status == "inconclusive"
    assert anonymous.message.startswith(f"cannot fetch baseline {where} (RepositoryNotFoundError")
    assert "HF_TOKEN" in anonymous.message
    assert resolves(hub_env)[-1] == ("HEAD", "/acme/private-sentiment/resolve/v1.0.0/modelcheck/sentiment.json", 401)

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    wrong = judge(where, targets, base.copy())
    assert wrong.status == "inconclusive" and "401 Unauthorized" in wrong.message and "HF_TOKEN" in wrong.message

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = judge(where, targets, base.copy())
    assert result.status == "passed", result.message
    assert hub_env.requests[-1].authorization == f"Bearer {TOKEN}" and hub_env.requests[-1].status == 200


def test_a_tag_that_does_not_exist_is_inconclusive(hub_env: LocalHub, tmp_path: Path) -> None:
    targets, base = good_model(500, 0.9)
    hub_env.add_files("acme/sentiment", release_files(tmp_path, Outputs(labels=base)), tag="v1.0.0")
    where = "hub://acme/sentiment@v9.9.9"
    for on_missing in ("inconclusive", "pass", "fail"):  # on_missing is for a first run, not for a wrong revision
        result = judge(where, targets, base.copy(), on_missing=on_missing)
        assert result.status == "inconclusive"
        assert result.message.startswith(f"cannot fetch baseline {where} (RevisionNotFoundError")
    assert resolves(hub_env)[-1] == ("HEAD", "/acme/sentiment/resolve/v9.9.9/modelcheck/sentiment.json", 404)
    assert hub_env.requests[-1].path.endswith(".json")  # stopped at the first file
    assert not (Path(hf_constants.HF_HUB_CACHE) / "models--acme--sentiment" / "snapshots").exists()


# -- end to end: a release publishes the baseline of a good run, the gate of the next change compares with it --


@pytest.mark.e2e
def test_a_release_baseline_on_the_hub_gates_the_next_change(
    pytester: pytest.Pytester,
    hub_env: LocalHub,
    sentiment_model: Path,
    untrained_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(repo / "examples" / "sentiment" / "test.csv", pytester.path / "data" / "test.csv")
    (pytester.path / "gates").mkdir()
    gate = GATE.format(source="${CANDIDATE:-../models/good}", baseline=RELEASE)
    (pytester.path / "gates" / "sentiment.yaml").write_text(gate)
    monkeypatch.chdir(pytester.path)

    # The release's run: nothing is published yet -> the regression check is inconclusive (skipped).
    first = pytester.runpytest("--modelcheck", "--modelcheck-report", "good.json", "-rs")
    first.assert_outcomes(passed=1, skipped=1)
    first.stdout.fnmatch_lines([f"*inconclusive: cannot fetch baseline {RELEASE} (RepositoryNotFoundError*"])
    assert main(["baseline", "update", "good.json", "--dir", "baselines"]) == 0

    # Publish it with the release, the way a release job would.
    api = HfApi(endpoint=hub_env.endpoint, token=TOKEN)
    api.create_repo("acme/sentiment", exist_ok=True)
    commit = api.upload_folder(
        repo_id="acme/sentiment", folder_path="baselines", path_in_repo="modelcheck", commit_message="Release v1.0.0"
    )
    api.create_tag("acme/sentiment", tag="v1.0.0", revision=commit.oid, tag_message="v1.0.0")
    assert [t.target_commit for t in api.list_repo_refs("acme/sentiment").tags] == [commit.oid]
    published = {s.rfilename for s in api.model_info("acme/sentiment", revision="v1.0.0").siblings or []}
    assert {"modelcheck/sentiment.json", "modelcheck/sentiment.npz"} <= published

    # The next change's CI: a fresh process and cache, HF_ENDPOINT pointing at the Hub, no token (a public repo).
    cache_home = tmp_path / "ci-hf-home"
    monkeypatch.setenv("HF_HOME", str(cache_home))
    seen = len(hub_env.requests)
    same = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "same.json", "-rs", timeout=300)
    same.assert_outcomes(passed=2)
    assert resolves(hub_env, seen) == downloads("v1.0.0", commit.oid)  # and no other request left the process
    assert (cache_home / "hub" / "models--acme--sentiment" / "refs" / "v1.0.0").read_text() == commit.oid
    [gate_result] = json.loads(Path("same.json").read_text())["gates"]
    [check] = [c for c in gate_result["checks"] if c["name"] == "no_regression"]
    assert check["status"] == "passed" and check["message"].startswith("accuracy 1 vs baseline 1: drop ")
    assert "0000 within max_drop 0.01" in check["message"] and "0 regressed, 0 improved" in check["message"]
    assert f"/snapshots/{commit.oid}/modelcheck/sentiment.json" in check["details"]["baseline_file"]
    assert main(["gate", "--stage", "merge", "same.json"]) == 0

    # A worse candidate fails against the published baseline.
    assert_untrained_candidate_fails(pytester, monkeypatch)
