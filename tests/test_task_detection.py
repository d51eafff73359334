"""Object detection end to end: a real tiny YOLOS trained in the session, gated through ``pytest --modelcheck``.

``tests/tiny_detection.py`` trains the detector on synthetic scenes (red and blue rectangles). Its gate's
values equal pycocotools on the detections the run saved; an untrained detector fails, and a regression
check against the trained one's baseline sees the drop; bad boxes end the gate with an error naming them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pycocotools")

GATE = """\
version: 1
model: {{id: boxes, source: ../models/{model}, task: object-detection, device: cpu, batch_size: 16}}
data: {{source: ../data/scenes.jsonl, input: image, label: objects}}
checks:
  - {{name: map, metric: map, min: 0.05}}
  - {{name: map_50, metric: map_50, min: 0.2}}
  - {{name: map_75, metric: map_75, min: 0.0}}
  - {{name: recall, metric: mar_100, min: 0.1}}
  - {{name: by_count, metric: map_50, slice_by: count, min: 0.05, min_samples: 5}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_agreement: 0.5}}
  - {{name: speed, kind: latency, batch_size: 8, inputs: fixed, max_ms: 60000, min_iterations: 10, max_time: 2}}
"""


@pytest.fixture(scope="module")
def detection_models(frameworks_imported_once: None) -> None:
    """Build the detectors before any in-process pytester run (which drops the modules first imported in it)."""
    pytest.importorskip("transformers")
    import tiny_detection

    for name in ("detector", "detector-untrained"):
        tiny_detection.shared(name)


def project(
    pytester: pytest.Pytester, model: str, rows: int = 60
) -> list[tuple[np.ndarray, list[list[int]], list[str]]]:
    import tiny_detection

    shutil.copytree(tiny_detection.shared(model), pytester.path / "models" / model)
    scenes = tiny_detection.scenes(rows, seed=21)
    records = tiny_detection.write_scenes(pytester.path / "data" / "scenes", scenes)
    for record, (_, boxes, _) in zip(records, scenes, strict=True):
        record["count"] = len(boxes)
    tiny_detection.write_jsonl(pytester.path / "data" / "scenes.jsonl", records)
    (pytester.path / "gates").mkdir(exist_ok=True)
    return scenes


def run(pytester: pytest.Pytester, gate: str, report: str = "out.json") -> tuple[pytest.RunResult, dict]:
    (pytester.path / "gates" / "boxes.yaml").write_text(gate, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", report)
    return result, json.loads((pytester.path / report).read_text())


@pytest.mark.e2e
@pytest.mark.usefixtures("detection_models", "one_torch_thread")
def test_detector_gate_values_equal_pycocotools_on_its_detections(pytester: pytest.Pytester) -> None:
    import tiny_detection
    from test_task_detection_metrics import pycocotools_stats

    from modelcheck.report.baselines import load_outputs

    scenes = project(pytester, "detector")
    result, report = run(pytester, GATE.format(model="detector"))
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(checks, "passed"), result.outlines[-30:]
    found = load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0].detections
    assert found is not None and len(found) == len(scenes) and all(d.shape[1] == 6 for d in found)
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for _, b, _ in scenes]
    labels = [np.asarray([tiny_detection.NAMES.index(n) for n in names]) for _, _, names in scenes]
    expected = pycocotools_stats(boxes, labels, found, classes=len(tiny_detection.NAMES))
    for name, index in (("map", 0), ("map_50", 1), ("map_75", 2), ("recall", 8)):
        assert checks[name]["value"] == pytest.approx(expected[index], abs=1e-12), name
    assert set(checks["map"]["details"]["per_class_ap"]) == {"red", "blue"}
    one = [i for i, (_, b, _) in enumerate(scenes) if len(b) == 1]
    slices = {s["slice"]: s["value"] for s in checks["by_count"]["details"]["slices"]}
    only_one = pycocotools_stats([boxes[i] for i in one], [labels[i] for i in one], [found[i] for i in one], classes=2)
    assert slices["1"] == pytest.approx(only_one[1], abs=1e-12)
    parity = checks["same_in_bfloat16"]
    assert parity["details"]["compared"] == "detections" and parity["details"]["agreement"] == parity["value"]
    confident = sum(int((d[:, 4] >= 0.5).sum()) for d in found)
    assert confident > len(scenes) / 2 and 0.5 <= parity["value"] <= 1.0  # real boxes were compared


@pytest.mark.e2e
@pytest.mark.usefixtures("detection_models", "one_torch_thread")
def test_untrained_detector_fails_and_a_regression_check_sees_the_drop(pytester: pytest.Pytester) -> None:
    import tiny_detection

    from modelcheck.report.baselines import update_baselines

    project(pytester, "detector")
    checks = "  - {name: map_50, metric: map_50, min: 0.2}\n"
    head = GATE.split("checks:\n")[0] + "checks:\n"
    run(pytester, head.format(model="detector") + checks, "base.json")
    update_baselines(json.loads((pytester.path / "base.json").read_text()), pytester.path / "base.json",
                     pytester.path / "baselines")  # fmt: skip
    shutil.copytree(tiny_detection.shared("detector-untrained"), pytester.path / "models" / "detector-untrained")
    regression = (
        "  - {name: no_drop, kind: regression, metric: map_50, baseline: ../baselines/boxes.json, max_drop: 0.05}\n"
    )
    result, report = run(pytester, head.format(model="detector-untrained") + checks + regression)
    checks_run = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert checks_run["map_50"]["status"] == "failed", result.outlines[-20:]
    assert checks_run["no_drop"]["status"] == "failed" and checks_run["no_drop"]["details"]["interval"] == "bca"
    assert checks_run["no_drop"]["value"] < -0.05
    assert checks_run["no_drop"]["details"]["confidence"] == 0.99 and "99% CI" in checks_run["no_drop"]["message"]


@pytest.mark.e2e
@pytest.mark.usefixtures("detection_models")
def test_a_box_outside_its_image_errors_the_gate_naming_it(pytester: pytest.Pytester) -> None:
    project(pytester, "detector", rows=4)
    path = pytester.path / "data" / "scenes.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[2]["objects"]["bbox"][0] = [20, 20, 30, 5]  # reaches x = 50 in a 32-pixel image
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result, report = run(pytester, GATE.format(model="detector"))
    messages = {c["status"] for c in report["gates"][0]["checks"]}
    assert messages == {"error"}
    text = report["gates"][0]["checks"][0]["message"]
    assert "column 'objects' data row 3" in text and "object 1: box [20.0, 20.0, 30.0, 5.0]" in text, text
    assert "lies outside the 32x32 image" in text
    assert "Traceback" not in result.stdout.str()


def test_init_reads_a_detector_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.gatefile import load_gate
    from modelcheck.gatefile.scaffold import Answers, write_gate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenes.jsonl").write_text(json.dumps({"image": "a.png", "objects": {"bbox": [], "category": []}})
                                           + "\n", encoding="utf-8")  # fmt: skip
    (tmp_path / "detr").mkdir()
    config = {"architectures": ["DetrForObjectDetection"], "id2label": {"0": "car", "1": "person"}}
    (tmp_path / "detr" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    path, _ = write_gate(Answers(model="detr", data="scenes.jsonl"), None)
    gate = load_gate(path)
    assert gate.model.task == "object-detection"
    assert gate.data.input == "image" and gate.data.label == "objects" and gate.data.box_format == "xywh"
    assert [c.metric for c in gate.checks if c.kind == "metric"] == ["map", "map_50"]


@pytest.mark.parametrize(
    ("task", "box_format", "message"),
    [
        ("object-detection", "yolo", r"\$\.data\.box_format.*'yolo'.*xywh"),
        ("image-classification", "xyxy", r"\$\.data\.box_format: data.box_format is for object-detection, not task "
                                         r"'image-classification'; remove it"),
    ],
)  # fmt: skip
def test_gate_files_refuse_an_unknown_or_misplaced_box_format(
    tmp_path: Path, task: str, box_format: str, message: str
) -> None:
    from modelcheck.errors import GateFileError
    from modelcheck.gatefile import load_gate

    (tmp_path / "model").mkdir()
    (tmp_path / "scenes.jsonl").write_text("{}\n", encoding="utf-8")
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{source: ./model, task: {task}}}\n"
        f"data: {{source: scenes.jsonl, input: image, label: objects, box_format: {box_format}}}\n"
        "checks:\n  - {name: q, metric: " + ("map" if task == "object-detection" else "accuracy") + ", min: 0.1}\n",
        encoding="utf-8",
    )
    with pytest.raises(GateFileError, match=message):
        load_gate(gate)


@pytest.mark.parametrize("lengths", [(6, 6, 6), (3, 0, 5, 120), (130, 130)])
def test_post_processed_detections_rank_as_one_image_at_a_time(lengths: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    from modelcheck_transformers._detection import MAX_DETECTIONS, _ranked

    generator = torch.Generator().manual_seed(sum(lengths))
    results = [
        {"boxes": torch.rand(m, 4, generator=generator) * 32, "labels": torch.randint(0, 3, (m,), generator=generator),
         "scores": torch.randint(0, 4, (m,), generator=generator).float() / 4}  # ties: the stable order decides
        for m in lengths
    ]  # fmt: skip
    found = _ranked(results)
    assert len(found) == len(lengths)
    for result, rows in zip(results, found, strict=True):  # the per-image ranking it replaces
        order = result["scores"].argsort(descending=True, stable=True)[:MAX_DETECTIONS]
        expected = torch.cat([result["boxes"][order], result["scores"][order, None],
                              result["labels"][order, None].to(result["boxes"].dtype)], dim=1)  # fmt: skip
        assert rows.dtype == np.float64
        assert rows.shape == (min(len(result["scores"]), MAX_DETECTIONS), 6)
        np.testing.assert_array_equal(rows, expected.numpy().astype(np.float64))
