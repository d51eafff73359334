"""The Ray engine on a real local Ray runtime: the same verdicts and outputs as a local run, and its faults.

One Ray runtime (2 CPUs, no dashboard) is started for the module with ``ray.init`` and shared by the
tests (the engine joins a runtime that is already up). Models: a scikit-learn classifier converted to
ONNX, and the tiny sentiment BERT of the session fixtures (transformers on the workers).

``ray_cluster`` is a real cluster: ``ray start --head --block`` in a subprocess, bound to 127.0.0.1 on
free ports with token authentication and a Ray Client server; a ``pytest --modelcheck --modelcheck-engine
ray:127.0.0.1:PORT`` (or ``ray://127.0.0.1:CLIENT_PORT``) subprocess joins it (a process that already runs
Ray cannot join another cluster), and is interrupted there as Ctrl-C would.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, ModelcheckError
from modelcheck.gatefile import ModelSpec, load_gate
from modelcheck.models.cache import ModelCache
from modelcheck.run.engines import LocalEngine, engine_for
from modelcheck.run.gate import run_gate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),  # Ray's own (DataContext fields it renamed)
]
ray = pytest.importorskip("ray")
pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from modelcheck.run.engines.ray import RayEngine  # noqa: E402

TABULAR = """\
version: 1
model: {{id: iris, source: {model}, backend: onnx, task: tabular-classification, threads: 1}}
data: {{source: {data}, input: [f1, f2, f3, f4], label: kind}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.8}}
  - {{name: macro_f1, metric: f1, average: macro, min: 0.8}}
