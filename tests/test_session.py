"""The runner's model cache, chunked prediction and device skips, and the progress line (no real model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DeviceUnavailableError
from modelcheck.gatefile import CheckSpec, DataSpec, GateSpec, ModelSpec
from modelcheck.models import cache as runner
from modelcheck.models.backends import Outputs
from modelcheck.models.cache import ModelCache
from modelcheck.models.predict import concat_outputs, predict
from modelcheck.pytest_plugin.progress import GateProgress
from modelcheck.report.document import build_report, validate_report
from modelcheck.run.gate import run_gate


class FakeModel:
    """A LoadedModel that labels each text by its length's parity and records its calls."""

    label_names = ("even", "odd")

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.device = "cpu"
        self.closed = False
        self.calls: list[int] = []

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        assert not self.closed, "predict after close"
        self.calls.append(len(inputs))
        labels = np.array([len(text) % 2 for text in inputs], dtype=np.int64)
        return Outputs(labels=labels, scores=np.eye(2, dtype=np.float32)[labels])

    def artifact_files(self) -> list[Path]:
        return []

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.loaded: list[FakeModel] = []

    def load(self, model: ModelSpec) -> FakeModel:
        if model.device == "cuda:7":
            raise DeviceUnavailableError("device 'cuda:7' is not available on this machine (available: cpu)")
        loaded = FakeModel(model)
        self.loaded.append(loaded)
        return loaded


@pytest.fixture()
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    monkeypatch.setattr(runner, "get_backend", lambda name: fake)
    return fake


def spec(source: str = "/models/a", **kw: Any) -> ModelSpec:
    return ModelSpec(id="a", source=source, backend="fake", **kw)


# -- the model cache ------------------------------------------------------------------------------


def test_cache_loads_each_model_once(backend: FakeBackend) -> None:
    cache = ModelCache()
    first = cache.get(spec())
    assert cache.get(spec()) is first
    assert cache.get(replace(spec(), id="other-name", batch_size=1)) is first
    assert cache.loads == 1 and len(backend.loaded) == 1
    assert cache.spec_of(first) == spec() and cache.spec_of(object()) is None


@pytest.mark.parametrize(
    "change",
    [
        {"dtype": "float16"},
        {"weights": "/models/a/other.safetensors"},
        {"tokenizer": "/tok"},
        {"providers": ("CPUExecutionProvider",)},
        {"threads": 2},
        {"graph_optimization": "all"},
        {"allow_pickle": True},
        {"labels": ("neg", "pos")},
        {"trust_remote_code": True},
        {"task": "feature-extraction"},
        {"max_new_tokens": 7},
    ],
)
def test_cache_key_has_every_field_that_changes_the_loaded_model(backend: FakeBackend, change: dict[str, Any]) -> None:
    cache = ModelCache()
    assert cache.get(spec()) is not cache.get(spec(**change))
    assert cache.loads == 2


def test_auto_and_the_device_it_resolves_to_share_a_load(backend: FakeBackend) -> None:
    from modelcheck.models.hardware import resolve_device

    cache = ModelCache()
    assert cache.get(spec(device="auto")) is cache.get(spec(device=resolve_device("auto")))
    assert cache.loads == 1


def test_cache_closes_the_least_recently_used_model_beyond_its_cap(backend: FakeBackend) -> None:
    cache = ModelCache(max_loaded=2)
    a, b = cache.get(spec("/a")), cache.get(spec("/b"))
    assert cache.get(spec("/a")) is a  # a is now the most recently used
    c = cache.get(spec("/c"))
    assert isinstance(b, FakeModel) and b.closed and cache.evictions == 1
    assert isinstance(a, FakeModel) and not a.closed and len(cache) == 2
    assert cache.get(spec("/b")) is not b and cache.loads == 4  # loaded again, a evicted now
    assert a.closed and isinstance(c, FakeModel) and not c.closed
    cache.close()
    assert all(m.closed for m in backend.loaded) and len(cache) == 0


def test_cache_without_a_cap(backend: FakeBackend) -> None:
    cache = ModelCache(max_loaded=0)
    for i in range(10):
        cache.get(spec(f"/m{i}"))
    assert len(cache) == 10 and cache.evictions == 0
    with pytest.raises(ValueError, match="max_loaded"):
        ModelCache(max_loaded=-1)


# -- chunked prediction ---------------------------------------------------------------------------


def test_predict_runs_in_chunks_and_reports_progress() -> None:
    model = FakeModel(spec())
    texts = ["x" * (i % 5) for i in range(1000)]
    seen: list[tuple[int, int]] = []
    outputs = predict(model, texts, batch_size=16, progress=lambda done, total: seen.append((done, total)))
    assert model.calls == [256, 256, 256, 232]
    assert seen == [(0, 1000), (256, 1000), (512, 1000), (768, 1000), (1000, 1000)]
    assert outputs.labels is not None and outputs.scores is not None
    assert outputs.labels.tolist() == [len(t) % 2 for t in texts] and outputs.scores.shape == (1000, 2)
    assert predict(FakeModel(spec()), texts, batch_size=64).labels.tolist() == outputs.labels.tolist()


def test_predict_with_no_rows() -> None:
    assert len(predict(FakeModel(spec()), [], batch_size=8)) == 0


