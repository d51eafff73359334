"""The other model a check compares with (``baseline_model``, a parity check's ``against``) where either side
is behind a server: the gate's model keys with the ones the check changes, built by the same rules.

A string is a source (``model.source``) or, starting ``http(s)://``, a URL; a mapping names the model keys
that differ (``url``, ``backend``, ``model``, ``headers``, ``source``, ...). The gate's endpoint keys
(``headers``, ``timeout``, ...) carry over to another server and are dropped for a model in files; file keys
(``device``, ``tokenizer``, ...) are dropped for a server. ``id`` and ``task`` are the gate's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from modelcheck.gatefile.endpoint import ENDPOINT_KEYS
from modelcheck.gatefile.spec import ModelSpec

#: Model keys that apply to a model in files only (dropped when the other model is a server).
_FILE_KEYS = ("device", "device_map", "dtype", "weights", "allow_pickle", "tokenizer", "providers", "threads",
              "graph_optimization", "trust_remote_code")  # fmt: skip

Fail = Callable[[list[str | int], str], Exception]


def is_served(changes: dict[str, Any]) -> bool:
    """Whether the changed keys put the other model behind a server."""
    source = changes.get("source")
    return "url" in changes or (isinstance(source, str) and source.startswith(("http://", "https://")))


def other_model(
    model_doc: dict[str, Any],
    model: ModelSpec,
    raw: str | dict[str, Any],
    where: list[str | int],
    fail: Fail,
    build: Callable[[dict[str, Any], Fail], ModelSpec],
    *,
    suffix: str,
) -> ModelSpec:
    """The ModelSpec of ``raw`` (a source/URL or the changed keys) next to the gate's model (``model_doc``)."""
    changes: dict[str, Any] = {"source": raw} if isinstance(raw, str) else dict(raw)
    for key in ("id", "task"):
        if key in changes:
            raise fail([*where, key], f"{key} is the gate's own; the model compared with is judged on the same task")
    merged = dict(model_doc)
    if "url" in changes or "source" in changes:
        merged.pop("url", None)
        merged.pop("source", None)
    served = is_served({**merged, **changes})
    if model.endpoint is not None and not served and "backend" not in changes:
        raise fail(
            where,
            f"the model compared with is in files ({changes.get('source')}), so it needs its own "
            "backend: give a mapping with source and backend (onnx, torch, transformers)",
        )
    dropped = _FILE_KEYS if served else ENDPOINT_KEYS
    for key in dropped:
        if key not in changes:
            merged.pop(key, None)
    merged.update(changes)

    def here(parts: list[str | int], problem: str) -> Exception:
        # the rules name the model's keys (["model", key]); point at the check's instead
        inner = parts[1:] if parts[:1] == ["model"] else []
        return fail([*where, *inner] if isinstance(raw, dict) else where, problem)

    spec = build(merged, here)
    return replace(spec, id=f"{model.id}-{suffix}")


def described(spec: ModelSpec) -> str:
    """``kserve-v2 http://host:8080 (model wine-v1)`` for a served model, else its source."""
    if spec.endpoint is None:
        return spec.source
    return f"{spec.backend} {spec.source} (model {spec.endpoint.model!r})"
