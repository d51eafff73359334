"""Canary against production: the gate's served model and the served models its checks compare with
(a regression check's ``baseline_model``, a parity check's ``against``), predicted over the data in
**interleaved** blocks, so that load on the servers and drift of the network hit both alike.

Block ``k`` is ``model.batch_size × endpoint.concurrency`` rows (the requests one side has in flight at
once); each model predicts it in turn, the gate's model first in even blocks and last in odd ones
(A B, B A, A B, ...: ABBA), so neither side always goes first. The outputs of the models compared with
are left in the run's ``shared`` store (key ``("comparison outputs", cache key)``) with the record of
how they were interleaved (``("interleaving", cache key)``); a model compared with that cannot be loaded
or fails a request leaves its error message there instead, which errors only the checks that use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.checks.compared import comparison_key
from modelcheck.errors import ModelcheckError
from modelcheck.gatefile.other_model import described

if TYPE_CHECKING:
    from modelcheck.gatefile import GateSpec, ModelSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.cache import ModelCache
    from modelcheck.models.predict import Progress

__all__ = ["interleaved_partners", "predict_interleaved"]


def interleaved_partners(gate: GateSpec, models: ModelCache) -> list[ModelSpec]:
    """The served models the gate's served model is compared with over its data (none for a model in files).

    Both must stay loaded while predicting: with ``modelcheck_max_loaded_models`` N, the first N - 1.
    """
    if gate.model.endpoint is None:
        return []
    mine = models.key(gate.model)
    found: dict[tuple[Any, ...], ModelSpec] = {}
    for check in gate.checks:
        other = check.baseline_model if check.kind == "regression" else None
        if check.kind == "parity" and not check.export:
            other = check.against
        if other is not None and other.endpoint is not None and models.key(other) != mine:
            found.setdefault(models.key(other), other)
    room = len(found) if models.max_loaded == 0 else max(models.max_loaded - 1, 0)
    return list(found.values())[:room]


def predict_interleaved(
    gate: GateSpec,
    model: LoadedModel,
    inputs: Sequence[Any],
    partners: Sequence[ModelSpec],
    models: ModelCache,
    shared: dict[Any, Any],
    *,
    progress: Progress | None = None,
    on_threads: Any = None,
) -> Outputs:
    """The gate model's outputs over ``inputs``; the partners' outputs (or errors) go to ``shared`` (module doc)."""
    from modelcheck.models.predict import concat_outputs, predict

    assert gate.model.endpoint is not None
    live: list[tuple[tuple[Any, ...], ModelSpec, LoadedModel]] = []
    for spec in partners:
        key = comparison_key(models, spec)
        try:
            live.append((key, spec, models.get(spec)))
        except ModelcheckError as exc:
            shared[key] = f"the model compared with, {described(spec)}, cannot be loaded: {exc}"
    models.get(gate.model)  # keep the gate's model the most recently used
    block = gate.model.batch_size * gate.model.endpoint.concurrency
    total = len(inputs)
    mine: list[Outputs] = []
    theirs: dict[tuple[Any, ...], list[Outputs]] = {key: [] for key, _, _ in live}
    if progress is not None:
        progress(0, total)
    starts = range(0, max(total, 1), block)
    for k, start in enumerate(starts):
        rows = inputs[start : start + block]
        turn: list[tuple[tuple[Any, ...], ModelSpec, LoadedModel] | None] = [None, *live]
        for side in turn if k % 2 == 0 else reversed(turn):
            if side is None:
                threads = on_threads if k == 0 else None
                mine.append(predict(model, rows, batch_size=gate.model.batch_size, name=gate.model.id,
                                    on_threads=threads))  # fmt: skip
                continue
            key, spec, loaded = side
            if key in shared:  # it failed in an earlier block
                continue
            try:
                theirs[key].append(predict(loaded, rows, batch_size=spec.batch_size, name=spec.id))
            except ModelcheckError as exc:
                shared[key] = f"the model compared with, {described(spec)}, failed: {exc}"
        if progress is not None:
            progress(start + len(rows), total)
    for key, _spec, _ in live:
        if key not in shared:
            shared[key] = concat_outputs(theirs[key])
        shared[("interleaving", key)] = {
            "interleaved": True,
            "how": "blocks of rows predicted by each model in turn, ABBA (the gate's model first in even blocks)",
            "block_rows": block,
            "blocks": len(starts),
            "models": [described(gate.model), *(described(s) for _, s, _ in live)],
        }
    return concat_outputs(mine)
