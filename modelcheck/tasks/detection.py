"""object-detection: COCO mAP, mAP@50, mAP@75 and mAR@100 with pycocotools.

Targets are the boxes and labels of each image, one cell per row of the label column, in either shape
the Hub's detection datasets use: a record of lists (``{"bbox": [[x, y, w, h], ...], "category": [0, 2]}``,
as in ``datasets``' ``objects`` columns) or a list of objects (``[{"bbox": [...], "label": "cat"}, ...]``);
a CSV cell holds either as JSON. The label key may be ``category``, ``category_id``, ``label`` or
``labels``; labels are class names or ids of the model. Boxes are in pixels, in ``data.box_format``:
``xywh`` (COCO: left, top, width, height; the default), ``xyxy`` (left, top, right, bottom) or
``cxcywh`` (centre, width, height). An image may have no objects.

The model's detections (:attr:`Outputs.detections`) and the targets go to pycocotools' ``COCOeval``
(``iouType="bbox"``); every value the report shows comes from it. The bootstrap reuses its per-image
matching and re-accumulates weighted resamples in numpy (:mod:`modelcheck.tasks.coco`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcheck.errors import CheckError, DataError
from modelcheck.models.backends import data_row
from modelcheck.models.labels import class_ids

if TYPE_CHECKING:
    import pandas as pd

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs
    from modelcheck.tasks.coco import DetectionStatistics, Matching

TASKS = ("object-detection",)
#: metric -> its model-index type name.
METRICS = {"map": "map", "map_50": "map_50", "map_75": "map_75", "mar_100": "mar_100"}
BOX_FORMATS = ("xywh", "xyxy", "cxcywh")
_LABEL_KEYS = ("category", "category_id", "label", "labels")
#: How far (pixels) a box may reach past the image's edge before it is an error (annotation tools round).
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class GroundTruth:
    """Each image's boxes (``(m, 4)`` float64, COCO ``xywh`` pixels) and class ids (``(m,)`` int64)."""

    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    column: str
    source: str
    box_format: str
    #: pycocotools' evaluation of each model's detections on these images (:func:`row_statistics`), kept with
    #: the images so that the checks of one gate (map, map_50, ...) share it and it goes when the gate's data goes.
    matchings: list[tuple[Any, tuple[str, ...], Matching]] = field(default_factory=list, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, rows: Sequence[int] | np.ndarray) -> GroundTruth:
        index = [int(i) for i in rows]
        return GroundTruth([self.boxes[i] for i in index], [self.labels[i] for i in index], self.column,
                           self.source, self.box_format)  # fmt: skip


def targets(
    task: str,
    label: str | tuple[str, ...] | None,
    frame: pd.DataFrame,
    label_names: Sequence[str],
    *,
    inputs: Sequence[str] = (),
    source: str = "the data",
    box_format: str = "xywh",
) -> GroundTruth | None:
    """The boxes and class ids of each row; DataError naming the row, column and object of a bad one."""
    if label is None:
        return None
    if box_format not in BOX_FORMATS:
        raise DataError(f"{source}: unknown data.box_format {box_format!r}; use one of {', '.join(BOX_FORMATS)}")
    column = label if isinstance(label, str) else label[0]
    boxes, raw_labels, places = [], [], []
    for row, cell in enumerate(frame[column].tolist()):
        where = f"{source}: column {column!r} {data_row(row)}"
        raw_boxes, names = _objects(cell, where)
        boxes.append(_to_xywh(raw_boxes, box_format, where))
        raw_labels += names
        places.append(len(raw_labels))
    ids = class_ids(raw_labels, label_names) if raw_labels else np.zeros(0, dtype=np.int64)  # one lookup for all
    if (ids < 0).any():
        first = int(np.argmax(ids < 0))
        row = int(np.searchsorted(places, first, side="right"))
        known = ", ".join(f"{i}={name}" for i, name in enumerate(label_names))
        raise DataError(f"{source}: column {column!r} {data_row(row)}: label {raw_labels[first]!r} is not one of the "
                        f"model's labels ({known})")  # fmt: skip
    labels = np.split(ids.astype(np.int64), places[:-1]) if places else []
    return GroundTruth(boxes, labels, column, source, box_format)


def check_inside(truth: GroundTruth, sizes: Sequence[tuple[int, int]]) -> None:
    """DataError for the first box that leaves its image (``sizes``: (width, height) per row) by over a pixel,
    or for boxes that are all within one pixel of the corner: fractions of the image size, not pixels."""
    counts = np.fromiter((len(b) for b in truth.boxes), dtype=np.int64, count=len(truth.boxes))
    if not counts.sum():
        return
    boxes = np.concatenate(truth.boxes).reshape(-1, 4)  # every object of every image, in row order
    ends = boxes[:, :2] + boxes[:, 2:]
    if float(ends.max()) <= 1.0 and max(max(s) for s in sizes) > 2:
        raise DataError(
            f"{truth.source}: every box in column {truth.column!r} ends within the first pixel of its image: "
            "these look like fractions of the image size (0-1); give the boxes in pixels"
        )
    limits = np.repeat(np.asarray(sizes, dtype=np.float64).reshape(-1, 2), counts, axis=0) + EDGE_TOLERANCE
    outside = (boxes[:, :2] < -EDGE_TOLERANCE).any(axis=1) | (ends > limits).any(axis=1)
    if outside.any():
        first = int(np.argmax(outside))
        row = int(np.searchsorted(np.cumsum(counts), first, side="right"))
        index = first - int(counts[:row].sum())
        width, height = sizes[row]
        raise DataError(
            f"{truth.source}: column {truth.column!r} {data_row(row)} object {index + 1}: box "
            f"{_shown(truth.boxes[row][index].tolist())} (x, y, width, height) lies outside the {width}x{height} "
            f"image; is data.box_format ({truth.box_format}) the format of this column, in pixels?"
        )


