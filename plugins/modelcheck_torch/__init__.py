"""The ``torch`` backend: plain ``torch.nn.Module`` models for tabular tasks.

Registered in the ``modelcheck.backends`` entry-point group as ``torch``. A gate's ``model.source`` is

- ``"package.module:callable"``: the callable (found with importlib; the module must be importable,
  e.g. through pytest's ``pythonpath`` ini option) returns an ``nn.Module``. ``model.weights``
  optionally names a ``.safetensors`` file or a ``.pt``/``.pth`` checkpoint loaded into it;
- a ``.pt2`` file written by ``torch.export.save``;
- a ``.pt``/``.pth`` file holding a whole pickled module (``torch.save(model)``).

Checkpoints are read with ``torch.load(weights_only=True)``; a file that needs full unpickling (which
can run arbitrary code) is refused unless the gate says ``allow_pickle: true``. torch is imported only
when a model is loaded, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelcheck.errors import BackendError, ModelLoadError
from modelcheck.models.backends import require_task
from modelcheck.models.hardware import resolve_device, torch_dtype
from modelcheck_torch._common import _detail
from modelcheck_torch._loading import SOURCE_KINDS, _load_network
from modelcheck_torch._model import TorchModel
from modelcheck_torch._network import _parameter_dtype

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec

__all__ = ["SOURCE_KINDS", "SUPPORTED_TASKS", "TorchBackend", "TorchModel"]

SUPPORTED_TASKS = ("tabular-classification", "tabular-regression")


class TorchBackend:
    """Loads torch modules from a factory callable, a ``torch.export`` program or a pickled module."""

    name = "torch"

    def load(self, model: ModelSpec) -> TorchModel:
        """Load ``model`` on its device and dtype; raise ModelLoadError / BackendError that say how to fix it."""
        require_task(self.name, model, SUPPORTED_TASKS)
        try:
            import torch
        except ImportError as exc:
            raise BackendError(f"the torch backend needs torch ({exc}); install it with pip install torch") from None

        device = resolve_device(model.device)
        dtype = torch_dtype(model.dtype, device)
        network, files, exported = _load_network(model, device)
        try:
            if dtype is None:
                network.to(device)
            else:
                network.to(device=device, dtype=dtype)
        except Exception as exc:  # a module that cannot move (custom .to, unsupported dtype on the device)
            raise ModelLoadError(
                f"cannot move model {model.source} to {device}"
                f"{f' as {model.dtype}' if model.dtype else ''}: {_detail(exc)}"
            ) from None
        if not exported:  # an exported program is frozen in the mode it was exported in; .eval() raises
            network.eval()
        loaded = TorchModel(
            network,
            task=model.task,
            device=device,
            dtype=dtype if dtype is not None else _parameter_dtype(network, torch.float32),
            files=files,
            source=model.source,
            threads=model.threads,
            labels=model.labels,
        )
        if model.task == "tabular-classification":
            loaded.label_names  # noqa: B018 -- resolve the labels now, so a mismatch fails at load time
        return loaded
