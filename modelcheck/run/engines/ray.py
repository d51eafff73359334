"""The Ray engine: a gate's prediction pass as Ray Data ``map_batches`` over an actor pool.

Each actor loads the model once through the same backend plugin as a local run (the gate's
:class:`~modelcheck.gatefile.ModelSpec`, paths resolved, so workers must see the same files: the
same machine, or a shared file system / Hub ids on a cluster). The rows travel as a Ray Dataset (the
inputs this process read and decoded); each batch comes back as the backend's ``Outputs`` with its row
numbers, and the whole is put back in input order, so the checks judge what a local run would have.

Actors: ``MODELCHECK_RAY_ACTORS`` (default: the cluster's CPUs over ``MODELCHECK_RAY_CPUS``, default 1
CPU per actor, at most 8), ``MODELCHECK_RAY_GPUS`` per actor (default 0). A cluster that cannot be reached
fails within :data:`CONNECT_TIMEOUT` seconds naming the address; a model that cannot load on the workers,
or a batch that fails there, ends as the worker's own error (its message) or a BackendError naming Ray's.
An actor that died is restarted and its batches retried, at most ``MODELCHECK_RAY_RESTARTS`` times
(default 3; then the gate's checks end as errors naming the dead actor). Actors add the pytest process's ``sys.path``
entries that exist on their machine (after their own), so a ``module:callable`` source imports there too.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, ModelcheckError

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import LoadedModel, Outputs
    from modelcheck.models.predict import Progress

#: Seconds to reach a cluster's address before giving up.
CONNECT_TIMEOUT = 10.0
#: Most actors started when the environment does not say.
MAX_ACTORS = 8
#: How often an actor that died is restarted, and a batch it held retried (``MODELCHECK_RAY_RESTARTS``).
RESTARTS = 3


class RayEngine:
    """Predictions on a Ray cluster (``address``: ``ray://host:port``, ``host:port``, or None: local / RAY_ADDRESS)."""

    name = "ray"

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.actors = 0
        self.resources: dict[str, float] = {}
        self._started = False

    def predict(
        self, spec: ModelSpec, model: LoadedModel, inputs: Sequence[Any], *, batch_size: int,
        progress: Progress | None, on_threads: Any,
    ) -> Outputs:  # fmt: skip
        import numpy as np
        import pandas as pd

        from modelcheck.models.predict import check_finite, chunk_size, concat_outputs

        ray = self._connect()
        cpus = float(os.environ.get("MODELCHECK_RAY_CPUS", "1"))
        gpus = float(os.environ.get("MODELCHECK_RAY_GPUS", "0"))
        self.resources = {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}
        default = max(1, min(MAX_ACTORS, int(self.resources.get("CPU", 1) // max(cpus, 1e-9))))
        self.actors = int(os.environ.get("MODELCHECK_RAY_ACTORS", default))
        restarts = int(os.environ.get("MODELCHECK_RAY_RESTARTS", RESTARTS))
        matrix = isinstance(inputs, np.ndarray)
        frame = pd.DataFrame(inputs) if matrix else pd.DataFrame({"input": pd.Series(list(inputs), dtype=object)})
        frame.columns = [str(c) for c in frame.columns]
        frame["__row"] = np.arange(len(frame))
        if progress is not None:
            progress(0, len(frame))
        chunk = chunk_size(batch_size)
        with warnings.catch_warnings():  # Ray Data's own deprecation and utilisation notes are not the gate's
            warnings.filterwarnings("ignore", module="ray")
            # max_restarts / max_task_retries have no named parameter in Ray 2.60: they travel as ray_remote_args
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            per_block = max(1, min(chunk, -(-len(frame) // self.actors)))  # at least one block per actor
            # split here (not override_num_blocks, whose np.array_split yields arrays under pandas 3)
            blocks = [frame.iloc[start : start + per_block] for start in range(0, max(len(frame), 1), per_block)]
            predicted = ray.data.from_pandas(blocks).map_batches(
                _Predictor,
                fn_constructor_kwargs={"spec": spec, "batch_size": batch_size, "matrix": matrix, "paths": sys.path},
                batch_size=chunk,
                batch_format="pandas",
                compute=ray.data.ActorPoolStrategy(size=self.actors),
                num_cpus=cpus,
                num_gpus=gpus,
                udf_modifying_row_count=True,  # one record (rows, outputs) per batch
                # Ray Data's defaults (-1, -1) restart and retry forever: a model that kills its worker every
                # time would hang the gate; bounded, it ends as an error naming the dead actor
                max_restarts=restarts,
                max_task_retries=restarts,
            )
            try:
                parts = predicted.take_all()
            except Exception as exc:  # ray wraps the worker's exception (RayTaskError, ActorDiedError, ...)
                raise _worker_error(exc, spec, restarts) from None
        rows = np.concatenate([part["rows"] for part in parts]) if parts else np.zeros(0, np.int64)
        outputs = concat_outputs([pickle.loads(part["outputs"]) for part in parts])
        if len(rows) != len(frame) or len(outputs) != len(frame):
            raise BackendError(f"the Ray engine returned {len(outputs)} outputs for {len(frame)} rows of {spec.id}")
        outputs = outputs.take(np.argsort(rows, kind="stable"))
        if progress is not None:
            progress(len(frame), len(frame))
        if on_threads is not None:
            on_threads(None)  # the workers' threads: not this process's
        check_finite(outputs, spec.id)
        return outputs

    def close(self) -> None:
        """Shut down the Ray runtime this engine started (its workers and actors with it)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def record(self) -> dict[str, Any]:
        return {"name": "ray", "address": _shown(self.address), "actors": self.actors, "resources": self.resources}

    def _connect(self) -> Any:
        import ray

        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _reachable(address)  # fails fast, naming the address, even where this process already runs Ray
        if ray.is_initialized():  # the runtime this process already joined (a test session's, a notebook's)
            _same_cluster(ray, address)
            return ray
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset progress lines in pytest's output
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     configure_logging=False)  # fmt: skip
        except Exception as exc:  # ConnectionError, RuntimeError, ... from ray.init
            raise BackendError(
                f"cannot start or join the Ray cluster ({_shown(address) or 'local'}): {_first_line(exc)}{_cause(exc)}"
            ) from None
        self._started = True
        return ray


class _Predictor:
    """One Ray actor: loads the model once, then predicts batches (rows and pickled Outputs per batch)."""

    def __init__(self, spec: ModelSpec, batch_size: int, matrix: bool, paths: Sequence[str] = ()) -> None:
        from modelcheck.models.backends import get_backend

        # the pytest process's import paths (pytest's pythonpath, a rootdir): a "module:callable" source
        # imports there; the worker keeps its own first and adds those of them that exist on its machine
        sys.path.extend(p for p in paths if p and p not in sys.path and os.path.isdir(p))
        self.model = get_backend(spec.backend).load(spec)
        self.batch_size = batch_size
        self.matrix = matrix

    def __call__(self, batch: Any) -> dict[str, Any]:
        import numpy as np

        rows = batch.pop("__row").to_numpy()
        inputs = batch.to_numpy(dtype=np.float32) if self.matrix else batch["input"].tolist()
        outputs = self.model.predict(inputs, batch_size=self.batch_size)
        return {"rows": [rows], "outputs": [pickle.dumps(outputs)]}


def _worker_error(exc: Exception, spec: ModelSpec, restarts: int) -> ModelcheckError:
    """The worker's own error where Ray carries one (a load or data error keeps its message), else Ray's."""
    cause = getattr(exc, "cause", None)
    while cause is not None and not isinstance(cause, ModelcheckError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, ModelcheckError):
        return cause
    text = str(exc).strip().splitlines()
    reason = text[-1] if text else type(exc).__name__
    if "actor is dead" in reason.lower() or "actor died" in reason.lower():
        reason = f"an actor kept dying (restarted up to MODELCHECK_RAY_RESTARTS={restarts} times): {reason}"
    return BackendError(f"the Ray engine could not predict {spec.id}: {reason}")


def _same_cluster(ray: Any, address: str | None) -> None:
    """A process already in a Ray runtime cannot join another: say so rather than predict on the wrong one."""
    if not address or address.startswith("ray://") or address == "auto":
        return
    joined = str(ray.get_runtime_context().gcs_address or "")
    if joined.rpartition(":")[2] != address.rpartition(":")[2]:
        raise BackendError(
            f"this process already runs Ray (cluster {joined}) and cannot join {_shown(address)}: run pytest in a "
            "fresh process, or use the cluster it is in (--modelcheck-engine ray)"
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _cause(exc: BaseException) -> str:
    """The deepest cause's message (Ray's ConnectionError hides why: authentication, a wrong address)."""
    cause, seen = exc.__cause__, 0
    while cause is not None and cause.__cause__ is not None and seen < 10:
        cause, seen = cause.__cause__, seen + 1
    if cause is None:
        return ""
    lines = [line for line in str(cause).splitlines() if line.strip() and not line.startswith((" ", "Traceback"))]
    if not lines:
        return ""
    reason = lines[-1].strip().split(". ")[0].removeprefix("ray.exceptions.")[:300]
    if reason.startswith("AuthenticationError"):
        reason += "; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token"
    return f" ({reason})"


def _reachable(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there."""
    target = address.removeprefix("ray://").rpartition("@")[2]
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {_shown(address)} within {CONNECT_TIMEOUT:g} s ({exc}); start it "
            "(ray start --head) or fix --modelcheck-engine / RAY_ADDRESS"
        ) from None


def _shown(address: str | None) -> str | None:
    """The address without credentials (``ray://user:token@host:port`` -> ``ray://host:port``)."""
    if not address:
        return address
    scheme, sep, rest = address.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"
