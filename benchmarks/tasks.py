"""Language tasks: examples/s of modelcheck's gates against a hand-written loop and the transformers pipeline,
and the bootstrap time of each corpus metric.

Per task, on the same tiny model (trained as in the tests: ``tests/tiny_seq2seq.py``) and the same rows:

- ``transformers.pipeline("text-generation")`` (greedy, ``batch_size=16``; transformers 5 has no text2text pipeline);
- a hand-written batched loop (tokenise a batch, ``generate``, decode), in data order;
- modelcheck: a gate (CSV data, a chrF check) run by ``modelcheck.run.gate.run_gate`` with the model already
  loaded, so the figure includes reading and hashing the data and scoring the metric.

Then, per corpus metric, the time of 2,000 bootstrap resamples of 10,000 rows from its per-row statistics
(in chunks of 250, both models of a paired bootstrap from one count matrix, as ``kind: regression`` does).

    python benchmarks/tasks.py [--rows 600] [--threads 2] [--repeats 3] [--bootstrap-rows 10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

GATE = """\
version: 1
model:
  source: {model}
  task: {task}
  device: cpu
  batch_size: 16
  max_new_tokens: {new}
  threads: {threads}
data:
  source: {data}
  input: source
  label: reference
checks:
  - name: chrf
    metric: chrf
    min: 0
"""


def timed(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def hand_loop(model: Any, tokenizer: Any, texts: list[str], new: int, *, decoder_only: bool) -> list[str]:
    import torch

    out: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(texts), 16):
            batch = tokenizer(texts[start : start + 16], padding=True, return_tensors="pt")
            sequences = model.generate(**batch, max_new_tokens=new, do_sample=False)
            if decoder_only:
                sequences = sequences[:, batch["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(sequences, skip_special_tokens=True))
    return out


def throughput(
    task: str, folder: Path, rows: list[tuple[str, str]], args: argparse.Namespace
) -> list[tuple[str, float | None]]:
    """examples/s of each way to run ``task`` (None: that way does not exist for the task)."""
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    decoder_only = task == "text-generation"
    new = 4 if decoder_only else 6
    auto = AutoModelForCausalLM if decoder_only else AutoModelForSeq2SeqLM
    model, tokenizer = auto.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left" if decoder_only else "right"
    texts = [source for source, _ in rows]
    out: list[tuple[str, float | None]] = [("transformers pipeline (batch_size 16)", None)]
    if decoder_only:  # transformers 5 removed the text2text-generation, summarization and translation pipelines
        pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
        options = {"max_new_tokens": new, "do_sample": False, "batch_size": 16, "return_full_text": False}
        out[0] = (out[0][0], timed(lambda: pipe(texts, **options), args.repeats))
    out.append(("hand-written batched loop", timed(lambda: hand_loop(model, tokenizer, texts, new, decoder_only=decoder_only), args.repeats)))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        pd.DataFrame({"source": texts, "reference": [r for _, r in rows]}).to_csv(data, index=False)
        gate_file = Path(tmp) / "gate.yaml"
        gate_file.write_text(
            GATE.format(model=folder, task=task, new=new, threads=args.threads, data=data), encoding="utf-8"
        )
        gate = load_gate(gate_file)
        cache = ModelCache()
        cache.get(gate.model)  # loading is not part of the figure, as for the loops
        out.append(("modelcheck gate (run_gate)", timed(lambda: run_gate(gate, file="g.yaml", models=cache, stage=None), args.repeats)))  # fmt: skip
        cache.close()
    return [(name, None if seconds is None else len(rows) / seconds) for name, seconds in out]


def bootstrap_times(n: int) -> list[tuple[str, float, float]]:
    """(metric, seconds to compute one model's statistics, seconds for 2,000 paired resamples of both models)."""
    import numpy as np

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs
    from modelcheck.tasks import text2text
    from modelcheck.tasks.base import row_counts

    rng = np.random.default_rng(0)
    words = "the cat sat on a mat dog ran to big red house quickly".split()
    hyps = [" ".join(rng.choice(words, size=int(rng.integers(3, 20)))) for _ in range(n)]
    refs = [[" ".join(rng.choice(words, size=int(rng.integers(3, 20))))] for _ in range(n)]
    other = list(reversed(hyps))  # the second model of a paired bootstrap
    draws = rng.integers(0, n, size=(2000, n))
    out = []
    for metric in ("bleu", "chrf", "chrf++", "ter", "rougeL"):
        check = CheckSpec(name="m", metric=metric)
        began = time.perf_counter()
        first = text2text.row_statistics(check, refs, Outputs(texts=hyps), ())
        built = time.perf_counter() - began
        second = text2text.row_statistics(check, refs, Outputs(texts=other), ())
        began = time.perf_counter()
        for start in range(0, 2000, 250):  # as the regression check does: one count matrix for both models
            counts = row_counts(draws[start : start + 250], n)
            first.weighted(counts), second.weighted(counts)
        out.append((metric, built, time.perf_counter() - began))
    return out


def print_header() -> None:
    print(f"| {'task':<26} | {'method':<38} | {'ex/s':>7} | {'x pipeline':>10} | {'x hand loop':>11} |")
    print(f"|{'-' * 28}|{'-' * 40}|{'-' * 9}|{'-' * 12}|{'-' * 13}|")


def print_rates(label: str, rates: list[tuple[str, float | None]]) -> None:
    """One table row per method: (pipeline, hand loop, modelcheck, ...) examples/s, None where there is none."""
    pipe, loop = rates[0][1], rates[1][1]
    assert loop is not None
    for name, rate in rates:
        if rate is None:
            print(f"| {label:<26} | {name:<38} | {'n/a':>7} | {'':>10} | {'':>11} |")
            continue
        ratio = "" if pipe is None else f"{rate / pipe:9.2f}x"
        print(f"| {label:<26} | {name:<38} | {rate:7.0f} | {ratio:>10} | {rate / loop:10.2f}x |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bootstrap-rows", type=int, default=10_000)
    args = parser.parse_args(argv)

    import tiny_models
    import tiny_seq2seq
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    chats = [(p, a) for p, a in tiny_models.count_examples()]
    cases = {
        "text2text-generation (T5)": ("translation", tiny_seq2seq.shared("t5"), tiny_seq2seq.reverse_examples()),
        "text-generation (GPT-2)": ("text-generation", tiny_models.shared("gpt2"), chats),
    }
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, {args.threads} threads")
    print(f"{args.rows} rows per task, median of {args.repeats}\n")
    print_header()
    for label, (task, folder, examples) in cases.items():
        rows = (examples * (args.rows // len(examples) + 1))[: args.rows]
        print_rates(label, throughput(task, folder, rows, args))
    print(f"\nbootstrap: 2,000 paired resamples of {args.bootstrap_rows:,} rows, both models\n")
    print(f"| {'metric':<8} | {'row statistics (s)':>18} | {'2,000 resamples (s)':>19} |")
    print(f"|{'-' * 10}|{'-' * 20}|{'-' * 21}|")
    for metric, built, resampled in bootstrap_times(args.bootstrap_rows):
        print(f"| {metric:<8} | {built:18.2f} | {resampled:19.2f} |")


if __name__ == "__main__":
    main()
