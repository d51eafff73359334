"""COCO box metrics with pycocotools, and their bootstrap from pycocotools' own per-image matching.

mAP is not a sum of per-image statistics: it sorts every detection of a class by score across images. So there
is no exact decomposition into the sums :class:`~modelcheck.tasks.base.RowStatistics` uses. Instead
``COCOeval.evaluate()`` runs once per model's detections, shared by every metric check of the gate
(:class:`Matching`: pycocotools matches each image's detections to its boxes at the ten IoU thresholds), and a
resample re-runs only ``accumulate()``'s arithmetic with each image weighted by how often the resample draws
it: the weighted cumulative true/false positives, recall, the precision envelope and the 101 recall points,
for area ``all`` and 100 detections per image. That equals pycocotools' ``accumulate`` on the resample with
the drawn images repeated (tested), except where two detections of one class share a score exactly:
pycocotools orders those by where the images come in the list, here by image and with a repeated image's
copies together. The value on all rows and on a slice is pycocotools' own ``summarize``. Cost: (resamples x
detections x 10 IoU thresholds) per class (benchmarks/tasks.py prints it).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from modelcheck.errors import CheckError

__all__ = ["DetectionStatistics", "Matching", "coco_summary"]

#: Resample rows weighed at once (memory: rows x detections of a class x 8 bytes).
_CHUNK = 64
#: pycocotools' stats index of each metric (summarize(): AP, AP50, AP75, ..., AR@100 at index 8).
_STATS_INDEX = {"map": 0, "map_50": 1, "map_75": 2, "mar_100": 8}
#: pycocotools' recall points (params.recThrs).
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
#: The IoU thresholds (indices into 0.50, 0.55, ..., 0.95) each metric averages over.
_THRESHOLDS = {"map": range(10), "map_50": range(1), "map_75": range(5, 6), "mar_100": range(10)}


class DetectionStatistics:
    """One COCO metric (``map``, ``map_50``, ``map_75``, ``mar_100``) of one model's detections.

    Offers what the checks read from :class:`~modelcheck.tasks.base.RowStatistics`: ``value(rows)``,
    ``weighted(counts)``, ``resampled(chunk)``, ``left_out()`` and ``details``.
    """

    def __init__(
        self,
        metric: str,
        boxes: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        detections: Sequence[np.ndarray],
        label_names: Sequence[str],
        *,
        name: str = "",
        matching: Matching | None = None,
    ) -> None:
        self.metric, self.name = metric, name
        self.label_names = tuple(label_names)
        self._n = len(boxes)
        # One pycocotools evaluation serves every metric of the same detections (map, map_50, ... of one gate).
        if matching is None:
            matching = Matching(boxes, labels, detections, label_names, name=name, metric=metric)
        self._matching: Matching | None = matching
        summary = self._matching.summary
        self._value = summary[metric]
        self.details: dict[str, Any] = {
            "library": "pycocotools", "iou_type": "bbox", "max_detections": 100,
            "per_class_ap": dict(summary["per_class_ap"]),
        }  # fmt: skip
        self._own: tuple[list[list[_Image | None]], list[_Class]] | None = None  # after take/replaced

    def __len__(self) -> int:
        return self._n

    def value(self, rows: np.ndarray | None = None) -> float:
        """pycocotools' value on all images, or on ``rows`` (indices) only."""
        if self._matching is None:  # taken or replaced images: the weighted accumulate (equal to pycocotools, tested)
            counts = (
                np.ones(self._n) if rows is None else np.bincount(np.asarray(rows, dtype=np.int64), minlength=self._n)
            )
            return float(self.weighted(counts[None, :].astype(np.float64))[0])
        if rows is None:
            return self._value
        chosen = sorted({int(i) + 1 for i in np.asarray(rows, dtype=np.int64)})
        return coco_summary(self._matching.evaluate(chosen, self.name, self.metric), self.label_names)[self.metric]

    def resampled(self, chunk: np.ndarray) -> np.ndarray:
        """The metric on each resample of a (resamples, n) array of row indices."""
        from modelcheck.tasks.base import row_counts

        return self.weighted(row_counts(chunk, self._n))

    def weighted(self, counts: np.ndarray) -> np.ndarray:
        """The metric on each resample given as how often it draws each image ((resamples, n))."""
        counts = np.asarray(counts, dtype=np.float64)
        return np.concatenate([self._weighted(counts[i : i + _CHUNK]) for i in range(0, len(counts), _CHUNK)])

    def left_out(self) -> np.ndarray:
        """The metric with each image left out in turn, shape (n,) (the jackknife of the BCa interval)."""
        return np.concatenate([self._weighted(block) for block in _leave_one_out(self._n)])

    def take(self, rows: Sequence[int] | np.ndarray) -> DetectionStatistics:
        """These statistics on the images ``rows`` (indices; a repeated index is another copy of that image),
        reusing pycocotools' matching of each image (benchmarks draw samples this way)."""
        return self._with([[per_class[int(i)] for i in rows] for per_class in self._matches()[0]])

    def replaced(self, other: DetectionStatistics, where: np.ndarray) -> DetectionStatistics:
        """These statistics with the images at ``where`` (a boolean mask) matched as in ``other``: another
        model's detections on the same images (a candidate worse on some images, in benchmarks)."""
        return self._with([[b if swap else a for a, b, swap in zip(mine, theirs, where, strict=True)]
                           for mine, theirs in zip(self._matches()[0], other._matches()[0], strict=True)])  # fmt: skip

    def _with(self, images: list[list[_Image | None]]) -> DetectionStatistics:
        out = copy.copy(self)
        out._own, out._matching = (images, _stacked(images)), None
        out._n = len(images[0]) if images else 0
        return out

    def _matches(self) -> tuple[list[list[_Image | None]], list[_Class]]:
        """Each class's per-image matching and its stacked arrays (read from pycocotools on first use)."""
        if self._own is not None:
            return self._own
        assert self._matching is not None
        return self._matching.images, self._matching.classes

    def _weighted(self, counts: np.ndarray) -> np.ndarray:
        """pycocotools' accumulate on weighted images (area all, 100 detections), then this metric."""
        rows = len(counts)
        steps = _THRESHOLDS[self.metric]
        total = np.zeros(rows)
        classes = np.zeros(rows)
        for matched, ignored, image, score_order, truths in self._matches()[1]:
            positives = counts @ truths  # non-ignored ground-truth boxes drawn, per resample
            valid = positives > 0
            weights = counts[:, image[score_order]]
            value = np.zeros(rows)
            judged = None if ignored.any() else np.cumsum(weights, axis=1)  # no ignored detection: one sum for all t
            for t in steps:
                counted = ~ignored[t][score_order]
                hits = np.cumsum(weights * (matched[t][score_order] & counted), axis=1)
                seen = judged if judged is not None else np.cumsum(weights * counted, axis=1)  # hits + misses
                drawn = np.where(valid, positives, 1.0)
                if self.metric == "mar_100":
                    value += hits[:, -1] / drawn if hits.shape[1] else 0.0
                else:
                    value += _interpolated(hits, drawn, hits / (seen + np.spacing(1)))
            total += np.where(valid, value / len(steps), 0.0)
            classes += valid
        return np.where(classes > 0, total / np.where(classes > 0, classes, 1), -1.0)  # -1: pycocotools' "none"