def row_statistics(check: CheckSpec, targets: Any, outputs: Outputs, label_names: Sequence[str]) -> DetectionStatistics:
    """The check's COCO metric over the images, with pycocotools' per-image matching kept for resamples."""
    from modelcheck.tasks.coco import DetectionStatistics, Matching

    try:
        import pycocotools  # noqa: F401
    except ImportError:
        raise CheckError(
            f"check {check.name!r}: {check.metric} needs pycocotools: pip install 'modelcheck[detection]'"
        ) from None
    if outputs.detections is None:
        raise CheckError(f"check {check.name!r}: {check.metric} needs the model's detections, which it did not give")
    if targets is None:
        raise CheckError(f"check {check.name!r}: {check.metric} needs the boxes: set data.label")
    if len(outputs.detections) != len(targets):
        raise CheckError(
            f"check {check.name!r}: the model gave detections for {len(outputs.detections)} images, "
            f"the data has {len(targets)}"
        )
    assert check.metric is not None
    names = tuple(label_names)
    matching = next((m for found, known, m in targets.matchings if found is outputs.detections and known == names),
                    None)  # fmt: skip
    if matching is None:
        matching = Matching(targets.boxes, targets.labels, outputs.detections, names, name=check.name,
                            metric=check.metric)  # fmt: skip
        targets.matchings.append((outputs.detections, names, matching))
    return DetectionStatistics(check.metric, targets.boxes, targets.labels, outputs.detections, names,
                               name=check.name, matching=matching)  # fmt: skip


def _objects(cell: Any, where: str) -> tuple[list[Any], list[Any]]:
    """The raw boxes and labels of one cell (a record of lists, a list of objects, or either as JSON)."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            raise DataError(f"{where} is not JSON; write the objects as {_SHAPES}") from None
    if cell is None or (isinstance(cell, float) and cell != cell):
        raise DataError(f"{where} is empty; an image without objects is an empty list []")
    if isinstance(cell, np.ndarray):
        cell = cell.tolist()
    if isinstance(cell, Mapping):
        key = next((k for k in _LABEL_KEYS if k in cell), None)
        if "bbox" not in cell or key is None:
            raise DataError(f"{where} has keys {sorted(map(str, cell))}; it needs 'bbox' and one of "
                            f"{', '.join(_LABEL_KEYS)} ({_SHAPES})")  # fmt: skip
        boxes, labels = _listed(cell["bbox"]), _listed(cell[key])
        if len(boxes) != len(labels):
            raise DataError(f"{where} has {len(boxes)} boxes and {len(labels)} labels; give one label per box")
        return boxes, labels
    if isinstance(cell, (list, tuple)):
        boxes, labels = [], []
        for number, item in enumerate(cell, 1):
            key = next((k for k in _LABEL_KEYS if k in item), None) if isinstance(item, Mapping) else None
            if key is None or "bbox" not in item:
                raise DataError(f"{where} object {number} is {_shown(item)}; each object needs 'bbox' and one of "
                                f"{', '.join(_LABEL_KEYS)}")  # fmt: skip
            boxes.append(item["bbox"])
            labels.append(item[key])
        return boxes, labels
    raise DataError(f"{where} holds {_shown(cell)}; write the objects as {_SHAPES}")


_SHAPES = '{"bbox": [[x, y, w, h], ...], "category": [...]} or [{"bbox": [x, y, w, h], "label": ...}, ...]'


def _listed(value: Any) -> list[Any]:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return (
        [v.tolist() if isinstance(v, np.ndarray) else v for v in value] if isinstance(value, (list, tuple)) else [value]
    )


def _to_xywh(raw: list[Any], box_format: str, where: str) -> np.ndarray:
    """Boxes in ``box_format`` as COCO (x, y, width, height) float64; DataError for a malformed or empty box."""
    out = np.zeros((len(raw), 4), dtype=np.float64)
    for index, box in enumerate(raw):
        numbers = box.tolist() if isinstance(box, np.ndarray) else box
        valid = isinstance(numbers, (list, tuple)) and len(numbers) == 4
        valid = valid and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
        if not valid or not np.all(np.isfinite(np.asarray(numbers, dtype=np.float64))):
            raise DataError(f"{where} object {index + 1}: box {_shown(box)} is not four finite numbers "
                            f"({box_format})")  # fmt: skip
        a, b, c, d = (float(v) for v in numbers)
        if box_format == "xyxy":
            a, b, c, d = a, b, c - a, d - b
        elif box_format == "cxcywh":
            a, b = a - c / 2, b - d / 2
        if c <= 0 or d <= 0:
            size = "negative" if min(c, d) < 0 else "zero"
            raise DataError(f"{where} object {index + 1}: box {_shown(box)} has {size} size in {box_format}; "
                            "fix the box or data.box_format (xywh, xyxy, cxcywh)")  # fmt: skip
        out[index] = (a, b, c, d)
    return out


def _shown(value: Any) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_targets(truth: GroundTruth, inputs: Sequence[Any]) -> None:
    """The family's check of the targets against the inputs: every box inside its image (:func:`check_inside`)."""
    check_inside(truth, [image.size for image in inputs])
