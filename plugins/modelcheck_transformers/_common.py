"""What every loaded transformers model shares: files, closing, threads, and fast tokenisation."""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.backends import check_predict
from modelcheck.errors import DataError, ModelLoadError
from modelcheck.hardware import torch_threads

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.backends import Outputs
    from modelcheck.spec import ModelSpec

#: Texts tokenised (and padded) together; bounds the memory of one padded chunk.
CHUNK = 8192


class TransformersModel:
    """A loaded transformers model (implements ``modelcheck.backends.LoadedModel``); one subclass per task."""

    task = ""

    def __init__(
        self,
        network: Any,
        preprocessor: Any,
        *,
        device: str,
        source: str,
        revision: str | None,
        label_names: tuple[str, ...] = (),
        spec: ModelSpec | None = None,
    ) -> None:
        self._network: Any = network
        self._preprocessor: Any = preprocessor
        self.device = device
        self.source = source
        self.revision = revision
        self.label_names = label_names
        self.spec = spec
        self.threads = spec.threads if spec is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, device={self.device!r})"

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        """Run the model over ``inputs`` in the order given (see ``LoadedModel.predict``)."""
        check_predict(self.source, loaded=self._network is not None, batch_size=batch_size)
        import torch

        with torch_threads(self.threads), torch.inference_mode():
            return self._predict(list(inputs), batch_size)

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        raise NotImplementedError

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
        """Drop the model and its preprocessor and give their memory back."""
        self._network = None
        self._preprocessor = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def max_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes: the tokenizer's limit, else the position embeddings'."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return min(limit, positions) if isinstance(positions, int) and positions > 0 else limit
    return positions if isinstance(positions, int) and positions > 0 else 512


def ensure_pad_token(tokenizer: Any, source: str) -> None:
    """Batches need a pad token: take the end-of-sequence token where the tokenizer has none."""
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is None:
        raise ModelLoadError(
            f"the tokenizer of {source} has neither a pad token nor an end-of-sequence token, so inputs cannot be "
            "batched; set tokenizer.pad_token and save it again"
        )
    tokenizer.pad_token = tokenizer.eos_token


def check_texts(texts: list[Any], task: str) -> None:
    """DataError naming the first input that is not a string."""
    if all(isinstance(text, str) for text in texts):
        return
    row = next(i for i, text in enumerate(texts) if not isinstance(text, str))
    raise DataError(bad_input(row, texts[row], task, "strings"))


def bad_input(row: int, value: object, task: str, expected: str) -> str:
    """The message for an input of the wrong type."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        what = "missing (None/NaN)"
    else:
        what = f"of type {type(value).__name__} ({value!r:.40})"
    return (
        f"input at row {row} is {what}; {task} inputs must be {expected}. "
        "Drop or fill the missing values in the data's input column"
    )


def sorted_batches(
    tokenizer: Any, texts: list[str], *, max_length: int, batch_size: int, device: str
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield ``(rows, batch)``: the texts tokenised once, longest first, each batch padded to its longest.

    The tokenizer pads a whole chunk at once (on its own padding side); a batch is then a slice of the
    sorted chunk cut to its longest row, so the loop does no per-row work. ``rows`` are input positions.
    """
    import torch

    left = tokenizer.padding_side == "left"
    for offset in range(0, len(texts), CHUNK):
        encoded = tokenizer(
            texts[offset : offset + CHUNK], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        lengths = encoded["attention_mask"].sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        columns = {key: value[order] for key, value in encoded.items()}
        widths = lengths[order].tolist()
        rows = order.numpy() + offset
        for start in range(0, len(rows), batch_size):
            width = max(widths[start], 1)
            cut = slice(-width, None) if left else slice(0, width)
            batch = {key: value[start : start + batch_size, cut].to(device) for key, value in columns.items()}
            yield rows[start : start + batch_size], batch
