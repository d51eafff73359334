"""``kind: parity``: two ways of running the same model agree on the gate's real data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelcheck.errors import CheckError
from modelcheck.report.numbers import bound_text, value_text
from modelcheck.report.results import CheckResult
from modelcheck.report.samples import thin

if TYPE_CHECKING:
    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec, GateSpec
    from modelcheck.measure.comparison import ParityResult
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.cache import ModelCache

#: Tasks whose ONNX export takes its tokenizer from the export's folder.
_TEXT_TASKS = ("text-classification", "feature-extraction", "multi-label-classification", "token-classification",
               "question-answering")  # fmt: skip


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """The check kind's entry in :data:`modelcheck.checks.KINDS`."""
    return judge_parity(
        check,
        run.gate,
        run.model,
        run.outputs,
        run.inputs,
        run.models,
        artifacts=run.artifacts,
        shared=run.shared,
        run=run,
    )


def judge_parity(
    check: CheckSpec,
    gate: GateSpec,
    model: LoadedModel,
    outputs: Outputs,
    inputs: Sequence[Any],
    models: ModelCache,
    *,
    artifacts: list[str],
    shared: dict[Any, Any] | None = None,
    run: GateRun | None = None,
) -> CheckResult:
    """Run the ``against`` model on the same inputs and compare its outputs with the gate model's."""
    from modelcheck.measure.comparison import compare_outputs
    from modelcheck.models.predict import predict

    assert check.against is not None
    other_spec = check.against
    if check.export:
        from modelcheck.models.export import cached_export

        exported = cached_export(model, artifacts)
        tokenizer = str(exported.parent) if gate.model.task in _TEXT_TASKS else None
        other_spec = replace(other_spec, source=str(exported), tokenizer=tokenizer)
    # Several parity checks against one model (different bounds) run it over the data once.
    shared = {} if shared is None else shared
    if run is not None and (other_spec.endpoint is not None or gate.model.endpoint is not None):
        from modelcheck.checks.compared import compared_outputs

        theirs, served = compared_outputs(other_spec, run, role="against")
    else:
        key = ("parity outputs", models.key(other_spec))
        if key not in shared:
            shared[key] = predict(models.get(other_spec), inputs, batch_size=gate.model.batch_size, name=other_spec.id)
        theirs, served = shared[key], None
    result = compare_outputs(outputs, theirs)

    measured = {
        "max_abs_diff": result.max_abs_diff,
        "max_rel_diff": result.max_rel_diff,
        "min_cosine": result.min_cosine,
        "min_agreement": result.agreement,
        "min_similarity": result.similarity,
    }
    verdicts: list[tuple[str, float, float, bool]] = []
    for name, bound in check.threshold.items():
        value = measured[name]
        if value is None:
            raise CheckError(
                f"check {check.name!r}: {name} cannot be measured on {result.compared} outputs; "
                f"use a threshold that applies to them"
            )
        ok = value >= bound if name.startswith("min_") else value <= bound
        verdicts.append((name, value, bound, ok))

    mine = gate.model.backend if gate.model.endpoint is None else _describe(gate.model, check)
    label = f"{_describe(other_spec, check)} vs {mine}"
    signs = {(True, True): ">=", (True, False): "<", (False, True): "<=", (False, False): ">"}
    parts = [f"{n.removeprefix('min_').removeprefix('max_')} {value_text(v, [b])} "
             f"{signs[n.startswith('min_'), ok]} {bound_text(b)}" for n, v, b, ok in verdicts]  # fmt: skip
    failed = not all(ok for *_, ok in verdicts)
    message = f"{label}: {', '.join(parts)} (n={result.n}, {result.compared})"
    if failed and result.worst:
        message += "; worst rows: " + ", ".join(_row(r) for r in result.worst)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        metric=None,
        status="failed" if failed else "passed",
        message=message,
        value=verdicts[0][1],
        threshold=check.threshold,
        n=result.n,
        details={
            **result.to_dict(),
            "against": served or _against_record(other_spec, check),
            **_for_plots(result, inputs),
        },
    )


#: Characters of a worst row's input the report keeps.
INPUT_CHARS = 200


def _for_plots(result: ParityResult, inputs: Sequence[Any]) -> dict[str, Any]:
    """What the HTML report shows: the worst rows with their text inputs (cut) and the per-row differences
    (thinned, :mod:`modelcheck.report.samples`)."""
    worst = []
    for row in result.to_dict()["worst"]:
        given = inputs[row["row"]] if row["row"] < len(inputs) else None
        if isinstance(given, str) or (isinstance(given, (list, tuple)) and all(isinstance(g, str) for g in given)):
            text = given if isinstance(given, str) else " | ".join(given)
            row["input"] = text if len(text) <= INPUT_CHARS else text[: INPUT_CHARS - 1] + "…"
        worst.append(row)
    extra: dict[str, Any] = {"worst": worst}
    if result.row_differences is not None:
        extra["row_differences"] = thin(result.row_differences)
    return extra


def _describe(spec: Any, check: CheckSpec) -> str:
    if check.export:
        return "onnx export"
    if spec.endpoint is not None:
        return f"{spec.backend} {spec.source} (model {spec.endpoint.model!r})"
    return f"{spec.backend} ({spec.device}{', ' + spec.dtype if spec.dtype else ''})"


def _against_record(spec: Any, check: CheckSpec) -> dict[str, Any]:
    return {"backend": spec.backend, "source": spec.source, "device": spec.device, "dtype": spec.dtype,
            "export": check.export}  # fmt: skip


def _row(row: dict[str, Any]) -> str:
    bits = [f"data row {row['row'] + 1}"]  # counted from 1, as every message names data rows
    if "abs_diff" in row and row["abs_diff"] is not None:
        bits.append(f"abs diff {row['abs_diff']:.3g}")
    if "cosine" in row and row["cosine"] is not None:
        bits.append(f"cosine {row['cosine']:.4f}")
    if "labels" in row and row["labels"] is not None:
        bits.append(f"labels {row['labels'][0]}/{row['labels'][1]}")
    if row.get("tags"):
        shown = ", ".join(f"word {i} {a}/{b}" for i, a, b in row["tags"][:3])
        bits.append(f"{len(row['tags'])} tag(s) differ: {shown}")
    if row.get("similarity") is not None:
        reference, candidate = (_cut(text) for text in row["texts"])
        bits.append(f"similarity {row['similarity']:.3f} {reference}/{candidate}")
    if row.get("boxes"):
        boxes = row["boxes"]
        bits.append(f"{boxes['agreeing']} of {boxes['reference']}/{boxes['candidate']} confident boxes agree")
    return " ".join(bits)


def _cut(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
