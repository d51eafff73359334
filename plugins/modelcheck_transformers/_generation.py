"""text-generation: ``AutoModelForCausalLM`` + ``AutoTokenizer``, greedy, returning only the continuation."""

from __future__ import annotations

import copy
from typing import Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, check_texts, ensure_pad_token, max_length, sorted_batches

#: Sampling and beam settings a model's generation_config may carry; greedy decoding uses none of them.
_NOT_GREEDY = {"temperature": None, "top_p": None, "top_k": None, "typical_p": None, "min_p": None, "num_beams": 1}


class GenerationModel(TransformersModel):
    """Greedy continuations of ``max_new_tokens`` (model.max_new_tokens) tokens, batched with left padding.

    Prompts run longest first; a prompt longer than the model's context minus ``max_new_tokens`` keeps
    its end. The pad token is the end-of-sequence token where the tokenizer has none.
    """

    task = "text-generation"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        self.max_new_tokens = self.spec.max_new_tokens if self.spec is not None else 32
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"
        context = max_length(tokenizer, network.config)
        if self.max_new_tokens >= context:
            raise BackendError(
                f"max_new_tokens {self.max_new_tokens} leaves no room for a prompt in the {context} positions of "
                f"{self.source}; lower model.max_new_tokens"
            )
        self.max_length = context - self.max_new_tokens
        config = copy.deepcopy(network.generation_config)
        config.update(**_NOT_GREEDY, do_sample=False, max_new_tokens=self.max_new_tokens)
        config.max_length = None
        config.pad_token_id = tokenizer.pad_token_id
        if config.eos_token_id is None:
            config.eos_token_id = tokenizer.eos_token_id
        # generate() fills unset values from the model's own config: replace it, so sampling settings stay unset
        network.generation_config = config
        self.generation_config = config

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        check_texts(inputs, self.task)
        texts = [""] * len(inputs)
        tokenizer = self._preprocessor
        batches = sorted_batches(
            tokenizer, inputs, max_length=self.max_length, batch_size=batch_size, device=self.device
        )
        for rows, batch in batches:
            sequences = self._network.generate(**batch, generation_config=self.generation_config)
            new_tokens = sequences[:, batch["input_ids"].shape[1] :]
            continuations = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for row, text in zip(rows.tolist(), continuations, strict=True):
                texts[row] = text
        return Outputs(texts=texts)
