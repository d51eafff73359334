"""The backend extension point: how modelcheck loads and runs a model of some framework.

A backend is any object with the :class:`Backend` shape, registered in the ``modelcheck.backends``
entry-point group of its distribution::

    [project.entry-points."modelcheck.backends"]
    mybackend = "mypkg.backend:MyBackend"

The core never imports a framework itself: a backend imports its framework when it loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from modelcheck.errors import BackendError

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.spec import ModelSpec

ENTRY_POINT_GROUP = "modelcheck.backends"


@runtime_checkable
class LoadedModel(Protocol):
    """A model loaded by a backend, ready to run."""

    #: The device the model actually runs on (``cpu``, ``cuda:0``, ...).
    device: str
    #: Class names by class id, for classification tasks.
    label_names: tuple[str, ...]

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> np.ndarray:
        """Predicted class ids for ``inputs``, in the order given."""
        ...

    def artifact_files(self) -> list[Path]:
        """Every file the model was loaded from (hashed into the report)."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


class Backend(Protocol):
    """Loads models of one framework."""

    name: str

    def load(self, model: ModelSpec) -> LoadedModel:
        """Load ``model`` on the device its spec asks for; raise ModelLoadError with the fix."""
        ...


@cache
def available_backends() -> tuple[str, ...]:
    """Names of the installed backends."""
    return tuple(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}))


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                factory = ep.load()
            except ImportError as exc:
                raise BackendError(
                    f"backend {name!r} is installed but cannot be imported ({exc}); "
                    f"install its framework, e.g. pip install 'modelcheck[{name}]'"
                ) from None
            backend: Backend = factory()
            return backend
    installed = ", ".join(available_backends()) or "none"
    raise BackendError(f"unknown backend {name!r}; installed backends: {installed}")
