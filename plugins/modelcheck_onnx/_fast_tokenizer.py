"""A saved fast tokenizer (``tokenizer.json``) read with ``tokenizers`` alone: no transformers import.

:class:`FastTokenizer` offers the calls the ONNX backend makes of a transformers tokenizer: ``__call__``
over texts with truncation (lists of ids, mask and type ids), ``pad`` to the longest row or a fixed
length as numpy arrays, ``model_max_length`` and ``pad_token``, with the settings of
``tokenizer_config.json`` / ``special_tokens_map.json`` that ``save_pretrained`` writes beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: transformers' "no limit" for model_max_length.
NO_LIMIT = int(1e30)


class FastTokenizer:
    """``tokenizer.json`` in ``folder`` with its saved settings, called as the ONNX backend calls a tokenizer."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        config = _json(folder / "tokenizer_config.json")
        special = _json(folder / "special_tokens_map.json")
        limit = config.get("model_max_length")
        self.model_max_length = int(limit) if isinstance(limit, (int, float)) and limit < NO_LIMIT else NO_LIMIT
        self.padding_side = str(config.get("padding_side", "right"))
        self.pad_token = _token(config.get("pad_token")) or _token(special.get("pad_token"))
        self.eos_token = _token(config.get("eos_token")) or _token(special.get("eos_token"))
        pad = self.pad_token or self.eos_token
        pad_id = self._tokenizer.token_to_id(pad) if pad else None
        self.pad_token_id = 0 if pad_id is None else int(pad_id)
        if self.pad_token is None:
            self.pad_token = pad  # padding is masked out: any token does

    def __call__(
        self,
        texts: str | Sequence[str],
        *,
        truncation: bool = False,
        max_length: int | None = None,
        return_attention_mask: bool = True,
        return_token_type_ids: bool | None = None,
    ) -> dict[str, Any]:
        """``input_ids`` (and ``attention_mask``, ``token_type_ids`` when asked) per text, unpadded."""
        single = isinstance(texts, str)
        if truncation and max_length:
            self._tokenizer.enable_truncation(max_length)
        else:
            self._tokenizer.no_truncation()
        encodings = self._tokenizer.encode_batch([texts] if single else list(texts))
        out: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
        if return_token_type_ids:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        if return_attention_mask:
            out["attention_mask"] = [e.attention_mask for e in encodings]
        return {k: v[0] for k, v in out.items()} if single else out

    def pad(
        self,
        features: list[dict[str, Sequence[int]]],
        *,
        padding: bool | str = True,
        max_length: int | None = None,
        return_tensors: str = "np",
    ) -> dict[str, Any]:
        """The rows padded to the longest (``padding=True``) or to ``max_length`` (``"max_length"``), as arrays."""
        import numpy as np

        longest = max((len(f["input_ids"]) for f in features), default=0)
        length = max_length if padding == "max_length" and max_length else longest
        fill = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        out: dict[str, Any] = {}
        for key in features[0] if features else ("input_ids",):
            rows = np.full((len(features), length), fill.get(key, 0), dtype=np.int64)
            for i, feature in enumerate(features):
                values = list(feature[key])[:length]
                if self.padding_side == "left":
                    rows[i, length - len(values) :] = values
                else:
                    rows[i, : len(values)] = values
            out[key] = rows
        return out


def _json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _token(value: Any) -> str | None:
    """A special token as saved: a string, or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None
