"""The ``openai`` backend: a model behind an OpenAI-compatible server.

vLLM, TGI's Messages API, llama.cpp server, Ollama, SGLang and LitServe's OpenAI spec speak it.
Nothing is requested at load time (the API has no standard readiness route); requests go out when
the gate predicts:

- ``text-generation``: one request per prompt, greedy (``temperature: 0``), ``max_tokens`` =
  ``model.max_new_tokens``, ``stop`` = ``model.stop``; ``model.api: chat`` (default) sends the
  prompt as one user message to ``/v1/chat/completions``, ``completions`` as ``prompt`` to
  ``/v1/completions``. The answer's text is the output.
- ``feature-extraction``: ``/v1/embeddings`` with ``batch_size`` texts as ``input`` per request;
  answers are put in order by their ``index``; pairs embed both sides.

``model.model`` (default: ``model.id``) is sent as the ``model`` field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.models.backends import Outputs, check_predict, require_task
from modelcheck.models.endpoint import Call, Endpoint
from modelcheck.models.requests import Failed, join_answered

if TYPE_CHECKING:
    import numpy as np

    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.endpoint_load import EndpointLoad
    from modelcheck.models.requests import RequestTally

__all__ = ["SUPPORTED_TASKS", "OpenAIBackend", "OpenAIModel"]

SUPPORTED_TASKS = ("text-generation", "feature-extraction")


class OpenAIBackend:
    """Talks to an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def load(self, model: ModelSpec) -> OpenAIModel:
        """The served model; nothing is sent until it predicts."""
        require_task(self.name, model, SUPPORTED_TASKS)
        return OpenAIModel(Endpoint(model, self.name), model)


