"""Task families: how each kind of model's targets are read and its metrics computed.

One module per task family (``classification``-style tasks stay in :mod:`modelcheck.checks.metric`;
the language, speech and detection tasks live here: ``multilabel``, ``tokens``, ``qa``, ``text2text``,
``generation``, ``speech``, ``detection``).
A family module exposes:

- ``TASKS``: the gate-file task names it serves;
- ``METRICS``: metric name -> its model-index type name (the name the Hub's model card shows);
- ``targets(task, label, frame, label_names, *, inputs, source) -> Any``: the label column(s) read and
  validated (a :class:`~modelcheck.errors.DataError` naming the row and the column for bad values);
  ``label`` is ``data.label`` (a column, or a tuple of columns), ``inputs`` the input columns (tags are
  checked against their words, answers against their contexts), ``source`` the data as the user named it;
- optionally ``inputs(task, columns, frame, *, source) -> Sequence`` (one model input per row) where the
  default (the column's values; two columns zipped into pairs) does not fit, e.g. word lists;
- optionally ``check_targets(targets, inputs) -> None``: a DataError where the targets do not fit the
  decoded inputs (detection: a box outside its image);
- ``row_statistics(check, targets, outputs, label_names) -> RowStatistics``: the check's metric (its
  options in ``check.options``, ``check.average``) as
  per-row sufficient statistics plus a finaliser (:mod:`modelcheck.tasks.base`), so the value on all
  rows, on a slice and on thousands of bootstrap resamples all come from one code path.

Each metric is computed by its reference library (seqeval, rouge-score, sacrebleu, scikit-learn),
imported inside functions so that ``import modelcheck`` stays light. Layer: above ``measure`` and
``models``, below ``checks`` and ``run``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Task name -> the module of its family (imported when a gate of that task runs).
FAMILIES: dict[str, str] = {
    "multi-label-classification": "modelcheck.tasks.multilabel",
    "token-classification": "modelcheck.tasks.tokens",
    "question-answering": "modelcheck.tasks.qa",
    "text-generation": "modelcheck.tasks.generation",
    "automatic-speech-recognition": "modelcheck.tasks.speech",
    "object-detection": "modelcheck.tasks.detection",
    **dict.fromkeys(("text2text-generation", "summarization", "translation"), "modelcheck.tasks.text2text"),
}


def family(task: str) -> ModuleType | None:
    """The family module that serves ``task``, or None for the tasks judged in :mod:`modelcheck.checks.metric`."""
    module = FAMILIES.get(task)
    return None if module is None else importlib.import_module(module)


def serves(task: str, metric: str | None) -> ModuleType | None:
    """The family module computing ``metric`` for ``task``, or None where :mod:`modelcheck.checks.metric` does."""
    found = family(task)
    return found if found is not None and metric in found.METRICS else None


def check_targets(task: str, targets: object, inputs: object) -> None:
    """The family's check of the targets against the decoded inputs, where it has one (a DataError naming the row)."""
    hook = getattr(family(task), "check_targets", None)
    if hook is not None and targets is not None:
        hook(targets, inputs)
