"""Parity of two models' outputs on the same inputs: e.g. a model and its ONNX export, or two revisions.

Pure numpy: :func:`compare_outputs` takes two :class:`~modelcheck.models.backends.Outputs` and measures how far
the candidate is from the reference on the output both produced (embeddings, else scores, else values,
else texts, else labels), and names the rows that differ most.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from modelcheck.errors import CheckError

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.models.backends import Outputs

#: Floor of the denominator of the relative difference, so near-zero reference values do not explode it.
EPS = 1e-6
#: The outputs compared, most informative first.
_FIELDS = ("embeddings", "scores", "values", "tags", "texts", "detections", "multi_labels", "labels")
#: Detections at or above this score take part in box-level agreement (what a user of the detector would see).
CONFIDENT = 0.5
#: Two boxes of one class agree from this intersection over union (COCO's loosest threshold).
SAME_BOX_IOU = 0.5


@dataclass(frozen=True)
class ParityResult:
    """How far a candidate's outputs are from a reference's, over ``n`` rows.

    ``max_abs_diff`` / ``max_rel_diff`` (``|a-b| / max(|a|, EPS)``, ``a`` the reference) cover the compared
    float output; ``min_cosine`` / ``mean_cosine`` the per-row cosine similarity of embeddings; ``agreement``
    the share of rows with the same predicted label (classification), the same label set (multi-label)
    or the same text (generation, question answering); for detections the share of confident boxes (score at
    least :data:`CONFIDENT`) that both models found (same class, IoU at least :data:`SAME_BOX_IOU`), with
    ``row_agreement`` the share of images whose confident boxes all agree; for token tags the share of words
    tagged alike, with
    ``row_agreement`` the share of sentences tagged alike throughout. ``similarity`` (texts) is the mean over
    rows of :func:`text_similarity`, ``min_similarity`` the lowest row's.
    ``worst`` lists up to five rows, worst first: ``{"row", "abs_diff", "cosine", "labels", "texts", "tags"}``
    as applicable (``tags``: the differing words as ``[word index, reference tag, candidate tag]``).
    A mismatched NaN counts as an infinite difference.
    """

    n: int
    max_abs_diff: float | None
    max_rel_diff: float | None
    min_cosine: float | None
    mean_cosine: float | None
    agreement: float | None
    compared: str
    worst: list[dict[str, Any]] = field(default_factory=list)
    row_agreement: float | None = None
    similarity: float | None = None
    min_similarity: float | None = None
    #: Each row's largest absolute difference (float outputs); not in :meth:`to_dict`.
    row_differences: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (without the per-row differences)."""
        out = asdict(self)
        del out["row_differences"]
        return out


