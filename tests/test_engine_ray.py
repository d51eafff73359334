"""The Ray engine on a real local Ray runtime: the same verdicts and outputs as a local run, and its faults.

One Ray runtime (2 CPUs, no dashboard) is started for the module with ``ray.init`` and shared by the
tests (the engine joins a runtime that is already up). Models: a scikit-learn classifier converted to
ONNX, and the tiny sentiment BERT of the session fixtures (transformers on the workers). The tests on a real
``ray start --head`` cluster are in tests/test_engine_ray_cluster.py; what both share, in tests/ray_helpers.py.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray_helpers import local_runtime, run, same_results, write_iris_gate

from modelcheck.errors import BackendError, ModelcheckError
from modelcheck.gatefile import ModelSpec
from modelcheck.run.engines import LocalEngine, engine_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),  # Ray's own (DataContext fields it renamed)
]
ray = pytest.importorskip("ray")
pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from modelcheck.run.engines.ray import RayEngine  # noqa: E402


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    with local_runtime():
        yield


@pytest.fixture(scope="module")
def iris_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris_gate(tmp_path_factory.mktemp("iris"))


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


#: What ray.init("ray://...") raises where the head could not start the connection's server: it died at once
#: (ray-project/ray#63202), or did not answer within the head's wait.
DIED = (
    "Initialization failure from server:\nTraceback (most recent call last):\n  File \"proxier.py\", line 771\n"
    "    raise RuntimeError(\nRuntimeError: Starting Ray client server failed. See ray_client_server_23000.err "
    "for detailed logs.\n"
)
SILENT = DIED.replace("Starting Ray client server failed. See ray_client_server_23000.err for detailed logs.",
                      "Proxy failed to Connect to backend! Check the logs.")  # fmt: skip
REFUSED = "Initialization failure from server:\nAuthenticationError: Authentication token is missing or incorrect\n"
STARTING = r"RuntimeError: Starting Ray client server failed\. See ray_client_server_23000\.err for detailed logs\."


@pytest.mark.parametrize(
    ("scheme", "failures", "error"),
    [
        ("ray://", [DIED, SILENT], None),  # the third connection holds
        ("ray://", [DIED, DIED, DIED], STARTING + r" \(3 connections tried: ray-project/ray#63202\)"),
        ("ray://", [REFUSED], r"AuthenticationError: Authentication token is missing or incorrect"),
        ("", [DIED], STARTING),  # a GCS address (ray:HOST:PORT): no Ray Client, no connection to make again
    ],
)
def test_a_ray_client_connection_is_made_again_only_where_the_heads_server_for_it_failed_to_start(
    scheme: str, failures: list[str], error: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ray.init fails with ``failures`` in turn, then joins: the engine makes at most 3 connections, and a new
    one only where the head could not start the last one's server; the report says how many it made."""
    import socket

    calls: list[str] = []

    def init(address: str, **_: Any) -> None:
        calls.append(address)
        if len(calls) <= len(failures):
            raise ConnectionAbortedError(failures[len(calls) - 1])

    monkeypatch.setattr("modelcheck.run.engines.ray.rewritten_reachable", lambda address: None)  # tested above
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with socket.socket() as listening:  # something answers at the address (the engine checks that first)
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"{scheme}127.0.0.1:{listening.getsockname()[1]}"
        engine = RayEngine(address)
        if error is None:
            engine._connect()
        else:
            joining = rf"cannot start or join the Ray cluster \({re.escape(address)}\)"
            with pytest.raises(BackendError, match=rf"^{joining}: Initialization failure from server: {error}$"):
                engine._connect()
    tries = len(failures) + 1 if error is None else len(failures)
    assert calls == [address] * tries
    assert engine.record().get("client_tries") == (tries if error is None and scheme else None)


