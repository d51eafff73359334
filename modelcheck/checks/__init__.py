"""The check kinds: one module each, registered in :data:`KINDS`; run/ and the fixtures judge through it.

A check kind is a module here with ``judge(check, run) -> CheckResult``, its name in :data:`KINDS`,
and its part of the gate-file schema (``schemas/gate.schema.json``, the per-kind keys in
``gatefile/build.py``). The modules are imported when a check of their kind is judged.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelcheck.gatefile import CheckSpec, GateSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.cache import ModelCache
    from modelcheck.models.requests import RequestTally
    from modelcheck.report.results import CheckResult

#: Check kind -> the module that judges it.
KINDS: dict[str, str] = {
    "metric": "modelcheck.checks.metric",
    "regression": "modelcheck.checks.regression",
    "parity": "modelcheck.checks.parity",
    "latency": "modelcheck.checks.latency",
    "memory": "modelcheck.checks.memory",
}


@dataclass(frozen=True)
class GateRun:
    """What running one gate hands to each of its checks: the model's outputs on the data, computed once."""

    gate: GateSpec
    model: LoadedModel
    models: ModelCache
    frame: pd.DataFrame
    data_sha256: str | None
    inputs: Sequence[Any]
    #: Class ids, numbers or texts, one per row (None without a label column).
    targets: Any
    outputs: Outputs
    #: The sha256 of every artifact file of the model (keys the ONNX export cache).
    artifacts: list[str]
    #: The memory figures of loading the gate's model in this process (None: loaded earlier without them).
    load_memory: dict[str, Any] | None = None
    #: What one check computed that another of the gate can reuse (a comparison model's outputs).
    shared: dict[Any, Any] = field(default_factory=dict)
    #: A served model under a check with max_error_rate: the prediction pass's requests and failures.
    requests: RequestTally | None = None
    #: Which data rows the server answered (bool, one per data row) when some failed; frame, inputs,
    #: targets and outputs then hold the answered rows only. None: every row.
    answered: np.ndarray | None = None
    #: Every data row's input where ``inputs`` holds only the answered ones: what latency and memory time.
    every_input: Sequence[Any] | None = None

    @property
    def timed_inputs(self) -> Sequence[Any]:
        """The inputs latency and memory checks run the model on: every data row's."""
        return self.inputs if self.every_input is None else self.every_input


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """Judge one check of ``run.gate`` by the module its kind is registered with."""
    module = importlib.import_module(KINDS[check.kind])
    result: CheckResult = module.judge(check, run)
    return result
