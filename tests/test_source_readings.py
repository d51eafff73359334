"""A model source that reads like a path but does not exist: both readings in one message, at once when offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelcheck.gatefile import load_gate
from modelcheck.models.cache import ModelCache
from modelcheck.run.gate import run_gate

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"


def gate(folder: Path, source: str, backend: str) -> Path:
    path = folder / "gates" / "g.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""version: 1
model: {{id: m, source: {source}, backend: {backend}, task: text-classification, device: cpu}}
data: {{source: {EXAMPLE_DATA}, input: text, label: label}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.5}}
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("backend", ["transformers", "onnx"])
def test_a_missing_path_read_as_a_hub_id_says_both_readings(tmp_path: Path, backend: str) -> None:
    pytest.importorskip("torch")  # the device's probe: imported before the clock starts
    pytest.importorskip("transformers" if backend == "transformers" else "onnxruntime")
    path = gate(tmp_path, "models/sentiment", backend)
    started = time.perf_counter()
    result = run_gate(load_gate(path), file="gates/g.yaml", models=ModelCache(), stage=None)
    took = time.perf_counter() - started
    (check,) = result.checks
    assert check.status == "error"
    local = tmp_path / "gates" / "models" / "sentiment"
    assert f"model.source 'models/sentiment' is no local path ({local} does not exist;" in check.message
    assert "read as a Hub id" in check.message
    assert ".." not in check.message
    if backend == "transformers":  # HF_HUB_OFFLINE=1 (conftest): no retries, no transformers call
        assert "not in the local Hugging Face cache and downloads are disabled (HF_HUB_OFFLINE=1)" in check.message
        assert took < 2.0, took
