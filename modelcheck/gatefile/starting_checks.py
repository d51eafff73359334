"""The checks ``modelcheck init`` starts a gate with, per task, and the YAML scalars it writes.

Thresholds are placeholders for what the user promises; each task starts with its usual metrics
(the ones its model cards report), written so that the file validates against the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelcheck.gatefile.tasks import TASKS

__all__ = ["quality_checks", "scalar"]


def scalar(value: Any) -> str:
    """A YAML scalar or flow sequence that reads back as ``value``: a string is written bare only when YAML
    reads it back as that same string (not ``null``, ``true``, ``1``, ``@x``, ``#c``), else double-quoted."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_.][\w./:-]*", value) and reads_back(value):
        return value
    return json.dumps(value)


def reads_back(text: str) -> bool:
    import yaml

    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def quality_checks(task: str, inputs: list[str], label: str | None, reference: str | None) -> list[list[str]]:
    """The quality checks a task starts with, as lists of YAML lines (thresholds are placeholders)."""
    if TASKS[task].classification:
        return [
            ["- name: accuracy", "  metric: accuracy", "  min: 0.8                  # placeholder: what you promise"],
            ["- name: macro_f1", "  metric: f1", "  average: macro", "  min: 0.8"],
        ]
    if task == "tabular-regression":
        return [["- name: r2", "  metric: r2", "  min: 0.5                  # placeholder: what you promise"]]
    if task == "text-generation":
        return [["- name: exact_match", "  metric: exact_match", "  min: 0.5                  # placeholder"]]
    if task == "automatic-speech-recognition":  # error rates: lower is better
        return [["- name: wer", "  metric: wer", "  max: 0.3                  # placeholder: what you promise"],
                ["- name: cer", "  metric: cer", "  max: 0.15"]]  # fmt: skip
    if task in _LANGUAGE_CHECKS:
        starts = _LANGUAGE_CHECKS[task]
        return [[f"- name: {name}", f"  metric: {metric}", f"  min: {low}"] for name, metric, low in starts]
    if len(inputs) == 2 and label is not None:
        return [["- name: spearman", "  metric: spearman", "  min: 0.5                  # placeholder"]]
    if reference is not None:
        return [["- name: cosine", "  metric: cosine_similarity", f"  reference: {scalar(reference)}", "  min: 0.95"]]
    return []


#: The quality checks the language tasks start with: (name, metric, placeholder min).
_LANGUAGE_CHECKS = {
    "multi-label-classification": [("micro_f1", "f1", "0.8                  # placeholder: what you promise"),
                                   ("subset_accuracy", "subset_accuracy", "0.5")],
    "token-classification": [("entity_f1", "f1", "0.8                  # placeholder: what you promise"),
                             ("token_accuracy", "token_accuracy", "0.9")],
    "question-answering": [("exact_match", "exact_match", "0.6                  # placeholder: what you promise"),
                           ("squad_f1", "f1", "0.7")],
    "text2text-generation": [("rougeL", "rougeL", "0.3                  # placeholder: what you promise"),
                             ("bleu", "bleu", "20")],
    "summarization": [("rouge1", "rouge1", "0.35                 # placeholder: what you promise"),
                      ("rougeL", "rougeL", "0.3")],
    "translation": [("bleu", "bleu", "20                   # placeholder: what you promise"),
                    ("chrf", "chrf", "45")],
    "object-detection": [("map", "map", "0.3                  # placeholder: what you promise"),
                         ("map_50", "map_50", "0.5")],
}  # fmt: skip
