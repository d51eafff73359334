"""Object detection: COCO metrics equal pycocotools on all images, slices, bootstrap resamples and leave-one-out.

The reference computations here call pycocotools the way its documentation shows (a COCO ground truth,
``loadRes`` of the detections, ``COCOeval(..., "bbox")``), on the images as drawn: a resample's repeated
images become separate images. The labels' shapes and box formats are read with their errors named.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import detection

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

METRICS = ("map", "map_50", "map_75", "mar_100")
NAMES = ("cat", "dog", "bird")
STATS = {"map": 0, "map_50": 1, "map_75": 2, "mar_100": 8}


def scene(rng: np.random.Generator, images: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Random boxes (xywh) per image and detections near them (some misses, some false alarms), distinct scores."""
    boxes, labels, found = [], [], []
    for _ in range(images):
        m = int(rng.integers(0, 4))
        xy, wh = rng.uniform(0, 60, (m, 2)), rng.uniform(4, 30, (m, 2))
        boxes.append(np.hstack([xy, wh]))
        labels.append(rng.integers(0, len(NAMES), m))
        rows = []
        for (x, y, w, h), label in zip(boxes[-1], labels[-1], strict=True):
            if rng.random() < 0.8:
                jitter = rng.normal(0, 3, 4)
                rows.append([x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3], rng.random(),
                             label if rng.random() < 0.85 else (label + 1) % len(NAMES)])  # fmt: skip
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 60, 2)
            rows.append([x, y, x + rng.uniform(4, 30), y + rng.uniform(4, 30), rng.random() * 0.6, rng.integers(3)])
        found.append(np.asarray(rows, dtype=np.float64).reshape(-1, 6))
    return boxes, labels, found


def pycocotools_stats(
    boxes: list[np.ndarray], labels: list[np.ndarray], found: list[np.ndarray], classes: int = 3
) -> np.ndarray:
    """pycocotools' summarize() stats, each list position its own image."""
    images = [{"id": i + 1} for i in range(len(boxes))]
    annotations = [
        {"id": len(images) * 100 + i * 10 + j + 1, "image_id": i + 1, "category_id": int(c), "bbox": list(b),
         "area": float(b[2] * b[3]), "iscrowd": 0}
        for i, (bs, cs) in enumerate(zip(boxes, labels, strict=True))
        for j, (b, c) in enumerate(zip(bs, cs, strict=True))
    ]  # fmt: skip
    results = [
        {"image_id": i + 1, "category_id": int(r[5]), "bbox": [r[0], r[1], r[2] - r[0], r[3] - r[1]], "score": r[4]}
        for i, rows in enumerate(found) for r in rows
    ]  # fmt: skip
    if not results:  # loadRes cannot take none: every class with boxes scores 0 (none: pycocotools' -1)
        return np.full(12, 0.0 if annotations else -1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": k} for k in range(classes)],
        }
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats)


def statistics(metric: str, boxes: Any, labels: Any, found: Any) -> Any:
    truth = detection.GroundTruth(boxes, labels, "objects", "data.jsonl", "xywh")
    return detection.row_statistics(
        CheckSpec(name="c", metric=metric, min=0.0), truth, Outputs(detections=found), NAMES
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), images=st.integers(3, 25))
def test_values_and_resamples_equal_pycocotools(seed: int, images: int) -> None:
    rng = np.random.default_rng(seed)
    boxes, labels, found = scene(rng, images)
    if not any(len(b) for b in boxes):
        boxes[0], labels[0] = np.array([[1.0, 1.0, 10.0, 10.0]]), np.array([0])
    expected = pycocotools_stats(boxes, labels, found)
    drawn = np.sort(rng.integers(0, images, size=(4, images)), axis=1)  # a resample's order does not matter
    for metric in METRICS:
        stats = statistics(metric, boxes, labels, found)
        assert stats.value() == pytest.approx(expected[STATS[metric]], abs=1e-12)
        assert stats.weighted(np.ones((1, images)))[0] == pytest.approx(expected[STATS[metric]], abs=1e-12)
        for rows, value in zip(drawn, stats.resampled(drawn), strict=True):
            again = pycocotools_stats([boxes[i] for i in rows], [labels[i] for i in rows], [found[i] for i in rows])
            assert value == pytest.approx(again[STATS[metric]], abs=1e-12), (metric, rows)


def test_left_out_and_slices_equal_pycocotools_without_those_images() -> None:
    boxes, labels, found = scene(np.random.default_rng(3), 12)
    for metric in METRICS:
        stats = statistics(metric, boxes, labels, found)
        left = stats.left_out()
        assert left.shape == (12,)
        for i in (0, 5, 11):
            kept = [j for j in range(12) if j != i]
            expected = pycocotools_stats([boxes[j] for j in kept], [labels[j] for j in kept], [found[j] for j in kept])
            assert left[i] == pytest.approx(expected[STATS[metric]], abs=1e-12)
        rows = np.array([1, 4, 7, 8])
        expected = pycocotools_stats([boxes[j] for j in rows], [labels[j] for j in rows], [found[j] for j in rows])
        assert stats.value(rows) == pytest.approx(expected[STATS[metric]], abs=1e-12)


