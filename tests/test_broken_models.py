"""A broken model must never pass: non-finite outputs and missing tokenizers are errors, not verdicts."""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelcheck.errors import BackendError, ModelLoadError
from modelcheck.gatefile import ModelSpec, load_gate
from modelcheck.models.backends import Outputs
from modelcheck.models.cache import ModelCache
from modelcheck.models.predict import check_finite
from modelcheck.run.gate import run_gate

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

BROKEN = """
import torch
from torch import nn


class Constant(nn.Module):
    def __init__(self, outputs: int, value: float, nan_rows: int) -> None:
        super().__init__()
        self.outputs, self.value, self.nan_rows = outputs, value, nan_rows
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.outputs)
        out[:, 0] = 1.0  # class 0 wins wherever the output is finite
        for row in range(x.shape[0]):
            if self.seen + row >= 100 - self.nan_rows:  # the last nan_rows rows of the data
                out[row] = self.value
        self.seen += x.shape[0]
        return out.squeeze(1) if self.outputs == 1 else out


def classifier() -> nn.Module:
    return Constant(2, float("nan"), 100)


def classifier_tail() -> nn.Module:
    return Constant(2, float("inf"), 3)


def regressor() -> nn.Module:
    return Constant(1, float("nan"), 100)
"""


@pytest.fixture()
def broken_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "broken_models.py").write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("broken_models", None)


def tabular_gate(folder: Path, source: str, task: str, metric: str, bound: str) -> Path:
    """100 rows, 90% of them class 0 (so argmax-of-NaN = class 0 would score 0.9)."""
    labels_key = ", labels: [neg, pos]" if task.endswith("classification") else ""
    rng = np.random.default_rng(0)
    labels = np.array([0] * 90 + [1] * 10)
    lines = ["a,b,label"] + [f"{rng.normal():.4f},{rng.normal():.4f},{label}" for label in labels]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gate = folder / "gate.yaml"
    gate.write_text(
        textwrap.dedent(f"""\
        version: 1
        model: {{id: broken, source: "{source}", backend: torch, task: {task}, device: cpu, batch_size: 16{{labels}}}}
        data: {{source: data.csv, input: [a, b], label: label}}
        checks:
          - {{name: quality, metric: {metric}, {bound}}}
        """).replace("{labels}", labels_key),
        encoding="utf-8",
    )
    return gate


@pytest.mark.parametrize(
    ("source", "task", "metric", "bound", "rows", "first"),
    [
        ("broken_models:classifier", "tabular-classification", "accuracy", "min: 0.8", 100, 0),
        ("broken_models:classifier_tail", "tabular-classification", "accuracy", "min: 0.8", 3, 97),
        ("broken_models:regressor", "tabular-regression", "mae", "max: 10", 100, 0),
    ],
)
def test_non_finite_outputs_are_an_error_naming_model_rows_and_first_row(
    broken_module: Path, source: str, task: str, metric: str, bound: str, rows: int, first: int
) -> None:
    gate = load_gate(tabular_gate(broken_module, source, task, metric, bound))
    result = run_gate(gate, file="gate.yaml", models=ModelCache(), stage=None)
    (check,) = result.checks
    assert check.status == "error", check
    assert "model broken produced non-finite outputs" in check.message
    assert f"for {rows} of 100 rows (first: data row {first + 1} (counting from 1" in check.message
    assert "Input contains NaN" not in check.message


def test_check_finite_accepts_finite_outputs_and_names_the_field() -> None:
    check_finite(Outputs(labels=np.array([0, 1]), scores=np.array([[0.2, 0.8], [0.9, 0.1]])), "m")
    check_finite(Outputs(texts=["a", "b"]), "m")
    with pytest.raises(BackendError, match=r"in embeddings for 1 of 2 rows \(first: data row 2 \(counting from 1"):
        check_finite(Outputs(embeddings=np.array([[0.0, 1.0], [np.nan, 0.0]])), "m")


@pytest.mark.e2e
def test_a_model_folder_without_tokenizer_files_does_not_load(sentiment_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(sentiment_model, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)
    from modelcheck.models.backends import get_backend

    spec = ModelSpec(id="sentiment", source=str(folder), task="text-classification", device="cpu")
    with pytest.raises(ModelLoadError, match=r"has no tokenizer files \(expected one of tokenizer.json") as caught:
        get_backend("transformers").load(spec)
    assert str(folder) in str(caught.value) and "tokenizer.save_pretrained" in str(caught.value)


@pytest.mark.e2e
def test_a_tokenizer_much_smaller_than_the_model_vocabulary_is_refused(sentiment_model: Path, tmp_path: Path) -> None:
    import json

    folder = tmp_path / "wrong-tokenizer"
    shutil.copytree(sentiment_model, folder)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    kept = sorted(vocab, key=vocab.get)[:5]  # the special tokens and little else: another tokenizer
    tokenizer["model"]["vocab"] = {token: i for i, token in enumerate(kept)}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    from modelcheck.models.backends import get_backend

    spec = ModelSpec(id="sentiment", source=str(folder), task="text-classification", device="cpu")
    with pytest.raises(ModelLoadError, match=r"knows \d+ tokens but the model's embedding table has \d+"):
        get_backend("transformers").load(spec)
