"""What every loaded transformers model shares: files, closing, threads, and fast tokenisation."""

from __future__ import annotations

import gc
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, ModelLoadError
from modelcheck.models.backends import InputRowError, check_predict
from modelcheck.models.hardware import per_call_threads, torch_threads

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import Outputs

#: Texts tokenised (and padded) together; bounds the memory of one padded chunk.
CHUNK = 8192


class TransformersModel:
    """A loaded transformers model (implements ``modelcheck.models.backends.LoadedModel``); one subclass per task."""

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

    def pinned_threads(self, threads: int) -> AbstractContextManager[dict[str, int]]:
        """torch runs this model's predict calls on ``threads`` intra-op threads for the block."""
        return per_call_threads(self, threads)

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

    def export_onnx(self, path: Path) -> Path:
        """Write the model as ONNX to ``path`` (with its tokenizer and config.json beside it); the .onnx path.

        Tasks with an export override this; the others raise BackendError.
        """
        raise BackendError(
            f"ONNX export of task {self.task!r} is not supported (model {self.source}); the transformers backend "
            "exports text-classification, feature-extraction, multi-label-classification, token-classification and "
            "question-answering models"
        )

    def _export_text(
        self, path: Path, output: str | tuple[str, ...], head: Callable[[Any, dict[str, Any]], Any], seq_out: bool
    ) -> Path:
        """Export ``head(network, inputs)`` (a tensor, or a tuple for several ``output`` names) with the tokenizer's
        inputs (batch and sequence axes dynamic; the outputs' sequence axis too with ``seq_out``).

        The inputs are those the backend feeds: ``input_ids``, ``attention_mask`` and ``token_type_ids``
        where the tokenizer gives them by default and the model's forward takes them.
        """
        check_predict(self.source, loaded=self._network is not None, batch_size=1)
        import torch

        from modelcheck.models.export import torch_to_onnx

        network, tokenizer = self._network, self._preprocessor
        accepted = inspect.signature(network.forward).parameters
        sample = tokenizer(
            ["a short text", "a somewhat longer text to pad the first"], padding=True, return_tensors="pt"
        )
        names = [
            name
            for name in ("input_ids", "attention_mask", "token_type_ids")
            if name in sample and name in accepted and (name != "token_type_ids" or name in tokenizer.model_input_names)
        ]

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.network = network  # a submodule, so the exporter sees its parameters

            def forward(self, *tensors: Any) -> Any:
                return head(self.network, dict(zip(names, tensors, strict=True)))

        axes = {name: {0: "batch", 1: "seq"} for name in names}
        outputs = [output] if isinstance(output, str) else list(output)
        for name in outputs:
            axes[name] = {0: "batch", 1: "seq"} if seq_out else {0: "batch"}
        args = tuple(sample[name].to(self.device) for name in names)
        path = torch_to_onnx(
            Wrapper(),
            args,
            Path(path),
            inputs=names,
            outputs=outputs,
            dynamic_axes=axes,
            what=f"the {self.task} model {self.source}",
        )
        limit = tokenizer.model_max_length
        tokenizer.model_max_length = getattr(
            self, "max_length", limit
        )  # the length the backend truncates to travels with it
        try:
            tokenizer.save_pretrained(str(path.parent))
        finally:
            tokenizer.model_max_length = limit
        network.config.save_pretrained(str(path.parent))  # config.json: id2label, max_position_embeddings
        return path

    def close(self) -> None:
        """Drop the model and its preprocessor and give their memory back."""
        self._network = None
        self._preprocessor = None
        if self.device.startswith("cuda"):  # CUDA memory comes back only once nothing refers to it
            import torch

            gc.collect()
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
    raise bad_input(row, texts[row], task, "strings")


def bad_input(row: int, value: object, task: str, expected: str) -> InputRowError:
    """The message for an input of the wrong type."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        what = "missing (None/NaN)"
    else:
        what = f"of type {type(value).__name__} ({value!r:.40})"
    return InputRowError(
        row,
        "the input at ",
        f" is {what}; {task} inputs must be {expected}. Drop or fill the missing values in the data's input column",
    )


def sorted_batches(
    tokenizer: Any,
    texts: list[str],
    *,
    max_length: int,
    batch_size: int,
    device: str,
    add_special_tokens: bool = True,
    too_long: Callable[[int, int], Exception] | None = None,
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield ``(rows, batch)``: the texts tokenised once, longest first, each batch padded to its longest.

    The tokenizer pads a whole chunk at once (on its own padding side); a batch is then a slice of the
    sorted chunk cut to its longest row, so the loop does no per-row work. ``rows`` are input positions.
    Texts longer than ``max_length`` tokens are truncated, or with ``too_long`` the error
    ``too_long(row, tokens)`` of the first one is raised.
    """
    import torch

    left = tokenizer.padding_side == "left"
    for offset in range(0, len(texts), CHUNK):
        encoded = tokenizer(
            texts[offset : offset + CHUNK], padding=True, truncation=too_long is None,
            max_length=max_length if too_long is None else None, return_tensors="pt",
            add_special_tokens=add_special_tokens,
        )  # fmt: skip
        lengths = encoded["attention_mask"].sum(dim=1)
        if too_long is not None and len(lengths) and int(lengths.max()) > max_length:
            row = int(torch.argmax((lengths > max_length).int()))
            raise too_long(offset + row, int(lengths[row]))
        order = torch.argsort(lengths, descending=True, stable=True)
        columns = {key: value[order] for key, value in encoded.items()}
        widths = lengths[order].tolist()
        rows = order.numpy() + offset
        for start in range(0, len(rows), batch_size):
            width = max(widths[start], 1)
            cut = slice(-width, None) if left else slice(0, width)
            batch = {key: value[start : start + batch_size, cut].to(device) for key, value in columns.items()}
            yield rows[start : start + batch_size], batch


class PretokenisedModel(TransformersModel):
    """A model whose inputs are tokenised up front with a fast tokenizer (for its offsets or word ids) and then
    batched by :func:`length_sorted_batches`; ``needs`` says why the fast tokenizer is required."""

    needs = "its offsets"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        require_fast_tokenizer(tokenizer, self.source, self.task, self.needs)
        self.max_length = max_length(tokenizer, network.config)
        self._accepted = tuple(inspect.signature(network.forward).parameters)


def require_fast_tokenizer(tokenizer: Any, source: str, task: str, needs: str) -> None:
    """ModelLoadError unless the tokenizer is a fast (Rust) one, which ``task`` needs for ``needs``."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"{task} needs a fast tokenizer ({needs}), but {source} has a slow one; save the model's "
            "tokenizer.json (AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(folder))"
        )


def length_sorted_batches(
    encoded: Any, rows: Sequence[int], *, pad_id: int, batch_size: int, device: str, accepted: Sequence[str]
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """Yield ``(rows, batch)`` of pre-tokenised rows, longest first, each batch right-padded to its longest row.

    ``encoded`` holds per-row id lists (a tokenizer's unpadded output); only the keys in ``accepted``
    (what the model's forward takes) travel.
    """
    import torch

    lengths = {row: len(encoded["input_ids"][row]) for row in rows}
    order = sorted(rows, key=lambda row: -lengths[row])
    keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded and key in accepted]
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        width = max(lengths[row] for row in chosen)
        batch = {}
        for key in keys:
            fill = pad_id if key == "input_ids" else 0
            values = [list(encoded[key][row]) + [fill] * (width - lengths[row]) for row in chosen]
            batch[key] = torch.tensor(values, dtype=torch.long, device=device)
        yield chosen, batch
