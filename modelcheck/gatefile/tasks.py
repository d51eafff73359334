"""Tasks: which metrics each one offers, what its inputs and targets look like.

This module is the single table the gate-file validation, the runner and the metrics read; it
imports nothing heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
EMBEDDING_METRICS = ("cosine_similarity", "spearman")
#: Language-task families (computed in :mod:`modelcheck.tasks`).
MULTILABEL_METRICS = ("f1", "precision", "recall", "subset_accuracy", "hamming_loss")
TOKEN_METRICS = ("f1", "precision", "recall", "token_accuracy")
QA_METRICS = ("exact_match", "f1")
TEXT2TEXT_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf", "chrf++", "ter", "exact_match")
LLM_METRICS = (*TEXT2TEXT_METRICS, "contains", "regex", "perplexity")
SPEECH_METRICS = ("wer", "cer")
#: COCO box metrics (pycocotools): mAP over IoU 0.50:0.95, at 0.50 and 0.75, and recall at 100 detections.
DETECTION_METRICS = ("map", "map_50", "map_75", "mar_100")
#: A regression check's confidence where the gate file gives none: 0.95, and 0.99 on the COCO metrics. Their
#: 95% BCa interval passed 5-6% of candidates whose expected drop was the margin (nominal 2.5%, one-sided): a
#: test set holding few of the images where the candidate is worse shows both a small drop and a narrow
#: interval. At 0.99: 1.5-2% (benchmarks/detection_fidelity.py; docs/regression-and-parity.md).
REGRESSION_CONFIDENCE = dict.fromkeys(DETECTION_METRICS, 0.99)


def default_confidence(kind: str, metric: object) -> float:
    """A check's confidence where the gate file gives none (:data:`REGRESSION_CONFIDENCE`)."""
    return REGRESSION_CONFIDENCE.get(metric, 0.95) if kind == "regression" and isinstance(metric, str) else 0.95


#: Check keys that tune a family task's metric (collected into ``CheckSpec.options``); which task takes which
#: is ``Task.options``. ``threshold``: multi-label decision threshold (a number, or label -> number);
#: ``scheme``/``mode``/``entity``: seqeval's tagging scheme, strict mode and one entity type;
#: ``subset``: SQuAD v2's ``HasAns`` / ``NoAns`` rows only.
CHECK_OPTIONS = ("threshold", "scheme", "mode", "entity", "subset", "use_stemmer", "sacrebleu", "normalize", "pattern")
#: ``use_stemmer``: rouge-score's Porter stemmer; ``sacrebleu``: settings of sacrebleu's metric (tokenize, ...);
#: ``normalize``: exact_match/contains normalisation steps; ``pattern``: the regular expression of ``regex``.
_TEXT_OPTIONS = ("use_stemmer", "sacrebleu", "normalize")
#: Tagging schemes of token-classification (seqeval's scheme classes; ``auto`` = seqeval's default mode).
TAG_SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")

#: Metrics whose value lies in [0, 1], so a min/max outside it can never be met.
UNIT_INTERVAL = frozenset(
    {*CLASSIFICATION_METRICS, "exact_match", "contains", "subset_accuracy", "hamming_loss", "token_accuracy",
     "rouge1", "rouge2", "rougeL", "rougeLsum", "regex", *DETECTION_METRICS}
)  # fmt: skip
#: Metrics where a smaller value is better (a regression's "drop" is a rise).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "hamming_loss", "ter", "perplexity", "wer", "cer"})
#: The values other metrics can take (sacrebleu's scores are 0-100; ter and perplexity: lower is better).
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("mae", "rmse", "ter", "wer", "cer"), (0.0, math.inf)),  # WER passes 1 with insertions
    **dict.fromkeys(("bleu", "chrf", "chrf++"), (0.0, 100.0)),
    "perplexity": (1.0, math.inf),
}
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
    #: The family module in :mod:`modelcheck.tasks` computes its targets and metrics (see ``FAMILIES`` there).
    family: bool = False
    #: How many input columns it takes (question answering: question and context).
    inputs: int = 1
    #: ``data.label`` may be a list of columns (multi-label: one 0/1 column per label).
    label_columns: bool = False
    #: The ``average`` values its precision/recall/f1 take (None: the classification ones).
    averages: tuple[str, ...] | None = None
    #: The :data:`CHECK_OPTIONS` its checks take.
    options: tuple[str, ...] = ()


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("text-classification", CLASSIFICATION_METRICS, classification=True),
        Task("image-classification", CLASSIFICATION_METRICS, classification=True),
        Task("tabular-classification", CLASSIFICATION_METRICS, classification=True, tabular=True),
        Task("tabular-regression", REGRESSION_METRICS, tabular=True),
        Task("feature-extraction", EMBEDDING_METRICS),
        Task("text-generation", LLM_METRICS, family=True, options=(*_TEXT_OPTIONS, "pattern")),
        *(
            Task(name, TEXT2TEXT_METRICS, family=True, options=_TEXT_OPTIONS)
            for name in ("text2text-generation", "summarization", "translation")
        ),
        Task(
            "multi-label-classification",
            MULTILABEL_METRICS,
            family=True,
            label_columns=True,
            averages=("micro", "macro", "weighted", "samples"),
            options=("threshold",),
        ),
        Task(
            "token-classification",
            TOKEN_METRICS,
            family=True,
            averages=("micro", "macro", "weighted"),
            options=("scheme", "mode", "entity"),
        ),
        Task("question-answering", QA_METRICS, family=True, inputs=2, options=("subset",)),
        Task("automatic-speech-recognition", SPEECH_METRICS, family=True, options=("normalize",)),
        Task("audio-classification", CLASSIFICATION_METRICS, classification=True),
        Task("object-detection", DETECTION_METRICS, family=True),
    )
}

#: Metrics that need no label column (they compare against something else).
LABEL_FREE_METRICS = frozenset({"cosine_similarity", "regex"})
