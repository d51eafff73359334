"""The Ray engine's actors: one model loaded once per actor, parts of the rows predicted, outputs in order.

A :class:`Pool` is plain Ray actors (``ray.remote``), not Ray Data: a Ray Data actor pool lives for one
dataset, so it would start its actors (and load the model on each) for every gate; these stay up while
the engine predicts with the same model and settings. Parts of the rows (whole chunks of a local run)
go to the actors as they are (a numpy slice, or a list of texts, images, ...): Ray serialises numpy
arrays out of band, so a matrix is copied once into the object store and read there without
unpickling, and the ``Outputs`` come back the same way. Each actor has at most :data:`IN_FLIGHT` parts
queued, so a slow one gets fewer.

An actor whose process died is restarted by Ray (it loads the model again) and the parts it held are
retried, at most ``restarts`` times each (``max_restarts`` / ``max_task_retries``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.run.engines.ray.errors import worker_error

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import Outputs

#: Chunks queued on one actor at a time: one running, one already in its mailbox.
IN_FLIGHT = 2


class Predictor:
    """One Ray actor: loads the model once (a load error is kept and raised by every call), predicts chunks."""

    def __init__(self, spec: ModelSpec, paths: Sequence[str] = ()) -> None:
        from modelcheck.models.backends import get_backend

        # the pytest process's import paths (pytest's pythonpath, a rootdir): a "module:callable" source
        # imports there; the worker keeps its own first and adds those of them that exist on its machine
        sys.path.extend(p for p in paths if p and p not in sys.path and os.path.isdir(p))
        self.error: Exception | None = None
        try:
            self.model = get_backend(spec.backend).load(spec)
        except Exception as exc:  # raised by ready()/predict() as a task error: Ray keeps the actor, not restarts it
            self.error = exc

    def ready(self) -> None:
        if self.error is not None:
            raise self.error

    def predict(self, inputs: Any, batch_size: int) -> Outputs:
        """``model.predict`` over the inputs in a local run's chunks (where they start: a backend that sorts
        by length within a chunk batches the same rows together, so the outputs are a local run's, bit for bit)."""
        from modelcheck.models.backends import InputRowError
        from modelcheck.models.predict import chunk_size, concat_outputs
        from modelcheck.models.threads import evaluation_threads

        self.ready()
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
        self, ray: Any, spec: ModelSpec, key: tuple[Any, ...], *, actors: int, cpus: float, gpus: float, restarts: int
    ) -> None:
        self.ray, self.spec, self.key, self.restarts = ray, spec, key, restarts
        remote = ray.remote(Predictor).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=restarts, max_task_retries=restarts
        )
        self.handles = [remote.remote(spec, list(sys.path)) for _ in range(actors)]
        self.used = False  # True once a run finished on it: the next run finds its actors warm

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