"""


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    """Ray, and the T5 of the generation test, imported before any in-process pytester run drops modules."""
    import ray.data
    import tiny_seq2seq
    import transformers.models.t5.modeling_t5  # noqa: F401

    tiny_seq2seq.shared("t5")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: What a process needs to start or join the test cluster: Ray rewrites 127.0.0.1 into the machine's outward
#: address (services.resolve_ip_for_localhost) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and ``ray start``
#: turns on token authentication, which a joining process only uses with RAY_AUTH_MODE=token.
def _cluster_env(token: str) -> dict[str, str]:
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict[str, Any]]:
    """A real Ray head on 127.0.0.1 (2 CPUs, no dashboard), its processes ended at teardown, none left behind."""
    import psutil

    folder = Path(tempfile.mkdtemp(prefix="mc-ray-"))  # short: Ray's unix socket paths live under it
    port = _free_port()
    # the Ray Client server starts a server process per client and waits 30 s for it by default: too short on
    # two cores shared with the other tests (it failed so once: "Proxy failed to Connect to backend!")
    env = {**os.environ, **_cluster_env(secrets.token_hex(32)), "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120"}
    ports = {flag: str(_free_port()) for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port",
                                                  "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                                                  "--metrics-export-port")}  # fmt: skip
    command = [shutil.which("ray") or "ray", "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0",
               "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false",
               f"--temp-dir={folder}", "--disable-usage-stats", *(f"{k}={v}" for k, v in ports.items())]  # fmt: skip
    log = (folder / "head.log").open("w")
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (folder / "head.log").read_text(errors="replace"):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not start:\n{(folder / 'head.log').read_text()}", pytrace=False)
            time.sleep(0.25)
        yield {"address": f"127.0.0.1:{port}", "env": _cluster_env(env["RAY_AUTH_TOKEN"]), "folder": folder,
               "client": f"ray://127.0.0.1:{ports['--ray-client-server-port']}"}  # fmt: skip
    finally:
        # the head (ray start --block) and everything under it, workers included: by pid, only ours
        tree = (
            [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
            if head.poll() is None
            else []
        )
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()  # SIGTERM: Ray's processes stop gracefully
        _, alive = psutil.wait_procs(tree, timeout=5)  # most outlast 20 s after SIGTERM here: kill them
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
        head.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def iris_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("iris")
    data = load_iris(as_frame=True)
    frame = data.frame.set_axis(["f1", "f2", "f3", "f4", "kind"], axis=1)
    frame = frame.sample(n=3000, replace=True, random_state=0).reset_index(drop=True)  # several batches
    x = frame[["f1", "f2", "f3", "f4"]].to_numpy(np.float32)
    model = LogisticRegression(max_iter=500).fit(x[::3], frame["kind"][::3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))],
                                         options={id(model): {"zipmap": False}})  # fmt: skip
    (folder / "iris.onnx").write_bytes(graph.SerializeToString())
    frame.to_csv(folder / "iris.csv", index=False)
    gate = folder / "gate.yaml"
    gate.write_text(TABULAR.format(model=folder / "iris.onnx", data=folder / "iris.csv"), encoding="utf-8")
    return gate


def run(gate_file: Path, engine: Any, out: Path) -> Any:
    cache = ModelCache()
    try:
        return run_gate(load_gate(gate_file), file=gate_file.name, models=cache, stage=None, outputs_dir=out,
                        report_dir=out, engine=engine)  # fmt: skip
    finally:
        cache.close()


def same_results(local: Any, remote: Any) -> None:
    assert all(c.status != "error" for c in remote.checks), [c.message for c in remote.checks]
    assert [(c.name, c.status, c.value, c.n) for c in remote.checks] == [
        (c.name, c.status, c.value, c.n) for c in local.checks
    ]
    assert remote.outputs["sha256"] == local.outputs["sha256"]  # the per-example outputs, byte for byte


@pytest.mark.usefixtures("ray_runtime")
def test_a_tabular_gate_on_ray_equals_the_local_run(iris_gate: Path, tmp_path: Path) -> None:
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    engine = RayEngine(None)
    remote = run(iris_gate, engine, tmp_path / "ray")
    same_results(local, remote)
    assert [c.status for c in local.checks] == ["passed", "passed"]
    assert "engine" not in local.model
    assert remote.model["engine"]["name"] == "ray" and remote.model["engine"]["actors"] == 2
    assert remote.model["engine"]["resources"]["CPU"] == 2.0


def _actor_states(handles: list[Any]) -> list[str]:
    from ray._private.state import state

    table = state.actor_table(None)
    return [table[h._actor_id.hex()]["State"] for h in handles]


def _until_dead(handles: list[Any]) -> list[str]:
    deadline = time.monotonic() + 30
    while set(states := _actor_states(handles)) != {"DEAD"} and time.monotonic() < deadline:
        time.sleep(0.2)
    return states


@pytest.mark.usefixtures("ray_runtime")
def test_the_actors_stay_warm_for_gates_of_one_model_and_end_with_another_model_or_the_engine(
    iris_gate: Path, tmp_path: Path
) -> None:
    engine = RayEngine(None)
    try:
        first = run(iris_gate, engine, tmp_path / "first")
        assert engine._pool is not None
        handles = list(engine._pool.handles)
        second = run(iris_gate, engine, tmp_path / "second")
        assert engine._pool.handles == handles and _actor_states(handles) == ["ALIVE", "ALIVE"]
        assert (first.model["engine"]["warm"], second.model["engine"]["warm"]) == (False, True)
        same_results(first, second)
        other = tmp_path / "other.yaml"  # another model (its threads differ): the first model's actors end first
        other.write_text(iris_gate.read_text().replace("threads: 1", "threads: 2"), encoding="utf-8")
        third = run(other, engine, tmp_path / "third")
        assert third.model["engine"]["warm"] is False and _until_dead(handles) == ["DEAD", "DEAD"]
        handles = list(engine._pool.handles)
    finally:
        engine.close()
    assert engine._pool is None and _until_dead(handles) == ["DEAD", "DEAD"]  # Ray itself still runs: not ours
    assert ray.is_initialized()


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_a_transformers_gate_on_ray_equals_the_local_run(sentiment_model: Path, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: sentiment, source: {sentiment_model}, task: text-classification, device: cpu, "
        f"threads: 1}}\ndata: {{source: {example}, input: text, label: label}}\n"
        "checks:\n  - {name: accuracy, metric: accuracy, min: 0.5}\n",
        encoding="utf-8",
    )
    local = run(gate, LocalEngine(), tmp_path / "local")
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    same_results(local, remote)


@pytest.mark.usefixtures("ray_runtime")
def test_a_model_that_cannot_load_on_the_workers_names_the_workers_reason(tmp_path: Path) -> None:
    spec = ModelSpec(id="gone", source=str(tmp_path / "missing.onnx"), backend="onnx", task="tabular-classification")
    with pytest.raises(ModelcheckError, match=r"missing\.onnx"):
        RayEngine(None).predict(spec, None, np.zeros((10, 4), np.float32), batch_size=4,  # type: ignore[arg-type]
                                progress=None, on_threads=None)  # fmt: skip


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    spec = ModelSpec(id="m", source=str(tmp_path / "m.onnx"), backend="onnx", task="tabular-classification")
    began = time.monotonic()
    with pytest.raises(BackendError, match=r"cannot reach the Ray cluster at ray://127\.0\.0\.1:9 within 10 s"):
        engine_for("ray://user:secret@127.0.0.1:9").predict(spec, None, [], batch_size=1,  # type: ignore[arg-type]
                                                            progress=None, on_threads=None)  # fmt: skip
    assert time.monotonic() - began < 15


def test_ray_errors_keep_the_line_that_says_why() -> None:
    from modelcheck.run.engines.ray.errors import first_line

    client = ConnectionAbortedError(
        "Initialization failure from server:\nTraceback (most recent call last):\n  File \"proxier.py\", line 1\n"
        "    raise RuntimeError(\nRuntimeError: Proxy failed to Connect to backend! Check the logs.\n"
    )
    assert first_line(client) == (
        "Initialization failure from server: RuntimeError: Proxy failed to Connect to backend! Check the logs."
    )
    assert first_line(ConnectionError("Could not connect.\nMore detail")) == "Could not connect."
    assert first_line(RuntimeError("")) == "RuntimeError"


def test_engine_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine_for(None).name == "local" and engine_for("ray").name == "ray"
    assert engine_for("ray:10.0.0.5:6379").record()["address"] == "10.0.0.5:6379"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"--modelcheck-engine 'spark': use local, ray, ray:HOST:PORT"):
        engine_for("spark")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ValueError, match=r"needs Ray: pip install 'modelcheck\[ray\]'"):
        engine_for("ray")


@pytest.mark.usefixtures("ray_runtime")
def test_pytest_modelcheck_engine_ray_runs_the_gate_and_records_the_engine(
    pytester: pytest.Pytester, iris_gate: Path
) -> None:
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-engine", "ray", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["gates"][0]["model"]["engine"]["name"] == "ray"
    bad = pytester.runpytest("--modelcheck", "--modelcheck-engine", "spark")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--modelcheck-engine 'spark': use local, ray*"])


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_a_generation_gate_on_ray_equals_the_local_run(tmp_path: Path) -> None:
    """A T5 translating (greedy, batched, stop strings): the same texts and ROUGE from the workers."""
    pytest.importorskip("transformers")
    pytest.importorskip("rouge_score")
    import pandas as pd
    import tiny_seq2seq

    rows = tiny_seq2seq.reverse_examples()
    pd.DataFrame({"source": [s for s, _ in rows], "reference": [r for _, r in rows]}).to_csv(
        tmp_path / "reverse.csv", index=False
    )
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: t5, source: {tiny_seq2seq.shared('t5')}, task: translation, device: cpu, "
        f"max_new_tokens: 6, batch_size: 16, threads: 1}}\ndata: {{source: {tmp_path / 'reverse.csv'}, input: source, "
        "label: reference}\nchecks:\n  - {name: rouge, metric: rougeL, min: 0.9}\n",
        encoding="utf-8",
    )
    local = run(gate, LocalEngine(), tmp_path / "local")
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    same_results(local, remote)
    assert local.checks[0].status == "passed"


def test_a_gate_on_a_ray_start_head_cluster_equals_the_local_run(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``--modelcheck-engine ray:127.0.0.1:PORT`` against a ``ray start --head`` cluster: the local run's report."""
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    for name, value in ray_cluster["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
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


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_torch_gates_on_ray_equal_the_local_run(tmp_path: Path) -> None:
    """A torch.export program (wine, classification) and safetensors weights built by a user's callable
    (diabetes, regression: the workers import the module that defines it)."""
    pytest.importorskip("safetensors")
    import tabular_models as tm

    for name, classification, checks in [
        ("wine", True, "  - {name: accuracy, metric: accuracy, min: 0.9}\n  - {name: f1, metric: f1, average: macro, "
                       "min: 0.85}\n"),
        ("diabetes", False, "  - {name: rmse, metric: rmse, max: 65}\n  - {name: r2, metric: r2, min: 0.4}\n"),
    ]:  # fmt: skip
        table = tm.load_table(name)
        build = tm.build_wine if classification else tm.build_diabetes
        model = tm.train(build(), table.x(table.train), table.y(table.train), classification=classification)
        paths = tm.save_artifacts(model, len(table.features), tmp_path / name, name)
        rows = table.test.sample(n=2000, replace=True, random_state=0)  # several batches per actor
        data = tm.write_csv(table, rows, tmp_path / name / "data.csv")
        source = paths["pt2"] if classification else f'"tabular_models:build_diabetes", weights: {paths["safetensors"]}'
        task = "tabular-classification" if classification else "tabular-regression"
        gate = tmp_path / name / "gate.yaml"
        gate.write_text(
            f"version: 1\nmodel: {{id: {name}, source: {source}, backend: torch, task: {task}, device: cpu, "
            f"threads: 1}}\ndata: {{source: {data}, input: {json.dumps(list(table.features))}, label: target}}\n"
            f"checks:\n{checks}",
            encoding="utf-8",
        )
        local = run(gate, LocalEngine(), tmp_path / name / "local")
        remote = run(gate, RayEngine(None), tmp_path / name / "ray")
        same_results(local, remote)
        assert [c.status for c in local.checks] == ["passed", "passed"], [c.message for c in local.checks]


@pytest.mark.usefixtures("ray_runtime")
def test_a_million_row_tabular_gate_on_ray_equals_the_local_run(tmp_path: Path) -> None:
    """1,000,000 rows of parquet through an ONNX classifier: 2 actors, many blocks, the same report."""
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    x = data.data.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, data.target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))],
                                         options={id(model): {"zipmap": False}})  # fmt: skip
    (tmp_path / "iris.onnx").write_bytes(graph.SerializeToString())
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(x), 1_000_000)
    frame = pd.DataFrame(
        x[pick] + rng.normal(0, 0.3, (len(pick), 4)).astype(np.float32), columns=["f1", "f2", "f3", "f4"]
    )
    frame["kind"] = data.target[pick]
    frame.to_parquet(tmp_path / "rows.parquet")
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: iris, source: {tmp_path / 'iris.onnx'}, backend: onnx, "
        f"task: tabular-classification, threads: 1, batch_size: 4096}}\ndata: {{source: {tmp_path / 'rows.parquet'}, "
        "input: [f1, f2, f3, f4], label: kind}\nchecks:\n  - {name: accuracy, metric: accuracy, min: 0.8}\n"
        "  - {name: macro_f1, metric: f1, average: macro, min: 0.8}\n",
        encoding="utf-8",
    )
    local = run(gate, LocalEngine(), tmp_path / "local")
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    same_results(local, remote)
    assert [c.n for c in remote.checks] == [1_000_000, 1_000_000]
    assert [c.status for c in local.checks] == ["passed", "passed"], [c.value for c in local.checks]


