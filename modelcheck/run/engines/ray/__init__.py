"""The Ray engine: a gate's prediction pass on a pool of Ray actors, kept warm for the engine's life.

Each actor loads the model once through the same backend plugin as a local run (the gate's
:class:`~modelcheck.gatefile.ModelSpec`, paths resolved, so workers must see the same files: the
same machine, or a shared file system / Hub ids on a cluster). The rows this process read and decoded
go to the actors in chunks (numpy matrices as they are: Ray moves them through its object store without
pickling them); each chunk's ``Outputs`` come back and are joined in input order, so the checks judge
what a local run would have.

Warm: the actors of the last model predicted stay up (the engine lives for the pytest session), so a
later gate with the same model, settings and import paths reuses them; a gate with another model ends
them first (on a small cluster two pools could not both hold their CPUs). They are ended by
:meth:`RayEngine.close` (pytest's end, Ctrl-C included: pytest still unconfigures), at once when a
prediction fails or is interrupted (KeyboardInterrupt: the queued chunks are dropped with them), and
by Ray with the driver when this process exits. ``benchmarks/ray_engine.py`` measures the first gate
(actors started) and the warm ones separately.

Actors: ``MODELCHECK_RAY_ACTORS`` (default: the cluster's CPUs over ``MODELCHECK_RAY_CPUS``, default 1
CPU per actor, at most 8), ``MODELCHECK_RAY_GPUS`` per actor (default 0); a bad value is a usage error at
pytest's start (:mod:`~modelcheck.run.engines.ray.settings`). More actors than the cluster's CPUs / GPUs
can hold fail before any starts, naming what was asked and what it has (Ray would queue them forever);
actors it does not place within ``MODELCHECK_RAY_START_TIMEOUT`` seconds (default 120: the model's load
not counted, it runs after) fail naming what is free. Through Ray Client (``ray://``) a
connection whose server the head could not start is made again, at most :data:`CLIENT_TRIES` in all (a Ray
bug: the server process can die at once). A cluster that cannot be reached
fails within :data:`CONNECT_TIMEOUT` seconds naming the address (also where Ray would rewrite a loopback
address to this machine's outward one, where nothing listens); a model that cannot load on the workers,
or a chunk that fails there, ends as the worker's own error (its message; a data row renumbered from the
chunk to the whole data) or a BackendError naming Ray's. An actor that died is restarted and its chunks
retried, at most ``MODELCHECK_RAY_RESTARTS`` times (default 3; then the gate's checks end as errors naming
the dead actor). Actors add the pytest process's ``sys.path`` entries that exist on their machine (after
their own), so a ``module:callable`` source imports there too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.run.engines.ray.errors import (
    CLIENT_TRIES,
    CONNECT_TIMEOUT,
    cause_of,
    client_server_failed,
    first_line,
    reachable,
    rewritten_reachable,
    same_cluster,
    shown,
    through_client,
)
from modelcheck.run.engines.ray.settings import RESTARTS, START_TIMEOUT, settings

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.predict import Progress
    from modelcheck.run.engines.ray.pool import Pool

__all__ = ["CONNECT_TIMEOUT", "MAX_ACTORS", "RESTARTS", "START_TIMEOUT", "RayEngine", "settings"]

#: Most actors started when the environment does not say.
MAX_ACTORS = 8
#: Parts per actor a large input is cut into, about (each part is whole chunks of a local run's,
#: :func:`~modelcheck.models.predict.chunk_size`): each Ray task costs milliseconds to send and collect,
#: which is most of a tiny model's work on one local chunk.
TASKS_PER_ACTOR = 4


class RayEngine:
    """Predictions on a Ray cluster (``address``: ``ray://host:port``, ``host:port``, or None: local / RAY_ADDRESS)."""

    name = "ray"

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.actors = 0
        self.resources: dict[str, float] = {}
        self.warm = False  # whether the last prediction found its actors already up
        self.client_tries = 0  # connections tried through Ray Client before one held (ray:// only)
        self._started = False
        self._pool: Pool | None = None

    def predict(
        self, spec: ModelSpec, model: LoadedModel, inputs: Sequence[Any], *, batch_size: int,
        progress: Progress | None, on_threads: Any,
    ) -> Outputs:  # fmt: skip
        from modelcheck.models.predict import check_finite, chunk_size, concat_outputs

        ray = self._connect()
        pool = self._pool_for(ray, spec)
        total = len(inputs)
        # whole local-run chunks (the actors predict them one by one, as a local run does), about
        # TASKS_PER_ACTOR parts per actor: fewer Ray tasks than chunks for a large input
        local = chunk_size(batch_size)
        size = local * max(1, -(-total // (self.actors * TASKS_PER_ACTOR * local)))
        chunks = [(start, inputs[start : start + size]) for start in range(0, max(total, 1), size)]
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(done, total)

        if progress is not None:
            progress(0, total)
        try:
            parts = pool.run(chunks, batch_size, advance)
        except BaseException:  # a worker's error, or Ctrl-C: no actor of this run keeps working
            self._end_pool()
            raise
        outputs = _owned(concat_outputs(parts))
        if len(outputs) != total:
            raise BackendError(f"the Ray engine returned {len(outputs)} outputs for {total} rows of {spec.id}")
        if on_threads is not None:
            on_threads(None)  # the workers' threads: not this process's
        check_finite(outputs, spec.id)
        return outputs

    def close(self) -> None:
        """End the warm actors, and the Ray runtime this engine started (its workers with it)."""
        self._end_pool()
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def record(self) -> dict[str, Any]:
        record = {"name": "ray", "address": shown(self.address), "actors": self.actors, "warm": self.warm,
                  "resources": self.resources}  # fmt: skip
        if self.client_tries:
            record["client_tries"] = self.client_tries
        return record

    def _pool_for(self, ray: Any, spec: ModelSpec) -> Pool:
        """The warm pool when it holds ``spec``'s model with today's settings, else a new one (the old one ended)."""
        from modelcheck.run.engines.ray.pool import Pool

        try:
            given = settings()
        except ValueError as exc:  # checked at pytest's start too: changed since (a fixture, a conftest)
            raise BackendError(f"the Ray engine's settings: {exc}") from None
        cpus, gpus, restarts = given.cpus, given.gpus, given.restarts
        self.resources = {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}
        default = max(1, min(MAX_ACTORS, int(self.resources.get("CPU", 1) // max(cpus, 1e-9))))
        self.actors = given.actors or default
        key = (repr(spec), self.actors, cpus, gpus, restarts, tuple(sys.path))
        self.warm = self._pool is not None and self._pool.key == key and self._pool.used
        if self._pool is None or self._pool.key != key:
            self._end_pool()
            fits(self.actors, cpus, gpus, self.resources, self.address or os.environ.get("RAY_ADDRESS"),
                 actors_given=given.actors is not None)  # fmt: skip
            self._pool = Pool(ray, spec, key, actors=self.actors, cpus=cpus, gpus=gpus, restarts=restarts,
                              start_timeout=given.start_timeout)  # fmt: skip
        return self._pool

    def _end_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.kill()

    def _connect(self) -> Any:
        import ray

        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            reachable(address)  # fails fast, naming the address, even where this process already runs Ray
        if ray.is_initialized():  # the runtime this process already joined (a test session's, a notebook's)
            same_cluster(ray, address)
            return ray
        if address:
            rewritten_reachable(address)  # Ray's own retries on an address it rewrote last minutes
        tries = CLIENT_TRIES if through_client(address) else 1
        for attempt in range(1, tries + 1):
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                         configure_logging=False)  # fmt: skip
                break
            except Exception as exc:  # ConnectionError, RuntimeError, ... from ray.init
                if attempt < tries and client_server_failed(exc):
                    continue  # the head could not start this connection's server: a new connection gets another
                tried = f" ({attempt} connections tried: ray-project/ray#63202)" if attempt > 1 else ""
                raise BackendError(
                    f"cannot start or join the Ray cluster ({shown(address) or 'local'}): {first_line(exc)}"
                    f"{cause_of(exc)}{tried}"
                ) from None
        if through_client(address):
            self.client_tries = attempt
        self._started = True
        return ray


def fits(actors: int, cpus: float, gpus: float, resources: dict[str, float], address: str | None, *,
         actors_given: bool = True) -> None:  # fmt: skip
    """A BackendError, before any actor starts, where the cluster's totals cannot hold the actors asked for
    (Ray would queue them as pending forever): what was asked, what the cluster has, the fix."""
    have = {"CPU": resources.get("CPU", 0.0), "GPU": resources.get("GPU", 0.0)}
    each = {"CPU": cpus, "GPU": gpus}
    short = [name for name in ("CPU", "GPU") if actors * each[name] > have[name] + 1e-9]
    if not short:
        return
    room = min(int(have[name] // each[name] + 1e-9) for name in ("CPU", "GPU") if each[name] > 0)
    plural = "s" if actors != 1 else ""
    asked = f"{actors} actor{plural} x {cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")
    needs = " and ".join(f"{actors * each[name]:g} {name}" for name in short)
    setting = (
        f"MODELCHECK_RAY_ACTORS={actors}" if actors_given else f"{actors} actor{plural} (MODELCHECK_RAY_ACTORS unset)"
    )
    lower = [f"MODELCHECK_RAY_{name}S to {have[name]:g}" + (" or less" if have[name] else "") for name in short]
    fix = f"set MODELCHECK_RAY_ACTORS to {room} or fewer" if room >= 1 else "set " + " and ".join(lower)
    raise BackendError(
        f"the Ray cluster ({shown(address) or 'local'}) cannot hold the actors asked for: {setting} with "
        f"MODELCHECK_RAY_CPUS={cpus:g} and MODELCHECK_RAY_GPUS={gpus:g} asks {asked} ({needs} in all), and it has "
        f"{have['CPU']:g} CPU and {have['GPU']:g} GPU in all: {fix}, or add nodes to the cluster"
    )


def _owned(outputs: Outputs) -> Outputs:
    """``outputs`` with arrays this process owns: Ray hands numpy arrays back read-only, in its object store."""
    import dataclasses

    import numpy as np

    def own(value: Any) -> Any:
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            return value.copy()
        if isinstance(value, list) and any(isinstance(item, np.ndarray) for item in value):
            return [own(item) for item in value]
        return value

    return dataclasses.replace(
        outputs, **{field.name: own(getattr(outputs, field.name)) for field in dataclasses.fields(outputs)}
    )