def test_the_metrics_of_one_gate_share_one_pycocotools_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    boxes, labels, found = scene(np.random.default_rng(5), 15)
    boxes[0], labels[0] = np.array([[1.0, 1.0, 10.0, 10.0]]), np.array([0])
    expected = pycocotools_stats(boxes, labels, found)
    alone = {metric: statistics(metric, boxes, labels, found) for metric in METRICS}  # each its own evaluation
    calls = []
    original = COCOeval.evaluate
    monkeypatch.setattr(COCOeval, "evaluate", lambda self: calls.append(1) or original(self))
    truth = detection.GroundTruth(boxes, labels, "objects", "data.jsonl", "xywh")
    outputs = Outputs(detections=found)
    drawn = np.sort(np.random.default_rng(6).integers(0, 15, size=(3, 15)), axis=1)
    for metric in METRICS:  # the checks of one gate: the same targets and outputs objects
        stats = detection.row_statistics(CheckSpec(name=metric, metric=metric, min=0.0), truth, outputs, NAMES)
        assert stats.value() == pytest.approx(expected[STATS[metric]], abs=1e-12)
        assert stats.details == alone[metric].details
        np.testing.assert_array_equal(stats.resampled(drawn), alone[metric].resampled(drawn))
        np.testing.assert_array_equal(stats.left_out(), alone[metric].left_out())
    assert len(calls) == 1
    other = Outputs(detections=[rows[:1] for rows in found])  # another model's detections: evaluated anew
    value = detection.row_statistics(CheckSpec(name="m", metric="map", min=0.0), truth, other, NAMES).value()
    assert len(calls) == 2
    assert value == pytest.approx(pycocotools_stats(boxes, labels, other.detections)[0], abs=1e-12)


def test_per_class_ap_and_the_library_are_in_the_details() -> None:
    boxes = [np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 10.0, 10.0]])]
    labels = [np.array([0, 1])]
    found = [np.array([[0.0, 0.0, 10.0, 10.0, 0.9, 0], [50.0, 50.0, 60.0, 60.0, 0.8, 1]])]
    stats = statistics("map", boxes, labels, found)
    assert stats.details["library"] == "pycocotools"
    assert stats.details["per_class_ap"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(0.0)}
    assert stats.value() == pytest.approx(0.5)


def test_no_detections_at_all_scores_zero_and_no_boxes_is_an_error() -> None:
    boxes, labels = [np.array([[0.0, 0.0, 10.0, 10.0]])], [np.array([0])]
    assert statistics("map", boxes, labels, [np.zeros((0, 6))]).value() == 0.0
    with pytest.raises(CheckError, match="needs ground-truth boxes"):
        statistics("map", [np.zeros((0, 4))], [np.zeros(0, dtype=np.int64)], [np.zeros((0, 6))])


FRAME_CELLS = {
    "record of lists": {"bbox": [[1, 2, 3, 4]], "category": ["dog"]},
    "list of objects": [{"bbox": [1, 2, 3, 4], "label": 1}],
    "JSON (CSV)": json.dumps([{"bbox": [1, 2, 3, 4], "category_id": 1}]),
}


@pytest.mark.parametrize("shape", FRAME_CELLS)
def test_the_label_cell_shapes_the_hub_uses(shape: str) -> None:
    frame = pd.DataFrame({"objects": [FRAME_CELLS[shape], []]})
    truth = detection.targets("object-detection", "objects", frame, NAMES)
    assert truth is not None
    assert truth.boxes[0].tolist() == [[1.0, 2.0, 3.0, 4.0]] and truth.labels[0].tolist() == [1]
    assert truth.boxes[1].shape == (0, 4)


@pytest.mark.parametrize(
    ("box_format", "box"), [("xywh", [10, 20, 30, 40]), ("xyxy", [10, 20, 40, 60]), ("cxcywh", [25, 40, 30, 40])]
)
def test_box_formats_become_coco_xywh(box_format: str, box: list[int]) -> None:
    frame = pd.DataFrame({"objects": [[{"bbox": box, "label": "cat"}]]})
    truth = detection.targets("object-detection", "objects", frame, NAMES, box_format=box_format)
    assert truth is not None and truth.boxes[0].tolist() == [[10.0, 20.0, 30.0, 40.0]]


