"""The rules a gate file's checks and data obey for its task (what the schema cannot say): options, inputs, metrics."""

from __future__ import annotations

import math
from typing import Any

from modelcheck.gatefile.spec import DataSpec
from modelcheck.gatefile.tasks import (
    CHECK_OPTIONS,
    LABEL_FREE_METRICS,
    METRIC_RANGES,
    SIGNED_UNIT_INTERVAL,
    TASKS,
    UNIT_INTERVAL,
    Task,
)


def check_options(task: Task, check: dict[str, Any], index: int, fail: Any) -> dict[str, Any]:
    """The task options of a check (``CHECK_OPTIONS``), refused for tasks that do not take them; ``average`` checked."""
    options = {key: check[key] for key in CHECK_OPTIONS if key in check}
    for key in options:
        if key not in task.options:
            takers = [t.name for t in TASKS.values() if key in t.options]
            raise fail(["checks", index, key], f"{key} does not apply to task {task.name!r} (it is an option of "
                       f"{', '.join(takers)})")  # fmt: skip
    average = check.get("average")
    if average is not None and task.averages is not None and average not in task.averages:
        raise fail(["checks", index, "average"], f"task {task.name!r} averages {', '.join(task.averages)}, "
                   f"not {average!r}")  # fmt: skip
    if task.family and "pos_label" in check:
        raise fail(["checks", index, "pos_label"], f"pos_label is for binary classification, not task {task.name!r}")
    if task.averages is None and average == "samples":
        raise fail(["checks", index, "average"], "average samples is for multi-label-classification")
    return options


def check_inputs(task: Task, data: DataSpec, fail: Any) -> None:
    columns = data.input_columns
    if data.label is not None and not isinstance(data.label, str) and not task.label_columns:
        raise fail(["data", "label"], f"task {task.name!r} takes one label column; a list of label columns "
                       "(one 0/1 column per label) is for multi-label-classification")  # fmt: skip
    if data.box_format is not None and task.name != "object-detection":
        raise fail(["data", "box_format"], f"data.box_format is for object-detection, not task {task.name!r}; "
                   "remove it")  # fmt: skip
    if task.tabular:
        return
    if task.inputs == 2:
        if len(columns) != 2:
            raise fail(["data", "input"], f"task {task.name!r} takes two input columns [question, context]; "
                       f"got {', '.join(columns)}")  # fmt: skip
        return
    if task.name == "feature-extraction":
        if len(columns) > 2:
            raise fail(
                ["data", "input"],
                f"feature-extraction takes one text column, or two for pairs; got {len(columns)}: {', '.join(columns)}",
            )
        return
    if len(columns) != 1:
        raise fail(
            ["data", "input"],
            f"task {task.name!r} takes one input column; got {', '.join(columns)} "
            "(lists of columns are for tabular tasks and feature-extraction pairs)",
        )


def check_metric(task: Task, check: dict[str, Any], index: int, data: DataSpec, fail: Any) -> None:
    metric = check["metric"]
    where = ["checks", index, "metric"]
    if isinstance(metric, str) and metric not in task.metrics:
        raise fail(
            where,
            f"metric {metric!r} is not available for task {task.name!r}; its metrics: {', '.join(task.metrics)} "
            "(or {evaluate: path} for a local evaluate module)",
        )
    if isinstance(metric, str):
        low, high = metric_range(metric)
        for bound in ("min", "max"):
            value = check.get(bound)
            if value is not None and not low <= value <= high:
                raise fail(
                    ["checks", index, bound],
                    f"{bound} {value} is out of range for {metric}, whose values lie in [{low:g}, {high:g}]",
                )
    low_bound, high_bound = check.get("min"), check.get("max")
    if low_bound is not None and high_bound is not None and low_bound > high_bound:
        raise fail(["checks", index], f"min {low_bound} is greater than max {high_bound}; no value can pass")
    needs_reference = metric == "cosine_similarity"
    if needs_reference and "reference" not in check:
        raise fail(
            ["checks", index],
            "cosine_similarity needs reference: a .npy file of reference embeddings, one row per data row",
        )
    if not needs_reference and "reference" in check:
        raise fail(["checks", index, "reference"], "reference is only used by metric cosine_similarity")
    if (metric == "regex") != ("pattern" in check):
        raise fail(["checks", index], "metric regex needs pattern: the regular expression each output is searched for"
                   if metric == "regex" else "pattern is only used by metric regex")  # fmt: skip
    if data.label is None and metric not in LABEL_FREE_METRICS:
        raise fail(
            ["data"],
            f"check {check['name']!r} (metric {metric if isinstance(metric, str) else 'evaluate'}) compares "
            "against expected outputs: give data.label, the column that holds them",
        )


def metric_range(metric: str) -> tuple[float, float]:
    if metric in UNIT_INTERVAL:
        return 0.0, 1.0
    if metric in SIGNED_UNIT_INTERVAL:
        return -1.0, 1.0
    return METRIC_RANGES.get(metric, (-math.inf, math.inf))
