"""text-generation: ``AutoModelForCausalLM`` + ``AutoTokenizer``, greedy, returning only the continuation.

An input is a prompt string, a chat (a list of role/content messages: the tokenizer's chat template is
applied with ``add_generation_prompt=True``), or a ``(prompt, reference)`` pair, for which the model also
scores the reference as the prompt's continuation (``Outputs.token_logprobs``: the sum of its tokens'
log-probabilities and their count, for ``perplexity``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelcheck.errors import BackendError, DataError
from modelcheck.models.backends import InputRowError, Outputs, data_row
from modelcheck_transformers._common import (
    TransformersModel,
    bad_input,
    ensure_pad_token,
    length_sorted_batches,
    max_length,
    sorted_batches,
)

#: Sampling and beam settings a model's generation_config may carry; greedy decoding uses none of them.
_NOT_GREEDY = {"temperature": None, "top_p": None, "top_k": None, "typical_p": None, "min_p": None, "num_beams": 1}
#: The seed set before every generation (greedy decoding draws nothing; a model that samples repeats).
SEED = 0


def greedy_config(network: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    """The model's generation config made greedy, ``max_new_tokens`` long, with pad and end tokens set.

    It replaces ``network.generation_config``: generate() fills unset values from the model's own
    config, so sampling settings there would come back.
    """
    config = copy.deepcopy(network.generation_config)
    config.update(**_NOT_GREEDY, do_sample=False, max_new_tokens=max_new_tokens)
    config.max_length = None
    config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    network.generation_config = config
    return config


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any ``stop`` string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def generated_tokens(tokens: Any, config: Any) -> Any:
    """Per row of generated token ids (a tensor), how many are neither padding nor end-of-sequence."""
    ids = tokens.cpu().numpy()
    eos = config.eos_token_id
    stops = [
        t for t in ([config.pad_token_id] + (list(eos) if isinstance(eos, (list, tuple)) else [eos])) if t is not None
    ]
    return (~np.isin(ids, stops)).sum(axis=1)


def decoding_details(model: Any) -> dict[str, Any]:
    """What the report records about how texts were generated."""
    return {
        "decoding": "greedy",
        "max_new_tokens": model.max_new_tokens,
        "stop": list(model.stop),
        "seed": SEED,
    }


def too_long(what: str, limit: int, fix: str) -> Any:
    """The ``too_long(row, tokens)`` error of :func:`sorted_batches` for inputs over ``limit`` tokens."""

    def error(row: int, tokens: int) -> DataError:
        return InputRowError(row, f"{what} at ", f" has {tokens} tokens, more than the {limit} the model takes; {fix}")

    return error


class GenerationModel(TransformersModel):
    """Greedy continuations of ``max_new_tokens`` (model.max_new_tokens) tokens, batched with left padding.

    Prompts run longest first; a prompt longer than the model's context minus ``max_new_tokens`` is a
    DataError naming its row. The pad token is the end-of-sequence token where the tokenizer has none.
    Texts are cut at the first of ``model.stop``.
    """

    task = "text-generation"

    def __init__(self, network: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(network, tokenizer, **kwargs)
        self.max_new_tokens = self.spec.max_new_tokens if self.spec is not None else 32
        self.stop: tuple[str, ...] = tuple(getattr(self.spec, "stop", None) or ())
        ensure_pad_token(tokenizer, self.source)
        tokenizer.padding_side = "left"
        self.context = max_length(tokenizer, network.config)
        if self.max_new_tokens >= self.context:
            raise BackendError(
                f"max_new_tokens {self.max_new_tokens} leaves no room for a prompt in the {self.context} positions "
                f"of {self.source}; lower model.max_new_tokens"
            )
        self.max_length = self.context - self.max_new_tokens
        self.generation_config = greedy_config(network, tokenizer, self.max_new_tokens)

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import torch

        pairs = [isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], str) for x in inputs]
        prompts = [x[0] if pair else x for x, pair in zip(inputs, pairs, strict=True)]
        texts, special = self._render(prompts)
        generated = [""] * len(texts)
        counts = np.zeros(len(texts), dtype=np.int64)
        tokenizer = self._preprocessor
        fix = "shorten it, lower model.max_new_tokens, or use a model with a longer context"
        batches = sorted_batches(
            tokenizer, texts, max_length=self.max_length, batch_size=batch_size, device=self.device,
            add_special_tokens=special, too_long=too_long("the prompt (data.input)", self.max_length, fix),
        )  # fmt: skip
        torch.manual_seed(SEED)
        for rows, batch in batches:
            sequences = self._network.generate(**batch, generation_config=self.generation_config)
            new_tokens = sequences[:, batch["input_ids"].shape[1] :]
            continuations = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            counts[rows] = generated_tokens(new_tokens, self.generation_config)
            for row, text in zip(rows.tolist(), continuations, strict=True):
                generated[row] = cut_at_stop(text, self.stop) if self.stop else text
        scored = None
        if any(pairs):
            if not all(pairs):
                raise DataError("every input must be a (prompt, reference) pair when one is (perplexity)")
            scored = self.score(texts, [x[1] for x in inputs], batch_size=batch_size, special=special)
        return Outputs(texts=generated, token_logprobs=scored, generation=decoding_details(self), output_tokens=counts)

    def _render(self, prompts: list[Any]) -> tuple[list[str], bool]:
        """Prompt texts (chats through the chat template) and whether the tokenizer adds its special tokens."""
        chats = [isinstance(p, list) for p in prompts]
        for row, prompt in enumerate(prompts):
            if not isinstance(prompt, (str, list)):
                raise DataError(bad_input(row, prompt, self.task, "strings or chats (lists of role/content messages)"))
        if not any(chats):
            return list(prompts), True
        tokenizer = self._preprocessor
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                f"the prompts are chats ({data_row(chats.index(True))}) but the tokenizer of {self.source} has no chat "
                "template; give prompts as text, or set tokenizer.chat_template and save the tokenizer again"
            )
        texts = []
        for row, prompt in enumerate(prompts):
            if not isinstance(prompt, list):
                raise InputRowError(
                    row, "", " is a text prompt among chats; give every row as a chat, or every one as text"
                )
            try:
                texts.append(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
            except Exception as exc:  # jinja2 raises TemplateError, the template may raise its own
                raise InputRowError(row, "the chat at ", f" does not fit the model's chat template: {exc}") from None
        return texts, False  # the template writes the special tokens itself

    def score(self, prompts: list[str], references: list[str], *, batch_size: int, special: bool) -> np.ndarray:
        """Per row ``[sum of log p(reference token | prompt, earlier tokens), reference tokens]``, shape (n, 2).

        The reference is tokenised on its own (no special tokens) and appended to the prompt's tokens.
        """
        import torch

        tokenizer, network = self._preprocessor, self._network
        heads = tokenizer(prompts, add_special_tokens=special)["input_ids"]
        tails = tokenizer(references, add_special_tokens=False)["input_ids"]
        for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
            if not head or not tail:
                what = "prompt" if not head else "reference"
                raise InputRowError(row, f"the {what} at ", " has no tokens, so its perplexity is not defined")
            if len(head) + len(tail) > self.context:
                raise InputRowError(
                    row, "the prompt and reference at ",
                    f" have {len(head) + len(tail)} tokens, more than the {self.context} positions of the model; "
                    "shorten them",
                )  # fmt: skip
        sequences = [head + tail for head, tail in zip(heads, tails, strict=True)]
        encoded = {"input_ids": sequences, "attention_mask": [[1] * len(seq) for seq in sequences]}
        out = np.zeros((len(prompts), 2), dtype=np.float64)
        batches = length_sorted_batches(
            encoded, range(len(sequences)), pad_id=tokenizer.pad_token_id, batch_size=batch_size, device=self.device,
            accepted=("input_ids", "attention_mask"),
        )  # fmt: skip
        for rows, batch in batches:
            ids = batch["input_ids"]
            logits = network(**batch).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:, None])[..., 0].cpu()
            positions = torch.arange(ids.shape[1] - 1)[None, :] + 1  # the position of each scored token
            starts = torch.tensor([len(heads[row]) for row in rows])[:, None]
            ends = torch.tensor([len(sequences[row]) for row in rows])[:, None]
            taken = (positions >= starts) & (positions < ends)  # the reference's tokens
            out[rows, 0] = torch.where(taken, logprobs, 0.0).sum(dim=1).double().numpy()
            out[rows, 1] = taken.sum(dim=1).numpy()
        return out
