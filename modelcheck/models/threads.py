"""How many CPU threads a model evaluates on when the gate does not say: the cores other work leaves free.

torch (and ONNX Runtime) default to one intra-op thread per core, and their threads spin while they
wait for each other. On a shared runner, where another job or another pytest-xdist worker keeps a
core busy, that default collapses: measured on 2 shared cores with one core kept busy, all-MiniLM-L6-v2
ran at 63 examples/s on the default 2 threads and 99 on 1, a tiny BERT over 10k texts took 2.04 s
against 0.60 s (``benchmarks/scale.py --threads --load-core``); on the same machine left quiet, 2 threads ran
MiniLM at 174 examples/s against 102 on 1. So the default is neither: it is the number of usable
cores (CPU affinity and the cgroup CPU quota) less the cores that *other* processes kept busy since
the last look, at least 1. Reading that costs nothing: system CPU time minus this process's own
CPU time over the time since the previous call (the first window starts when this module is imported).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from modelcheck.models.hardware import torch_threads

log = logging.getLogger(__name__)

#: Windows shorter than this are too coarse to read (the kernel counts CPU time in 10 ms ticks).
_MIN_WINDOW_S = 0.05
_lock = threading.Lock()


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cores)


class _Window:
    """System and own CPU seconds at the start of the current window."""

    def __init__(self) -> None:
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        import psutil

        system = psutil.cpu_times()
        busy = sum(system) - system.idle - getattr(system, "iowait", 0.0)
        own = psutil.Process().cpu_times()
        return time.monotonic(), busy, own.user + own.system

    def others_busy(self) -> float | None:
        """Cores other processes kept busy since the window started (None: too short to tell); restarts it."""
        now = self._now()
        wall, busy, own = (b - a for a, b in zip(self.start, now, strict=True))
        if wall < _MIN_WINDOW_S:
            return None
        self.start = now
        return max(0.0, (busy - own) / wall)


_window: _Window | None
try:
    _window = _Window()
except Exception:  # psutil cannot read CPU times here (a sandbox): the default stays the usable cores
    _window = None


def idle_cores() -> int:
    """The usable cores less those other processes kept busy since the previous call, at least 1."""
    cores = usable_cores()
    with _lock:
        if _window is None:
            return cores
        busy = _window.others_busy()
        if busy is None:  # called again within 50 ms: look over a short window now
            time.sleep(_MIN_WINDOW_S)
            busy = _window.others_busy() or 0.0
    return max(1, min(cores, round(cores - busy)))


@contextlib.contextmanager
def evaluation_threads(model: object) -> Iterator[int | None]:
    """torch's intra-op threads set to :func:`idle_cores` for the block, where ``model.threads`` is unset.

    A model that names its threads (the gate's ``model.threads``) or does not run on torch is left as it is.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not hasattr(model, "threads") or model.threads is not None:
        yield None
        return
    threads = idle_cores()
    log.info("evaluating on %d thread(s): the usable cores other work leaves free (set model.threads to fix it)",
             threads)  # fmt: skip
    with torch_threads(threads):
        yield threads


def threads_used(model: object, chosen: int | None) -> int | None:
    """The CPU threads ``model`` evaluates on: ``chosen`` by :func:`evaluation_threads`, else the gate's
    ``model.threads``, else an ONNX Runtime session's intra-op threads (fixed when it was created); None if unknown."""
    if chosen is not None:
        return chosen
    threads = getattr(model, "threads", None)
    if isinstance(threads, int) and not isinstance(threads, bool):
        return threads
    with contextlib.suppress(Exception):  # any object with a ``session``: only ONNX Runtime's answers
        count = model.session.get_session_options().intra_op_num_threads  # type: ignore[attr-defined]
        if isinstance(count, int) and count > 0:
            return count
    return None
