"""The Ray engine on a real cluster: ``ray start --head --block`` in a subprocess (``ray_cluster``, one for the
session), bound to 127.0.0.1 on free ports with token authentication and a Ray Client server; a ``pytest
--modelcheck --modelcheck-engine ray:127.0.0.1:PORT`` (or ``ray://127.0.0.1:CLIENT_PORT``) subprocess joins it (a
process that already runs Ray cannot join another cluster), and is interrupted there as Ctrl-C would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray_helpers import head_cluster, local_runtime, run, write_iris_gate

from modelcheck.errors import BackendError
from modelcheck.gatefile import ModelSpec
from modelcheck.run.engines import LocalEngine, engine_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),  # Ray's own (DataContext fields it renamed)
]
ray = pytest.importorskip("ray")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from modelcheck.run.engines.ray import RayEngine  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict[str, Any]]:
    with head_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    with local_runtime():
        yield


@pytest.fixture(scope="module")
def iris_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris_gate(tmp_path_factory.mktemp("iris"))


def _gate_project(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The iris gate in the pytester project, and the cluster's environment (token) for its pytest."""
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    for name, value in ray_cluster["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_a_gate_on_a_ray_start_head_cluster_equals_the_local_run(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``--modelcheck-engine ray:127.0.0.1:PORT`` against a ``ray start --head`` cluster: the local run's report."""
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    _gate_project(pytester, iris_gate, ray_cluster, monkeypatch)
    address = ray_cluster["address"]
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", f"ray:{address}",
                                           "--modelcheck-report", "out.json", timeout=240)  # fmt: skip
    result.assert_outcomes(passed=2)
    gate = json.loads((pytester.path / "out.json").read_text())["gates"][0]
    assert gate["model"]["engine"]["address"] == address and gate["model"]["engine"]["actors"] == 2
    assert gate["model"]["engine"]["resources"]["CPU"] == 2.0
    remote = {c["name"]: (c["status"], c["value"], c["n"]) for c in gate["checks"]}
    assert remote == {c.name: (c.status, c.value, c.n) for c in local.checks}
    assert gate["outputs"]["sha256"] == local.outputs["sha256"]
    # the actors ran on that cluster: its workers' logs name the predictor
    logs = [p.read_text(errors="replace") for p in (ray_cluster["folder"]).glob("session_*/logs/worker-*.out")]
    assert any("Predictor" in text for text in logs)


@pytest.mark.usefixtures("ray_runtime")
def test_a_process_already_in_ray_does_not_predict_on_another_cluster(ray_cluster: dict[str, Any]) -> None:
    spec = ModelSpec(id="m", source="m.onnx", backend="onnx", task="tabular-classification")
    address = ray_cluster["address"]
    with pytest.raises(BackendError, match=rf"already runs Ray \(cluster .*\) and cannot join {address}"):
        RayEngine(address).predict(spec, None, np.zeros((4, 4), np.float32), batch_size=4,  # type: ignore[arg-type]
                                   progress=None, on_threads=None)  # fmt: skip


def test_joining_a_cluster_without_its_token_is_a_one_line_error_naming_the_address_and_the_cause(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(pytester.path / "no-token"))
    address = ray_cluster["address"]
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", f"ray:{address}",
                                           "--modelcheck-report", "out.json", timeout=240)  # fmt: skip
    result.assert_outcomes(failed=2)
    gate = json.loads((pytester.path / "out.json").read_text())["gates"][0]
    messages = {c["message"] for c in gate["checks"]}
    assert len(messages) == 1, messages
    (message,) = messages
    assert message.startswith(f"cannot start or join the Ray cluster ({address}): ")
    assert "AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or incorrect" in message
    assert message.endswith("RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token)")
    assert "\n" not in message and "Traceback" not in result.stdout.str()


