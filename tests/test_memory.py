"""Peak memory of a phase, and the thread pools pinned while timing and measuring.

The planted allocations are large (100 to 300 MB, touched page by page) against the few MB the
interpreter moves on its own, so the figures are checked to within a few percent.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from modelcheck.errors import CheckError
from modelcheck.measure import memory
from modelcheck.measure.memory import MemoryResult, measure_phase
from modelcheck.models.hardware import pinned_threads

MB = 2**20


def allocating(mb: int, hold_s: float = 0.0) -> Callable[[], int]:
    """A phase that allocates and touches ``mb`` MB, holds it ``hold_s`` seconds and frees it on return."""

    def run() -> int:
        block = np.ones(mb * MB, dtype=np.uint8)  # every page written: resident
        if hold_s:
            time.sleep(hold_s)
        return int(block[::4096].sum())

    return run


def high_water_mark_resettable() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


needs_hwm_reset = pytest.mark.skipif(
    not high_water_mark_resettable(), reason="the kernel's high-water mark cannot be reset here (/proc/self/clear_refs)"
)
VMHWM = "VmHWM reset through /proc/self/clear_refs"


# -- CPU ---------------------------------------------------------------------------------------------


@needs_hwm_reset
@pytest.mark.parametrize("mb", [100, 300])
def test_peak_of_a_phase_is_what_it_allocated(mb: int) -> None:
    result, figures = measure_phase(allocating(mb))
    assert result == mb * MB // 4096  # the phase's own return value comes back
    assert figures["method"] == VMHWM
    assert figures["peak_mb"] == pytest.approx(mb, rel=0.05)
    assert figures["peak_mb"] == figures["cpu"]["peak_increase"]
    assert figures["cuda"] is None and figures["figure"] == "CPU peak RSS above the phase's start"


@needs_hwm_reset
def test_a_phase_that_allocates_nothing_is_near_zero_even_after_an_earlier_peak() -> None:
    earlier = np.ones(300 * MB, dtype=np.uint8)  # the process's high-water mark goes 300 MB up...
    del earlier  # ...and stays there after this is freed, unless measure_phase resets it
    _, figures = measure_phase(lambda: None)
    assert figures["method"] == VMHWM
    assert 0 <= figures["peak_mb"] < 5


def test_memory_held_before_the_phase_is_not_counted() -> None:
    held = np.ones(300 * MB, dtype=np.uint8)
    _, figures = measure_phase(allocating(100, hold_s=0.05))
    assert figures["cpu"]["rss_before"] > 300
    assert figures["peak_mb"] == pytest.approx(100, rel=0.05)
    del held


def test_sampling_fallback_sees_a_held_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_reset_high_water_mark", lambda: False)
    _, figures = measure_phase(allocating(200, hold_s=0.05))
    assert "sampled" in figures["method"]
    assert figures["peak_mb"] == pytest.approx(200, rel=0.10)
    _, nothing = measure_phase(lambda: None)
    assert "sampled" in nothing["method"] and nothing["peak_mb"] < 5


def test_cpu_figures_are_consistent() -> None:
    _, figures = measure_phase(allocating(50, hold_s=0.02))
    cpu = figures["cpu"]
    assert set(cpu) == {"rss_before", "peak_rss", "peak_increase"}
    assert cpu["peak_rss"] >= cpu["rss_before"] > 0
    assert cpu["peak_increase"] == pytest.approx(cpu["peak_rss"] - cpu["rss_before"])


def test_result_describe_and_to_dict() -> None:
    _, figures = measure_phase(allocating(120, hold_s=0.02))
    result = MemoryResult(device="cpu", phase="inference", process="this process", rows=8, **figures)
    match = re.fullmatch(
        r"peak memory (\d+) MiB during one predict of 8 rows "
        r"\(CPU peak RSS above the phase's start, inference phase, this process\)",
        result.describe(),
    )
    assert match, result.describe()
    assert int(match.group(1)) == round(result.peak_mb)
    assert result.to_dict()["peak_mb"] == result.peak_mb and result.to_dict()["cpu"] == figures["cpu"]
    assert MemoryResult(**result.to_dict()) == result  # what the isolated process prints reads back
    small = MemoryResult(device="cpu", phase="load", process="fresh process", **{**figures, "peak_mb": 42.37})
    assert small.describe().startswith("peak memory 42.4 MiB while loading the model (")  # one decimal under 100 MB
    assert small.describe().endswith(", load phase, fresh process)")


# -- CUDA --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("frameworks_imported_once")
def test_cuda_peak_allocated_by_torch() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the CUDA peak is read from a real device")
    device = "cuda:0"
    held = torch.ones(32 * MB, device=device)  # 128 MB allocated before the phase: not counted

    def run() -> float:
        block = torch.ones(64 * MB, dtype=torch.float32, device=device)  # 256 MB
        return float(block[-1])

    for attempt in range(2):  # the second time the caching allocator has the block reserved already
        result, figures = measure_phase(run, device=device)
        assert result == 1.0
        assert figures["method"] == "torch.cuda.max_memory_allocated"
        assert figures["peak_mb"] == figures["cuda"]["peak_allocated"] == pytest.approx(256, rel=0.02), attempt
        assert figures["cuda"]["allocated_before"] >= 128
        assert figures["cpu"]["peak_rss"] >= figures["cpu"]["rss_before"]
    del held


def test_cuda_memory_without_torch_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    ran = []
    with pytest.raises(CheckError, match=r"memory on cuda:0 is read through torch's CUDA API.*pip install torch"):
        measure_phase(lambda: ran.append(1), device="cuda:0")
    assert not ran  # refused before the phase ran


# -- pinned thread pools -----------------------------------------------------------------------------


class OwnPools:
    """A model with its own thread pools (like an ONNX Runtime session), pinned through its context."""

    def __init__(self) -> None:
        self.threads: int | None = None
        self.entered: list[int] = []

    @contextlib.contextmanager
    def pinned_threads(self, threads: int) -> Iterator[dict[str, int]]:
        self.entered.append(threads)
        self.threads = threads
        try:
            yield {"session": threads}
        finally:
            self.threads = None


@pytest.mark.usefixtures("frameworks_imported_once")
def test_pinned_threads_holds_every_pool_and_restores_them() -> None:
    import torch
    from threadpoolctl import threadpool_info

    def pools() -> list[int]:
        return [int(pool["num_threads"]) for pool in threadpool_info()]

    torch_before, pools_before = torch.get_num_threads(), pools()
    assert pools_before, "numpy's BLAS should be a threadpoolctl pool"
    n = 1 if torch_before != 1 else 2  # a change to see
    model = OwnPools()
    with pinned_threads(n, model) as settings:
        assert torch.get_num_threads() == n
        assert set(pools()) == {n}
        assert model.threads == n and model.entered == [n]
        assert settings == {"requested": n, "torch": n, "blas": n, "session": n}
    assert torch.get_num_threads() == torch_before
    assert pools() == pools_before
    assert model.threads is None


@pytest.mark.usefixtures("frameworks_imported_once")
def test_pinned_threads_restores_after_an_error() -> None:
    import torch

    before = torch.get_num_threads()
    n = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="inside"), pinned_threads(n):
        assert torch.get_num_threads() == n
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_rss_growth_is_what_a_call_kept_and_leaves_the_high_water_mark_alone() -> None:
    from modelcheck.measure.memory import rss_growth

    kept: list[bytearray] = []
    _, figures = rss_growth(lambda: kept.append(bytearray(64 * 1024 * 1024)))
    assert figures["retained_mb"] == pytest.approx(64, abs=8)
    assert figures["rss_after"] - figures["rss_before"] == figures["retained_mb"]
    _, nothing = rss_growth(lambda: None)
    assert abs(nothing["retained_mb"]) < 4


def test_an_inference_check_names_its_rows_and_reports_the_load_footprint(tmp_path: Path) -> None:
    """The gate's own load of the model is measured once (what it kept); the inference check reports it beside
    its figure, named, so a small per-call figure is not read as the model's size."""
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    pytest.importorskip("torch")
    data = tmp_path / "rows.csv"
    data.write_text("a,b,c,d,y\n" + "".join(f"{i},{i % 3},1,2,{i % 2}\n" for i in range(40)), encoding="utf-8")
    gate = tmp_path / "g.yaml"
    gate.write_text(
        f"""version: 1
model: {{id: m, source: "planted_models:fast", backend: torch, task: tabular-classification, device: cpu}}
data: {{source: {data}, input: [a, b, c, d], label: y}}
checks:
  - {{name: mem, kind: memory, batch_size: 4, max_mb: 400}}
""",
        encoding="utf-8",
    )
    models = ModelCache()
    try:
        result = run_gate(load_gate(gate), file="g.yaml", models=models, stage=None)
        (check,) = result.checks
        assert check.status == "passed", check.message
        assert " during one predict of 4 rows <= 400 MiB (" in check.message
        footprint = check.details["load_footprint"]
        assert isinstance(footprint["retained_mb"], float)
        assert f"; load footprint {footprint['retained_mb']:.1f} MiB (resident memory" in check.message
        again = run_gate(load_gate(gate), file="g.yaml", models=models, stage=None)  # the model from the cache
        assert again.checks[0].details["load_footprint"]["retained_mb"] == footprint["retained_mb"]
    finally:
        models.close()
