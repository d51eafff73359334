"""Gate fidelity: do ``kind: latency`` and ``kind: memory`` checks tell real changes from noise on this machine?

The example sentiment model (the tiny BERT of ``examples/sentiment/build.py``, trained) and its
``examples/sentiment/test.csv`` go through the real check code: a temporary gate file read by
``modelcheck.gatefile.load_gate``, the model loaded by a ``modelcheck.models.cache.ModelCache``, the inputs made by
``modelcheck.run.inputs.model_inputs``, and every check judged by ``modelcheck.checks.latency.judge_latency`` /
``judge_memory``, called exactly as ``run_gate`` calls them. Wrapped models stand in for a changed model:
passed to the judge as the gate's model, while the check's ``baseline_model`` (the same folder) is
loaded through the cache as the unchanged model.

1. A/A: the model against itself (``baseline_model: self``, ``max_ratio: 1.10``), ``--repeats`` times.
   Target: no false failure. Also the noise floor (how far the ratio's interval reaches from 1).
2. Planted slowdown: a wrapper whose ``predict`` runs the real one, then busy-waits 0.3x as long as it
   took (30% slower, CPU busy, no sleep), against the real model with ``max_ratio: 1.10``. Target: all
   ``--repeats`` runs fail the check (detected). Measured, it is about 1.4x rather than 1.3x: run back to
   back (as in a round), a call after a busy-wait is itself ~10% slower on the 2-core VM it was written on.
3. Memory: a wrapper whose ``predict`` allocates and touches an extra 200 MiB (``np.ones``) held until it
   returns; one ``kind: memory`` check (``phase: inference``) measures it and, as its ``baseline_model``,
   the real model. Target: the difference within ±5% of 200 MiB.
4. Overhead: wall time of a latency check (the judge call, and the measurement's own ``wall_s``) against
   the seconds spent inside the timed calls of both models.

Latency checks run at the check defaults (percentile 95, min_time 1 s, min_iterations 50, batch_size 1,
threads pinned to 1) and again at percentile 50; ``--min-time`` / ``--min-iterations`` set those gate keys.
Scenarios are interleaved repeat by repeat, so drift of a shared machine reaches them alike.
``--load-core`` keeps one core busy (a spinning child process) for the whole run; ``--save-timings F.npz``
keeps every comparison's raw timings, (rounds, calls per round) per model, for offline statistics.

    python benchmarks/gate_fidelity.py [--repeats 20] [--load-core] [--quick] [--save-timings F.npz]
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# huggingface_hub and datasets read these when imported: offline, and a throw-away cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="gate-fidelity-hf-")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import AbstractContextManager, contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sentiment"
MAX_RATIO = 1.10
SLOWDOWN = 0.30
EXTRA_MB = 200
EXTRA_BYTES = EXTRA_MB * 2**20
MEMORY_TOLERANCE = 0.05
PERCENTILES = (95, 50)


# -- the changed models ---------------------------------------------------------------------------


class Wrapped:
    """A LoadedModel that forwards to ``inner`` (the cache's model, which it does not own)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.device = inner.device
        self.label_names = inner.label_names

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Any:
        return self.inner.predict(inputs, batch_size=batch_size)

    def artifact_files(self) -> list[Path]:
        files: list[Path] = self.inner.artifact_files()
        return files

    def pinned_threads(self, threads: int) -> AbstractContextManager[dict[str, int]]:
        pinned: AbstractContextManager[dict[str, int]] = self.inner.pinned_threads(threads)
        return pinned

    def close(self) -> None:
        pass  # the inner model belongs to the cache


class Slowed(Wrapped):
    """The model, ``1 + factor`` times as slow: after each predict, busy-wait ``factor`` x the time it took."""

    def __init__(self, inner: Any, factor: float = SLOWDOWN) -> None:
        super().__init__(inner)
        self.factor = factor

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Any:
        start = time.perf_counter()
        outputs = self.inner.predict(inputs, batch_size=batch_size)
        until = start + (time.perf_counter() - start) * (1 + self.factor)
        while time.perf_counter() < until:  # busy: the CPU is used, as by a slower model
            pass
        return outputs


class Bloated(Wrapped):
    """The model, with ``extra`` more bytes allocated, touched and held while it predicts."""

    def __init__(self, inner: Any, extra: int = EXTRA_BYTES) -> None:
        super().__init__(inner)
        self.extra = extra

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Any:
        import numpy as np

        held = np.ones(self.extra, dtype=np.uint8)  # writes every page: resident, not just reserved
        try:
            return self.inner.predict(inputs, batch_size=batch_size)
        finally:
            del held


# -- a busy core ----------------------------------------------------------------------------------


def _burn() -> None:
    while True:
        pass


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """A child process spinning on one CPU core for the block (nothing when not ``enabled``)."""
    if not enabled:
        yield
        return
    burner = multiprocessing.Process(target=_burn, daemon=True, name="gate-fidelity-burner")
    burner.start()
    try:
        yield
    finally:
        burner.terminate()
        burner.join(5)


# -- the gate -------------------------------------------------------------------------------------


def example_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sentiment_build", EXAMPLE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_gate(folder: Path, model: Path, timing: str) -> Path:
    """A gate with, per percentile, an A/A check and a check against the same folder as baseline_model."""
    checks = []
    for q in PERCENTILES:
        checks.append(
            f"  - name: aa_p{q}\n    kind: latency\n    baseline_model: self\n"
            f"    max_ratio: {MAX_RATIO}\n    percentile: {q}\n{timing}"
        )
        checks.append(
            f"  - name: slowdown_p{q}\n    kind: latency\n    baseline_model: {model}\n"
            f"    max_ratio: {MAX_RATIO}\n    percentile: {q}\n{timing}"
        )
    checks.append(
        f"  - name: memory\n    kind: memory\n    phase: inference\n    baseline_model: {model}\n    max_ratio: 1000\n"
    )
    gate = folder / "fidelity.yaml"
    gate.write_text(
        f"""version: 1
model:
  id: sentiment
  source: {model}
  task: text-classification
  device: cpu
data:
  source: {EXAMPLE / "test.csv"}
  input: text
  label: label
checks:
{"".join(checks)}"""
    )
    return gate


# -- runs -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    """The outcomes of one latency check over the repeats."""

    statuses: list[str] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    lows: list[float] = field(default_factory=list)
    highs: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)
    judge_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    timed_s: list[float] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    warmup: list[int] = field(default_factory=list)
    looks: list[int] = field(default_factory=list)
    message: str = ""

    def add(self, result: Any, seconds: float) -> None:
        comparison = result.details["comparison"]
        self.statuses.append(result.status)
        self.ratios.append(comparison["ratio"])
        self.lows.append(comparison["ratio_ci"][0])
        self.highs.append(comparison["ratio_ci"][1])
        self.floors.append(comparison["noise_floor"])
        self.judge_s.append(seconds)
        self.wall_s.append(comparison["candidate"]["wall_s"])
        self.timed_s.append(comparison["candidate"]["timed_s"] + comparison["baseline"]["timed_s"])
        self.n.append(comparison["candidate"]["n"])
        self.rounds.append(comparison["rounds"])
        self.warmup.append(comparison["candidate"]["warmup_calls"])
        self.looks.append(comparison["candidate"]["looks"])
        self.message = result.message

    def count(self, status: str) -> int:
        return self.statuses.count(status)