class Matching:
    """pycocotools' evaluation of one model's detections on all images: what every metric of them reads.

    ``COCOeval.evaluate()`` (the per-image matching), ``accumulate()`` and ``summarize()`` run once here;
    the :class:`DetectionStatistics` of ``map``, ``map_50``, ``map_75`` and ``mar_100`` on the same detections
    share it. The per-image arrays the bootstrap re-weighs are read from it on first use.
    """

    def __init__(
        self,
        boxes: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        detections: Sequence[np.ndarray],
        label_names: Sequence[str],
        *,
        name: str = "",
        metric: str = "map",
    ) -> None:
        self._n = len(boxes)
        self._gt, self._dt = _coco_inputs(boxes, labels, detections, len(label_names))
        self._evaluation = self.evaluate(list(range(1, self._n + 1)), name, metric)
        self.summary = coco_summary(self._evaluation, label_names)
        self._images: list[list[_Image | None]] | None = None
        self._classes: list[_Class] | None = None

    @property
    def images(self) -> list[list[_Image | None]]:
        """pycocotools' matching of each image, per class that has boxes."""
        if self._images is None:
            self._images = _image_matches(self._evaluation, self._n)
        return self._images

    @property
    def classes(self) -> list[_Class]:
        """Per class, every image's detections stacked in score order (:func:`_stacked`)."""
        if self._classes is None:
            self._classes = _stacked(self.images)
        return self._classes

    def evaluate(self, image_ids: list[int], name: str, metric: str) -> Any:
        """A summarised ``COCOeval`` on the images ``image_ids`` (1-based), area ``all`` only."""
        from pycocotools.cocoeval import COCOeval

        if not self._gt.getAnnIds(imgIds=image_ids):
            raise CheckError(f"check {name!r}: {metric} needs ground-truth boxes; these images have none")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            evaluation = COCOeval(self._gt, self._dt, iouType="bbox")
            evaluation.params.imgIds = image_ids
            # area "all" only: the metrics here read no other, and each area costs pycocotools a matching pass
            evaluation.params.areaRng, evaluation.params.areaRngLbl = evaluation.params.areaRng[:1], ["all"]
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return evaluation


