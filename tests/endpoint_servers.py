"""Real inference servers on 127.0.0.1 for the endpoint tests, and a fault proxy in front of them.

- :func:`start_mlserver`: Seldon MLServer (Open Inference Protocol) serving scikit-learn models
  saved with joblib, in a subprocess, ready-checked with a bounded wait, stopped at exit.
- :func:`start_litserve`: a LitServe server with the OpenAI specs (chat completions and embeddings)
  over a tiny GPT-2 and a tiny BERT embedder (tests/tiny_models.py), in a subprocess.
- :class:`FaultProxy`: an asyncio HTTP proxy on 127.0.0.1 that forwards to a real server, or answers
  with the fault it is set to (a status with Retry-After, slowness, invalid JSON, missing rows, a
  redirect, a huge body). Each connection carries one request; everything stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server not ready at {url} within {limit_s:g} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _serve(command: list[str], ready_url: str, folder: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)  # fmt: skip
    try:
        _wait_ready(process, ready_url, log)
        yield
    finally:  # the whole process group: servers start workers of their own
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextlib.contextmanager
def start_mlserver(folder: Path, models: dict[str, Any], *, predict_fn: dict[str, str] | None = None) -> Iterator[str]:
    """MLServer serving each scikit-learn estimator of ``models`` under its name; yields the base URL.
    ``predict_fn``: model name -> the estimator method answering (mlserver-sklearn's ``predict_fn``, e.g. transform)."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(), "host": "127.0.0.1",
                "parallel_workers": 0, "metrics_endpoint": None, "debug": False}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(settings))
    for name, estimator in models.items():
        (folder / name).mkdir(exist_ok=True)
        joblib.dump(estimator, folder / name / "model.joblib")
        parameters: dict[str, Any] = {"uri": "./model.joblib", "version": "v1"}
        if predict_fn and name in predict_fn:
            parameters["extra"] = {"predict_fn": predict_fn[name]}
        model_settings = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": parameters}
        (folder / name / "model-settings.json").write_text(json.dumps(model_settings))
    url = f"http://127.0.0.1:{port}"
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    with _serve([mlserver, "start", "."], f"{url}/v2/health/ready", folder, {"PYTHONPATH": ""}):
        yield url


@contextlib.contextmanager
def start_litserve(folder: Path, *, generator: Path, embedder: Path) -> Iterator[str]:
    """LitServe with OpenAI chat completions (``generator``) and embeddings (``embedder``); yields the base URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(HERE / "litserve_app.py"), str(port), str(generator), str(embedder)]
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with _serve(command, f"{url}/health", folder, env):
        yield url


# -- the fault proxy ------------------------------------------------------------------------------


@dataclass
class Fault:
    """What the proxy does to the next ``times`` requests (then it forwards again); ``times=0``: every one."""

    kind: str  # status | slow | invalid_json | truncated | missing_rows | redirect | huge | huge_chunked
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    times: int = 0
    location: str = ""


class FaultProxy:
    """The proxy in a subprocess of its own; ``fault`` and ``seen`` go through its control paths."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        command = [sys.executable, __file__, self.upstream, str(self.port)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/__seen__", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self._process.kill()
        raise RuntimeError("the fault proxy did not start")

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()

    @property
    def fault(self) -> Fault | None:
        raise AttributeError("write-only")

    @fault.setter
    def fault(self, fault: Fault | None) -> None:
        body = None if fault is None else fault.__dict__
        httpx.post(f"{self.url}/__fault__", json=body, timeout=5).raise_for_status()

    @property
    def seen(self) -> list[dict[str, str]]:
        """The headers of every request forwarded or faulted since the last reset, with ``:method``, ``:path`` and
        ``:at`` (when it arrived: ``time.time()``, comparable between proxies on this machine)."""
        return list(httpx.get(f"{self.url}/__seen__", timeout=5).json())

    def reset_seen(self) -> None:
        httpx.delete(f"{self.url}/__seen__", timeout=5).raise_for_status()


class _Proxy:
    """The proxy itself (run by ``python endpoint_servers.py UPSTREAM PORT``)."""

    def __init__(self, upstream: str, port: int) -> None:
        self.upstream, self.port = upstream, port
        self.fault: Fault | None = None
        self.seen: list[dict[str, str]] = []

    async def main(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        async with server:
            await server.serve_forever()

    def _take_fault(self) -> Fault | None:
        fault = self.fault
        if fault is None:
            return None
        if fault.times:
            fault.times -= 1
            if fault.times == 0:
                self.fault = None
        return fault

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(self._one(reader, writer), 60)
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, path, _ = head[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:] if ":" in line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if path == "/__fault__":
            self.fault = Fault(**json.loads(body)) if body.strip() not in (b"", b"null") else None
            return await _answer(writer, 200, b"{}", {})
        if path == "/__seen__":
            if method == "DELETE":
                self.seen.clear()
            return await _answer(writer, 200, json.dumps(self.seen).encode(), {})
        self.seen.append({**headers, ":method": method, ":path": path, ":at": repr(time.time())})
        fault = self._take_fault()
        kind = fault.kind if fault else "forward"
        if fault and fault.kind == "status":
            return await _answer(writer, fault.status, b'{"error": "injected"}', fault.headers)
        if fault and fault.kind == "redirect":
            return await _answer(writer, 307, b"", {"location": fault.location + path})
        if fault and fault.kind == "huge":
            return await _stream(writer, 50 * 2**20, chunked=False)
        if fault and fault.kind == "huge_chunked":
            return await _stream(writer, 50 * 2**20, chunked=True)
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
        forwarded = {k: v for k, v in headers.items() if k in ("content-type", "authorization", "accept")}
        response = await self._client.request(method, path, content=body, headers=forwarded)
        data = response.content
        if kind == "invalid_json":
            data = data[: len(data) // 2]
        elif kind == "missing_rows":
            data = json.dumps(_drop_rows(response.json())).encode()
        elif kind == "truncated":
            return await _answer(writer, response.status_code, data[: len(data) // 2], {}, length=len(data))
        await _answer(writer, response.status_code, data, {"server": response.headers.get("server", "")})


def _drop_rows(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with its last row removed (OIP outputs or OpenAI embeddings)."""
    if "outputs" in answer:
        for tensor in answer["outputs"]:
            per_row = len(tensor["data"]) // tensor["shape"][0]
            tensor["shape"][0] -= 1
            tensor["data"] = tensor["data"][: len(tensor["data"]) - per_row]
    if "data" in answer:
        answer["data"] = answer["data"][:-1]
    return answer


async def _answer(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str], *, length: int | None = None
) -> None:
    lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body) if length is None else length}",
             "content-type: application/json", "connection: close"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in headers.items() if v]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def _stream(writer: asyncio.StreamWriter, size: int, *, chunked: bool) -> None:
    framing = "transfer-encoding: chunked" if chunked else f"content-length: {size}"
    writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n".encode())
    piece = b"[" + b"0," * (2**20 // 2 - 1) + b"0]"
    for _ in range(size // len(piece)):
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
        await writer.drain()  # raises once the client has hung up


if __name__ == "__main__":
    asyncio.run(_Proxy(sys.argv[1], int(sys.argv[2])).main())
