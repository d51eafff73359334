"""Task families: how each kind of model's targets are read and its metrics computed.

One module per task family (``classification``-style tasks stay in :mod:`modelcheck.checks.metric`;
the language tasks live here: ``multilabel``, ``tokens``, ``qa``, ``text2text``, ``generation``).
A family module exposes:

- ``TASKS``: the gate-file task names it serves;
- ``METRICS``: metric name -> its model-index type name (the name the Hub's model card shows);
- ``targets(task, label, frame, label_names, *, source) -> Any``: the label column read and validated
  (a :class:`~modelcheck.errors.DataError` naming the row and the column for bad values);
- ``row_statistics(check, targets, outputs, label_names) -> RowStatistics``: the check's metric as
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
FAMILIES: dict[str, str] = {}


def family(task: str) -> ModuleType | None:
    """The family module that serves ``task``, or None for the tasks judged in :mod:`modelcheck.checks.metric`."""
    module = FAMILIES.get(task)
    return None if module is None else importlib.import_module(module)