def save_timings(path: Path, comparisons: dict[str, Any]) -> None:
    """Each comparison's timings as (rounds, calls per round) arrays: ``<check>_<repeat>_candidate`` / ``_baseline``."""
    import numpy as np

    arrays = {}
    for name, c in comparisons.items():
        for role in ("candidate", "baseline"):
            arrays[f"{name}_{role}"] = getattr(c, role).timings_ms.reshape(c.rounds, c.calls_per_round)
    np.savez_compressed(path, **arrays)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> list[str]:
    import numpy
    import onnxruntime
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"machine: {cpu}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"transformers {transformers.__version__}, numpy {numpy.__version__}",
        f"load average at start: {load}",
    ]


@contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    """``module.name`` replaced by ``value`` for the block."""
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="latency checks per scenario and percentile")
    parser.add_argument("--memory-repeats", type=int, default=5, help="memory checks")
    parser.add_argument("--load-core", action="store_true", help="keep one CPU core busy for the whole run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, 1 memory check")
    parser.add_argument("--min-time", type=float, default=None, help="gate key min_time (default: the check's)")
    parser.add_argument("--min-iterations", type=int, default=None, help="gate key min_iterations")
    parser.add_argument("--save-timings", type=Path, default=None, help="save every check's raw timings (.npz)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.memory_repeats = 2, 1

    from modelcheck.checks import latency as perf_check
    from modelcheck.checks.latency import judge_latency
    from modelcheck.checks.memory import judge_memory
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.data import load_data
    from modelcheck.run.inputs import model_inputs

    timing = "".join(
        f"    {key}: {value}\n"
        for key, value in (("min_time", args.min_time), ("min_iterations", args.min_iterations))
        if value is not None
    )
    header = machine()
    started = time.perf_counter()
    tallies = {(scenario, q): Tally() for scenario in ("aa", "slowdown") for q in PERCENTILES}
    saved: dict[str, Any] = {}
    recorded: list[Any] = []
    compare = perf_check.compare_latency

    def recording(*a: Any, **k: Any) -> Any:  # the check's own comparison, kept for --save-timings
        recorded.append(compare(*a, **k))
        return recorded[-1]

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gate-fidelity-")))
        stack.enter_context(busy_core(args.load_core))
        if args.save_timings is not None:
            stack.enter_context(patched(perf_check, "compare_latency", recording))
        model_dir = example_builder().build_model(folder / "sentiment", trained=True)
        gate = load_gate(write_gate(folder, model_dir, timing))
        models = ModelCache(max_loaded=4)
        stack.callback(models.close)
        real = models.get(gate.model)
        # the checks' baseline_model (the same folder) is the same cache entry: the real model, loaded once
        baseline = gate.check("slowdown_p95").baseline_model
        assert baseline is not None and models.get(baseline) is real
        data = load_data(gate.data, columns=list(gate.data.input_columns), task=gate.model.task)
        inputs = model_inputs(gate.model.task, gate.data.input_columns, data.frame, base=data.base)
        slowed, bloated = Slowed(real), Bloated(real)

        for repeat in range(args.repeats):
            # interleaved, so drift of the machine reaches every scenario alike
            for (scenario, q), tally in tallies.items():
                model = real if scenario == "aa" else slowed
                begun = time.perf_counter()
                result = judge_latency(gate.check(f"{scenario}_p{q}"), gate, model, inputs, models)
                tally.add(result, time.perf_counter() - begun)
                if recorded:
                    saved[f"{scenario}_p{q}_{repeat}"] = recorded.pop()
            done = " ".join(f"{s}_p{q}:{t.statuses[-1]}" for (s, q), t in tallies.items())
            print(f"repeat {repeat + 1}/{args.repeats}: {done}", file=sys.stderr, flush=True)

        memory_rows = []
        for _ in range(args.memory_repeats):
            result = judge_memory(gate.check("memory"), gate, bloated, inputs, models)
            memory_rows.append((result.details["memory"], result.details["baseline"]))
    total = time.perf_counter() - started
    if args.save_timings is not None:
        save_timings(args.save_timings, saved)

    print("# Gate fidelity: latency and memory checks on the example sentiment model")
    print()
    for line in header:
        print(line)
    print(
        f"load: {'one core kept busy by a spinning process (--load-core)' if args.load_core else 'none added'}; "
        f"{args.repeats} repeats; total {total:.0f} s"
    )
    print(
        f"latency checks: batch_size 1, threads 1, min_time {args.min_time or 1.0:g} s, "
        f"min_iterations {args.min_iterations or 50}; CI by resampling rounds: 95% over up to 4 looks "
        "(at 1, 2, 4, 8 x min_time while the interval straddles the bound), 98.75% each"
    )
    print()
    print(f"## Latency: max_ratio {MAX_RATIO:.2f}")
    print()
    print(
        "| scenario | pct | passed | inconclusive | failed | target | median ratio | median CI "
        "| median noise floor | calls/model (rounds) | looks (median, max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (scenario, q), t in tallies.items():
        floor = f"±{median(t.floors):.1%}" if scenario == "aa" else "–"
        if scenario == "aa":
            name, target, met = "A/A (self)", f"0 failed / {args.repeats}", t.count("failed") == 0
        else:
            name, target = f"+{SLOWDOWN:.0%} busy-wait vs real", f"{args.repeats} failed / {args.repeats}"
            met = t.count("failed") == args.repeats
        print(
            f"| {name} | p{q} | {t.count('passed')} | {t.count('inconclusive')} | {t.count('failed')} | "
            f"{target} {'met' if met else 'MISSED'} | {median(t.ratios):.3f} | "
            f"{median(t.lows):.3f}–{median(t.highs):.3f} | {floor} | {median(t.n):.0f} ({median(t.rounds):.0f}) | "
            f"{median(t.looks):.0f}, {max(t.looks)} |"
        )
    print()
    print(f"## Memory: +{EXTRA_MB} MiB held during predict (kind: memory, phase: inference, this process)")
    print()
    print(f"| run | with extra (MB) | real model (MB) | difference (MB) | vs {EXTRA_MB} MB | within ±5% |")
    print("|---|---|---|---|---|---|")
    for i, (bloat, base) in enumerate(memory_rows, 1):
        diff = bloat["peak_mb"] - base["peak_mb"]
        off = diff / EXTRA_MB - 1
        print(
            f"| {i} | {bloat['peak_mb']:.1f} | {base['peak_mb']:.1f} | {diff:.1f} | {off:+.1%} | "
            f"{'yes' if abs(off) <= MEMORY_TOLERANCE else 'NO'} |"
        )
    if memory_rows:
        print(f"\nmethod: {memory_rows[0][0]['method']}; figure: {memory_rows[0][0]['figure']}")
    print()
    print("## Overhead of a latency check (medians)")
    print()
    print("timed: seconds inside the timed calls of both models; wall_s: the measurement (warm-up, timing, bootstrap)")
    print()
    print("| check | judge call (s) | wall_s (s) | timed (s) | judge / timed | wall_s / timed | warm-up calls |")
    print("|---|---|---|---|---|---|---|")
    for (scenario, q), t in tallies.items():
        judge, wall, timed = median(t.judge_s), median(t.wall_s), median(t.timed_s)
        print(
            f"| {scenario} p{q} | {judge:.2f} | {wall:.2f} | {timed:.2f} | {judge / timed:.2f} "
            f"| {wall / timed:.2f} | {median(t.warmup):.0f} |"
        )
    print()
    for (scenario, q), t in tallies.items():
        if q == PERCENTILES[0]:
            print(f"last {scenario} p{q} message: {t.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
