"""``python -m modelcheck.run.isolate GATE CHECK [--baseline]``: a memory check measured in a fresh process.

The check's process (``isolate: true``) starts this one, which loads the gate, measures the check's
phase for the model (or its ``baseline_model``) and prints the result as one line of JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from modelcheck.checks.memory import measure_memory_check
from modelcheck.errors import ModelcheckError
from modelcheck.gatefile import GateSpec, load_gate
from modelcheck.run.data import load_data
from modelcheck.run.inputs import model_inputs


def first_rows(gate: GateSpec, rows: int) -> Sequence[Any]:
    """The model inputs of the first ``rows`` rows of the gate's data."""
    spec = replace(gate.data, limit=min(gate.data.limit or rows, rows))
    data = load_data(spec, columns=list(spec.input_columns), task=gate.model.task)
    return model_inputs(gate.model.task, spec.input_columns, data.frame, base=data.base)


def main(argv: list[str] | None = None) -> int:
    """Measure in this fresh process and print the result as JSON (exit 2 with the reason otherwise)."""
    args = list(sys.argv[1:] if argv is None else argv)
    baseline = "--baseline" in args
    gate_path, check_name = [a for a in args if a != "--baseline"]
    try:
        gate = load_gate(gate_path)
        check = gate.check(check_name)
        spec = check.baseline_model if baseline else gate.model
        inputs = None
        if check.phase == "inference" and spec is not None:
            inputs = first_rows(gate, check.batch_size or spec.batch_size)
        result = measure_memory_check(gate, check, baseline=baseline, process="fresh process", inputs=inputs)
    except ModelcheckError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
