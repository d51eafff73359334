"""What a loaded module tells about itself: its dtype, feature count, class names, the tensor its forward returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck_torch._common import _describe

if TYPE_CHECKING:
    pass


def _parameter_dtype(network: Any, default: Any) -> Any:
    """The dtype inputs are cast to when the gate sets none: the module's first floating parameter's."""
    for tensor in (*network.parameters(), *network.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return default


def _input_width(network: Any) -> int | None:
    """The feature count the module takes, read from its exported input shape or its first feature layer."""
    import torch
    from torch import nn

    placeholders = [n for n in getattr(getattr(network, "graph", None), "nodes", ()) if n.op == "placeholder"]
    if isinstance(network, torch.fx.GraphModule) and len(placeholders) == 1:
        value = placeholders[0].meta.get("val")
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
            return int(shape[1])
    for layer in network.modules():
        if isinstance(layer, nn.Linear) and not isinstance(layer, nn.LazyLinear):
            return int(layer.in_features)
        if isinstance(layer, nn.BatchNorm1d) and not isinstance(layer, nn.LazyBatchNorm1d):
            return int(layer.num_features)
        if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
            return int(layer.normalized_shape[0])
    return None


def _labels_of(network: Any) -> tuple[str, ...] | None:
    """Class names from a module's ``id2label`` (dict or list) or ``classes_`` attribute."""
    id2label = getattr(network, "id2label", None)
    if isinstance(id2label, Mapping) and id2label:
        try:
            ordered = {int(k): str(v) for k, v in id2label.items()}
        except (TypeError, ValueError):
            return None
        return tuple(ordered[k] for k in sorted(ordered))
    for candidate in (id2label, getattr(network, "classes_", None)):
        if candidate is not None and not isinstance(candidate, (str, bytes, Mapping)):
            try:
                names = tuple(str(v) for v in candidate)
            except TypeError:
                continue
            if names:
                return names
    return None


def _tensor_of(output: Any) -> Any:
    """The logits/values tensor of a forward's result: a tensor, ``.logits``, ``["logits"]`` or the first item."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise BackendError(
        f"the model returned {_describe(output)}; the torch backend needs a tensor (or a tuple/dict whose "
        "first item / 'logits' is one)"
    )
