"""Gate files: read YAML, expand ``${VAR}``, validate against the shipped JSON Schema, build a GateSpec.

``load_gate(path)`` either returns a frozen, fully-resolved :class:`GateSpec` or raises one
:class:`~modelcheck.errors.GateFileError` that names the file, the JSON path, the line and the fix.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modelcheck.backends import available_backends
from modelcheck.errors import GateFileError
from modelcheck.tasks import LABEL_FREE_METRICS, SIGNED_UNIT_INTERVAL, TASKS, UNIT_INTERVAL, Task

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    """The model under test. ``source`` is an absolute path for local files, else as written."""

    id: str
    source: str
    backend: str = "transformers"
    task: str = "text-classification"
    device: str = "auto"
    batch_size: int = 32
    trust_remote_code: bool = False
    dtype: str | None = None
    weights: str | None = None
    allow_pickle: bool = False
    tokenizer: str | None = None
    providers: tuple[str, ...] | None = None
    threads: int | None = None
    graph_optimization: str | None = None
    max_new_tokens: int = 32
    labels: tuple[str, ...] | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute()


@dataclass(frozen=True)
class DataSpec:
    """The labelled data a gate is judged on. ``source`` is an absolute path for local files.

    ``input`` is one column, or several (tabular features; the two texts of a pair).
    """

    source: str
    input: str | tuple[str, ...]
    label: str | None = None
    split: str = "test"
    limit: int | None = None

    @property
    def input_columns(self) -> tuple[str, ...]:
        return (self.input,) if isinstance(self.input, str) else self.input

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute()


@dataclass(frozen=True)
class CheckSpec:
    """One check: becomes one pytest item ``<gate file>::<name>``."""

    name: str
    metric: str | None = None
    kind: str = "metric"
    #: For ``metric: {evaluate: ...}``: ``path`` (resolved), ``key`` and ``args``.
    evaluate: Mapping[str, Any] | None = None
    reference: str | None = None
    average: str | None = None
    pos_label: str | int | None = None
    min: float | None = None
    max: float | None = None
    slice_by: str | None = None
    min_samples: int = 1
    stages: tuple[str, ...] = ()
    # regression
    baseline: str | None = None
    max_drop: float | None = None
    test: str = "paired-bootstrap"
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    on_missing: str = "inconclusive"
    # parity: the other model (a full ModelSpec once resolved) and its thresholds
    against: ModelSpec | None = None
    export: bool = False
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    min_cosine: float | None = None
    min_agreement: float | None = None
    # latency and memory
    batch_size: int | None = None
    percentile: float = 95.0
    inputs: str = "data"
    threads: int | None = None
    min_iterations: int = 50
    min_time: float = 1.0
    max_time: float = 60.0
    on_uncertain: str = "inconclusive"
    phase: str = "inference"
    isolate: bool = False
    max_ms: float | None = None
    max_mb: float | None = None
    max_ratio: float | None = None
    #: The model a ratio is measured against (same keys as the gate's model, another source).
    baseline_model: ModelSpec | None = None
    #: ``baseline_model: self``: the model against itself (A/A), to measure the noise floor.
    baseline_self: bool = False
    #: The 1-based line of this check in its gate file (where annotations point); None when unknown.
    line: int | None = None

    @property
    def threshold(self) -> dict[str, float]:
        """The bounds this check is judged against, as written in the gate file."""
        bounds = (
            ("min", self.min),
            ("max", self.max),
            ("max_drop", self.max_drop),
            ("max_abs_diff", self.max_abs_diff),
            ("max_rel_diff", self.max_rel_diff),
            ("min_cosine", self.min_cosine),
            ("min_agreement", self.min_agreement),
            ("max_ms", self.max_ms),
            ("max_mb", self.max_mb),
            ("max_ratio", self.max_ratio),
        )
        return {k: v for k, v in bounds if v is not None}


@dataclass(frozen=True)
class GateSpec:
    """A validated gate file with every path resolved and every variable expanded."""

    path: Path
    model: ModelSpec
    data: DataSpec
    checks: tuple[CheckSpec, ...]
    stages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    publish: Mapping[str, Any] | None = None

    def check(self, name: str) -> CheckSpec:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


@cache
def gate_schema() -> dict[str, Any]:
    """The gate-file JSON Schema that ships inside the package."""
    text = resources.files("modelcheck").joinpath("schemas/gate.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_gate(path: str | os.PathLike[str], *, display_path: str | None = None) -> GateSpec:
    """Read, validate and resolve one gate file.

    ``display_path`` is how the file is named in messages (default: the path as given).
    """
    gate_path = Path(path)
    shown = display_path or str(path)
    try:
        text = gate_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateFileError(shown, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateFileError(shown, f"cannot read the file ({exc})") from None

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise GateFileError(shown, f"invalid YAML: {problem}", line=line) from None

    if document is None:
        raise GateFileError(shown, "the file is empty; a gate file is a mapping with version, model, data, checks")
    if not isinstance(document, dict):
        raise GateFileError(
            shown,
            f"the top level is a {_yaml_type(document)}; a gate file is a mapping with keys "
            "version, model, data, checks",
            line=1,
        )

    document = _expand_env(document, shown, node)
    _validate_schema(document, shown, node)
    return _build(document, gate_path, shown, node)


def iter_gate_files(paths: list[Path]) -> Iterator[Path]:
    """Yield gate files: each file as given, and ``*.yaml``/``*.yml`` under each folder, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            yield path


