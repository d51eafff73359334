"""The semantic rules of gate files (what the schema cannot say) and the resolved GateSpec they build."""

from __future__ import annotations

import difflib
from dataclasses import replace
from functools import cache, partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from modelcheck.errors import GateFileError
from modelcheck.gatefile.endpoint import build_endpoint
from modelcheck.gatefile.other_model import is_served, other_model
from modelcheck.gatefile.paths import SourcePathError, find_value, public_url, resolve_source
from modelcheck.gatefile.source import json_path, line_of
from modelcheck.gatefile.spec import ACCURACY_LIKE, CheckSpec, DataSpec, GateSpec, ModelSpec
from modelcheck.gatefile.task_rules import check_inputs, check_metric, check_options
from modelcheck.gatefile.tasks import CHECK_OPTIONS, TASKS, default_confidence

#: The entry-point group backends register in (``modelcheck.models`` loads them from it).
BACKENDS_GROUP = "modelcheck.backends"


@cache
def available_backends() -> tuple[str, ...]:
    """Names of the installed backends (entry points in the ``modelcheck.backends`` group)."""
    return tuple(sorted({ep.name for ep in entry_points(group=BACKENDS_GROUP)}))


def build_gate(document: dict[str, Any], gate_path: Path, shown: str, node: yaml.Node | None) -> GateSpec:
    """The GateSpec of a schema-valid document; GateFileError names the place of a rule it breaks."""
    try:
        return _build_gate(document, gate_path, shown, node)
    except SourcePathError as exc:
        parts = find_value(document, exc.raw) or []
        raise GateFileError(shown, str(exc), json_path=json_path(parts), line=line_of(node, parts)) from None