def compare_outputs(reference: Outputs, candidate: Outputs, *, worst: int = 5) -> ParityResult:
    """Compare ``candidate`` with ``reference`` row by row; CheckError when they cannot be compared."""
    import numpy as np

    if len(reference) != len(candidate):
        raise CheckError(
            f"cannot compare outputs of different lengths: the reference has {len(reference)} rows, "
            f"the candidate {len(candidate)}; run both models over the same inputs"
        )
    common = [name for name in _FIELDS if getattr(reference, name) is not None and getattr(candidate, name) is not None]
    if not common:
        raise CheckError(
            f"the two outputs have nothing in common to compare: the reference produced {_produced(reference)}, "
            f"the candidate {_produced(candidate)}; compare models of the same task"
        )
    compared = common[0]
    n = len(reference)
    if compared == "texts":
        return _compare_texts(list(reference.texts or []), list(candidate.texts or []), worst)
    if compared == "tags":
        return _compare_tags(list(reference.tags or []), list(candidate.tags or []), worst)
    if compared == "detections":
        return _compare_detections(list(reference.detections or []), list(candidate.detections or []), worst)

    ref = np.asarray(getattr(reference, compared))
    cand = np.asarray(getattr(candidate, compared))
    _check_shapes(compared, ref, cand)
    if compared in ("labels", "multi_labels"):
        same = ref == cand if compared == "labels" else (ref == cand).all(axis=1)
        changed = [int(i) for i in np.flatnonzero(~same)[:worst]]
        return ParityResult(
            n=n,
            max_abs_diff=None,
            max_rel_diff=None,
            min_cosine=None,
            mean_cosine=None,
            agreement=float(same.mean()) if n else None,
            compared=compared,
            worst=[{"row": i, "labels": [_shown(ref[i]), _shown(cand[i])]} for i in changed],
        )

    ref, cand = _matrix(ref, n), _matrix(cand, n)
    diff = _abs_diff(ref, cand)
    rel = diff / np.maximum(np.abs(np.nan_to_num(ref)), EPS)
    row_diff = diff.max(axis=1) if diff.size else np.zeros(n)
    cosine: np.ndarray | None = None
    if compared == "embeddings":
        cosine = _cosine(ref, cand)
        if reference.pair_embeddings is not None and candidate.pair_embeddings is not None:
            ref2, cand2 = np.asarray(reference.pair_embeddings), np.asarray(candidate.pair_embeddings)
            _check_shapes("pair_embeddings", ref2, cand2)
            ref2, cand2 = _matrix(ref2, n), _matrix(cand2, n)
            diff2 = _abs_diff(ref2, cand2)
            rel = np.concatenate([rel, diff2 / np.maximum(np.abs(np.nan_to_num(ref2)), EPS)], axis=1)
            diff = np.concatenate([diff, diff2], axis=1)
            row_diff = diff.max(axis=1) if diff.size else np.zeros(n)
            cosine = np.minimum(cosine, _cosine(ref2, cand2))

    labels: tuple[np.ndarray, np.ndarray] | None = None
    if compared == "scores" and reference.multi_labels is not None and candidate.multi_labels is not None:
        labels = (_label_sets(reference.multi_labels), _label_sets(candidate.multi_labels))
    elif compared == "scores":
        ref_labels = reference.labels if reference.labels is not None else ref.argmax(axis=1)
        cand_labels = candidate.labels if candidate.labels is not None else cand.argmax(axis=1)
        labels = (np.asarray(ref_labels), np.asarray(cand_labels))

    # worst first: a changed label, then the lowest cosine, then the largest difference
    keys: list[np.ndarray] = [-row_diff]
    if cosine is not None:
        keys.append(np.round(np.nan_to_num(cosine, nan=-np.inf), 9))  # rounding noise does not outrank a diff
    if labels is not None:
        keys.append((labels[0] == labels[1]).astype(np.int64))
    order = np.lexsort(keys)[:worst] if n else np.empty(0, dtype=np.int64)
    rows: list[dict[str, Any]] = []
    for i in (int(i) for i in order):
        row: dict[str, Any] = {"row": i, "abs_diff": float(row_diff[i])}
        if cosine is not None:
            row["cosine"] = float(cosine[i])
        if labels is not None:
            row["labels"] = [_item(labels[0][i]), _item(labels[1][i])]
        rows.append(row)
    return ParityResult(
        n=n,
        max_abs_diff=float(diff.max()) if diff.size else None,
        max_rel_diff=float(rel.max()) if rel.size else None,
        min_cosine=float(cosine.min()) if cosine is not None and n else None,
        mean_cosine=float(cosine.mean()) if cosine is not None and n else None,
        agreement=float((labels[0] == labels[1]).mean()) if labels is not None and n else None,
        compared=compared,
        worst=rows,
        row_differences=row_diff,
    )


def text_similarity(a: str, b: str) -> float:
    """How alike two texts are, 0 to 1: difflib ratio, 2·(matching characters) / (both lengths); 1 when both are empty.

    ``autojunk`` is off, so long texts are compared character by character like short ones.
    """
    import difflib

    return 1.0 if a == b else difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _compare_texts(ref: list[str], cand: list[str], worst: int) -> ParityResult:
    import numpy as np

    alike = np.array([text_similarity(a, b) for a, b in zip(ref, cand, strict=True)], dtype=np.float64)
    differing = [int(i) for i in np.argsort(alike, kind="stable") if alike[i] < 1.0]  # least alike first
    return ParityResult(
        n=len(ref),
        max_abs_diff=None,
        max_rel_diff=None,
        min_cosine=None,
        mean_cosine=None,
        agreement=1 - len(differing) / len(ref) if ref else None,
        compared="texts",
        worst=[{"row": i, "texts": [ref[i], cand[i]], "similarity": float(alike[i])} for i in differing[:worst]],
        similarity=float(alike.mean()) if ref else None,
        min_similarity=float(alike.min()) if ref else None,
    )