def test_a_loopback_address_ray_would_rewrite_to_an_unreachable_one_fails_within_the_connect_timeout(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, Ray joins 127.0.0.1:PORT as the machine's outward address,
    where the head (bound to 127.0.0.1) does not listen, and retries for minutes: a one-line error instead."""
    import ray._private.services as services

    outward = services.node_ip_address_from_perspective(None)
    if outward in ("127.0.0.1", "::1", "localhost"):
        pytest.skip("this machine has no outward address for Ray to rewrite 127.0.0.1 to")
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    for name, value in ray_cluster["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    address = ray_cluster["address"]
    began = time.monotonic()
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", f"ray:{address}",
                                           "--modelcheck-report", "out.json", timeout=240)  # fmt: skip
    took = time.monotonic() - began
    result.assert_outcomes(failed=2)
    messages = {c["message"] for c in json.loads((pytester.path / "out.json").read_text())["gates"][0]["checks"]}
    port = address.rpartition(":")[2]
    (message,) = messages
    assert message.startswith(
        f"cannot reach the Ray cluster at {address}: Ray joins 127.0.0.1 as this machine's address {outward}, where "
        f"nothing answers on port {port} within 10 s ("  # the socket's reason: refused here, a timeout elsewhere
    ), message
    assert message.endswith(
        "); a cluster started with --node-ip-address=127.0.0.1 is joined with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in "
        "the environment of both (ray start and pytest), or give the address it advertises"
    ), message
    assert "\n" not in message
    assert took < 50, f"{took:.0f} s (pytest's start and imports included; Ray alone retries for minutes)"


def test_a_gate_through_ray_client_equals_the_local_run(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``--modelcheck-engine ray://127.0.0.1:PORT``: the head's Ray Client server, token in the environment."""
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    _gate_project(pytester, iris_gate, ray_cluster, monkeypatch)
    client = ray_cluster["client"]
    with_user = client.replace("ray://", "ray://someone:secret@")  # credentials in the address never reach the report
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", client, "--modelcheck-report",
                                           "out.json", timeout=420)  # a connection made again costs 130 s  # fmt: skip
    gate = json.loads((pytester.path / "out.json").read_text())["gates"][0]
    assert result.parseoutcomes() == {"passed": 2}, [c["message"] for c in gate["checks"]]
    assert gate["model"]["engine"]["address"] == client and gate["model"]["engine"]["actors"] == 2
    assert {c["name"]: (c["status"], c["value"], c["n"]) for c in gate["checks"]} == {
        c.name: (c.status, c.value, c.n) for c in local.checks
    }
    assert gate["outputs"]["sha256"] == local.outputs["sha256"]
    assert engine_for(with_user).record()["address"] == client  # type: ignore[attr-defined]
    assert gate["model"]["engine"]["client_tries"] >= 1


