"""The frozen, typed result of reading a gate file: GateSpec and the model, data and check specs in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Metrics judged right/wrong per example (McNemar's test applies).
ACCURACY_LIKE = frozenset({"accuracy", "exact_match", "contains"})


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
    #: Generation: each generated text is cut at the first of these strings.
    stop: tuple[str, ...] = ()
    labels: tuple[str, ...] | None = None
    #: transformers backend: accelerate's placement (``auto``: over every GPU, then CPU) instead of one device.
    device_map: str | None = None
    #: Endpoint backends: where the server is (``source`` then holds the URL without secrets) and how to talk to it.
    endpoint: EndpointSpec | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute()


@dataclass(frozen=True)
class EndpointSpec:
    """How an endpoint backend reaches its server. ``headers`` keep ``${VAR}`` unexpanded (read at connect time)."""

    url: str
    model: str
    version: str | None = None
    api: str = "chat"
    stop: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 30.0
    concurrency: int = 4
    retries: int = 2
    #: True, False, or the absolute path of a CA bundle.
    verify_tls: bool | str = True


@dataclass(frozen=True)
class DataSpec:
    """The labelled data a gate is judged on. ``source`` is an absolute path for local files.

    ``input`` is one column, or several (tabular features; the two texts of a pair; question and context).
    ``label`` is one column, or several for multi-label classification (one 0/1 column per label).
    """

    source: str
    input: str | tuple[str, ...]
    label: str | tuple[str, ...] | None = None
    split: str = "test"
    limit: int | None = None
    #: object-detection: the label column's box format (``xywh``, ``xyxy``, ``cxcywh``; pixels).
    box_format: str | None = None

    @property
    def input_columns(self) -> tuple[str, ...]:
        return (self.input,) if isinstance(self.input, str) else self.input

    @property
    def label_columns(self) -> tuple[str, ...]:
        """The label column(s); empty without a label."""
        if self.label is None:
            return ()
        return (self.label,) if isinstance(self.label, str) else self.label

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
    #: Task options of family tasks (``gatefile.tasks.CHECK_OPTIONS``: threshold, scheme, mode, entity, subset).
    options: Mapping[str, Any] = field(default_factory=dict)
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
    min_similarity: float | None = None
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
    #: Latency under load (a served model): requests in flight at once (None: one call at a time, in process).
    concurrency: int | None = None
    #: Endpoints: the largest share of failed requests tolerated (None: the first one that fails for good errors).
    max_error_rate: float | None = None
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
            ("min_similarity", self.min_similarity),
            ("max_ms", self.max_ms),
            ("max_mb", self.max_mb),
            ("max_ratio", self.max_ratio),
            ("max_error_rate", self.max_error_rate),
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
