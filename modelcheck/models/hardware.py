"""Which devices this machine has, and which one a gate or test gets.

torch is imported only inside the functions (and only where it is installed): the pytest plugin
and the CLI import this module without paying for it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterator
from typing import Any

from modelcheck.errors import DeviceUnavailableError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def available_devices() -> list[str]:
    """``cpu``, then every ``cuda:N``, then ``mps`` where torch sees them."""
    if importlib.util.find_spec("torch") is None:
        return ["cpu"]
    import torch

    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else []
    return ["cpu", *cuda, *mps]


def resolve_device(requested: str) -> str:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into the device to use.

    ``auto`` picks CUDA, then MPS, then CPU. A device that is named but absent raises
    DeviceUnavailableError (pytest skips with its message).
    """
    wanted = requested.strip().lower()
    available = available_devices()
    if wanted == "auto":
        return next((d for d in available if d.startswith("cuda")), "mps" if "mps" in available else "cpu")
    if wanted == "cuda" and any(d.startswith("cuda") for d in available):
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    if wanted in available:
        return wanted
    if not DEVICE_PATTERN.match(wanted):
        raise DeviceUnavailableError(f"device {requested!r} is not a device name; use auto, cpu, cuda, cuda:N or mps")
    raise DeviceUnavailableError(
        f"device {requested!r} is not available on this machine (available: {', '.join(available)}); "
        "use device: auto to take the best one present, or run on a machine that has it"
    )


def torch_dtype(name: str | None, device: str) -> object | None:
    """The ``torch.dtype`` for a gate's ``dtype`` on ``device`` (None: the model's own).

    A dtype the device cannot run raises ModelLoadError naming both (status ``error``).
    """
    if name is None:
        return None
    import torch

    from modelcheck.errors import ModelLoadError

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    if device.startswith("cuda") and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ModelLoadError(
            f"dtype bfloat16 is not supported by {device} ({torch.cuda.get_device_name(device)}); "
            "use float16 or float32"
        )
    if device == "mps" and dtype is torch.bfloat16 and not _mps_supports_bf16():
        raise ModelLoadError("dtype bfloat16 is not supported by mps on this macOS version; use float16 or float32")
    return dtype


def _mps_supports_bf16() -> bool:
    import torch

    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps")
    except (RuntimeError, TypeError):
        return False
    return True


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` (a gate's ``model.threads``) for the block, then restored."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def per_call_threads(model: Any, threads: int) -> Iterator[dict[str, int]]:
    """``model.threads`` set to ``threads`` for the block: for models that apply it around each predict call."""
    before = model.threads
    model.threads = threads
    try:
        yield {"torch": threads}
    finally:
        model.threads = before


@contextlib.contextmanager
def pinned_threads(threads: int, model: object | None = None) -> Iterator[dict[str, int | None]]:
    """Every CPU thread pool held at ``threads`` for the block (for timing and memory), then restored.

    Pins torch's intra-op threads (where torch is imported), the BLAS/OpenMP pools (threadpoolctl), and
    the model's own pools through its optional ``pinned_threads(n)`` context (ONNX Runtime's intra-op
    threads live in the session). Yields the settings in force, for the report.
    """
    import sys

    from threadpoolctl import threadpool_info, threadpool_limits

    settings: dict[str, int | None] = {"requested": threads}
    with contextlib.ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=threads))
        torch = sys.modules.get("torch")
        if torch is not None:
            stack.enter_context(torch_threads(threads))
            settings["torch"] = int(torch.get_num_threads())
        own = getattr(model, "pinned_threads", None)
        if callable(own):
            settings.update(stack.enter_context(own(threads)))
        settings["blas"] = max((int(pool["num_threads"]) for pool in threadpool_info()), default=None)
        yield settings
