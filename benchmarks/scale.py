"""Scale: tabular and text gates against the loop a careful engineer writes by hand.

Tabular (10k–1M rows, ``--rows``): a parquet file (16 float features, a binary label) and a
trained-enough 16→2 torch linear model (``module:callable``). Text (1k and 10k rows, ``--text-rows``):
a CSV of short English/German reviews and the example tiny BERT sentiment classifier
(``examples/sentiment/build.py``, transformers backend); its hand loop tokenises batches of 32 sorted
by length, as the best hand loop does. Each case is timed, each run in a fresh Python process so that
peak memory (``ru_maxrss``) is the run's own:

- **in one process**, the model already loaded: ``run_gate`` (data read, hashing, inputs, prediction,
  accuracy + macro F1) against the hand loop (pandas/pyarrow read → torch batches of 1,024 →
  scikit-learn accuracy + F1);
- **as whole processes**: ``pytest --modelcheck`` on the gate against ``python hand.py`` (imports,
  model load and all).

It prints seconds, rows/s, the ratio modelcheck / hand (targets: ≤ 1.15x in one process at 1M rows,
≤ 1.3x as whole processes) and the peak RSS ratio (target ≤ 1.2x). ``--threads`` compares the
framework's default thread count with ``threads: 1`` (and ``--load-core`` keeps one core busy meanwhile).

    python benchmarks/scale.py [--rows 10000 100000 1000000] [--text-rows 1000 10000] [--repeats 3]
                               [--threads] [--load-core]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
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

MODEL_MODULE = """
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
"""

HAND = """
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
"""

TEXT_HAND = """
import resource, sys, time
started = time.perf_counter()
import numpy as np, pandas as pd, torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer
{threads}
tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[2]).eval()
loaded = time.perf_counter()
frame = pd.read_csv(sys.argv[1])
texts = frame["text"].tolist()
y = frame["label"].map(model.config.label2id).to_numpy()
order = np.argsort([len(t) for t in texts], kind="stable")  # batches of similar length pad less
scores = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
with torch.inference_mode():
    for start in range(0, len(texts), 32):
        rows = order[start:start + 32]
        batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, return_tensors="pt")
        scores[rows] = torch.softmax(model(**batch).logits, dim=-1).numpy()
predicted = scores.argmax(axis=1)
accuracy, f1 = accuracy_score(y, predicted), f1_score(y, predicted, average="macro")
done = time.perf_counter()
print({{"seconds": done - loaded, "total": done - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "accuracy": accuracy}})
"""

TEXT_GATE = """\
version: 1
model: {{id: sentiment, source: ./model, task: text-classification, device: cpu, batch_size: 32{threads}}}
data: {{source: data.csv, input: text, label: label}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.9}}
  - {{name: macro_f1, metric: f1, average: macro, min: 0.9}}
"""

IN_PROCESS = """
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
"""

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


def write_text_case(folder: Path, rows: int, threads: int | None, model: Path) -> Path:
    """The text gate over ``rows`` reviews, with the trained example model copied in as ``./model``."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "sentiment"))
    import build  # examples/sentiment/build.py

    build.write_test_data(folder / "data.csv", n=rows, seed=1)
    shutil.copytree(model, folder / "model")
    extra = f", threads: {threads}" if threads else ""
    (folder / "scale.yaml").write_text(TEXT_GATE.format(threads=extra))
    set_threads = f"torch.set_num_threads({threads})" if threads else ""
    (folder / "hand.py").write_text(textwrap.dedent(TEXT_HAND.format(threads=set_threads)))
    (folder / "in_process.py").write_text(textwrap.dedent(IN_PROCESS))
    return folder


def sentiment_model(folder: Path) -> Path:
    """The example tiny BERT sentiment classifier, trained (about a second)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "sentiment"))
    import build  # examples/sentiment/build.py

    return Path(build.build_model(folder / "sentiment-model", trained=True))


def child(command: list[str], cwd: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
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


def hand_process(cwd: Path, hand_args: list[str]) -> dict[str, float]:
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"r = subprocess.run([sys.executable, 'hand.py', *{hand_args!r}], capture_output=True, text=True); "
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
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000], help="tabular rows")
    parser.add_argument("--text-rows", type=int, nargs="*", default=[1_000, 10_000], help="text gate rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="also compare default threads with threads: 1")
    parser.add_argument("--load-core", action="store_true", help="keep one core busy while measuring")
    args = parser.parse_args(argv)

    print(
        f"# scale: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, load-core={args.load_core}, median of {args.repeats}"
    )
    print()
    print(
        "| gate | rows | threads | in-process modelcheck s | hand s | ratio | rows/s | whole process modelcheck s "
        "| hand s | ratio | peak RSS modelcheck MiB | hand MiB | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    settings: list[int | None] = [None, 1] if args.threads else [None]
    # Cases are written in a spawned process: a child's peak RSS starts at its parent's RSS when it is
    # forked, so this process stays small (no frames, no torch) to keep every figure the run's own.
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="modelcheck-scale-") as tmp,
        busy_core(args.load_core),
        concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as writer,
    ):
        model = writer.submit(sentiment_model, Path(tmp)).result() if args.text_rows else None
        cases = [("tabular", rows) for rows in args.rows] + [("text", rows) for rows in args.text_rows]
        for gate, rows in cases:
            for threads in settings:
                folder = Path(tmp, f"{gate}-{rows}-{threads or 'default'}")
                folder.mkdir()
                if gate == "tabular":
                    writer.submit(write_case, folder, rows, threads).result()
                    hand_args = ["data.parquet", "."]
                else:
                    assert model is not None
                    writer.submit(write_text_case, folder, rows, threads, model).result()
                    hand_args = ["data.csv", "model"]
                mc = [child([sys.executable, "in_process.py", "scale.yaml", "."], folder) for _ in range(args.repeats)]
                hand = [child([sys.executable, "hand.py", *hand_args], folder) for _ in range(args.repeats)]
                mc_proc = [pytest_run(folder) for _ in range(args.repeats)]
                hand_proc = [hand_process(folder, hand_args) for _ in range(args.repeats)]
                inside = median(mc, "seconds") / median(hand, "seconds")
                whole = median(mc_proc, "seconds") / median(hand_proc, "seconds")
                rss = median(mc, "rss_mb") / median(hand, "rss_mb")
                print(
                    f"| {gate} | {rows:,} | {threads or 'default'} | {median(mc, 'seconds'):.3f} "
                    f"| {median(hand, 'seconds'):.3f} | {inside:.2f}x | {rows / median(mc, 'seconds'):,.0f} "
                    f"| {median(mc_proc, 'seconds'):.2f} | {median(hand_proc, 'seconds'):.2f} | {whole:.2f}x "
                    f"| {median(mc, 'rss_mb'):.0f} | {median(hand, 'rss_mb'):.0f} | {rss:.2f}x |",
                    flush=True,
                )
    print()
    print(json.dumps({"targets": {"in_process_1M": "<= 1.15x", "whole_process": "<= 1.3x", "peak_rss": "<= 1.2x"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