def _build_gate(document: dict[str, Any], gate_path: Path, shown: str, node: yaml.Node | None) -> GateSpec:
    try:
        base = gate_path.resolve().parent
    except (OSError, RuntimeError) as exc:
        raise GateFileError(shown, f"cannot resolve the gate file's folder ({exc})") from None

    def fail(parts: list[str | int], problem: str) -> GateFileError:
        return GateFileError(shown, problem, json_path=json_path(parts), line=line_of(node, parts))

    def path_of(value: str | None) -> str | None:
        return None if value is None else resolve_source(value, base, bare_hub_names=False)

    model = _build_model(document["model"], fail, gate_path=gate_path, base=base)
    task = TASKS[model.task]
    data_doc = document["data"]
    data = DataSpec(
        source=resolve_source(data_doc["source"], base, bare_hub_names=True),
        input=data_doc["input"] if isinstance(data_doc["input"], str) else tuple(data_doc["input"]),
        label=_label_columns(data_doc.get("label")),
        split=data_doc.get("split", "test"),
        limit=data_doc.get("limit"),
        box_format=data_doc.get("box_format", "xywh" if model.task == "object-detection" else None),
    )
    check_inputs(task, data, fail)

    names: dict[str, int] = {}
    checks: list[CheckSpec] = []
    for index, check in enumerate(document["checks"]):
        name = check["name"]
        if name in names:
            raise fail(
                ["checks", index, "name"],
                f"duplicate check name {name!r} (also at $.checks[{names[name]}]); check names must be unique",
            )
        names[name] = index
        kind = check.get("kind", "metric")
        _check_kind_keys(kind, check, index, fail)
        metric, evaluate = check.get("metric"), None
        if isinstance(metric, dict):
            evaluate = {"path": path_of(metric["evaluate"]), "key": metric.get("key"), "args": metric.get("args", {})}
            metric = f"evaluate:{Path(metric['evaluate']).stem}"
        if metric is not None:
            check_metric(task, check, index, data, fail)
        options = check_options(task, check, index, fail)
        per_row = not task.family or task.name == "text-generation"  # its exact_match/contains are 0/1 per row
        if kind == "regression" and check.get("test") == "mcnemar" and (metric not in ACCURACY_LIKE or not per_row):
            raise fail(
                ["checks", index, "test"],
                f"test mcnemar compares right/wrong per example, so it needs an accuracy-like metric "
                f"({', '.join(sorted(ACCURACY_LIKE))}) of a classification or text-generation task, not {metric!r}"
                f"{f' of {task.name}' if task.family else ''}; use test: paired-bootstrap",
            )
        against = check.get("against")

        def other(raw: Any, key: str, suffix: str, index: int = index) -> ModelSpec:
            build = partial(_build_model, gate_path=gate_path, base=base)
            return other_model(document["model"], model, raw, ["checks", index, key], fail, build, suffix=suffix)

        served_against = against is not None and (model.endpoint is not None or is_served(against))
        checks.append(
            CheckSpec(
                name=name,
                metric=metric,
                kind=kind,
                baseline=_resolve_baseline(check.get("baseline"), base),
                max_drop=check.get("max_drop"),
                test=check.get("test", "paired-bootstrap"),
                confidence=check.get("confidence", default_confidence(kind, metric)),
                resamples=check.get("resamples", 2000),
                seed=check.get("seed", 0),
                on_missing=check.get("on_missing", "inconclusive"),
                against=other(against, "against", "against")
                if served_against and not against.get("export")
                else None
                if against is None
                else _against_model(model, against, base, index, fail),
                export=bool(against and against.get("export")),
                max_abs_diff=check.get("max_abs_diff"),
                max_rel_diff=check.get("max_rel_diff"),
                min_cosine=check.get("min_cosine"),
                min_agreement=check.get("min_agreement"),
                min_similarity=check.get("min_similarity"),
                **_performance_keys(check, model, base, other, partial(fail, ["checks", index, "baseline_model"])),
                evaluate=evaluate,
                reference=path_of(check.get("reference")),
                average=check.get("average"),
                pos_label=check.get("pos_label"),
                options=options,
                min=check.get("min"),
                max=check.get("max"),
                slice_by=check.get("slice_by"),
                min_samples=check.get("min_samples", 1),
                max_error_rate=check.get("max_error_rate"),
                line=line_of(node, ["checks", index]),
            )
        )

    stages: dict[str, tuple[str, ...]] = {}
    for stage, members in (document.get("stages") or {}).items():
        if members == "all":
            stages[stage] = tuple(names)
            continue
        for position, member in enumerate(members):
            if member not in names:
                near = difflib.get_close_matches(member, list(names), n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise fail(
                    ["stages", stage, position],
                    f"stage {stage!r} names check {member!r}, which does not exist; {hint}"
                    f"checks in this file: {', '.join(names)}",
                )
        stages[stage] = tuple(members)

    return GateSpec(
        path=gate_path.resolve(),
        model=model,
        data=data,
        checks=tuple(
            replace(check, stages=tuple(stage for stage, members in stages.items() if check.name in members))
            for check in checks
        ),
        stages=stages,
        publish=document.get("publish"),
    )


def _build_model(doc: dict[str, Any], fail: Any, *, gate_path: Path, base: Path) -> ModelSpec:
    backend = doc.get("backend", "transformers")
    installed = available_backends()
    if backend not in installed:
        near = difflib.get_close_matches(backend, installed, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise fail(
            ["model", "backend"],
            f"unknown backend {backend!r}; {hint}installed backends: {', '.join(installed) or 'none'} "
            "(a backend registers itself in the 'modelcheck.backends' entry-point group)",
        )

    def path_of(key: str) -> str | None:
        value = doc.get(key)
        return None if value is None else resolve_source(value, base, bare_hub_names=False)

    device_map = doc.get("device_map")
    if device_map is not None and backend != "transformers":
        raise fail(["model", "device_map"], f"device_map places a transformers model over devices; the {backend} "
                   "backend loads on one device: remove device_map and set model.device")  # fmt: skip
    if device_map is not None and doc.get("device", "auto") not in ("auto", "cuda"):
        raise fail(["model", "device"], f"device {doc['device']!r} and device_map {device_map!r} both say where "
                   "the model goes: keep device_map and remove device (or set it to auto)")  # fmt: skip
    providers = doc.get("providers")
    model_id = doc.get("id", gate_path.stem)
    endpoint = build_endpoint(doc, backend, model_id, base, fail)
    return ModelSpec(
        id=model_id,
        source=public_url(endpoint.url) if endpoint else resolve_source(doc["source"], base, bare_hub_names=False),
        backend=backend,
        task=doc.get("task", "text-classification"),
        device=doc.get("device", "auto"),
        batch_size=doc.get("batch_size", 32),
        trust_remote_code=doc.get("trust_remote_code", False),
        dtype=doc.get("dtype"),
        weights=path_of("weights"),
        allow_pickle=doc.get("allow_pickle", False),
        tokenizer=path_of("tokenizer"),
        providers=tuple(providers) if providers else None,
        threads=doc.get("threads"),
        graph_optimization=doc.get("graph_optimization"),
        max_new_tokens=doc.get("max_new_tokens", 32),
        stop=tuple(doc.get("stop") or ()),
        labels=tuple(doc["labels"]) if doc.get("labels") else None,
        device_map=device_map,
        endpoint=endpoint,
    )


_KIND_KEYS = {
    "metric": {"metric", "average", "pos_label", "min", "max", "slice_by", "min_samples", "reference",
               "max_error_rate", *CHECK_OPTIONS},
    "regression": {"metric", "average", "pos_label", "baseline", "baseline_model", "max_drop", "test", "confidence",
                   "resamples", "seed", "on_missing", "max_error_rate", *CHECK_OPTIONS},
    "parity": {"against", "max_abs_diff", "max_rel_diff", "min_cosine", "min_agreement", "min_similarity"},
    "latency": {"batch_size", "percentile", "inputs", "threads", "min_iterations", "min_time", "max_time", "max_ms",
                "max_ratio", "baseline_model", "confidence", "resamples", "seed", "on_uncertain", "concurrency",
                "max_error_rate"},
    "memory": {"batch_size", "phase", "isolate", "threads", "max_mb", "max_ratio", "baseline_model"},
}  # fmt: skip
_KIND_REQUIRED: dict[str, tuple[str, ...]] = {
    "metric": ("metric",),
    "regression": ("metric", "max_drop"),
    "parity": ("against",),
    "latency": (),
    "memory": (),
}
#: Keys of latency and memory checks copied as written (the rest: see _performance_keys).
_PERFORMANCE_KEYS = ("batch_size", "percentile", "inputs", "threads", "min_iterations", "min_time", "max_time",
                     "on_uncertain", "phase", "isolate", "max_ms", "max_mb", "max_ratio", "concurrency")  # fmt: skip
_PARITY_BOUNDS = ("max_abs_diff", "max_rel_diff", "min_cosine", "min_agreement", "min_similarity")


def _check_kind_keys(kind: str, check: dict[str, Any], index: int, fail: Any) -> None:
    """Each kind of check takes its own keys: say which kind a stray key belongs to."""
    for key in check:
        if key in ("name", "kind") or key in _KIND_KEYS[kind]:
            continue
        owners = [k for k, keys in _KIND_KEYS.items() if key in keys]
        raise fail(
            ["checks", index, key],
            f"{key} does not apply to a {kind} check"
            + (f" (it belongs to {' and '.join(owners)} checks)" if owners else ""),
        )
    for key in _KIND_REQUIRED[kind]:
        if key not in check:
            raise fail(["checks", index], f"a {kind} check needs {key}")
    if kind == "metric" and "min" not in check and "max" not in check:
        raise fail(["checks", index], "a metric check needs a threshold: give min, max, or both")
    if kind == "regression":
        _check_regression_keys(check, index, fail)
    if kind == "regression" and isinstance(check.get("metric"), dict):
        raise fail(["checks", index, "metric"], "regression checks compare built-in metrics, not evaluate modules")
    if kind == "parity" and not any(bound in check for bound in _PARITY_BOUNDS):
        raise fail(["checks", index], f"a parity check needs at least one threshold: {', '.join(_PARITY_BOUNDS)}")
    if kind in ("latency", "memory"):
        _check_performance_keys(kind, check, index, fail)


def _check_regression_keys(check: dict[str, Any], index: int, fail: Any) -> None:
    """A regression check compares with a saved baseline (a file) or a live one (baseline_model), not both."""
    if ("baseline" in check) == ("baseline_model" in check):
        raise fail(["checks", index], "a regression check needs baseline (saved outputs: a file or hub://) or "
                   "baseline_model (a model run now on the same rows, e.g. production's server), not both")  # fmt: skip
    if "baseline_model" not in check:
        return
    if check["baseline_model"] == "self":
        raise fail(["checks", index, "baseline_model"], "baseline_model: self is the A/A mode of latency checks; "
                   "a regression check compares with another model")  # fmt: skip
    if "on_missing" in check:
        raise fail(["checks", index, "on_missing"], "on_missing says what a missing baseline file means; a "
                   "baseline_model is run, never missing (unreachable, it errors): remove on_missing")  # fmt: skip
    if check.get("metric") == "perplexity":
        raise fail(["checks", index, "metric"], "perplexity against a baseline_model is not supported: save the "
                   "baseline's outputs (modelcheck baseline update) and give baseline")  # fmt: skip


def _check_performance_keys(kind: str, check: dict[str, Any], index: int, fail: Any) -> None:
    absolute = "max_ms" if kind == "latency" else "max_mb"
    if absolute not in check and "max_ratio" not in check:
        raise fail(["checks", index], f"a {kind} check needs a threshold: {absolute} (absolute), max_ratio "
                   "(against baseline_model), or both")  # fmt: skip
    if "max_ratio" in check and "baseline_model" not in check:
        also = ", or self for an A/A run" if kind == "latency" else ""
        raise fail(["checks", index, "max_ratio"],
                   f"max_ratio compares with a baseline model: give baseline_model (a model source{also})")  # fmt: skip
    if "baseline_model" in check and "max_ratio" not in check:
        example = "1.10: at most 10% slower" if kind == "latency" else "1.2: at most 20% more memory"
        raise fail(["checks", index, "baseline_model"],
                   f"baseline_model is compared by max_ratio: give max_ratio (e.g. {example})")  # fmt: skip
    if kind == "memory" and check.get("baseline_model") == "self":
        raise fail(["checks", index, "baseline_model"], "baseline_model: self is the A/A mode of latency checks "
                   "(the timing noise floor); a memory check compares with another model source")  # fmt: skip
    if kind == "latency" and "max_error_rate" in check and "concurrency" not in check:
        raise fail(["checks", index, "max_error_rate"], "max_error_rate on a latency check judges the requests "
                   "of a load test: give concurrency (requests in flight), or put it on a metric check")  # fmt: skip
    if "concurrency" in check and "baseline_model" in check:
        raise fail(["checks", index, "concurrency"], "a load test (concurrency) is judged by max_ms; comparing with "
                   "baseline_model under load is not supported yet: drop baseline_model and max_ratio")  # fmt: skip
    if "concurrency" in check and "max_ms" not in check:
        raise fail(["checks", index], "a load test (concurrency) needs max_ms: the bound on its percentile")
    if check.get("min_time", 1.0) > check.get("max_time", 60.0):
        raise fail(["checks", index, "max_time"], f"max_time {check.get('max_time', 60.0)} is less than min_time "
                   f"{check.get('min_time', 1.0)}; timing could never reach min_time")  # fmt: skip


def _performance_keys(check: dict[str, Any], model: ModelSpec, base: Path, other: Any, fail_at: Any) -> dict[str, Any]:
    """The CheckSpec fields of a latency or memory check, or a regression check's baseline_model."""
    raw = check.get("baseline_model")
    if check.get("kind") == "regression":
        return {} if raw is None else {"baseline_model": other(raw, "baseline_model", "baseline")}
    if check.get("kind") not in ("latency", "memory"):
        return {}
    keys = {key: check[key] for key in _PERFORMANCE_KEYS if key in check}
    if raw == "self":
        keys["baseline_self"] = True
    elif raw is not None and (model.endpoint is not None or isinstance(raw, dict) or is_served({"source": raw})):
        keys["baseline_model"] = other(raw, "baseline_model", "baseline")
        if check.get("kind") == "memory" and (model.endpoint or keys["baseline_model"].endpoint):
            raise fail_at("a memory check measures this process, not a server: compare memory between models in files")
    elif raw is not None:
        source = resolve_source(raw, base, bare_hub_names=False)
        keys["baseline_model"] = replace(model, id=f"{model.id}-baseline", source=source)
    return keys


def _resolve_baseline(raw: str | None, base: Path) -> str | None:
    if raw is None or raw.startswith("hub://"):
        return raw
    return resolve_source(raw, base, bare_hub_names=False)


def _against_model(model: ModelSpec, doc: dict[str, Any], base: Path, index: int, fail: Any) -> ModelSpec:
    """The model a parity check compares with: this gate's model with the keys ``against`` changes."""
    changes: dict[str, Any] = {k: v for k, v in doc.items() if k != "export"}
    for key in ("source", "tokenizer", "weights"):
        if key in changes:
            changes[key] = resolve_source(changes[key], base, bare_hub_names=False)
    for key in ("providers", "labels"):
        if key in changes:
            changes[key] = tuple(changes[key])
    if doc.get("export"):
        if model.endpoint is not None:
            raise fail(["checks", index, "against", "export"], "export: true exports the gate's model files to ONNX; "
                       "a model behind a server has none here: compare with model files or another server")  # fmt: skip
        if changes.get("backend", "onnx") != "onnx" or "source" in changes:
            raise fail(["checks", index, "against"], "export: true compares with this model exported to ONNX: "
                       "give no source, and backend onnx (or none)")  # fmt: skip
        changes["backend"] = "onnx"
    elif "backend" not in changes and "source" not in changes and len(changes) == 0:
        raise fail(["checks", index, "against"], "against names nothing to compare with: give backend/source, "
                   "a device or dtype, or export: true")  # fmt: skip
    backend = changes.get("backend", model.backend)
    if backend != "transformers":
        changes.setdefault("device_map", None)  # another backend loads the comparison model on one device
    if backend not in available_backends():
        raise fail(["checks", index, "against", "backend"],
                   f"unknown backend {backend!r}; installed backends: {', '.join(available_backends())}")  # fmt: skip
    return replace(model, id=f"{model.id}-against", **changes)


def _label_columns(label: str | list[str] | None) -> str | tuple[str, ...] | None:
    """``data.label`` as written: one column, or a tuple of columns (multi-label 0/1 columns)."""
    return label if label is None or isinstance(label, str) else tuple(label)
