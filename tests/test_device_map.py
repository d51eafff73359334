"""``model.device_map``: a transformers model placed by accelerate instead of loaded on one device.

On a CPU machine ``device_map: auto`` places every layer on the CPU (the plumbing is tested for
real here); where GPUs are present the model goes on them, and with two or more ``balanced``
spreads its layers over them (skipped, with the reason, where there are not).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import GateFileError, ModelLoadError
from modelcheck.gatefile import ModelSpec, load_gate

torch = pytest.importorskip("torch")
if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("accelerate") is None:
    pytest.skip("transformers and accelerate are not installed", allow_module_level=True)

from modelcheck_transformers import TransformersBackend  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["good great movie", "bad awful film", "the plot was very boring", "wunderbar klasse film"]
CUDA = torch.cuda.device_count()


def spec(source: Path, **kwargs: Any) -> ModelSpec:
    return ModelSpec(id="sentiment", source=str(source), **kwargs)


def predictions(source: Path, **kwargs: Any) -> tuple[Any, np.ndarray]:
    loaded = TransformersBackend().load(spec(source, **kwargs))
    try:
        return loaded, loaded.predict(TEXTS, batch_size=2).scores
    finally:
        loaded.close()


def test_device_map_auto_loads_through_accelerate_and_predicts_as_one_device(sentiment_model: Path) -> None:
    _, alone = predictions(sentiment_model, device="cpu")
    loaded, placed = predictions(sentiment_model, device_map="auto")
    expected = "cuda:0" if CUDA else "cpu"
    assert loaded.device == expected  # inputs go where the embeddings are
    np.testing.assert_allclose(placed, alone, atol=1e-3 if CUDA else 1e-6)


def test_device_map_without_accelerate_is_a_load_error_that_names_the_fix(
    sentiment_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(ModelLoadError, match=r"device_map 'auto' needs accelerate.*pip install"):
        TransformersBackend().load(spec(sentiment_model, device_map="auto"))


@pytest.mark.parametrize(
    ("model_keys", "message"),
    [
        ("backend: torch, source: 'm:build', task: tabular-classification, device_map: auto",
         r"model\.device_map.*torch backend loads on one device"),
        ("source: ./model, device: cpu, device_map: auto", r"model\.device.*keep device_map and remove device"),
        ("source: ./model, device_map: everywhere", r"model\.device_map"),
    ],
)  # fmt: skip
def test_device_map_that_cannot_apply_is_a_gate_file_error(tmp_path: Path, model_keys: str, message: str) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{{model_keys}}}\ndata: {{source: d.csv, input: text, label: label}}\n"
        "checks:\n  - {name: acc, metric: accuracy, min: 0.5}\n"
    )
    with pytest.raises(GateFileError, match=message):
        load_gate(gate)


@pytest.mark.skipif(CUDA < 2, reason=f"needs two CUDA GPUs to spread a model over (this machine has {CUDA})")
def test_balanced_device_map_spreads_the_layers_over_the_gpus(sentiment_model: Path) -> None:
    _, alone = predictions(sentiment_model, device="cpu")
    loaded = TransformersBackend().load(spec(sentiment_model, device_map="balanced"))
    try:
        used = {str(place) for place in loaded._network.hf_device_map.values()}
        assert len(used) >= 2, loaded._network.hf_device_map
        np.testing.assert_allclose(loaded.predict(TEXTS, batch_size=2).scores, alone, atol=1e-3)
    finally:
        loaded.close()


def test_a_memory_check_of_a_model_spread_over_several_gpus_is_an_error_not_one_device_figure(
    sentiment_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcheck.checks import memory
    from modelcheck.errors import CheckError

    gate_file = tmp_path / "gate.yaml"
    gate_file.write_text(
        f"version: 1\nmodel: {{source: '{sentiment_model}', device_map: auto}}\n"
        "data: {source: d.csv, input: text, label: label}\n"
        "checks:\n  - {name: peak, kind: memory, max_mb: 100}\n"
    )
    gate = load_gate(gate_file)
    monkeypatch.setattr(memory, "available_devices", lambda: ["cpu", "cuda:0", "cuda:1"])  # a two-GPU machine
    with pytest.raises(CheckError, match=r"measure one device.*device_map 'auto' over 2 GPUs"):
        memory.measure_memory_check(gate, gate.checks[0], baseline=False, process="this process")