DYING = """\
import os
import pathlib

import torch

PYTEST = {pid}  # the pytest process: it never dies, only Ray's workers do
MARKER = pathlib.Path({marker!r})
ALWAYS = {always}


class Dying(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        if os.getpid() != PYTEST and (ALWAYS or not MARKER.exists()):
            with MARKER.open("a") as deaths:
                deaths.write(f"{{os.getpid()}}\\n")
            os._exit(3)  # the worker process dies mid-batch: no exception, no cleanup
        return self.linear(x)


def build():
    torch.manual_seed(0)
    return Dying()
"""


def dying_gate(folder: Path, iris_gate: Path, module: str, *, always: bool) -> tuple[Path, Path]:
    import os

    marker = folder / f"{module}.deaths"
    (folder / f"{module}.py").write_text(DYING.format(pid=os.getpid(), marker=str(marker), always=always))
    data = iris_gate.parent / "iris.csv"
    gate = folder / f"{module}.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: dying, source: '{module}:build', backend: torch, task: tabular-classification, "
        f"device: cpu, threads: 1, batch_size: 256}}\ndata: {{source: {data}, input: [f1, f2, f3, f4], label: kind}}\n"
        "checks:\n  - {name: accuracy, metric: accuracy, min: 0.0}\n",
        encoding="utf-8",
    )
    return gate, marker


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_an_actor_killed_mid_run_is_restarted_and_its_batches_retried(
    iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers import the model's module from the same folder
    gate, marker = dying_gate(tmp_path, iris_gate, "dies_once", always=False)
    local = run(gate, LocalEngine(), tmp_path / "local")
    assert not marker.exists()
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    assert len(marker.read_text().split()) == 1  # one worker died, once
    same_results(local, remote)


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_an_actor_that_dies_every_time_ends_as_a_gate_error_naming_the_cause(
    iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MODELCHECK_RAY_ACTORS", "1")
    monkeypatch.setenv("MODELCHECK_RAY_RESTARTS", "1")
    gate, marker = dying_gate(tmp_path, iris_gate, "dies_always", always=True)
    began = time.monotonic()
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    assert time.monotonic() - began < 120
    (check,) = remote.checks
    assert check.status == "error"
    assert check.message.startswith(
        "the Ray engine could not predict dying: an actor kept dying (restarted up to MODELCHECK_RAY_RESTARTS=1 "
        "times): The actor is dead because its worker process has died."
    ), check.message
    assert "\n" not in check.message, check.message
    assert len(marker.read_text().split()) >= 2  # it was restarted before Ray gave up


def test_a_gate_through_ray_client_equals_the_local_run(
    pytester: pytest.Pytester, iris_gate: Path, ray_cluster: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``--modelcheck-engine ray://127.0.0.1:PORT``: the head's Ray Client server, token in the environment."""
    local = run(iris_gate, LocalEngine(), tmp_path / "local")
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "iris.yaml").write_text(iris_gate.read_text(), encoding="utf-8")
    for name, value in ray_cluster["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    client = ray_cluster["client"]
    with_user = client.replace("ray://", "ray://someone:secret@")  # credentials in the address never reach the report
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-engine", client, "--modelcheck-report",
                                           "out.json", timeout=240)  # fmt: skip
    gate = json.loads((pytester.path / "out.json").read_text())["gates"][0]
    assert result.parseoutcomes() == {"passed": 2}, [c["message"] for c in gate["checks"]]
    assert gate["model"]["engine"]["address"] == client and gate["model"]["engine"]["actors"] == 2
    assert {c["name"]: (c["status"], c["value"], c["n"]) for c in gate["checks"]} == {
        c.name: (c.status, c.value, c.n) for c in local.checks
    }
    assert gate["outputs"]["sha256"] == local.outputs["sha256"]
    assert engine_for(with_user).record()["address"] == client  # type: ignore[attr-defined]


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
                               text=True, start_new_session=True)  # fmt: skip
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
