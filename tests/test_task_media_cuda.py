"""Speech and detection gates on a CUDA device: batched on the GPU, timed by CUDA events, compared with the CPU.

The same tiny real models as ``test_task_speech.py`` and ``test_task_detection.py`` (trained in the session)
run with ``device: cuda``. Each gate's metric equals the reference library (jiwer, scikit-learn,
pycocotools) on the outputs the GPU run saved, a parity check runs the model again on the CPU and
agrees, latency is timed with CUDA events and memory read from torch's CUDA allocator. Skipped, with the
reason, where torch sees no CUDA device.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("jiwer")
pytest.importorskip("pycocotools")
pytest.importorskip("librosa")

from test_task_detection import detection_models, project  # noqa: F401  (the module fixture builds the detectors)
from test_task_speech import speech_models, speech_project, tones_project  # noqa: F401  (the module fixture trains the models)


@pytest.fixture(scope="module")
def cuda(frameworks_imported_once: None) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False here)")


def gate(model: str, task: str, data: str, label: str, quality: str, same: str) -> str:
    """A gate on ``device: cuda``: ``quality`` (metric and bound), parity with the CPU (``same``), speed, memory."""
    column = "image" if task == "object-detection" else "audio"
    return f"""\
version: 1
model: {{id: m, source: ../models/{model}, task: {task}, device: cuda, batch_size: 8}}
data: {{source: ../data/{data}, input: {column}, label: {label}}}
checks:
  - {{name: quality, {quality}}}
  - {{name: same_on_the_cpu, kind: parity, against: {{device: cpu}}, {same}}}
  - {{name: speed, kind: latency, batch_size: 4, inputs: fixed, max_ms: 60000, min_iterations: 10, max_time: 2}}
  - {{name: memory, kind: memory, max_mb: 20000}}
"""


def run_on_the_gpu(pytester: pytest.Pytester, text: str) -> tuple[dict[str, Any], Any]:
    """Run the gate; every check passed, on the GPU, timed and measured by CUDA; its checks and saved outputs."""
    from modelcheck.report.baselines import load_outputs

    (pytester.path / "gates" / "g.yaml").write_text(text, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert {n: c["status"] for n, c in checks.items()} == dict.fromkeys(checks, "passed"), result.outlines[-30:]
    assert report["gates"][0]["model"]["device"].startswith("cuda")
    assert checks["speed"]["details"]["latency"]["timer"] == "cuda-events"
    memory = checks["memory"]["details"]["memory"]
    assert memory["method"] == "torch.cuda.max_memory_allocated" and memory["cuda"]["peak_allocated"] > 0
    assert checks["same_on_the_cpu"]["details"]["against"]["device"] == "cpu"
    return checks, load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0]


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["ctc", "whisper"])
@pytest.mark.usefixtures("cuda", "speech_models")
def test_speech_recognition_on_the_gpu_equals_jiwer_and_the_cpu(pytester: pytest.Pytester, model: str) -> None:
    import jiwer

    references = speech_project(pytester, model, rows=32)
    text = gate(model, "automatic-speech-recognition", "speech.csv", "text", "metric: wer, max: 10.0",
                "min_similarity: 0.9")  # fmt: skip
    checks, outputs = run_on_the_gpu(pytester, text)
    texts = [str(t) for t in outputs.texts or []]
    assert any(texts) and checks["quality"]["value"] == pytest.approx(jiwer.wer(references, texts), abs=1e-12)
    assert checks["same_on_the_cpu"]["details"]["compared"] == "texts"
    assert checks["speed"]["details"]["latency"]["real_time_factor"] > 0


@pytest.mark.e2e
@pytest.mark.usefixtures("cuda", "speech_models")
def test_audio_classification_on_the_gpu_equals_scikit_learn_and_the_cpu(pytester: pytest.Pytester) -> None:
    from sklearn.metrics import accuracy_score

    truth = tones_project(pytester)
    text = gate("audio-classifier", "audio-classification", "tones.csv", "label", "metric: accuracy, min: 0.0",
                "min_agreement: 0.95")  # fmt: skip
    checks, outputs = run_on_the_gpu(pytester, text)
    predicted = [("no_a", "has_a")[int(i)] for i in outputs.labels]
    assert checks["quality"]["value"] == pytest.approx(accuracy_score(truth, predicted))


@pytest.mark.e2e
@pytest.mark.usefixtures("cuda", "detection_models")
def test_object_detection_on_the_gpu_equals_pycocotools_and_the_cpu(pytester: pytest.Pytester) -> None:
    import tiny_detection
    from test_task_detection_metrics import pycocotools_stats

    scenes = project(pytester, "detector")
    text = gate("detector", "object-detection", "scenes.jsonl", "objects", "metric: map, min: 0.0",
                "min_agreement: 0.9")  # fmt: skip
    checks, outputs = run_on_the_gpu(pytester, text)
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for _, b, _ in scenes]
    labels = [np.asarray([tiny_detection.NAMES.index(n) for n in names]) for _, _, names in scenes]
    expected = pycocotools_stats(boxes, labels, outputs.detections, classes=len(tiny_detection.NAMES))
    assert checks["quality"]["value"] == pytest.approx(expected[0], abs=1e-12) and expected[0] > 0.05
    assert checks["same_on_the_cpu"]["details"]["compared"] == "detections"