@pytest.mark.parametrize(
    ("cell", "box_format", "message"),
    [
        (
            [{"bbox": [10, 20, -5, 5], "label": "cat"}],
            "xywh",
            r"data row 1 .* object 1: box \[10, 20, -5, 5\] has negative size",
        ),
        ([{"bbox": [10, 20, 5, 5], "label": "cat"}], "xyxy", r"negative size in xyxy; fix the box or data.box_format"),
        ([{"bbox": [1, 2, 3], "label": "cat"}], "xywh", r"is not four finite numbers"),
        ([{"bbox": [1, 2, 3, float("nan")], "label": "cat"}], "xywh", r"is not four finite numbers"),
        ([{"bbox": [1, 2, 3, 4], "label": "horse"}], "xywh", r"label 'horse' is not one of the model's labels \(0=cat"),
        ({"bbox": [[1, 2, 3, 4]], "category": []}, "xywh", r"1 boxes and 0 labels"),
        ([{"box": [1, 2, 3, 4]}], "xywh", r"object 1 is .* each object needs 'bbox'"),
        ("not json", "xywh", r"is not JSON"),
        (None, "xywh", r"is empty; an image without objects is an empty list"),
        ([{"bbox": [1, 2, 3, 4], "label": "cat"}], "yolo", r"unknown data.box_format 'yolo'; use one of xywh, xyxy"),
    ],
)
def test_bad_boxes_name_the_row_column_and_object(cell: Any, box_format: str, message: str) -> None:
    frame = pd.DataFrame({"objects": [cell]})
    with pytest.raises(DataError, match=message) as raised:
        detection.targets("object-detection", "objects", frame, NAMES, source="data.jsonl", box_format=box_format)
    assert "data.jsonl" in str(raised.value)


def test_boxes_outside_the_image_are_named_with_a_hint() -> None:
    frame = pd.DataFrame({"objects": [[{"bbox": [0, 0, 10, 10], "label": 0}], [{"bbox": [50, 0, 20, 10], "label": 0}]]})
    truth = detection.targets("object-detection", "objects", frame, NAMES, source="d.csv")
    assert truth is not None
    detection.check_inside(truth, [(64, 64), (70.5, 64)])  # within the pixel of slack
    outside = (
        r"d.csv: column 'objects' data row 2 .* object 1: box \[50.0, 0.0, 20.0, 10.0\] "
        r"\(x, y, width, height\) lies outside the 64x64 image; is data.box_format \(xywh\)"
    )
    with pytest.raises(DataError, match=outside):
        detection.check_inside(truth, [(64, 64), (64, 64)])
    fractions = pd.DataFrame({"objects": [[{"bbox": [0.5, 0.5, 0.4, 0.2], "label": 0}], []]})
    truth = detection.targets("object-detection", "objects", fractions, NAMES)
    assert truth is not None
    with pytest.raises(DataError, match=r"these look like fractions of the image size .*; give the boxes in pixels"):
        detection.check_inside(truth, [(64, 64), (64, 64)])


def test_the_first_box_outside_is_named_among_many_rows_and_objects() -> None:
    ok, bad = {"bbox": [0, 0, 10, 10], "label": 0}, {"bbox": [60, 0, 10, 10], "label": 1}
    frame = pd.DataFrame({"objects": [[ok], [], [ok, ok, bad], [bad], [ok]]})
    truth = detection.targets("object-detection", "objects", frame, NAMES, source="d.csv")
    assert truth is not None
    detection.check_inside(truth, [(64, 64), (8, 8), (71, 64), (71, 64), (64, 64)])  # the empty row's size is unread
    with pytest.raises(DataError, match=r"data row 3 .*object 3: box \[60.0, 0.0, 10.0, 10.0\] .* 64x64 image"):
        detection.check_inside(truth, [(64, 64), (8, 8), (64, 64), (64, 64), (64, 64)])
    with pytest.raises(DataError, match=r"data row 4 .*object 1: .* 32x64 image"):
        detection.check_inside(truth, [(64, 64), (8, 8), (71, 64), (32, 64), (64, 64)])
    empty = detection.targets("object-detection", "objects", pd.DataFrame({"objects": [[], []]}), NAMES)
    assert empty is not None
    detection.check_inside(empty, [(4, 4), (4, 4)])  # no boxes at all: nothing to check


def test_parity_of_detections_matches_confident_boxes_by_class_and_overlap() -> None:
    from modelcheck.measure.comparison import compare_outputs

    reference = [
        np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 1], [40, 40, 50, 50, 0.2, 1]], dtype=float),
        np.zeros((0, 6)),
        np.array([[0, 0, 10, 10, 0.9, 0]], dtype=float),
    ]
    candidate = [
        np.array([[1, 1, 11, 11, 0.85, 0], [20, 20, 30, 30, 0.7, 0], [0, 0, 5, 5, 0.1, 0]], dtype=float),
        np.zeros((0, 6)),
        np.array([[0, 0, 10, 10, 0.95, 0]], dtype=float),
    ]
    result = compare_outputs(Outputs(detections=reference), Outputs(detections=candidate))
    assert result.compared == "detections"
    # image 1: the cat box agrees (IoU 0.68), the dog box became a cat (disagrees), low scores are left out
    assert result.agreement == pytest.approx(2 / 4)  # 2 agreeing of 4 distinct confident boxes in all
    assert result.row_agreement == pytest.approx(2 / 3)
    assert result.worst == [{"row": 0, "boxes": {"reference": 2, "candidate": 2, "agreeing": 1}}]
    assert result.max_abs_diff == pytest.approx(1.0)  # the matched pairs' largest coordinate or score difference
