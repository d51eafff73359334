"""The deploy-gate and monitoring workflow examples (.github/workflows/examples/) linted, and run under act.

act runs each job on this host (``-P ubuntu-latest=-self-hosted``, no Docker) in a clean copy of this repository;
``modelcheck/modelcheck/.github/actions/gate@v1`` is mapped to that copy, the way a user references it, and
``actions/setup-python`` to an offline stand-in; ``MODELCHECK_INSTALL=false`` skips the pip install (the
modelcheck, mlserver and mlserver-sklearn of this venv are on PATH).

- The deploy gate starts MLServer inside its own step (on a free port of 127.0.0.1), waits for
  ``/v2/health/ready`` and gates it: a good model passes, a model trained on shuffled labels fails the job; a
  service that dies before it is ready fails the wait step with its log; the service is stopped every time.
- The monitoring workflow gates an MLServer this test runs (behind the fault proxy of tests/endpoint_servers.py,
  which records the headers it is sent) and keeps one issue in the GitHub-API-compatible server of
  tests/github_server.py: created on the first failing run, updated and commented on the next (no duplicate),
  commented and closed when the service passes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import pytest
from endpoint_servers import FaultProxy, _serve, free_port
from github_server import LocalGitHub
from test_github_act import BIN, STUBS, repo_copy, tool

__all__ = ["repo_copy"]  # the fixture, shared with the other act tests

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / ".github" / "workflows" / "examples"
DEPLOY, MONITOR = EXAMPLES / "deploy-gate.yml", EXAMPLES / "monitor.yml"
TOKEN = "serving-tok-81c4f0aa"
GH_TOKEN = "act-gh-token-2d7e"

needs_mlserver = pytest.mark.skipif(
    find_spec("mlserver_sklearn") is None, reason="needs mlserver and mlserver-sklearn (dev extra)"
)


def test_the_examples_pass_actionlint_and_githubs_schema() -> None:
    files = [str(DEPLOY), str(MONITOR)]
    lint = subprocess.run([tool("actionlint"), *files], capture_output=True, text=True, cwd=REPO)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    schema = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


def run_act(repo: Path, workflow: Path, event: str, tmp: Path, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    command = [
        tool("act"), event, "-W", str(workflow.relative_to(REPO)), "-P", "ubuntu-latest=-self-hosted",
        "--no-cache-server", "--json",
        "--local-repository", f"modelcheck/modelcheck@v1={repo}",
        "--local-repository", f"actions/setup-python@v5={STUBS / 'setup-python'}",
        # act fetches every action a composite action uses, even those whose if: is false
        "--local-repository", f"actions/cache@v4={STUBS / 'cache'}",
        "--local-repository", f"actions/upload-artifact@v4={STUBS / 'upload-artifact'}",
        "--var", "MODELCHECK_INSTALL=false",
        "--env", "HF_HUB_OFFLINE=1", "--env", "HF_DATASETS_OFFLINE=1", "--env", "OMP_NUM_THREADS=1",
        "--env", f"PATH={BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # this checkout's modelcheck (the venv's editable install may be another worktree's)
        "--env", f"PYTHONPATH={repo}{os.pathsep}{repo / 'plugins'}",
        *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "SERVING_TOKEN")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return result.returncode, records, result.stdout + result.stderr


def messages(records: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("msg", "")) for r in records]


def summaries(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["content"]) for r in records if r.get("command") == "summary"]


def step_results(records: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(r.get("step")): str(r["stepResult"]) for r in records if r.get("stepResult") and r.get("stage") == "Main"
    }


def free_ports() -> int:
    """A port P of 127.0.0.1 free with P + 1 (the example's MLServer takes P for HTTP, P + 1 for gRPC)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except (OSError, OverflowError):
                continue
        return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


# -- the deploy gate --------------------------------------------------------------------------------


@pytest.mark.act
@pytest.mark.e2e
@needs_mlserver
def test_deploy_gate_passes_a_good_model_and_stops_the_service(repo_copy: Path, tmp_path: Path) -> None:
    port = free_ports()
    code, records, _ = run_act(repo_copy, DEPLOY, "push", tmp_path, "--var", f"MODEL_PORT={port}")
    results = [r.get("jobResult") for r in records if r.get("jobResult")]
    assert code == 0 and results == ["success"], messages(records)[-60:]
    assert any(m.startswith(f"ready: http://127.0.0.1:{port}") for m in messages(records))
    summary = next(s for s in summaries(records) if "modelcheck:" in s)
    assert summary.startswith("## ✅ modelcheck: passed — stage `deploy`")
    assert "✅ 3 passed (of 3 in the stage)" in summary and "p95_under_load" in summary
    assert any("deploy-gate status=passed" in m for m in messages(records))
    assert not [r for r in records if r.get("command") == "error"]
    assert port_closed(port), "the workflow left the model service running"


@pytest.mark.act
@pytest.mark.e2e
@needs_mlserver
def test_deploy_gate_fails_the_job_for_a_bad_model(repo_copy: Path, tmp_path: Path) -> None:
    port = free_ports()
    code, records, _ = run_act(
        repo_copy, DEPLOY, "push", tmp_path, "--var", f"MODEL_PORT={port}", "--var", "WINE_BUILD_ARGS=--bad"
    )
    results = [r.get("jobResult") for r in records if r.get("jobResult")]
    assert code == 1 and results == ["failure"], messages(records)[-60:]
    steps = step_results(records)
    assert steps["Wait until the service is ready"] == "success" and steps["Gate the running service"] == "failure"
    assert steps["Stop the model service"] == "success", steps
    verdicts = [str(r.get("raw")) for r in records if r.get("command") == "error" and not r["kvPairs"].get("file")]
    assert any("stage deploy: FAILED" in v for v in verdicts), verdicts
    errors = {r["kvPairs"].get("line") for r in records if r.get("command") == "error" and r["kvPairs"].get("file")}
    assert len(errors) == 2  # accuracy and macro_f1, on their lines of the gate file
    summary = next(s for s in summaries(records) if "modelcheck:" in s)
    assert summary.startswith("## ❌ modelcheck: failed — stage `deploy`")
    assert "| ❌ failed | examples/wine/gate.yaml::accuracy |" in summary
    assert any("deploy-gate status=failed" in m for m in messages(records))
    assert port_closed(port)


@pytest.mark.act
@pytest.mark.e2e
@needs_mlserver
def test_deploy_gate_says_when_the_service_dies_before_it_is_ready(repo_copy: Path, tmp_path: Path) -> None:
    port = free_ports()
    with socket.socket() as taken:  # the port is taken: MLServer cannot bind it and exits
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code, records, _ = run_act(
            repo_copy, DEPLOY, "push", tmp_path, "--var", f"MODEL_PORT={port}", "--var", "MODEL_READY_TIMEOUT=90"
        )
    assert code == 1, messages(records)[-60:]
    steps = step_results(records)
    assert steps["Wait until the service is ready"] == "failure" and "Gate the running service" not in steps, steps
    errors = [str(r.get("raw")) for r in records if r.get("command") == "error"]
    assert any("the model service exited before it was ready" in e for e in errors), errors
    # the server's own log is shown: its bind failure (HTTP's errno 98, or gRPC's/metrics' "bind" wording when
    # parallel tests take a neighbouring port first)
    shown = [m.lower() for m in messages(records)]
    assert any("already in use" in m or "errno 98" in m or "bind" in m for m in shown), shown[-40:]


@pytest.mark.act
@pytest.mark.e2e
@needs_mlserver
def test_deploy_gate_stops_waiting_at_its_timeout_and_stops_the_service(repo_copy: Path, tmp_path: Path) -> None:
    port = free_ports()  # MLServer takes seconds to import and load: not ready within 1 s
    code, records, _ = run_act(
        repo_copy, DEPLOY, "push", tmp_path, "--var", f"MODEL_PORT={port}", "--var", "MODEL_READY_TIMEOUT=1"
    )
    assert code == 1, messages(records)[-60:]
    steps = step_results(records)
    assert steps["Wait until the service is ready"] == "failure" and "Gate the running service" not in steps, steps
    assert steps["Stop the model service"] == "success"
    errors = [str(r.get("raw")) for r in records if r.get("command") == "error"]
    assert any(f"the model service at http://127.0.0.1:{port} was not ready within 1 s" in e for e in errors), errors
    assert port_closed(port) and port_closed(port + 1), "the service outlived the job"


# -- monitoring -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """MLServer serving the good wine model as ``wine`` and the broken one as ``wine-bad``, behind the proxy."""
    folder = tmp_path_factory.mktemp("served")
    port = free_ports()
    build = [sys.executable, str(REPO / "examples" / "wine" / "build.py"), "--out", str(folder), "--port", str(port)]
    subprocess.run(build, check=True, capture_output=True, timeout=120)
    subprocess.run([*build, "--name", "wine-bad", "--bad"], check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{port}"
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    with (
        _serve([mlserver, "start", "."], f"{url}/v2/health/ready", folder, {"PYTHONPATH": ""}),
        FaultProxy(url) as proxy,
    ):
        yield proxy


@pytest.mark.act
@pytest.mark.e2e
@needs_mlserver
def test_monitoring_keeps_one_issue_until_the_service_recovers(
    repo_copy: Path, served: FaultProxy, tmp_path: Path
) -> None:
    def monitor(model: str, run: int) -> tuple[int, list[dict[str, Any]], str]:
        served.reset_seen()
        return run_act(
            repo_copy, MONITOR, "schedule", tmp_path / str(run),
            "--var", f"MODEL_URL={served.url}", "--var", f"MODEL_NAME={model}",
            "-s", f"SERVING_TOKEN={TOKEN}", "-s", f"GITHUB_TOKEN={GH_TOKEN}",
            "--env", f"GITHUB_API_URL={gh.api_url}", "--env", "GITHUB_REPOSITORY=acme/app",
        )  # fmt: skip

    for run in (1, 2, 3):
        (tmp_path / str(run)).mkdir()
    with LocalGitHub(token=GH_TOKEN) as gh:
        gh.add_repo("acme/app")
        gh.add_issue("acme/app", "an unrelated bug", "the docs have a typo")

        # 1. the service answers badly: the job fails and one issue is opened
        code, records, output = monitor("wine-bad", 1)
        assert code == 1, messages(records)[-60:]
        assert step_results(records)["Keep the monitoring issue up to date"] == "success", step_results(records)
        [bug, issue] = gh.issues("acme/app")
        assert issue.state == "open" and issue.title == "modelcheck monitoring: stage deploy of wine is not passing"
        assert (
            "❌ modelcheck: failed — stage `deploy`" in issue.body and "examples/wine/gate.yaml::accuracy" in issue.body
        )
        assert served.url in issue.body  # which service was judged
        assert any(s.startswith("## ❌ modelcheck: failed — stage `deploy`") for s in summaries(records))
        assert any(f"🔔 Monitoring issue created: https://github.test/acme/app/issues/{issue.number}" in s
                   for s in summaries(records))  # fmt: skip
        # the token went to the service in its header, and nowhere else
        assert {h.get("authorization") for h in served.seen} == {f"Bearer {TOKEN}"}
        assert TOKEN not in output and GH_TOKEN not in output

        # 2. still failing: the same issue, updated, with a comment; no second issue
        code, records, output = monitor("wine-bad", 2)
        assert code == 1
        assert [i.number for i in gh.issues("acme/app")] == [bug.number, issue.number]
        [comment] = gh.comments("acme/app", issue.number)
        assert comment.body.startswith("❌ Still not passing: stage `deploy` is failed")
        assert any("🔔 Monitoring issue updated" in s for s in summaries(records))

        # 3. recovered: said on the issue, which is closed; the job passes
        code, records, output = monitor("wine", 3)
        assert code == 0, messages(records)[-60:]
        [bug_after, closed] = gh.issues("acme/app")
        assert closed.number == issue.number and closed.state == "closed" and closed.state_reason == "completed"
        assert gh.comments("acme/app", issue.number)[-1].body.startswith("✅ Recovered: stage `deploy` passed")
        assert bug_after.state == "open" and bug_after.body == "the docs have a typo"  # others' issues untouched
        assert any(s.startswith("## ✅ modelcheck: passed — stage `deploy`") for s in summaries(records))
        assert any("🔔 Monitoring issue closed (recovered)" in s for s in summaries(records))
        assert TOKEN not in output and GH_TOKEN not in output
    assert httpx.get(f"{served.url}/v2/health/ready", timeout=5).status_code == 200


@pytest.mark.act
@pytest.mark.e2e
def test_monitoring_opens_the_issue_when_the_service_is_down(repo_copy: Path, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with LocalGitHub(token=GH_TOKEN) as gh:
        gh.add_repo("acme/app")
        code, records, output = run_act(
            repo_copy, MONITOR, "workflow_dispatch", tmp_path,
            "--var", f"MODEL_URL={down}", "--var", "MONITOR_KEY=wine-prod",
            "-s", f"SERVING_TOKEN={TOKEN}", "-s", f"GITHUB_TOKEN={GH_TOKEN}",
            "--env", f"GITHUB_API_URL={gh.api_url}", "--env", "GITHUB_REPOSITORY=acme/app",
        )  # fmt: skip
        issues = gh.issues("acme/app")
    assert code == 1, messages(records)[-60:]
    [issue] = issues
    assert issue.title == "modelcheck monitoring: stage deploy of wine-prod is not passing"
    assert "❔ modelcheck: inconclusive — stage `deploy`" in issue.body
    assert "is the server running and listening there?" in issue.body and down in issue.body
    assert TOKEN not in output and GH_TOKEN not in output
