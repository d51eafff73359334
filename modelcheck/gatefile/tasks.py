"""Tasks: which metrics each one offers, what its inputs and targets look like.

This module is the single table the gate-file validation, the runner and the metrics read; it
imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
EMBEDDING_METRICS = ("cosine_similarity", "spearman")
GENERATION_METRICS = ("exact_match", "contains")

#: Metrics whose value lies in [0, 1], so a min/max outside it can never be met.
UNIT_INTERVAL = frozenset({*CLASSIFICATION_METRICS, "exact_match", "contains"})
#: Metrics whose value lies in [-1, 1].
SIGNED_UNIT_INTERVAL = frozenset({"cosine_similarity", "spearman"})


@dataclass(frozen=True)
class Task:
    """How modelcheck judges one kind of model."""

    name: str
    metrics: tuple[str, ...]
    #: The targets are class labels (names or ids mapped through the model's labels).
    classification: bool = False
    #: ``data.input`` is a list of numeric feature columns rather than one column.
    tabular: bool = False


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("text-classification", CLASSIFICATION_METRICS, classification=True),
        Task("image-classification", CLASSIFICATION_METRICS, classification=True),
        Task("tabular-classification", CLASSIFICATION_METRICS, classification=True, tabular=True),
        Task("tabular-regression", REGRESSION_METRICS, tabular=True),
        Task("feature-extraction", EMBEDDING_METRICS),
        Task("text-generation", GENERATION_METRICS),
    )
}

#: Metrics that need no label column (they compare against something else).
LABEL_FREE_METRICS = frozenset({"cosine_similarity"})
