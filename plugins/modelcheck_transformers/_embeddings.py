"""feature-extraction: ``AutoModel`` + ``AutoTokenizer``, pooled and L2-normalised (sentence-transformers style).

Pooling is the mean over the attention mask unless the model folder carries a sentence-transformers
``Pooling`` module config that says ``cls``, ``max`` or ``lasttoken``; ``max_seq_length`` from
``sentence_bert_config.json`` caps the input length, as sentence-transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelcheck.errors import ModelLoadError
from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import (
    TransformersModel,
    bad_input,
    check_texts,
    ensure_pad_token,
    max_length,
    sorted_batches,
)

_POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean",  # the same direction as the mean: equal after L2 normalisation
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
}


class EmbeddingModel(TransformersModel):
    """One unit-length embedding per text; for ``(a, b)`` pairs also one per second text."""

    task = "feature-extraction"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "right"
        repo = self.source.partition("@")[0]
        self.pooling, limit = _sentence_transformers_settings(repo, self.revision)
        self.max_length = min(limit or 1_000_000, max_length(tokenizer, network.config))

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        if inputs and isinstance(inputs[0], (tuple, list)):
            for row, pair in enumerate(inputs):
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                    expected = "pairs of strings (data.input: [a, b])"
                    raise bad_input(row, pair, f"paired {self.task}", expected)
            texts = [pair[0] for pair in inputs] + [pair[1] for pair in inputs]
            both = self._embed(texts, batch_size)
            return Outputs(embeddings=both[: len(inputs)], pair_embeddings=both[len(inputs) :])
        check_texts(inputs, self.task)
        return Outputs(embeddings=self._embed(inputs, batch_size))

    def _embed(self, texts: list[str], batch_size: int) -> Any:
        import numpy as np
        import torch

        network, pooling = self._network, self.pooling
        dim = getattr(network.config, "hidden_size", 0)
        out = np.empty((len(texts), dim), dtype=np.float32)
        batches = sorted_batches(
            self._preprocessor, texts, max_length=self.max_length, batch_size=batch_size, device=self.device
        )
        for rows, batch in batches:
            pooled = pool(network(**batch)[0], batch["attention_mask"], pooling)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            if pooled.shape[1] != out.shape[1]:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled.cpu().numpy()
        return out

    def export_onnx(self, path: Path) -> Path:
        """ONNX graph of the token vectors ``last_hidden_state`` (the onnx backend mean-pools them).

        A model that pools otherwise (cls, max, lasttoken) is exported with its pooling as output
        ``sentence_embedding`` instead, which the onnx backend takes as is.
        """
        if self.pooling == "mean":
            return self._export_text(path, "last_hidden_state", lambda network, inputs: network(**inputs)[0], True)
        pooling = self.pooling
        return self._export_text(
            path,
            "sentence_embedding",
            lambda network, inputs: pool(network(**inputs)[0], inputs["attention_mask"], pooling),
            seq_out=False,
        )


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool token vectors (batch, seq, dim) under the attention mask (right padding) into (batch, dim)."""
    import torch

    if pooling == "mean":  # the sum: the mean's 1/n goes away in the normalisation
        return torch.bmm(mask.unsqueeze(1).to(hidden.dtype), hidden).squeeze(1)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "max":
        return hidden.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(dim=1)
    # lasttoken
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), mask.sum(dim=1) - 1]


def _sentence_transformers_settings(repo: str, revision: str | None) -> tuple[str, int | None]:
    """``(pooling, max_seq_length)`` from a sentence-transformers model folder, else ``("mean", None)``."""
    modules = _read_json(repo, "modules.json", revision)
    pooling = "mean"
    for module in modules if isinstance(modules, list) else []:
        if str(module.get("type", "")).endswith("models.Pooling"):
            config = _read_json(repo, f"{module.get('path') or ''}/config.json".lstrip("/"), revision) or {}
            modes = sorted({mode for key, mode in _POOLING_MODES.items() if config.get(key)})
            if len(modes) > 1:
                raise ModelLoadError(
                    f"the sentence-transformers Pooling of {repo} combines {', '.join(modes)} pooling; "
                    "the transformers backend pools one way (mean, cls, max or lasttoken)"
                )
            pooling = modes[0] if modes else "mean"
    settings = _read_json(repo, "sentence_bert_config.json", revision) or {}
    limit = settings.get("max_seq_length")
    return pooling, limit if isinstance(limit, int) and limit > 0 else None


def _read_json(repo: str, filename: str, revision: str | None) -> Any:
    """A JSON file of the model folder or of its Hub repository (cached), or None where it has none."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            repo,
            filename,
            revision=revision,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except Exception:  # a repository without the file, or no network: not a sentence-transformers folder
        return None
    if path is None:
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)
