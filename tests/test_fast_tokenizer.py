"""The ONNX backend reads a saved tokenizer.json with ``tokenizers`` alone, and encodes exactly as transformers does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from modelcheck_onnx._fast_tokenizer import FastTokenizer  # noqa: E402

TEXTS = [
    "good",
    "the service was great and the product works",
    "bad " * 300,  # longer than max_length: truncated
    "",
    "unknown wordz here",
]


@pytest.mark.parametrize("padding", [True, "max_length"])
def test_same_ids_masks_and_padding_as_transformers(sentiment_model: Path, padding: bool | str) -> None:
    fast = FastTokenizer(sentiment_model)
    reference = transformers.AutoTokenizer.from_pretrained(str(sentiment_model))
    assert fast.model_max_length == reference.model_max_length and fast.pad_token == reference.pad_token
    options = {"truncation": True, "max_length": 32, "return_attention_mask": True, "return_token_type_ids": True}
    ours, theirs = fast(TEXTS, **options), reference(TEXTS, **options)
    assert set(ours) == set(theirs)
    for key in theirs:
        assert ours[key] == [list(row) for row in theirs[key]], key
    rows = [{k: ours[k][i] for k in ours} for i in range(len(TEXTS))]
    length = 32 if padding == "max_length" else None
    ours_padded = fast.pad(rows, padding=padding, max_length=length, return_tensors="np")
    theirs_padded = reference.pad(rows, padding=padding, max_length=length, return_tensors="np")
    for key in theirs_padded:
        np.testing.assert_array_equal(ours_padded[key], theirs_padded[key], err_msg=key)


def test_loading_a_text_onnx_model_imports_no_transformers(sentiment_model: Path, tmp_path: Path) -> None:
    """The onnx extra no longer needs transformers to read a tokenizer saved beside the model."""
    from modelcheck.cli import main

    assert main(["export", "onnx", str(_gate(sentiment_model, tmp_path)), "-o", str(tmp_path / "onnx")]) == 0
    code = (
        "import sys\n"
        "from modelcheck.gatefile import ModelSpec\n"
        "from modelcheck.models.backends import get_backend\n"
        f"spec = ModelSpec(id='m', source={str(tmp_path / 'onnx' / 'model.onnx')!r}, backend='onnx', device='cpu',"
        f" tokenizer={str(tmp_path / 'onnx')!r})\n"
        "model = get_backend('onnx').load(spec)\n"
        "print(model.predict(['good', 'bad'], batch_size=2).labels.tolist())\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def _gate(model: Path, folder: Path) -> Path:
    data = folder / "data.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n")
    gate = folder / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: m, source: {str(model)!r}, device: cpu}}\n"
        f"data: {{source: {str(data)!r}, input: text, label: label}}\n"
        "checks:\n  - {name: accuracy, metric: accuracy, min: 0.5}\n"
    )
    return gate