def _compare_tags(ref: list[list[str]], cand: list[list[str]], worst: int) -> ParityResult:
    """Token tags: the share of words tagged alike and of sentences tagged alike; most differing sentences first."""
    differing: list[tuple[int, list[list[Any]]]] = []
    words = same = 0
    for row, (a, b) in enumerate(zip(ref, cand, strict=True)):
        if len(a) != len(b):
            raise CheckError(
                f"cannot compare the tags of row {row}: the reference tagged {len(a)} words, the candidate {len(b)}"
            )
        changed = [[i, x, y] for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        words += len(a)
        same += len(a) - len(changed)
        if changed:
            differing.append((row, changed))
    differing.sort(key=lambda item: -len(item[1]))
    return ParityResult(
        n=len(ref),
        max_abs_diff=None,
        max_rel_diff=None,
        min_cosine=None,
        mean_cosine=None,
        agreement=same / words if words else None,
        compared="tags",
        worst=[{"row": row, "tags": changed[:10]} for row, changed in differing[:worst]],
        row_agreement=1 - len(differing) / len(ref) if ref else None,
    )


def _compare_detections(ref: list[np.ndarray], cand: list[np.ndarray], worst: int) -> ParityResult:
    """Confident boxes matched greedily (candidate's best score first) to the reference's of the same class."""
    import numpy as np

    matched_total = boxes_total = 0
    per_image = []
    largest = 0.0
    for a, b in zip(ref, cand, strict=True):
        a, b = np.reshape(a, (-1, 6)), np.reshape(b, (-1, 6))
        a, b = a[a[:, 4] >= CONFIDENT], b[b[:, 4] >= CONFIDENT]
        free = np.ones(len(a), dtype=bool)
        matched = 0
        for box in b[np.argsort(-b[:, 4], kind="stable")]:
            overlap = np.where(free & (a[:, 5] == box[5]), _iou(box[:4], a[:, :4]), 0.0)
            if len(a) and overlap.max() >= SAME_BOX_IOU:
                best = int(overlap.argmax())
                free[best] = False
                matched += 1
                largest = max(largest, float(np.abs(a[best, :5] - box[:5]).max()))
        union = len(a) + len(b) - matched
        per_image.append((matched / union if union else 1.0, len(a), len(b), matched))
        matched_total, boxes_total = matched_total + matched, boxes_total + union
    share = np.array([p[0] for p in per_image])
    order = [int(i) for i in np.argsort(share, kind="stable") if share[i] < 1.0]
    return ParityResult(
        n=len(ref), max_abs_diff=largest if matched_total else None, max_rel_diff=None, min_cosine=None,
        mean_cosine=None, agreement=matched_total / boxes_total if boxes_total else 1.0, compared="detections",
        worst=[{"row": i, "boxes": {"reference": per_image[i][1], "candidate": per_image[i][2],
                                    "agreeing": per_image[i][3]}} for i in order[:worst]],
        row_agreement=float((share == 1.0).mean()) if ref else None,
    )  # fmt: skip


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x1, y1, x2, y2) box with each of ``others``."""
    import numpy as np

    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area - inter, 1e-12))


def _label_sets(multi_labels: np.ndarray) -> np.ndarray:
    """Each row's predicted label set as one comparable string of label ids (``"0,3"``)."""
    import numpy as np

    return np.asarray([",".join(map(str, np.flatnonzero(row))) for row in np.asarray(multi_labels, dtype=bool)])


def _shown(value: Any) -> Any:
    """A row's label for the report: an id, or a multi-label row as its label ids."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim == 1:
        return [int(i) for i in np.flatnonzero(value)]
    return _item(value)


def _check_shapes(name: str, ref: np.ndarray, cand: np.ndarray) -> None:
    if ref.shape != cand.shape:
        raise CheckError(
            f"cannot compare {name} of different shapes: the reference's are {tuple(ref.shape)}, "
            f"the candidate's {tuple(cand.shape)}"
        )


def _matrix(array: np.ndarray, n: int) -> np.ndarray:
    """``array`` as float64 rows, one per example."""
    import numpy as np

    return array.astype(np.float64).reshape(n, -1) if n else np.zeros((0, 0))


def _abs_diff(ref: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """``|ref - cand|`` where NaN on both sides is no difference and NaN on one side an infinite one."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        diff = np.abs(ref - cand)
    both = np.isnan(ref) & np.isnan(cand)
    diff[both] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


def _cosine(ref: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity; a zero vector has cosine 1 with a zero vector and 0 with any other."""
    import numpy as np

    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    dots = (ref * cand).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    zero_both = (np.abs(ref).sum(axis=1) == 0) & (np.abs(cand).sum(axis=1) == 0)
    return np.asarray(np.where(zero_both, 1.0, cosine))


def _produced(outputs: Outputs) -> str:
    names = [name for name in (*_FIELDS, "pair_embeddings") if getattr(outputs, name) is not None]
    return ", ".join(names) if names else "nothing"


def _item(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