def test_engine_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine_for(None).name == "local" and engine_for("ray").name == "ray"
    assert engine_for("ray:10.0.0.5:6379").record()["address"] == "10.0.0.5:6379"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"--modelcheck-engine 'spark': use local, ray, ray:HOST:PORT"):
        engine_for("spark")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ValueError, match=r"needs Ray: pip install 'modelcheck\[ray\]'"):
        engine_for("ray")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MODELCHECK_RAY_ACTORS", "0", "a whole number of actors, 1 or more"),
        ("MODELCHECK_RAY_ACTORS", "-2", "a whole number of actors, 1 or more"),
        ("MODELCHECK_RAY_ACTORS", "two", "a whole number of actors, 1 or more"),
        ("MODELCHECK_RAY_ACTORS", "1.5", "a whole number of actors, 1 or more"),
        ("MODELCHECK_RAY_CPUS", "-1", "the CPUs each actor holds, a number 0 or more"),
        ("MODELCHECK_RAY_CPUS", "lots", "the CPUs each actor holds, a number 0 or more"),
        ("MODELCHECK_RAY_GPUS", "nan", "the GPUs each actor holds, 0 or more"),
        ("MODELCHECK_RAY_GPUS", "-0.5", "the GPUs each actor holds, 0 or more"),
        ("MODELCHECK_RAY_RESTARTS", "-1", "a whole number of restarts, 0 or more"),
        ("MODELCHECK_RAY_START_TIMEOUT", "0", "seconds, more than 0 (default 120)"),
    ],
)
def test_bad_ray_settings_are_a_usage_error_naming_the_variable_and_value(
    name: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"^{name}='{re.escape(value)}': use {re.escape(says)}"):
        engine_for("ray")
    engine_for("local")  # only the Ray engine reads them


def test_a_bad_ray_setting_stops_pytest_at_its_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "g.yaml").write_text("version: 1\n", encoding="utf-8")
    monkeypatch.setenv("MODELCHECK_RAY_ACTORS", "0")
    began = time.monotonic()
    result = pytester.runpytest("--modelcheck", "--modelcheck-engine", "ray")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*MODELCHECK_RAY_ACTORS='0': use a whole number of actors, 1 or more*"])
    assert time.monotonic() - began < 10


def _free_cpus(expected: float, within: float) -> float:
    """The runtime's free CPUs once they are ``expected`` (actors of earlier tests end when their engine goes)."""
    deadline, free = time.monotonic() + within, 0.0
    while time.monotonic() < deadline:
        free = ray.available_resources().get("CPU", 0.0)
        if free == expected:
            break
        time.sleep(0.2)
    return float(free)


