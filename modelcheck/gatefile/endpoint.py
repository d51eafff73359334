"""The endpoint keys of a gate file's model (``url``, ``headers``, ``timeout``, ...): rules and EndpointSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelcheck.gatefile.paths import public_url, resolve_source
from modelcheck.gatefile.spec import EndpointSpec

#: Backends that load files: an endpoint URL is for the others (openai, kserve-v2, third-party ones).
_FILE_BACKENDS = ("transformers", "torch", "onnx")
ENDPOINT_KEYS = ("model", "version", "api", "stop", "headers", "timeout", "concurrency", "retries", "verify_tls")


def build_endpoint(doc: dict[str, Any], backend: str, model_id: str, base: Path, fail: Any) -> EndpointSpec | None:
    """The endpoint of a model given by ``url`` (or an http(s) ``source``); None for a model in files."""
    source, url = doc.get("source"), doc.get("url")
    if url is not None and source is not None:
        raise fail(["model", "url"], "give the model as source (files) or url (a server), not both")
    if url is None and isinstance(source, str) and source.startswith(("http://", "https://")):
        url = source
    if url is None:
        if source is None:
            raise fail(["model"], "the model needs source (a folder, file or Hub id) or url (an inference server)")
        stray = next((key for key in ENDPOINT_KEYS if key in doc), None)
        if stray is not None:
            raise fail(["model", stray], f"{stray} applies to a model behind an inference server: give model.url")
        return None
    where = ["model", "url" if "url" in doc else "source"]
    if backend in _FILE_BACKENDS:
        raise fail(where, f"the {backend} backend loads model files; a server at {public_url(url)} is judged by "
                   "backend openai (OpenAI-compatible) or kserve-v2 (Open Inference Protocol)")  # fmt: skip
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise fail(where, f"{public_url(url)} is not a valid URL ({exc})") from None
    if parts.username or parts.password:
        raise fail(where, "the URL holds credentials (user:password@); remove them and send them as a header "
                   "read from the environment, e.g. headers: {Authorization: 'Bearer ${API_TOKEN}'}")  # fmt: skip
    if not parts.hostname:
        raise fail(where, f"{public_url(url)} names no host; write e.g. http://127.0.0.1:8080")
    if backend == "openai" and len(doc.get("stop", ())) > 4:
        raise fail(["model", "stop"], f"the OpenAI API takes at most 4 stop sequences; {len(doc['stop'])} are given")
    verify = doc.get("verify_tls", True)
    if isinstance(verify, str):
        verify = resolve_source(verify, base, bare_hub_names=False)
        if not Path(verify).is_file():
            raise fail(["model", "verify_tls"], f"CA bundle {verify} does not exist; give a PEM file, or true/false")
    return EndpointSpec(
        url=url.rstrip("/"),
        model=doc.get("model", model_id),
        version=doc.get("version"),
        api=doc.get("api", "chat"),
        stop=tuple(doc.get("stop", ())),
        headers=tuple(sorted((doc.get("headers") or {}).items())),
        timeout=float(doc.get("timeout", 30.0)),
        concurrency=doc.get("concurrency", 4),
        retries=doc.get("retries", 2),
        verify_tls=verify,
    )
