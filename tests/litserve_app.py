"""A LitServe server with the OpenAI specs, for the endpoint tests: ``python litserve_app.py PORT GPT2 EMBEDDER``.

``/v1/chat/completions`` answers the last user message with greedy generation of ``max_tokens``
tokens (streamed: one event per generated token, each sent once that token is generated), and
``/v1/embeddings`` embeds ``input``; both run the model the way modelcheck's own
transformers backend runs it locally (that is what the server-vs-folder comparison measures).
"""

from __future__ import annotations

import sys
from typing import Any

import litserve as ls

from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import get_backend


class Chat(ls.LitAPI):
    def __init__(self, folder: str) -> None:
        super().__init__(spec=ls.OpenAISpec())
        self.folder = folder
        self.models: dict[int, Any] = {}

    def setup(self, device: str) -> None:
        self.model(4)

    def model(self, max_tokens: int) -> Any:
        if max_tokens not in self.models:
            spec = ModelSpec(id="gpt2", source=self.folder, task="text-generation", device="cpu", threads=1,
                             max_new_tokens=max_tokens)  # fmt: skip
            self.models[max_tokens] = get_backend("transformers").load(spec)
        return self.models[max_tokens]

    def predict(self, request: Any, context: dict[str, Any]) -> Any:
        prompt = request.messages[-1].content
        max_tokens = int(context.get("max_tokens") or 4)
        if not request.stream:
            yield self.model(max_tokens).predict([prompt], batch_size=1).texts[0]
            return
        # streamed: token by token as greedy decoding makes them (the text of k tokens extends that of k - 1),
        # each piece yielded once its token is generated, with the tokens so far as usage (the last one counts)
        sent = ""
        for k in range(1, max_tokens + 1):
            text = self.model(k).predict([prompt], batch_size=1).texts[0]
            if not text.startswith(sent) or text == sent:
                break  # stopped (end of sequence) or re-tokenised: the rest is not an extension
            yield {"role": "assistant", "content": text[len(sent) :], "completion_tokens": k}
            sent = text


class Embed(ls.LitAPI):
    def __init__(self, folder: str) -> None:
        super().__init__(spec=ls.OpenAIEmbeddingSpec())
        self.folder = folder

    def setup(self, device: str) -> None:
        spec = ModelSpec(id="embedder", source=self.folder, task="feature-extraction", device="cpu", threads=1)
        self.embedder = get_backend("transformers").load(spec)

    def predict(self, inputs: Any) -> Any:
        texts = inputs if isinstance(inputs, list) else [inputs]
        return self.embedder.predict(texts, batch_size=32).embeddings.tolist()


if __name__ == "__main__":
    port, generator, embedder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = ls.LitServer([Chat(generator), Embed(embedder)], accelerator="cpu", devices=1, workers_per_device=1)
    server.run(host="127.0.0.1", port=port, generate_client_file=False)