def coco_summary(evaluation: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """The metrics of a summarised ``COCOeval`` and the AP of each class that has boxes (name -> AP)."""
    out: dict[str, Any] = {metric: float(evaluation.stats[index]) for metric, index in _STATS_INDEX.items()}
    precision = evaluation.eval["precision"]  # (iou thresholds, recall points, classes, areas, max detections)
    per_class = {}
    for k, class_id in enumerate(evaluation.params.catIds):
        values = precision[:, :, k, 0, -1]
        if (values > -1).any():
            per_class[label_names[class_id]] = float(values[values > -1].mean())
    out["per_class_ap"] = per_class
    return out


def _interpolated(hits: np.ndarray, positives: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """The mean of pycocotools' interpolated precision at its 101 recall points, per row.

    Per row: the precision envelope (the best precision at this recall or beyond) read at the first
    detection whose recall ``hits / positives`` reaches each point, 0 past the last. Recall reaches a point
    from the smallest whole number of hits whose float ratio does (the comparison pycocotools makes), so
    the search runs on whole numbers: each row's hits shifted past the row before make one sorted array,
    and one exact ``searchsorted`` finds every row's points.
    """
    rows, width = hits.shape
    if not width:
        return np.zeros(rows)
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    total = positives[:, None, None]
    tried = np.floor(_RECALL_POINTS[None, :, None] * total) - 1 + np.arange(4)  # the float ratio is within a step
    reaches = tried / total >= _RECALL_POINTS[None, :, None]
    needed = np.take_along_axis(tried, reaches.argmax(axis=2)[..., None], axis=2)[..., 0]  # (rows, points)
    shift = (max(float(hits.max()), float(needed.max())) + 1) * np.arange(rows)[:, None]  # whole numbers: exact
    found = np.searchsorted((hits + shift).ravel(), (needed + shift).ravel(), side="left")
    found = found.reshape(rows, -1) - width * np.arange(rows)[:, None]  # back to each row's own index
    picked = np.take_along_axis(envelope, np.minimum(found, width - 1), axis=1)
    return np.asarray(np.where(found < width, picked, 0.0).sum(axis=1) / len(_RECALL_POINTS))


#: One image's part of one class: its detections' scores (m,), matched and ignored flags (thresholds, m), and
#: its number of non-ignored boxes; None where the image has neither boxes nor detections of the class.
_Image = tuple[np.ndarray, np.ndarray, np.ndarray, int]
#: One class over all images (:func:`_stacked`): matched and ignored flags, image, score order, boxes per image.
_Class = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _image_matches(evaluation: Any, n: int) -> list[list[_Image | None]]:
    """pycocotools' per-image matching (area all, 100 detections), per class that has boxes, per image."""
    areas = len(evaluation.params.areaRng)
    thresholds = len(evaluation.params.iouThrs)
    out = []
    for k, _ in enumerate(evaluation.params.catIds):
        images: list[_Image | None] = []
        for i in range(n):
            e = evaluation.evalImgs[k * areas * n + i]
            images.append(None if e is None else (
                np.asarray(e["dtScores"], dtype=np.float64),
                np.asarray(e["dtMatches"]).reshape(thresholds, -1) != 0,
                np.asarray(e["dtIgnore"]).reshape(thresholds, -1) != 0,
                int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)),
            ))  # fmt: skip
        if any(image is not None and image[3] for image in images):
            out.append(images)
    return out


def _stacked(images: list[list[_Image | None]]) -> list[_Class]:
    """Per class, all images' detections in image order: matched and ignored flags (thresholds x detections), each
    detection's image, their order by descending score (stable, as pycocotools' mergesort), boxes per image."""
    out = []
    for per_image in images:
        found = [(i, e) for i, e in enumerate(per_image) if e is not None]
        truths = np.zeros(len(per_image))
        for i, e in found:
            truths[i] = e[3]
        if not found:
            continue
        scores = np.concatenate([e[0] for _, e in found])
        image = np.concatenate([np.full(len(e[0]), i, dtype=np.int64) for i, e in found])
        matched = np.concatenate([e[1] for _, e in found], axis=1)
        ignored = np.concatenate([e[2] for _, e in found], axis=1)
        out.append((matched, ignored, image, np.argsort(-scores, kind="mergesort"), truths))
    return out


def _leave_one_out(n: int) -> Iterator[np.ndarray]:
    for start in range(0, n, _CHUNK):
        block = np.ones((min(_CHUNK, n - start), n))
        block[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        yield block


def _coco_inputs(
    boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], detections: Sequence[np.ndarray], classes: int
) -> tuple[Any, Any]:
    """pycocotools ``COCO`` objects of the ground truth and the detections (image ids 1..n, category = class id)."""
    from pycocotools.coco import COCO

    annotations: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    for row, (xywh, ids) in enumerate(zip(boxes, labels, strict=True)):
        for box, class_id in zip(xywh.tolist(), ids.tolist(), strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": row + 1, "category_id": int(class_id),
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
    for row, found_here in enumerate(detections):
        for x1, y1, x2, y2, score, class_id in np.asarray(found_here, dtype=np.float64).reshape(-1, 6).tolist():
            found.append({"image_id": row + 1, "category_id": int(class_id), "bbox": [x1, y1, x2 - x1, y2 - y1],
                          "score": score})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": [{"id": row + 1} for row in range(len(boxes))], "annotations": annotations,
                         "categories": [{"id": k} for k in range(classes)]}  # fmt: skip
        truth.createIndex()
        if found:
            predicted = truth.loadRes(found)
        else:  # loadRes cannot take an empty list: an empty result set, as pycocotools would build it
            predicted = COCO()
            predicted.dataset = {"images": truth.dataset["images"], "annotations": [],
                                 "categories": truth.dataset["categories"]}  # fmt: skip
            predicted.createIndex()
    return truth, predicted
