"""The Ray engine's overhead against the local engine, and rows/s as actors are added, on this machine.

Two scikit-learn models converted to ONNX (ONNX Runtime with one thread, in this process and in each
actor): ``logistic``, a logistic regression (4 features, 3 classes: almost pure overhead, about
0.15 s per million rows locally) and ``forest``, a random forest (100 trees of depth 10, the same
features: real work per row). Each is gated over N rows of a parquet file with the local engine and
with the Ray engine on a Ray runtime started here with 2 CPUs (``ray.init(num_cpus=2)``), with 1
and 2 actors (one per core). Each figure is ``run_gate`` end to end with the model loaded in this
process (data read, prediction pass, accuracy check).

What is counted: ``first`` is the engine's first gate, which starts its actors (Ray worker start,
imports, the model loaded on each actor); ``warm`` is the median of the next ``--repeats`` gates on
the same engine, whose actors are already up (what every later gate with that model in a pytest
session costs). ``warm / local`` is the median of per-pair ratios, each Ray run timed right after a
local run (the machine's load changes between them less than across the table). The Ray runtime's
own start (``ray.init``) is not counted. ``2 actors / 1`` is warm rows/s with 2 actors over 1 (ideal
2.00x: the 2 cores are also the driver's and the other processes').

    python benchmarks/ray_engine.py [--rows 100000 1000000] [--models logistic forest] [--repeats 3]
    python benchmarks/ray_engine.py --rows 10000000 --models logistic --repeats 1   # the 10M row
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.simplefilter("ignore", DeprecationWarning)
warnings.simplefilter("ignore", FutureWarning)


def build(folder: Path, rows: int, kind: str = "logistic") -> Path:
    import pandas as pd
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    x = data.data.to_numpy(np.float32)
    if kind == "forest":
        model: Any = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(x, data.target)
    else:
        model = LogisticRegression(max_iter=500).fit(x, data.target)
    graph = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))],
                                     options={id(model): {"zipmap": False}})  # fmt: skip
    (folder / "model.onnx").write_bytes(graph.SerializeToString())
    pick = np.random.default_rng(0).integers(0, len(x), rows)
    frame = pd.DataFrame(x[pick] + np.float32(0.01), columns=["f1", "f2", "f3", "f4"])
    frame["kind"] = data.target.to_numpy()[pick]
    frame.to_parquet(folder / "rows.parquet")
    gate = folder / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: {kind}, source: {folder / 'model.onnx'}, backend: onnx, "
        f"task: tabular-classification, threads: 1, batch_size: 4096}}\ndata: {{source: {folder / 'rows.parquet'}, "
        "input: [f1, f2, f3, f4], label: kind}\nchecks:\n  - {name: accuracy, metric: accuracy, min: 0.5}\n",
        encoding="utf-8",
    )
    return gate


class Timer:
    """``run_gate`` on one gate file, its model loaded once in this process."""

    def __init__(self, gate_file: Path) -> None:
        from modelcheck.gatefile import load_gate
        from modelcheck.models.cache import ModelCache

        self.gate, self.cache = load_gate(gate_file), ModelCache()
        self.cache.get(self.gate.model)

    def __call__(self, engine: object) -> float:
        from modelcheck.run.gate import run_gate

        began = time.perf_counter()
        result = run_gate(self.gate, file="gate.yaml", models=self.cache, stage=None, engine=engine)  # type: ignore[arg-type]
        took = time.perf_counter() - began
        assert result.checks[0].status == "passed", result.checks[0].message
        return took

    def close(self) -> None:
        self.cache.close()


def ray_runs(timer: Timer, actors: int, repeats: int) -> tuple[float, float, float]:
    """The first gate (actors started), the median warm gate, and the median warm/local ratio of back-to-back pairs."""
    from modelcheck.run.engines import LocalEngine
    from modelcheck.run.engines.ray import RayEngine

    os.environ["MODELCHECK_RAY_ACTORS"] = str(actors)
    engine = RayEngine(None)
    try:
        first = timer(engine)
        warm, ratios = [], []
        for _ in range(repeats):
            local = timer(LocalEngine())
            warm.append(timer(engine))
            ratios.append(warm[-1] / local)
    finally:
        engine.close()  # the actors end: the next engine's pool needs their CPUs
    return first, statistics.median(warm), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", choices=["logistic", "forest"], default=["logistic", "forest"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    from modelcheck.run.engines import LocalEngine

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"\n{os.cpu_count()} cpus, Ray {ray.__version__} with 2 CPUs; warm: median of {args.repeats}\n")
    heads = ["model", "rows", "local s", "first 2 actors s", "warm 1 actor s", "warm 2 actors s", "warm 2 / local",
             "rows/s 1 actor", "rows/s 2 actors", "2 actors / 1"]  # fmt: skip
    print("| " + " | ".join(heads) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
    for kind in args.models:
        for rows in args.rows:
            with tempfile.TemporaryDirectory() as tmp:
                timer = Timer(build(Path(tmp), rows, kind))
                try:
                    local = statistics.median(timer(LocalEngine()) for _ in range(args.repeats))
                    _, one, _ = ray_runs(timer, 1, args.repeats)
                    first, two, ratio = ray_runs(timer, 2, args.repeats)
                finally:
                    timer.close()
            cells = [kind, f"{rows:,}", f"{local:.2f}", f"{first:.2f}", f"{one:.2f}", f"{two:.2f}", f"{ratio:.2f}x",
                     f"{rows / one:,.0f}", f"{rows / two:,.0f}", f"{one / two:.2f}x"]  # fmt: skip
            print("| " + " | ".join(cell.rjust(len(head)) for cell, head in zip(cells, heads, strict=True)) + " |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
