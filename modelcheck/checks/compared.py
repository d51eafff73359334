"""The outputs over the gate's data of a model a check compares with (a regression check's ``baseline_model``,
a parity check's ``against``), computed once per gate and shared between its checks.

Where both are served, ``run/interleave.py`` computed them interleaved with the gate's own prediction and left
them (or the error that stopped them) in ``run.shared``; otherwise they are computed here, after the gate's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelcheck.errors import CheckError, DeviceUnavailableError, ModelcheckError
from modelcheck.gatefile.other_model import described

if TYPE_CHECKING:
    from modelcheck.checks import GateRun
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import Outputs
    from modelcheck.models.cache import ModelCache

__all__ = ["compared_outputs", "comparison_key"]


def comparison_key(models: ModelCache, spec: ModelSpec) -> tuple[Any, ...]:
    """Where a compared model's outputs over the gate's data are kept in the run's ``shared`` store."""
    return ("comparison outputs", models.key(spec))


def compared_outputs(spec: ModelSpec, run: GateRun, *, role: str) -> tuple[Outputs, dict[str, Any]]:
    """``spec``'s outputs on the rows the checks judge (the answered ones), and what the report says of it.

    CheckError (naming the model, its URL for a served one) when it cannot be loaded or its prediction fails.
    """
    import numpy as np

    from modelcheck.models.predict import predict

    key = comparison_key(run.models, spec)
    loaded = None
    if key not in run.shared:
        try:
            loaded = run.models.get(spec)
            run.shared[key] = predict(loaded, run.timed_inputs, batch_size=spec.batch_size, name=spec.id)
        except DeviceUnavailableError:
            raise
        except ModelcheckError as exc:
            run.shared[key] = f"{role} {described(spec)}: {exc}"
        run.models.get(run.gate.model)  # keep the gate's model the most recently used
    found = run.shared[key]
    if isinstance(found, str):
        raise CheckError(found if found.startswith(role) else f"{role}: {found}")
    record: dict[str, Any] = {"backend": spec.backend, "source": spec.source}
    if spec.endpoint is not None:
        loaded = loaded or run.models.get(spec)
        endpoint_record = getattr(loaded, "endpoint_record", None)
        record["endpoint"] = endpoint_record() if callable(endpoint_record) else {"url": spec.source}
        run.models.get(run.gate.model)
    record.update(run.shared.get(("interleaving", key)) or {"interleaved": False, "how": _why_not(run, spec)})
    outputs: Outputs = found
    if run.answered is not None:
        outputs = outputs.take(np.flatnonzero(run.answered))
    return outputs, record


def _why_not(run: GateRun, spec: ModelSpec) -> str:
    if run.gate.model.endpoint is None and spec.endpoint is None:
        return "both are models in files (run in this process): predicted after the gate's model"
    if run.gate.model.endpoint is None or spec.endpoint is None:
        return "one side is a model in files (run in this process): predicted after the gate's model"
    return "predicted after the gate's model (the engine or modelcheck_max_loaded_models left no room to interleave)"
