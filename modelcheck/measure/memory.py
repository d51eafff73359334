"""Peak memory of one phase (loading a model, or running a batch through it), measured so it means something.

CPU: the peak resident memory of the process during the phase, above what it held when the phase
began. On Linux the kernel's high-water mark (``VmHWM``) is reset first by writing ``5`` to
``/proc/self/clear_refs`` (after ``gc.collect()`` and ``malloc_trim``), so the figure is the phase's
own; where that is not possible, RSS is sampled every millisecond by a thread (psutil) and the
result says so. CUDA (torch): peak allocated and peak reserved bytes above the phase's start
(``torch.cuda.reset_peak_memory_stats``). ONNX Runtime on CUDA exposes no peak: the device memory in
use after the phase minus before (``cudaMemGetInfo``), its arena included.

A memory check with ``isolate: true`` runs this in a fresh process (``modelcheck.run.isolate``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_MB = 1024 * 1024
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class MemoryResult:
    """What a phase cost. ``peak_mb`` is the judged figure; ``figure`` says which one it is."""

    peak_mb: float
    figure: str
    method: str
    device: str
    phase: str
    #: ``fresh process`` (isolate: true) or ``this process`` (after the gate's own predictions: steady state).
    process: str
    #: CPU figures in MB: rss_before, peak_rss (the process's high-water mark), peak_increase.
    cpu: dict[str, float]
    #: CUDA figures in MB (None on CPU): peak_allocated, peak_reserved or in_use_increase.
    cuda: dict[str, float] | None = None
    #: Inference phase: the rows of the one predict call measured.
    rows: int | None = None

    def describe(self) -> str:
        """``peak memory 212 MiB during one predict of 32 rows (CPU peak RSS above the phase's start, inference
        phase, this process)``: what ran while the figure was taken, which figure, where."""
        if self.phase == "inference" and self.rows is not None:
            scope = f" during one predict of {self.rows} row{'s' * (self.rows != 1)}"
        else:
            scope = " while loading the model" if self.phase == "load" else ""
        return f"peak memory {_mb(self.peak_mb)} MiB{scope} ({self.figure}, {self.phase} phase, {self.process})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_phase(run: Callable[[], T], *, device: str = "cpu", onnx: bool = False) -> tuple[T, dict[str, Any]]:
    """Run ``run()`` once and return its result and the peak-memory figures of that call.

    The figures: ``peak_mb`` (judged: the CUDA figure on a CUDA device, else the CPU one), ``figure``,
    ``method``, ``cpu`` and ``cuda`` as in :class:`MemoryResult`. ``onnx``: the model runs in ONNX Runtime.
    """
    cuda = _cuda_probe(device, onnx=onnx)
    cuda.start()
    result, cpu, method = _cpu_peak(run)
    cuda_figures = cuda.stop()
    figures: dict[str, Any] = {"cpu": cpu, "cuda": cuda_figures}
    if cuda_figures is None:
        figures.update(peak_mb=cpu["peak_increase"], figure="CPU peak RSS above the phase's start", method=method)
    elif onnx:
        figures.update(
            peak_mb=cuda_figures["in_use_increase"],
            figure="CUDA memory in use after the phase minus before (ONNX Runtime exposes no peak; arena included)",
            method="cudaMemGetInfo",
        )
    else:
        figures.update(
            peak_mb=cuda_figures["peak_allocated"],
            figure="CUDA peak allocated above the phase's start (torch)",
            method="torch.cuda.max_memory_allocated",
        )
    return result, figures


def rss_growth(run: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """Run ``run()`` and return its result and how much resident memory it left behind (``retained_mb``).

    Unlike :func:`measure_phase` this leaves the process's high-water mark alone (so an outer measurement
    of the whole run still sees its peak): it is the footprint, not the peak, of what ``run`` did.
    """
    gc.collect()
    _malloc_trim()
    before = _current_mb()
    result = run()
    after = _current_mb()
    return result, {"rss_before": before, "rss_after": after, "retained_mb": after - before}


def _current_mb() -> float:
    try:
        return _status_mb("VmRSS")
    except (OSError, KeyError, ValueError):
        return _rss_mb()


# -- CPU ------------------------------------------------------------------------------------------


def _cpu_peak(run: Callable[[], T]) -> tuple[T, dict[str, float], str]:
    gc.collect()
    _malloc_trim()
    if _reset_high_water_mark():
        before = _status_mb("VmRSS")
        result = run()
        peak = max(_status_mb("VmHWM"), before)
        method = "VmHWM reset through /proc/self/clear_refs"
    else:
        before, (result, peak) = _rss_mb(), _sampled(run)
        method = "RSS sampled every 1 ms (psutil)"
    return result, {"rss_before": before, "peak_rss": peak, "peak_increase": peak - before}, method


def _reset_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS (Linux); False where that is not possible or did not take."""
    try:
        _CLEAR_REFS.write_text("5")
        return _status_mb("VmHWM") - _status_mb("VmRSS") < 1.0
    except (OSError, KeyError, ValueError):
        return False


def _status_mb(key: str) -> float:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / _MB


def _sampled(run: Callable[[], T]) -> tuple[T, float]:
    """Run ``run()`` while a thread samples RSS; the largest sample (and the ends) is the peak."""
    peak = [_rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak.append(_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
    finally:
        done.set()
        sampler.join()
    peak.append(_rss_mb())
    return result, max(peak)


def _malloc_trim() -> None:
    """Give freed heap pages back to the OS (glibc), so the phase starts from what is really in use."""
    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


# -- CUDA -----------------------------------------------------------------------------------------


class _NoCuda:
    def start(self) -> None:
        pass

    def stop(self) -> dict[str, float] | None:
        return None


class _TorchCuda:
    """Peak allocated/reserved by torch's caching allocator on one device, above the phase's start."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch, self.device = torch, device

    def start(self) -> None:
        cuda = self.torch.cuda
        cuda.synchronize(self.device)
        cuda.reset_peak_memory_stats(self.device)
        self.allocated = cuda.memory_allocated(self.device)
        self.reserved = cuda.memory_reserved(self.device)

    def stop(self) -> dict[str, float]:
        cuda = self.torch.cuda
        cuda.synchronize(self.device)
        return {
            "peak_allocated": (cuda.max_memory_allocated(self.device) - self.allocated) / _MB,
            "peak_reserved": (cuda.max_memory_reserved(self.device) - self.reserved) / _MB,
            "allocated_before": self.allocated / _MB,
            "reserved_before": self.reserved / _MB,
        }


class _DeviceInUse(_TorchCuda):
    """Device memory in use (all allocators, ONNX Runtime's arena included), after minus before."""

    def start(self) -> None:
        self.torch.cuda.synchronize(self.device)
        free, total = self.torch.cuda.mem_get_info(self.device)
        self.in_use = total - free

    def stop(self) -> dict[str, float]:
        self.torch.cuda.synchronize(self.device)
        free, total = self.torch.cuda.mem_get_info(self.device)
        return {"in_use_increase": (total - free - self.in_use) / _MB, "in_use_before": self.in_use / _MB}


def _cuda_probe(device: str, *, onnx: bool) -> _NoCuda | _TorchCuda:
    if not device.startswith("cuda"):
        return _NoCuda()
    try:
        import torch  # noqa: F401  (CUDA figures are read through torch, also for ONNX Runtime)
    except ImportError:
        from modelcheck.errors import CheckError

        raise CheckError(
            f"memory on {device} is read through torch's CUDA API, and torch is not installed; "
            "pip install torch, or measure on device: cpu"
        ) from None
    return _DeviceInUse(device) if onnx else _TorchCuda(device)


def _mb(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