class OpenAIModel:
    """A served model; see :class:`OpenAIBackend` for the requests ``predict`` sends."""

    device = "remote"
    label_names: tuple[str, ...] = ()

    def __init__(self, endpoint: Endpoint, spec: ModelSpec) -> None:
        self.endpoint = endpoint
        self.task = spec.task
        self.max_tokens = spec.max_new_tokens
        self._open = True

    def endpoint_record(self) -> dict[str, Any]:
        """The report's ``model.endpoint`` (requests since the last call)."""
        return self.endpoint.record()

    def tolerating_failures(self) -> AbstractContextManager[RequestTally]:
        """Within: a request that fails for good marks its rows in ``Outputs.failed`` (counted in the tally)."""
        return self.endpoint.tolerating()

    def load_target(self, batch: Callable[[int], Sequence[Any]], batch_size: int) -> EndpointLoad:
        """A load test's requests: generation streams one prompt per request (time to first token, tokens);
        embeddings send ``batch_size`` texts (the first of each pair) per request, checked as predict checks them."""
        from modelcheck.models.endpoint_load import EndpointLoad, StreamReader

        endpoint = self.endpoint
        if self.task == "text-generation":
            chat = endpoint.settings.api != "completions"

            def generate(i: int) -> Call:
                (call,) = self._calls([str(prompt) for prompt in batch(i)[:1]], stream=True)
                return call

            return EndpointLoad(endpoint, f"{'chat completions' if chat else 'completions'}, streamed", generate,
                                stream=lambda: StreamReader(endpoint, chat=chat))  # fmt: skip

        def texts(i: int) -> list[str]:
            return [str(row[0] if isinstance(row, (tuple, list)) else row) for row in batch(i)]

        def embed(i: int) -> Call:
            return Call("POST", "/v1/embeddings", {"model": endpoint.settings.model, "input": texts(i)})

        return EndpointLoad(endpoint, f"embeddings, {batch_size} text(s)", embed,
                            read=lambda answer, i: self._embeddings(answer, len(texts(i))))  # fmt: skip

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        check_predict(self.endpoint.url, loaded=self._open, batch_size=batch_size)
        tolerating = self.endpoint.tally is not None
        if self.task == "text-generation":
            texts, failed_prompts = self._generate([str(prompt) for prompt in inputs])
            return Outputs(texts=texts, failed=failed_prompts if tolerating else None)
        if inputs and isinstance(inputs[0], (tuple, list)):
            first = self._embed([str(pair[0]) for pair in inputs], batch_size)
            second = self._embed([str(pair[1]) for pair in inputs], batch_size)
            failed = None if first.failed is None or second.failed is None else first.failed | second.failed
            return Outputs(embeddings=first.embeddings, pair_embeddings=second.embeddings, failed=failed)
        return self._embed([str(text) for text in inputs], batch_size)

    def _calls(self, prompts: list[str], *, stream: bool = False) -> list[Call]:
        """One completion request per prompt (streamed: ``stream`` with usage in the last event)."""
        settings = self.endpoint.settings
        common: dict[str, Any] = {"model": settings.model, "temperature": 0, "max_tokens": self.max_tokens}
        if settings.stop:
            common["stop"] = list(settings.stop)
        if stream:
            common.update(stream=True, stream_options={"include_usage": True})
        if settings.api == "completions":
            return [Call("POST", "/v1/completions", {**common, "prompt": p}) for p in prompts]
        return [Call("POST", "/v1/chat/completions", {**common, "messages": [{"role": "user", "content": p}]})
                for p in prompts]  # fmt: skip

    def _generate(self, prompts: list[str]) -> tuple[list[str], np.ndarray]:
        calls = self._calls(prompts)
        import numpy as np

        texts = self.endpoint.decode(self.endpoint.send(calls), lambda answer, _: self._text(answer))
        failed = np.asarray([isinstance(text, Failed) for text in texts], dtype=bool)
        return [text if isinstance(text, str) else "" for text in texts], failed

    def _text(self, answer: Any) -> str:
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.endpoint.invalid("invalid_body", "a completion answer has no choices")
        choice = choices[0]
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if not isinstance(text, str):
            if text is None and isinstance(message, dict):
                return ""  # e.g. a refusal or tool call: no text
            raise self.endpoint.invalid("invalid_body", "a completion answer's choice holds no text")
        return text

    def _embed(self, texts: list[str], batch_size: int) -> Outputs:
        """``Outputs(embeddings=...)`` of ``texts`` (``failed`` set while tolerating failed requests)."""
        import numpy as np

        batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        model = self.endpoint.settings.model
        answers = self.endpoint.send([Call("POST", "/v1/embeddings", {"model": model, "input": b}) for b in batches])
        parts = self.endpoint.decode(answers, lambda answer, i: self._embeddings(answer, len(batches[i])))
        if len({part.shape[1] for part in parts if isinstance(part, np.ndarray)}) > 1:
            raise self.endpoint.invalid("invalid_body", "the embeddings have different lengths")
        outputs = [part if isinstance(part, Failed) else Outputs(embeddings=part) for part in parts]
        if not outputs:
            return Outputs(embeddings=np.zeros((0, 0), dtype=np.float32))

        def fallback(rows: int) -> Outputs:
            return Outputs(embeddings=np.zeros((rows, 1), dtype=np.float32))

        tolerating = self.endpoint.tally is not None
        return join_answered(outputs, [len(b) for b in batches], tolerating=tolerating, fallback=fallback)

    def _embeddings(self, answer: Any, sent: int) -> np.ndarray:
        """The ``[sent, dim]`` embeddings of one answer, in ``index`` order."""
        import numpy as np

        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise self.endpoint.invalid("invalid_body", "an embeddings answer has no data list")
        if len(data) != sent:
            raise self.endpoint.invalid("missing_rows", f"an embeddings answer holds {len(data)} embeddings "
                                        f"for the {sent} texts sent")  # fmt: skip
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            rows = [list(map(float, item["embedding"])) for item in ordered]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise self.endpoint.invalid("invalid_body", "an embeddings answer's data items are not "
                                        "{index, embedding: [numbers]}") from None  # fmt: skip
        if len({len(row) for row in rows}) > 1:
            raise self.endpoint.invalid("invalid_body", "the embeddings have different lengths")
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)

    def artifact_files(self) -> list[Path]:
        """None: a served model's files are on the server, not hashed here (the report records the endpoint)."""
        return []

    def close(self) -> None:
        self._open = False
