"""The Ray engine's actors: one model loaded once per actor, parts of the rows predicted, outputs in order.

A :class:`Pool` is plain Ray actors (``ray.remote``), not Ray Data: a Ray Data actor pool lives for one
dataset, so it would start its actors (and load the model on each) for every gate; these stay up while
the engine predicts with the same model and settings. Parts of the rows (whole chunks of a local run)
go to the actors as they are (a numpy slice, or a list of texts, images, ...): Ray serialises numpy
arrays out of band, so a matrix is copied once into the object store and read there without
unpickling, and the ``Outputs`` come back the same way. Each actor has at most :data:`IN_FLIGHT` parts
queued, so a slow one gets fewer.

An actor's constructor only keeps the spec: the model loads on its first call (:meth:`Predictor.load`,
sent as soon as the actor is up). So the wait for the actors to be placed and started is bounded
(``start_timeout``: an actor the cluster cannot place, its resources held by others or on no one node,
would wait in Ray's queue forever) while a model that is slow to load is not cut short.

An actor whose process died is restarted by Ray (it loads the model again on its next call) and the parts
it held are retried, at most ``restarts`` times each (``max_restarts`` / ``max_task_retries``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.run.engines.ray.errors import worker_error

#: What the start-up error says to change (the settings an actor's request is made of).
SETTINGS = "MODELCHECK_RAY_ACTORS, MODELCHECK_RAY_CPUS or MODELCHECK_RAY_GPUS"

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import Outputs

#: Chunks queued on one actor at a time: one running, one already in its mailbox.
IN_FLIGHT = 2


class Predictor:
    """One Ray actor: loads the model once, on its first call (a load error is kept and raised by every
    :meth:`predict`), predicts chunks."""

    def __init__(self, spec: ModelSpec, paths: Sequence[str] = ()) -> None:
        # the pytest process's import paths (pytest's pythonpath, a rootdir): a "module:callable" source
        # imports there; the worker keeps its own first and adds those of them that exist on its machine
        sys.path.extend(p for p in paths if p and p not in sys.path and os.path.isdir(p))
        self.spec = spec
        self.model: Any = None
        self.error: Exception | None = None

    def started(self) -> None:
        """Returns once the actor is placed and its process up (the constructor does no work)."""

    def load(self) -> None:
        """Load the model once; a load error is kept (never raised here: a call nobody reads) and raised by
        every :meth:`predict`, a task error, so Ray keeps the actor rather than restarts it."""
        from modelcheck.models.backends import get_backend

        if self.model is None and self.error is None:
            try:
                self.model = get_backend(self.spec.backend).load(self.spec)
            except Exception as exc:
                self.error = exc

    def predict(self, inputs: Any, batch_size: int) -> Outputs:
        """``model.predict`` over the inputs in a local run's chunks (where they start: a backend that sorts
        by length within a chunk batches the same rows together, so the outputs are a local run's, bit for bit)."""
        from modelcheck.models.backends import InputRowError
        from modelcheck.models.predict import chunk_size, concat_outputs
        from modelcheck.models.threads import evaluation_threads

        self.load()  # at once where the actor was restarted (its constructor loads nothing)
        if self.error is not None:
            raise self.error
        size, parts = chunk_size(batch_size), []
        with evaluation_threads(self.model):
            for start in range(0, max(len(inputs), 1), size):
                chunk = inputs[start : start + size]
                try:
                    outputs = self.model.predict(chunk, batch_size=batch_size)
                except InputRowError as exc:  # numbered within the chunk: the engine adds where this part starts
                    raise exc.shifted(start) from None
                if len(outputs) != len(chunk):
                    raise BackendError(
                        f"the backend returned {len(outputs)} outputs for {len(chunk)} inputs on a Ray actor"
                    )
                parts.append(outputs)
        return concat_outputs(parts)


class Pool:
    """``actors`` Ray actors holding ``spec``'s model; :meth:`run` predicts chunks on them, :meth:`kill` ends them."""

    def __init__(
        self, ray: Any, spec: ModelSpec, key: tuple[Any, ...], *, actors: int, cpus: float, gpus: float, restarts: int,
        start_timeout: float,
    ) -> None:  # fmt: skip
        self.ray, self.spec, self.key, self.restarts = ray, spec, key, restarts
        remote = ray.remote(Predictor).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=restarts, max_task_retries=restarts
        )
        self.handles = [remote.remote(spec, list(sys.path)) for _ in range(actors)]
        self.used = False  # True once a run finished on it: the next run finds its actors warm
        try:
            self._wait_started(start_timeout, f"{actors} actor{'s' if actors != 1 else ''} x {_asked(cpus, gpus)}")
        except BaseException:  # not placed in time, or Ctrl-C: none of them waits on in Ray's queue
            self.kill()
            raise
        for actor in self.handles:
            actor.load.remote()  # every actor loads now, in parallel, however long it takes

    def _wait_started(self, timeout: float, asked: str) -> None:
        """Until every actor is placed and started; a BackendError after ``timeout`` seconds naming what was
        asked and what the cluster has free."""
        waiting = {actor.started.remote(): actor for actor in self.handles}
        done, left = self.ray.wait(list(waiting), num_returns=len(waiting), timeout=timeout)
        for ref in done:
            try:
                self.ray.get(ref)
            except Exception as exc:  # the actor's process could not start (a runtime env, an import)
                raise worker_error(exc, self.spec, self.restarts) from None
        if left:
            free = _shown_resources(self.ray.available_resources())
            total = _shown_resources(self.ray.cluster_resources())
            raise BackendError(
                f"the Ray engine could not start its actors for {self.spec.id}: {len(left)} of {len(waiting)} "
                f"({asked}) not placed on the cluster within {timeout:g} s (MODELCHECK_RAY_START_TIMEOUT); it has "
                f"{free} free of {total} (other jobs hold the rest, or no one node has what one actor asks): "
                f"lower {SETTINGS}, or raise MODELCHECK_RAY_START_TIMEOUT where the cluster frees them later"
            )

    def run(self, chunks: Sequence[tuple[int, Any]], batch_size: int, done: Callable[[int], None]) -> list[Outputs]:
        """The outputs of each ``(first row, inputs)`` chunk, in order; ``done(rows)`` after each chunk."""
        ray = self.ray
        results: list[Outputs | None] = [None] * len(chunks)
        pending: dict[Any, tuple[int, Any]] = {}
        queue = iter(range(len(chunks)))

        def submit(actor: Any) -> None:
            index = next(queue, None)
            if index is not None:
                pending[actor.predict.remote(chunks[index][1], batch_size)] = (index, actor)

        for _ in range(IN_FLIGHT):
            for actor in self.handles:
                submit(actor)
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                index, actor = pending.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except Exception as exc:  # ray wraps the worker's exception (RayTaskError, ActorDiedError, ...)
                    raise worker_error(exc, self.spec, self.restarts, chunks[index][0]) from None
                done(len(chunks[index][1]))
                submit(actor)
        self.used = True
        return [part for part in results if part is not None]

    def kill(self) -> None:
        """End the actors now (their queued chunks fail; Ray restarts none of them)."""
        for actor in self.handles:
            with contextlib.suppress(Exception):  # already dead, or Ray already shut down
                self.ray.kill(actor, no_restart=True)
        self.handles = []


def _asked(cpus: float, gpus: float) -> str:
    return f"{cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")


def _shown_resources(resources: dict[str, Any]) -> str:
    return ", ".join(f"{float(resources.get(name, 0)):g} {name}" for name in ("CPU", "GPU"))