# -- YAML helpers ---------------------------------------------------------------------------------


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _json_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _line_of(node: yaml.Node | None, parts: tuple[str | int, ...] | list[str | int]) -> int | None:
    """Walk the composed YAML along a JSON path and return the 1-based line of the deepest match."""
    if node is None:
        return None
    current = node
    for part in parts:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if key.value == part:
                    current = value
                    break
            else:
                break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
        else:
            break
    return int(current.start_mark.line) + 1


def _key_line(node: yaml.Node | None, parts: list[str | int], key: str) -> int | None:
    """Line of ``key`` inside the mapping at ``parts`` (for unknown keys)."""
    if node is None:
        return None
    line = _line_of(node, parts)
    current: yaml.Node = node
    for part in parts:
        found = None
        if isinstance(current, yaml.MappingNode):
            found = next((v for k, v in current.value if k.value == part), None)
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            found = current.value[part] if part < len(current.value) else None
        if found is None:
            return line
        current = found
    if isinstance(current, yaml.MappingNode):
        for k, _ in current.value:
            if k.value == key:
                return int(k.start_mark.line) + 1
    return line


# -- ${VAR} expansion -----------------------------------------------------------------------------


def _expand_env(value: Any, shown: str, node: yaml.Node | None, parts: tuple[str | int, ...] = ()) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, shown, node, (*parts, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, shown, node, (*parts, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise GateFileError(
            shown,
            f"environment variable {name} is not set (used in {value!r}); set it, "
            f"or give a default as ${{{name}:-value}}",
            json_path=_json_path(parts),
            line=_line_of(node, parts),
        )

    return _ENV_VAR.sub(substitute, value)


# -- schema validation ----------------------------------------------------------------------------


def _validate_schema(document: dict[str, Any], shown: str, node: yaml.Node | None) -> None:
    import jsonschema

    schema = gate_schema()
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    parts = list(error.absolute_path)
    json_path = _json_path(parts)
    line = _line_of(node, parts)
    problem = _describe(error, parts)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        if unknown:
            key = str(unknown[0])
            line = _key_line(node, parts, key)
            json_path = _json_path([*parts, key])
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            problem = f"unknown key {key!r}; {hint}allowed keys here: {', '.join(allowed)}"
    raise GateFileError(shown, problem, json_path=json_path, line=line)


def _describe(error: Any, parts: list[str | int]) -> str:
    """Turn one jsonschema error into a sentence that says what was expected."""
    field_name = str(parts[-1]) if parts else "the document"
    value = error.instance
    kind = error.validator
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        near = difflib.get_close_matches(str(value), [str(c) for c in error.validator_value], n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"{field_name} {value!r} is not supported; expected one of {choices}{hint}"
    if kind == "const":
        if field_name == "version":
            return f"unsupported version {value!r}; this modelcheck reads gate files of version 1"
        if field_name == "kind":
            return (
                f"check kind {value!r} is not available in this version of modelcheck; "
                "the supported kind is 'metric' (quality metrics on the gate's data)"
            )
        return f"{field_name} must be {error.validator_value!r}, not {value!r}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{field_name} must be of type {expected}, got {_yaml_type(value)} {value!r}"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"{field_name} {value!r} is out of range; expected a number {bound} {error.validator_value}"
    if kind == "pattern" and field_name == "device":
        return f"device {value!r} is not supported; expected auto, cpu, mps, cuda or cuda:N (e.g. cuda:1)"
    if kind == "pattern":
        return f"{field_name} {value!r} is not valid; expected it to match {error.validator_value}"
    if kind == "anyOf" and parts and parts[0] == "checks":
        return "a metric check needs a threshold: give min, max, or both"
    if kind == "minItems":
        return f"{field_name} must not be empty"
    if kind == "oneOf" and len(parts) == 2 and parts[0] == "stages":
        return f'stage {field_name!r} must be a list of check names or "all", got {value!r}'
    if kind == "minLength":
        return f"{field_name} must not be empty"
    return str(error.message)


# -- building the spec ----------------------------------------------------------------------------


_LOCAL_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".onnx", ".pt2", ".pt", ".safetensors")


def resolve_source(raw: str, base: Path, *, bare_hub_names: bool) -> str:
    """Resolve a model/data source written in a gate file.

    An existing path (relative ones against the gate file's folder), anything that starts with
    ``.``/``/``/``~`` or ends like a file becomes an absolute path; ``org/name@rev``, ``hub://...``
    and ``module:callable`` stay as written (and so does a bare ``name`` where ``bare_hub_names``).
    """
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    if raw.startswith("hub://"):
        return raw
    if candidate.exists() or raw.startswith((".", "/", "~")) or raw.endswith(_LOCAL_SUFFIXES):
        return str(candidate.resolve())
    if _HUB_ID.match(raw) or (":" in raw and "/" not in raw) or (bare_hub_names and "/" not in raw):
        return raw
    return str(candidate.resolve())


def _build(document: dict[str, Any], gate_path: Path, shown: str, node: yaml.Node | None) -> GateSpec:
    base = gate_path.resolve().parent

    def fail(parts: list[str | int], problem: str) -> GateFileError:
        return GateFileError(shown, problem, json_path=_json_path(parts), line=_line_of(node, parts))

    def path_of(value: str | None) -> str | None:
        return None if value is None else resolve_source(value, base, bare_hub_names=False)

    model = _build_model(document["model"], gate_path, base, fail)
    task = TASKS[model.task]
    data_doc = document["data"]
    data = DataSpec(
        source=resolve_source(data_doc["source"], base, bare_hub_names=True),
        input=data_doc["input"] if isinstance(data_doc["input"], str) else tuple(data_doc["input"]),
        label=data_doc.get("label"),
        split=data_doc.get("split", "test"),
        limit=data_doc.get("limit"),
    )
    _check_inputs(task, data, fail)

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
            _check_metric(task, check, index, data, fail)
        if kind == "regression" and check.get("test") == "mcnemar" and metric not in ACCURACY_LIKE:
            raise fail(
                ["checks", index, "test"],
                f"test mcnemar compares right/wrong per example, so it needs an accuracy-like metric "
                f"({', '.join(sorted(ACCURACY_LIKE))}), not {metric!r}; use test: paired-bootstrap",
            )
        against = check.get("against")
        checks.append(
            CheckSpec(
                name=name,
                metric=metric,
                kind=kind,
                baseline=_resolve_baseline(check.get("baseline"), base),
                max_drop=check.get("max_drop"),
                test=check.get("test", "paired-bootstrap"),
                confidence=check.get("confidence", 0.95),
                resamples=check.get("resamples", 2000),
                seed=check.get("seed", 0),
                on_missing=check.get("on_missing", "inconclusive"),
                against=None if against is None else _against_model(model, against, base, index, fail),
                export=bool(against and against.get("export")),
                max_abs_diff=check.get("max_abs_diff"),
                max_rel_diff=check.get("max_rel_diff"),
                min_cosine=check.get("min_cosine"),
                min_agreement=check.get("min_agreement"),
                **_performance_keys(check, model, base),
                evaluate=evaluate,
                reference=path_of(check.get("reference")),
                average=check.get("average"),
                pos_label=check.get("pos_label"),
                min=check.get("min"),
                max=check.get("max"),
                slice_by=check.get("slice_by"),
                min_samples=check.get("min_samples", 1),
                line=_line_of(node, ["checks", index]),
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


def _build_model(doc: dict[str, Any], gate_path: Path, base: Path, fail: Any) -> ModelSpec:
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

    providers = doc.get("providers")
    return ModelSpec(
        id=doc.get("id", gate_path.stem),
        source=resolve_source(doc["source"], base, bare_hub_names=False),
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
        labels=tuple(doc["labels"]) if doc.get("labels") else None,
    )


_KIND_KEYS = {
    "metric": {"metric", "average", "pos_label", "min", "max", "slice_by", "min_samples", "reference"},
    "regression": {"metric", "average", "pos_label", "baseline", "max_drop", "test", "confidence", "resamples",
                   "seed", "on_missing"},
    "parity": {"against", "max_abs_diff", "max_rel_diff", "min_cosine", "min_agreement"},
    "latency": {"batch_size", "percentile", "inputs", "threads", "min_iterations", "min_time", "max_time", "max_ms",
                "max_ratio", "baseline_model", "confidence", "resamples", "seed", "on_uncertain"},
    "memory": {"batch_size", "phase", "isolate", "threads", "max_mb", "max_ratio", "baseline_model"},
}  # fmt: skip
_KIND_REQUIRED: dict[str, tuple[str, ...]] = {
    "metric": ("metric",),
    "regression": ("metric", "baseline", "max_drop"),
    "parity": ("against",),
    "latency": (),
    "memory": (),
}
#: Keys of latency and memory checks copied as written (the rest: see _performance_keys).
_PERFORMANCE_KEYS = ("batch_size", "percentile", "inputs", "threads", "min_iterations", "min_time", "max_time",
                     "on_uncertain", "phase", "isolate", "max_ms", "max_mb", "max_ratio")  # fmt: skip
_PARITY_BOUNDS = ("max_abs_diff", "max_rel_diff", "min_cosine", "min_agreement")
#: Metrics judged right/wrong per example (McNemar's test applies).
ACCURACY_LIKE = frozenset({"accuracy", "exact_match", "contains"})


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
    if kind == "regression" and isinstance(check.get("metric"), dict):
        raise fail(["checks", index, "metric"], "regression checks compare built-in metrics, not evaluate modules")
    if kind == "parity" and not any(bound in check for bound in _PARITY_BOUNDS):
        raise fail(["checks", index], f"a parity check needs at least one threshold: {', '.join(_PARITY_BOUNDS)}")
    if kind in ("latency", "memory"):
        _check_performance_keys(kind, check, index, fail)


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
    if check.get("min_time", 1.0) > check.get("max_time", 60.0):
        raise fail(["checks", index, "max_time"], f"max_time {check.get('max_time', 60.0)} is less than min_time "
                   f"{check.get('min_time', 1.0)}; timing could never reach min_time")  # fmt: skip


def _performance_keys(check: dict[str, Any], model: ModelSpec, base: Path) -> dict[str, Any]:
    """The CheckSpec fields of a latency or memory check (none for other kinds)."""
    if check.get("kind") not in ("latency", "memory"):
        return {}
    keys = {key: check[key] for key in _PERFORMANCE_KEYS if key in check}
    raw = check.get("baseline_model")
    if raw == "self":
        keys["baseline_self"] = True
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
        if changes.get("backend", "onnx") != "onnx" or "source" in changes:
            raise fail(["checks", index, "against"], "export: true compares with this model exported to ONNX: "
                       "give no source, and backend onnx (or none)")  # fmt: skip
        changes["backend"] = "onnx"
    elif "backend" not in changes and "source" not in changes and len(changes) == 0:
        raise fail(["checks", index, "against"], "against names nothing to compare with: give backend/source, "
                   "a device or dtype, or export: true")  # fmt: skip
    backend = changes.get("backend", model.backend)
    if backend not in available_backends():
        raise fail(["checks", index, "against", "backend"],
                   f"unknown backend {backend!r}; installed backends: {', '.join(available_backends())}")  # fmt: skip
    return replace(model, id=f"{model.id}-against", **changes)


def _check_inputs(task: Task, data: DataSpec, fail: Any) -> None:
    columns = data.input_columns
    if task.tabular:
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


def _check_metric(task: Task, check: dict[str, Any], index: int, data: DataSpec, fail: Any) -> None:
    metric = check["metric"]
    where = ["checks", index, "metric"]
    if isinstance(metric, str) and metric not in task.metrics:
        raise fail(
            where,
            f"metric {metric!r} is not available for task {task.name!r}; its metrics: {', '.join(task.metrics)} "
            "(or {evaluate: path} for a local evaluate module)",
        )
    if isinstance(metric, str):
        low, high = _metric_range(metric)
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
    if data.label is None and metric not in LABEL_FREE_METRICS:
        raise fail(
            ["data"],
            f"check {check['name']!r} (metric {metric if isinstance(metric, str) else 'evaluate'}) compares "
            "against expected outputs: give data.label, the column that holds them",
        )


def _metric_range(metric: str) -> tuple[float, float]:
    if metric in UNIT_INTERVAL:
        return 0.0, 1.0
    if metric in SIGNED_UNIT_INTERVAL:
        return -1.0, 1.0
    if metric in ("mae", "rmse"):
        return 0.0, math.inf
    return -math.inf, math.inf
