"""text2text-generation, summarization, translation: ``AutoModelForSeq2SeqLM`` + ``AutoTokenizer``, greedy."""

from __future__ import annotations

from typing import Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, check_texts, ensure_pad_token, max_length, sorted_batches
from modelcheck_transformers._generation import (
    SEED,
    cut_at_stop,
    decoding_details,
    generated_tokens,
    greedy_config,
    too_long,
)


class Text2TextModel(TransformersModel):
    """Greedy outputs of up to ``max_new_tokens`` tokens for each source text, batched longest first.

    The source goes to the encoder as it is (put any task prefix, e.g. ``summarize: ``, in the data); one
    longer than the encoder's context is a DataError naming its row. The decoder starts from the model's
    ``decoder_start_token_id`` (else the pad token, as T5 does). Outputs are cut at the first of ``model.stop``.
    """

    task = "text2text-generation"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        if self.spec is not None:
            self.task = self.spec.task
        self.max_new_tokens = self.spec.max_new_tokens if self.spec is not None else 32
        self.stop: tuple[str, ...] = tuple(getattr(self.spec, "stop", None) or ())
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "right"
        self.max_length = max_length(tokenizer, network.config)
        config = greedy_config(network, tokenizer, self.max_new_tokens)
        start = (
            config.decoder_start_token_id
            if config.decoder_start_token_id is not None
            else getattr(network.config, "decoder_start_token_id", None)
        )
        if start is None:
            start = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.bos_token_id
        if start is None:
            raise BackendError(
                f"the model in {self.source} has no decoder_start_token_id and its tokenizer no pad or bos token, so "
                "its decoder cannot start; set config.decoder_start_token_id and save the model again"
            )
        config.decoder_start_token_id = start
        self.generation_config = config

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np
        import torch

        check_texts(inputs, self.task)
        texts = [""] * len(inputs)
        counts = np.zeros(len(inputs), dtype=np.int64)
        tokenizer = self._preprocessor
        fix = "shorten it or use a model with a longer context"
        batches = sorted_batches(
            tokenizer, inputs, max_length=self.max_length, batch_size=batch_size, device=self.device,
            too_long=too_long("the source text (data.input)", self.max_length, fix),
        )  # fmt: skip
        torch.manual_seed(SEED)
        for rows, batch in batches:
            sequences = self._network.generate(**batch, generation_config=self.generation_config)
            decoded = tokenizer.batch_decode(sequences, skip_special_tokens=True)
            counts[rows] = generated_tokens(sequences[:, 1:], self.generation_config)  # after the decoder's start
            for row, text in zip(rows.tolist(), decoded, strict=True):
                texts[row] = cut_at_stop(text, self.stop) if self.stop else text
        return Outputs(texts=texts, generation=decoding_details(self), output_tokens=counts)