def test_predict_rejects_a_backend_that_drops_rows() -> None:
    class Short(FakeModel):
        def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
            return super().predict(list(inputs)[:-1], batch_size=batch_size)

    with pytest.raises(BackendError, match="returned 255 outputs for 256 inputs"):
        predict(Short(spec()), ["a"] * 300, batch_size=1)


def test_concat_outputs() -> None:
    parts = [
        Outputs(embeddings=np.zeros((2, 3)), texts=["a", "b"]),
        Outputs(embeddings=np.ones((1, 3)), texts=["c"]),
    ]
    joined = concat_outputs(parts)
    assert joined.embeddings is not None and joined.embeddings.shape == (3, 3)
    assert joined.texts == ["a", "b", "c"] and joined.labels is None and len(joined) == 3
    assert concat_outputs(parts[:1]) is parts[0]
    with pytest.raises(BackendError, match=r"Outputs\.texts for some inputs"):
        concat_outputs([parts[0], Outputs(embeddings=np.ones((1, 3)))])


# -- device skips ---------------------------------------------------------------------------------


def gate(tmp_path: Path, device: str) -> GateSpec:
    data = tmp_path / "d.csv"
    data.write_text("text,label\nab,even\nabc,odd\n", encoding="utf-8")
    return GateSpec(
        path=tmp_path / "g.yaml",
        model=spec(device=device),
        data=DataSpec(source=str(data), input="text", label="label"),
        checks=(CheckSpec(name="accuracy", metric="accuracy", min=0.9, stages=("merge",)),),
        stages={"merge": ("accuracy",)},
    )


def test_absent_device_skips_the_gate(backend: FakeBackend, tmp_path: Path) -> None:
    result = run_gate(gate(tmp_path, "cuda:7"), file="g.yaml", models=ModelCache(), stage=None)
    assert result.error is None and result.model["device"] is None and result.data["rows"] is None
    (check,) = result.checks
    assert check.status == "skipped" and "device 'cuda:7' is not available" in check.message
    report = build_report([result], stage=None)
    validate_report(report, source="test")
    assert report["totals"]["skipped"] == 1


@pytest.mark.e2e
def test_gate_on_a_present_device_runs(backend: FakeBackend, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    result = run_gate(gate(tmp_path, "cpu"), file="g.yaml", models=ModelCache(), stage=None)
    assert [c.status for c in result.checks] == ["passed"] and result.model["device"] == "cpu"


# -- the progress line ----------------------------------------------------------------------------


class FakeReporter:
    def __init__(self) -> None:
        self.out: list[str] = []

    def ensure_newline(self) -> None:
        self.out.append("<newline>")

    def rewrite(self, line: str, **markup: bool) -> None:
        self.out.append(f"\r{line}")

    def write(self, text: str, **markup: bool) -> None:
        self.out.append(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_progress(progress: GateProgress, clock: Clock, total: int, step: int, seconds_per_step: float) -> None:
    progress(0, total)
    for done in range(step, total + step, step):
        clock.now += seconds_per_step
        progress(min(done, total), total)


def test_live_progress_on_a_terminal_for_slow_gates() -> None:
    reporter, clock = FakeReporter(), Clock()
    resume = lambda: reporter.out.append("<resume>")  # noqa: E731
    progress = GateProgress(reporter, "gates/a.yaml", live=True, verbose=False, resume=resume, clock=clock)
    run_progress(progress, clock, total=1000, step=250, seconds_per_step=0.5)
    assert reporter.out == [
        "<newline>",
        "\rgates/a.yaml: 250/1000 examples (25%), 500 ex/s, ETA 2 s",
        "\rgates/a.yaml: 500/1000 examples (50%), 500 ex/s, ETA 1 s",
        "\rgates/a.yaml: 750/1000 examples (75%), 500 ex/s, ETA 0 s",
        "\rgates/a.yaml: 1000 examples in 2.0 s (500 ex/s)",
        "<resume>",
    ]


def test_quick_gates_stay_quiet_on_a_terminal() -> None:
    reporter, clock = FakeReporter(), Clock()
    run_progress(GateProgress(reporter, "g", live=True, verbose=False, clock=clock), clock, 1000, 250, 0.01)
    assert reporter.out == []


def test_verbose_log_gets_one_line_per_gate_and_tenths_of_slow_ones() -> None:
    reporter, clock = FakeReporter(), Clock()
    run_progress(GateProgress(reporter, "g", live=False, verbose=True, clock=clock), clock, 400, 256, 0.1)
    assert reporter.out == ["<newline>", "g: 400 examples in 0.2 s (2000 ex/s)"]

    reporter, clock = FakeReporter(), Clock()
    run_progress(GateProgress(reporter, "g", live=False, verbose=True, clock=clock), clock, 1000, 50, 3.0)
    lines = [line for line in reporter.out if line != "<newline>"]
    assert lines[0] == "g: 100/1000 examples (10%), 17 ex/s, ETA 54 s"
    assert lines[1].startswith("\ng: 200/1000 examples (20%)")
    assert len(lines) == 10 and lines[-1] == "\ng: 1000 examples in 60.0 s (17 ex/s)"