@pytest.mark.usefixtures("ray_runtime")
@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"MODELCHECK_RAY_ACTORS": "3"},
         "MODELCHECK_RAY_ACTORS=3 with MODELCHECK_RAY_CPUS=1 and MODELCHECK_RAY_GPUS=0 asks 3 actors x 1 CPU (3 CPU in "
         "all), and it has 2 CPU and 0 GPU in all: set MODELCHECK_RAY_ACTORS to 2 or fewer, or add nodes to the "
         "cluster"),
        ({"MODELCHECK_RAY_CPUS": "4"},
         "1 actor (MODELCHECK_RAY_ACTORS unset) with MODELCHECK_RAY_CPUS=4 and MODELCHECK_RAY_GPUS=0 asks 1 actor x 4 "
         "CPU (4 CPU in all), and it has 2 CPU and 0 GPU in all: set MODELCHECK_RAY_CPUS to 2 or less, or add nodes"),
        ({"MODELCHECK_RAY_ACTORS": "1", "MODELCHECK_RAY_GPUS": "1"},
         "MODELCHECK_RAY_ACTORS=1 with MODELCHECK_RAY_CPUS=1 and MODELCHECK_RAY_GPUS=1 asks 1 actor x 1 CPU + 1 GPU (1 "
         "GPU in all), and it has 2 CPU and 0 GPU in all: set MODELCHECK_RAY_GPUS to 0, or add nodes"),
    ],
)  # fmt: skip
def test_more_actors_than_the_cluster_holds_fail_at_once_naming_what_was_asked_and_what_it_has(
    settings: dict[str, str], says: str, iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray would queue them as pending forever: an error before any actor starts."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    began = time.monotonic()
    remote = run(iris_gate, RayEngine(None), tmp_path / "ray")
    took = time.monotonic() - began
    messages = {check.message for check in remote.checks}
    assert {check.status for check in remote.checks} == {"error"} and len(messages) == 1, messages
    (message,) = messages
    assert message.startswith(f"the Ray cluster (local) cannot hold the actors asked for: {says}"), message
    assert took < 10, f"{took:.1f} s"
    assert _free_cpus(2.0, within=10) == 2.0  # no actor of it was left waiting for a CPU


@pytest.mark.usefixtures("ray_runtime")
def test_actors_the_cluster_cannot_place_fail_after_the_start_timeout_naming_what_is_free(
    iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The totals fit but another job holds the CPUs: the actors wait MODELCHECK_RAY_START_TIMEOUT, not forever."""

    @ray.remote(num_cpus=2)
    class Hold:
        def up(self) -> None:
            return None

    hold = Hold.remote()  # type: ignore[attr-defined]
    try:
        assert ray.wait([hold.up.remote()], timeout=60)[0], "the runtime's 2 CPUs were not free within 60 s"
        monkeypatch.setenv("MODELCHECK_RAY_ACTORS", "1")
        monkeypatch.setenv("MODELCHECK_RAY_START_TIMEOUT", "2")
        began = time.monotonic()
        remote = run(iris_gate, RayEngine(None), tmp_path / "ray")
        took = time.monotonic() - began
    finally:
        ray.kill(hold)
    (message,) = {check.message for check in remote.checks}
    assert message == (
        "the Ray engine could not start its actors for iris: 1 of 1 (1 actor x 1 CPU) not placed on the cluster "
        "within 2 s (MODELCHECK_RAY_START_TIMEOUT); it has 0 CPU, 0 GPU free of 2 CPU, 0 GPU (other jobs hold the "
        "rest, or no one node has what one actor asks): lower MODELCHECK_RAY_ACTORS, MODELCHECK_RAY_CPUS or "
        "MODELCHECK_RAY_GPUS, or raise MODELCHECK_RAY_START_TIMEOUT where the cluster frees them later"
    )
    assert took < 12, f"{took:.1f} s"
    # the actor that waited was ended: the CPUs come back free, none taken by it once the holder is gone
    assert _free_cpus(2.0, within=10) == 2.0
    time.sleep(1)
    assert ray.available_resources().get("CPU", 0.0) == 2.0


SLOW_LOAD = """import os
import time

import torch

PYTEST = {pid}  # the pytest process loads at once; Ray's workers take their time


def build():
    if os.getpid() != PYTEST:
        time.sleep({seconds})
    torch.manual_seed(0)
    return torch.nn.Linear(4, 3)
"""


@pytest.mark.usefixtures("ray_runtime", "one_torch_thread")
def test_a_model_slower_to_load_than_the_start_timeout_is_not_cut_short(
    iris_gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start timeout bounds the wait for the actors to be placed; the model's load is not counted."""
    import os

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "slow_load.py").write_text(SLOW_LOAD.format(pid=os.getpid(), seconds=6), encoding="utf-8")
    gate = tmp_path / "slow.yaml"
    gate.write_text(
        "version: 1\nmodel: {id: slow, source: 'slow_load:build', backend: torch, task: tabular-classification, "
        f"device: cpu, threads: 1, batch_size: 256}}\ndata: {{source: {iris_gate.parent / 'iris.csv'}, "
        "input: [f1, f2, f3, f4], label: kind}\nchecks:\n  - {name: accuracy, metric: accuracy, min: 0.0}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MODELCHECK_RAY_START_TIMEOUT", "3")
    local = run(gate, LocalEngine(), tmp_path / "local")
    began = time.monotonic()
    remote = run(gate, RayEngine(None), tmp_path / "ray")
    assert time.monotonic() - began > 6  # it did wait for the load
    same_results(local, remote)


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
