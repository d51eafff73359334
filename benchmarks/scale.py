"""Scale: a tabular gate over 10k–1M parquet rows against the loop a careful engineer writes by hand.

For each row count it writes a parquet file (16 float features, a binary label) and a trained-enough
16→2 torch linear model (``module:callable``), then times, each in a fresh Python process so that peak
memory (``ru_maxrss``) is the run's own:

- **in one process**, the model already loaded: ``run_gate`` (data read, hashing, inputs, prediction,
  accuracy + macro F1) against the hand loop (pandas/pyarrow read → torch batches of 1,024 →
  scikit-learn accuracy + F1);
- **as whole processes**: ``pytest --modelcheck`` on the gate against ``python hand.py`` (imports,
  model load and all).

It prints seconds, rows/s, the ratio modelcheck / hand (targets: ≤ 1.15x in one process at 1M rows,
≤ 1.3x as whole processes) and the peak RSS ratio (target ≤ 1.2x). ``--threads`` compares the
framework's default thread count with ``threads: 1`` (and ``--load-core`` keeps one core busy meanwhile).

    python benchmarks/scale.py [--rows 10000 100000 1000000] [--repeats 3] [--threads] [--load-core]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

FEATURES = 16

MODEL_MODULE = '''
import torch


def build():
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 2)
    with torch.no_grad():  # label = first feature > 0, learnt exactly
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, 0] = 4.0
        model.weight[0, 0] = -4.0
    return model.eval()
'''

HAND = '''
import resource, sys, time
started = time.perf_counter()
import numpy as np, pandas as pd, pyarrow.parquet, torch
from sklearn.metrics import accuracy_score, f1_score
sys.path.insert(0, sys.argv[2])
import scale_model
{threads}
model = scale_model.build()
loaded = time.perf_counter()
frame = pd.read_parquet(sys.argv[1])
x = frame[[f"f{{i}}" for i in range(16)]].to_numpy(dtype=np.float32)
y = frame["label"].to_numpy()
scores = []
with torch.inference_mode():
    for start in range(0, len(x), 1024):
        scores.append(torch.softmax(model(torch.from_numpy(x[start:start + 1024])), dim=1).numpy())
predicted = np.concatenate(scores).argmax(axis=1)
accuracy, f1 = accuracy_score(y, predicted), f1_score(y, predicted, average="macro")
done = time.perf_counter()
print({{"seconds": done - loaded, "total": done - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "accuracy": accuracy}})
'''

IN_PROCESS = '''
import resource, sys, time
started = time.perf_counter()
from modelcheck.gatefile import load_gate
from modelcheck.models.cache import ModelCache
from modelcheck.run.gate import run_gate
sys.path.insert(0, sys.argv[2])
gate = load_gate(sys.argv[1])
models = ModelCache()
models.get(gate.model)
import pandas, pyarrow, sklearn.metrics  # what the hand loop imports before its clock starts
loaded = time.perf_counter()
result = run_gate(gate, file="scale.yaml", models=models, stage=None)
done = time.perf_counter()
assert all(c.status == "passed" for c in result.checks), [c.message for c in result.checks]
print({"seconds": done - loaded, "total": done - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "accuracy": result.checks[0].value})
'''

GATE = """\
version: 1
model: {{id: scale, source: "scale_model:build", backend: torch, task: tabular-classification, device: cpu,
         labels: [neg, pos], batch_size: 1024{threads}}}
data: {{source: data.parquet, input: [{features}], label: label}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.99}}
  - {{name: macro_f1, metric: f1, average: macro, min: 0.99}}
"""


def write_case(folder: Path, rows: int, threads: int | None) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = (x[:, 0] > 0).astype(np.int64)
    frame.to_parquet(folder / "data.parquet", index=False)
    (folder / "scale_model.py").write_text(textwrap.dedent(MODEL_MODULE))
    features = ", ".join(f"f{i}" for i in range(FEATURES))
    extra = f", threads: {threads}" if threads else ""
    (folder / "scale.yaml").write_text(GATE.format(features=features, threads=extra))
    set_threads = f"torch.set_num_threads({threads})" if threads else ""
    (folder / "hand.py").write_text(textwrap.dedent(HAND.format(threads=set_threads)))
    (folder / "in_process.py").write_text(textwrap.dedent(IN_PROCESS))
    return folder


def child(command: list[str], cwd: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    figures = eval(lines[-1]) if lines else {}
    figures["wall"] = wall
    return figures


def pytest_run(cwd: Path) -> dict[str, float]:
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--modelcheck', "
        "'-p', 'no:hypothesispytest', 'scale.yaml', '-o', 'modelcheck_gates=scale.yaml'], capture_output=True, text=True); "
        "print(r.stdout[-500:], file=sys.stderr); assert r.returncode == 0, r.stdout[-2000:]; "
        "print({'seconds': time.perf_counter() - t, 'rss_mb': "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})"
    )
    return child([sys.executable, "-c", code], cwd)


def hand_process(cwd: Path) -> dict[str, float]:
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run([sys.executable, 'hand.py', 'data.parquet', '.'], capture_output=True, text=True); "
        "assert r.returncode == 0, r.stderr[-2000:]; "
        "print({'seconds': time.perf_counter() - t, 'rss_mb': "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})"
    )
    return child([sys.executable, "-c", code], cwd)


@contextlib.contextmanager
def busy_core(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="also compare default threads with threads: 1")
    parser.add_argument("--load-core", action="store_true", help="keep one core busy while measuring")
    args = parser.parse_args(argv)

    print(f"# scale: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}, load-core={args.load_core}, median of {args.repeats}")
    print()
    print("| rows | threads | in-process modelcheck s | hand s | ratio | whole process modelcheck s | hand s | ratio "
          "| peak RSS modelcheck MiB | hand MiB | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    settings: list[int | None] = [None, 1] if args.threads else [None]
    with tempfile.TemporaryDirectory(prefix="modelcheck-scale-") as tmp, busy_core(args.load_core):
        for rows in args.rows:
            for threads in settings:
                case = Path(tmp, f"{rows}-{threads or 'default'}")
                case.mkdir()
                folder = write_case(case, rows, threads)
                mc = [child([sys.executable, "in_process.py", "scale.yaml", "."], folder) for _ in range(args.repeats)]
                hand = [child([sys.executable, "hand.py", "data.parquet", "."], folder) for _ in range(args.repeats)]
                mc_proc = [pytest_run(folder) for _ in range(args.repeats)]
                hand_proc = [hand_process(folder) for _ in range(args.repeats)]
                inside = median(mc, "seconds") / median(hand, "seconds")
                whole = median(mc_proc, "seconds") / median(hand_proc, "seconds")
                rss = median(mc, "rss_mb") / median(hand, "rss_mb")
                print(f"| {rows:,} | {threads or 'default'} | {median(mc, 'seconds'):.3f} | {median(hand, 'seconds'):.3f} "
                      f"| {inside:.2f}x | {median(mc_proc, 'seconds'):.2f} | {median(hand_proc, 'seconds'):.2f} | "
                      f"{whole:.2f}x | {median(mc, 'rss_mb'):.0f} | {median(hand, 'rss_mb'):.0f} | {rss:.2f}x |",
                      flush=True)
    print()
    print(json.dumps({"targets": {"in_process_1M": "<= 1.15x", "whole_process": "<= 1.3x", "peak_rss": "<= 1.2x"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
