"""Where a gate's predictions are computed: an engine. ``local`` (the pytest process) or ``ray`` (a Ray cluster).

``engine_for(setting)`` reads ``--modelcheck-engine``: ``local`` (default), ``ray`` (a Ray runtime started
on this machine, or the cluster ``RAY_ADDRESS`` names) or ``ray://host:port`` / ``host:port`` (a running
cluster). Every engine returns the same :class:`~modelcheck.models.backends.Outputs`, in input order,
so the checks judge them exactly as they judge a local run; latency and memory checks, and parity's
other model, always run in the pytest process (on the model :func:`run_gate` loaded there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.predict import Progress

__all__ = ["Engine", "LocalEngine", "engine_for"]


class Engine(Protocol):
    """Computes a gate model's outputs over its inputs."""

    name: str

    def predict(
        self, spec: ModelSpec, model: LoadedModel, inputs: Sequence[Any], *, batch_size: int,
        progress: Progress | None, on_threads: Any,
    ) -> Outputs:  # fmt: skip
        """The outputs of ``spec``'s model (loaded locally as ``model``) for ``inputs``, in order."""

    def record(self) -> dict[str, Any]:
        """What the report says about the engine (no credentials)."""

    def close(self) -> None:
        """Release what the engine started (a local Ray runtime)."""


class LocalEngine:
    """Predictions in this process, in chunks (:func:`modelcheck.models.predict.predict`)."""

    name = "local"

    def predict(
        self, spec: ModelSpec, model: LoadedModel, inputs: Sequence[Any], *, batch_size: int,
        progress: Progress | None, on_threads: Any,
    ) -> Outputs:  # fmt: skip
        from modelcheck.models.predict import predict

        return predict(model, inputs, batch_size=batch_size, progress=progress, name=spec.id, on_threads=on_threads)

    def record(self) -> dict[str, Any]:
        return {"name": "local"}

    def close(self) -> None:
        return None


def engine_for(setting: str | None) -> Engine:
    """The engine ``--modelcheck-engine`` names; ValueError (a usage error) for an unknown one or a missing extra."""
    value = (setting or "local").strip()
    if value == "local":
        return LocalEngine()
    if value == "ray" or value.startswith("ray://") or value.startswith("ray:"):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError(
                f"--modelcheck-engine {value} needs Ray: pip install 'modelcheck[ray]' (ray[data]) on this machine "
                "and the cluster's"
            )
        from modelcheck.run.engines.ray import RayEngine, settings

        settings()  # MODELCHECK_RAY_*: a bad value is a usage error now, not every gate's

        address = value.split(":", 1)[1] if value.startswith("ray:") and not value.startswith("ray://") else None
        return RayEngine(value if value.startswith("ray://") else address)
    raise ValueError(f"--modelcheck-engine {value!r}: use local, ray, ray:HOST:PORT or ray://HOST:PORT")
