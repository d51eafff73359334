"""What the fixtures' arguments are checked against: devices, tasks and the metric checks a test asks for."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelcheck.gatefile import CheckSpec

DEVICES = "auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps"


def check_device(device: str, what: str) -> str:
    from modelcheck.models.hardware import DEVICE_PATTERN

    wanted = device.strip().lower()
    if not DEVICE_PATTERN.match(wanted):
        raise ValueError(f"{what} {device!r} is not a device; use {DEVICES}")
    return wanted


def check_task(task: str) -> None:
    from modelcheck.gatefile.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"task {task!r} is not supported; tasks: {', '.join(TASKS)}")


def check_metric_name(metric: str, task: str) -> None:
    from modelcheck.gatefile.tasks import TASKS

    if metric not in TASKS[task].metrics:
        raise ValueError(f"metric {metric!r} is not one of task {task!r}'s: {', '.join(TASKS[task].metrics)}")


METRIC_KEYS = ("metric", "name", "average", "pos_label", "slice_by", "min_samples", "reference")


def metric_check(entry: str | Mapping[str, Any], task: str, root: Path) -> CheckSpec:
    from modelcheck.gatefile import CheckSpec
    from modelcheck.gatefile.tasks import CHECK_OPTIONS  # the language tasks' options (threshold, scheme, ...)

    if isinstance(entry, str):
        entry = {"metric": entry}
    unknown = sorted(set(entry) - {*METRIC_KEYS, *CHECK_OPTIONS})
    if "metric" not in entry or unknown:
        raise TypeError(
            f"metrics entry {dict(entry)!r}: give a metric name or a mapping with 'metric' and any of "
            f"{', '.join((*METRIC_KEYS[1:], *CHECK_OPTIONS))}"
        )
    check_metric_name(entry["metric"], task)
    options = {k: v for k, v in entry.items() if k != "name" and k not in CHECK_OPTIONS}
    if options.get("reference") is not None:
        options["reference"] = str(root / os.fspath(options["reference"]))  # an absolute one stays as it is
    task_options = {k: v for k, v in entry.items() if k in CHECK_OPTIONS}
    return CheckSpec(name=str(entry.get("name") or entry["metric"]), options=task_options, **options)