def test_a_ray_client_connection_whose_server_dies_at_its_start_is_made_again(
    pytester: pytest.Pytester, iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head's Ray Client server forks a server process per connection, which can die at once
    (ray-project/ray#63202; it failed a CI run here): the engine connects again, and the report says so."""
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    with head_cluster(client_servers_dying=1, client_wait=5) as cluster:
        _gate_project(pytester, iris_gate, cluster, monkeypatch)
        result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", cluster["client"],
                                               "--modelcheck-report", "out.json", timeout=240)  # fmt: skip
        gate = json.loads((pytester.path / "out.json").read_text())["gates"][0]
        assert result.parseoutcomes() == {"passed": 2}, [c["message"] for c in gate["checks"]]
        assert cluster["dying"].read_text() == "0"  # the first connection's server did die
        proxy_log = "".join(p.read_text() for p in cluster["folder"].glob("session_*/logs/ray_client_server.err"))
        assert "Server startup failed for client" in proxy_log  # Ray's own path, as in #63202
    assert gate["model"]["engine"]["client_tries"] == 2
    assert {c["name"]: (c["status"], c["value"]) for c in gate["checks"]} == {
        c.name: (c.status, c.value) for c in local.checks
    }
    assert gate["outputs"]["sha256"] == local.outputs["sha256"]


def _terminal_sigint() -> None:
    """SIGINT as a terminal's pytest has it: a shell runs a background job (``.ci/run &``) with SIGINT ignored,
    its children inherit that, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SLOW = """\
import pathlib
import sys
import time

import torch

MARKER = pathlib.Path({marker!r})
WORKER = "default_worker" in " ".join(sys.argv)  # a Ray worker (the pytest process only loads the model)


class Slow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        if WORKER:
            MARKER.touch()  # a worker is predicting now
            time.sleep(0.5)  # per batch of 16: about a minute for the whole data on two actors
        return self.linear(x)


def build():
    torch.manual_seed(0)
    return Slow()
"""

#: The actors of a driver (by its pid) on a cluster, read from the GCS by a process that joins it.
ACTORS = """\
import json, sys
import ray
from ray._private.state import state
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, configure_logging=False)
jobs = [job["JobID"] for job in state.job_table() if job["DriverPid"] == int(sys.argv[2])]
print(json.dumps([a for a in state.actor_table(None).values() if a["JobID"] in jobs], default=str))
"""


def _driver_actors(cluster: dict[str, Any], pid: int) -> list[dict[str, Any]]:
    env = {**os.environ, **cluster["env"]}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", ACTORS, cluster["address"], str(pid)], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    actors: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return actors


def test_ctrl_c_mid_prediction_ends_the_run_and_leaves_no_actor_on_the_cluster(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any]
) -> None:
    """SIGINT to the process group of ``pytest --modelcheck --modelcheck-engine ray:HOST:PORT`` while the actors
    predict (as Ctrl-C in a terminal): pytest's interrupted exit, no traceback, a whole report that says it
    stopped, and the driver's actors dead on the cluster, their processes gone."""
    import psutil

    marker = pytester.path / "predicting"
    (pytester.path / "slow_model.py").write_text(SLOW.format(marker=str(marker)), encoding="utf-8")
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "slow.yaml").write_text(
        "version: 1\nmodel: {id: slow, source: 'slow_model:build', backend: torch, task: tabular-classification, "
        f"device: cpu, threads: 1, batch_size: 16}}\ndata: {{source: {iris_gate.parent / 'iris.csv'}, "
        "input: [f1, f2, f3, f4], label: kind}\nchecks:\n  - {name: accuracy, metric: accuracy, min: 0.0}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "RAY_ADDRESS"}
    env.update(ray_cluster["env"], PYTHONPATH=os.pathsep.join([str(pytester.path), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(pytester.path / "tmp"),
               "--modelcheck", "--modelcheck-engine", f"ray:{ray_cluster['address']}", "--modelcheck-report",
               "out.json"]  # fmt: skip
    process = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, preexec_fn=_terminal_sigint)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no actor started predicting within 180 s"
            time.sleep(0.2)
        time.sleep(1)  # mid-prediction: both actors busy, chunks queued
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        output, _ = process.communicate(timeout=60)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert took < 20, f"{took:.1f} s from SIGINT to exit\n{output}"
    assert "KeyboardInterrupt" in output and "Traceback" not in output, output
    report = json.loads((pytester.path / "out.json").read_text())  # whole (written atomically), and says why
    assert report["stopped"]["reason"] == "interrupted (Ctrl-C or a signal)", report.get("stopped")
    assert report["stopped"]["exit_status"] == 2
    assert not [check for gate in report["gates"] for check in gate.get("checks", ()) if check["status"] == "passed"]
    # the driver's actors: all dead within seconds, their worker processes gone
    deadline, actors = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        actors = _driver_actors(ray_cluster, process.pid)
        if actors and all(a["State"] == "DEAD" and not psutil.pid_exists(a["Pid"]) for a in actors):
            break
        time.sleep(1)
    assert len(actors) == 2 and {a["ActorClassName"] for a in actors} == {"Predictor"}, actors
    assert [(a["State"], psutil.pid_exists(a["Pid"])) for a in actors] == [("DEAD", False)] * 2, actors

