"""The ``transformers`` backend: Hugging Face models from a local folder or the Hub.

Registered in the ``modelcheck.backends`` entry-point group as ``transformers``. torch and
transformers are imported only when a model is loaded, so importing this module is cheap.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.backends import Outputs
from modelcheck.errors import BackendError, DataError, ModelLoadError
from modelcheck.hardware import resolve_device

if TYPE_CHECKING:
    from modelcheck.spec import ModelSpec

__all__ = ["SUPPORTED_TASKS", "TransformersBackend", "TransformersModel", "resolve_device"]

SUPPORTED_TASKS = ("text-classification",)
_TRUE = {"1", "on", "yes", "true"}


class TransformersBackend:
    """Loads ``AutoModelForSequenceClassification`` models with their ``AutoTokenizer``."""

    name = "transformers"

    def load(self, model: ModelSpec) -> TransformersModel:
        """Load ``model`` on its device; raise ModelLoadError / BackendError that say how to fix it."""
        if model.task not in SUPPORTED_TASKS:
            raise BackendError(
                f"the transformers backend does not support task {model.task!r} (model {model.id!r}); "
                f"supported tasks: {', '.join(SUPPORTED_TASKS)}"
            )
        if model.is_local:
            name, revision = _check_local_folder(Path(model.source)), None
        else:
            name, _, rev = model.source.partition("@")
            revision = rev or None
        device = resolve_device(model.device)

        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every gate run
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                name, revision=revision, trust_remote_code=model.trust_remote_code
            )
            network = AutoModelForSequenceClassification.from_pretrained(
                name, revision=revision, trust_remote_code=model.trust_remote_code
            )
            network.to(device)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for bad models
            raise _load_error(model, name, revision, exc) from None
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        network.eval()
        return TransformersModel(network, tokenizer, device=device, source=model.source, revision=revision)


class TransformersModel:
    """A loaded sequence-classification model (implements ``modelcheck.backends.LoadedModel``)."""

    def __init__(self, network: Any, tokenizer: Any, *, device: str, source: str, revision: str | None) -> None:
        self._network: Any = network
        self._tokenizer: Any = tokenizer
        self.device = device
        self.source = source
        self.revision = revision
        config = network.config
        id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        self.label_names: tuple[str, ...] = tuple(id2label[k] for k in sorted(id2label))
        self.max_length = _max_length(tokenizer, config)

    def __repr__(self) -> str:
        return f"TransformersModel({self.source!r}, device={self.device!r})"

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """Class ids and probabilities for ``inputs`` (texts), in the order given.

        Texts are truncated to the model's limit and run longest first, padded per batch.
        """
        import numpy as np
        import torch

        if self._network is None:
            raise BackendError(f"model {self.source} was closed; load it again to predict")
        if batch_size < 1:
            raise BackendError(f"batch_size must be at least 1, got {batch_size}")
        texts = list(inputs)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(_bad_input(row, text))
        scores = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        if not texts:
            return Outputs(labels=np.empty(0, dtype=np.int64), scores=scores)

        encoded = self._tokenizer(texts, truncation=True, max_length=self.max_length)
        keys = list(encoded.keys())
        order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                features = [{k: encoded[k][i] for k in keys} for i in rows]
                batch = self._tokenizer.pad(features, padding=True, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                logits = self._network(**batch).logits
                scores[rows] = logits.float().softmax(dim=-1).cpu().numpy()
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)

    def artifact_files(self) -> list[Path]:
        """Every file of the model folder (for a Hub model: of its local snapshot), sorted."""
        if Path(self.source).is_absolute():
            folder = Path(self.source)
        else:
            from huggingface_hub import snapshot_download

            repo_id = self.source.partition("@")[0]
            try:
                folder = Path(snapshot_download(repo_id, revision=self.revision, local_files_only=True))
            except Exception as exc:
                raise ModelLoadError(
                    f"cannot find the local snapshot of {self.source} in the Hugging Face cache "
                    f"({type(exc).__name__}: {exc}); download it with `hf download {repo_id}"
                    f"{f' --revision {self.revision}' if self.revision else ''}`"
                ) from None
        return sorted(p for p in folder.rglob("*") if p.is_file())

    def close(self) -> None:
        """Drop the model and tokenizer and give their memory back."""
        self._network = None
        self._tokenizer = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


# -- helpers --------------------------------------------------------------------------------------


def _check_local_folder(folder: Path) -> str:
    if not folder.exists():
        raise ModelLoadError(
            f"model folder not found: {folder} (model.source); build or download the model there, or fix the path"
        )
    if not folder.is_dir():
        raise ModelLoadError(
            f"model.source {folder} is a file; the transformers backend loads a folder written by "
            "save_pretrained (config.json, weights, tokenizer files)"
        )
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"model folder {folder} has no config.json, so it is not a transformers model folder; "
            "write it with model.save_pretrained(folder) and tokenizer.save_pretrained(folder), "
            "or point model.source at the folder that holds config.json"
        )
    return str(folder)


def _is_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    return env or bool(constants.HF_HUB_OFFLINE)


def _load_error(model: ModelSpec, name: str, revision: str | None, exc: Exception) -> ModelLoadError:
    detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
    if model.is_local:
        return ModelLoadError(
            f"cannot load the transformers model in {name} (model.source): {detail}. The folder needs "
            "config.json, the weights (model.safetensors) and the tokenizer files, as written by "
            "save_pretrained"
        )
    rev = f" --revision {revision}" if revision else ""
    if _is_offline():
        return ModelLoadError(
            f"model {model.source} (model.source) is not in the local Hugging Face cache and downloads "
            f"are disabled (HF_HUB_OFFLINE=1): {detail}. Download it first with `hf download {name}{rev}` "
            "(formerly huggingface-cli download), or unset HF_HUB_OFFLINE"
        )
    return ModelLoadError(
        f"cannot load model {model.source} (model.source) from the Hugging Face Hub: {detail}. Check the "
        f"repository id and revision, your network and HF_TOKEN for private or gated models, or download "
        f"it with `hf download {name}{rev}` and set HF_HUB_OFFLINE=1"
    )


def _max_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes: the tokenizer's limit, else the position embeddings'."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return min(limit, positions) if isinstance(positions, int) and positions > 0 else limit
    return positions if isinstance(positions, int) and positions > 0 else 512


def _bad_input(row: int, value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        what = "missing (None/NaN)"
    else:
        what = f"of type {type(value).__name__} ({value!r:.40})"
    return (
        f"input at row {row} is {what}; text-classification inputs must be strings. "
        "Drop or fill the missing texts in the data's input column"
    )
