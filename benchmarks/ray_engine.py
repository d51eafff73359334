"""The Ray engine's overhead against the local engine, and rows/s as actors are added, on this machine.

A scikit-learn logistic regression converted to ONNX (4 features, 3 classes; ONNX Runtime with one
thread per actor) is gated over N rows of a parquet file, once with the local engine and once with
the Ray engine on a Ray runtime started here with 2 CPUs (``ray.init(num_cpus=2)``), with 1 and 2
actors. Each figure is ``run_gate`` end to end with the model loaded (data read, prediction pass,
accuracy check); the Ray runtime's start is not counted, the actors' start is (each run starts its pool).

    python benchmarks/ray_engine.py [--rows 100000 1000000] [--repeats 3]   # --rows 10000000 for the 10M row
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore", DeprecationWarning)
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def build(folder: Path, rows: int) -> Path:
    import pandas as pd
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    x = data.data.to_numpy(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, data.target)
    graph = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))],
                                     options={id(model): {"zipmap": False}})  # fmt: skip
    (folder / "iris.onnx").write_bytes(graph.SerializeToString())
    pick = np.random.default_rng(0).integers(0, len(x), rows)
    frame = pd.DataFrame(x[pick] + np.float32(0.01), columns=["f1", "f2", "f3", "f4"])
    frame["kind"] = data.target.to_numpy()[pick]
    frame.to_parquet(folder / "rows.parquet")
    gate = folder / "gate.yaml"
    gate.write_text(
        f"version: 1\nmodel: {{id: iris, source: {folder / 'iris.onnx'}, backend: onnx, task: tabular-classification, "
        f"threads: 1, batch_size: 4096}}\ndata: {{source: {folder / 'rows.parquet'}, input: [f1, f2, f3, f4], "
        "label: kind}\nchecks:\n  - {name: accuracy, metric: accuracy, min: 0.5}\n",
        encoding="utf-8",
    )
    return gate


def timed(gate_file: Path, engine: object, repeats: int) -> float:
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    gate, cache = load_gate(gate_file), ModelCache()
    cache.get(gate.model)
    times = []
    try:
        for _ in range(repeats):
            began = time.perf_counter()
            result = run_gate(gate, file="gate.yaml", models=cache, stage=None, engine=engine)  # type: ignore[arg-type]
            times.append(time.perf_counter() - began)
            assert result.checks[0].status == "passed", result.checks[0].message
    finally:
        cache.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    from modelcheck.run.engines import LocalEngine
    from modelcheck.run.engines.ray import RayEngine

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"{os.cpu_count()} cpus, Ray {ray.__version__} with 2 CPUs; median of {args.repeats}\n")
    print(f"| {'rows':>10} | {'local s':>8} | {'ray 1 actor s':>13} | {'ray 2 actors s':>14} | {'ray 2 / local':>13} | "
          f"{'rows/s 1 actor':>14} | {'rows/s 2 actors':>15} | {'2 actors / 1':>12} |")  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for w in (10, 8, 13, 14, 13, 14, 15, 12)) + "|")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            gate = build(Path(tmp), rows)
            local = timed(gate, LocalEngine(), args.repeats)
            os.environ["MODELCHECK_RAY_ACTORS"] = "1"
            one = timed(gate, RayEngine(None), args.repeats)
            os.environ["MODELCHECK_RAY_ACTORS"] = "2"
            two = timed(gate, RayEngine(None), args.repeats)
        print(f"| {rows:>10,} | {local:8.2f} | {one:13.2f} | {two:14.2f} | {two / local:12.2f}x | {rows / one:14,.0f} | "
              f"{rows / two:15,.0f} | {one / two:11.2f}x |", flush=True)  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
