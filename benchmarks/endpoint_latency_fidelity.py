"""How often a latency check under load (``concurrency``) fails an unchanged server, and catches a slower one.

A real MLServer on 127.0.0.1 serves the scikit-learn wine classifier of the tests, behind the tests' fault
proxy (``tests/endpoint_servers.py``), which every request goes through, so both conditions pay its hop:

1. reference: one long load test (``--reference-time`` seconds) gives the server's percentile at the
   concurrency; the bound is ``--margin`` times it (``max_ms``);
2. then, alternating run by run, ``--runs`` checks of each condition with that bound and the default
   sequential plan (``min_time``, ``min_iterations``, looks at 1, 2, 4, 8 times while the interval
   straddles the bound; ``on_uncertain: inconclusive``):
   - A/A: the same server, unchanged: a ``failed`` verdict is a false fail;
   - planted: the proxy holds every request ``--slowdown`` times the reference median before
     forwarding it: ``failed`` is a slowdown caught.

    python benchmarks/endpoint_latency_fidelity.py [--runs 10] [--concurrency 4] [--percentile 50]
        [--margin 1.15] [--slowdown 0.30] [--min-time 1.0]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--percentile", type=float, default=50.0)
    parser.add_argument("--margin", type=float, default=1.15)
    parser.add_argument("--slowdown", type=float, default=0.30)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--reference-time", type=float, default=5.0)
    args = parser.parse_args()
    from endpoint_servers import Fault, FaultProxy, start_mlserver
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelcheck.checks.latency import batches, latency_verdict
    from modelcheck.checks.load_latency import judge_load
    from modelcheck.gatefile import CheckSpec, DataSpec, GateSpec, ModelSpec
    from modelcheck.gatefile.spec import EndpointSpec
    from modelcheck.models.backends import get_backend
    from modelcheck.report.results import CheckResult

    data = load_wine()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    rows = list(data.data.astype("float32"))
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_mlserver(Path(tmp) / "server", {"wine": pipe}) as url,
        FaultProxy(url) as proxy,
    ):
        endpoint = EndpointSpec(url=proxy.url, model="wine", timeout=30.0, retries=0)
        spec = ModelSpec(id="wine", source=proxy.url, backend="kserve-v2", task="tabular-classification",
                         labels=("0", "1", "2"), endpoint=endpoint)  # fmt: skip
        gate = GateSpec(path=Path(tmp) / "gate.yaml", model=spec, data=DataSpec(source="wine", input="x"),
                        checks=())  # fmt: skip
        model = get_backend("kserve-v2").load(spec)
        batch = batches(rows, 1)

        def check(max_ms: float, min_time: float, iterations: int = 50) -> CheckResult:
            one = CheckSpec(name="load", kind="latency", concurrency=args.concurrency, percentile=args.percentile,
                            max_ms=max_ms, min_time=min_time, min_iterations=iterations,
                            max_time=max(60.0, 10 * min_time))  # fmt: skip
            return judge_load(one, gate, model, batch, latency_verdict)

        reference = check(1e9, args.reference_time, 200)
        figures = reference.details["latency"]
        ref = figures["percentiles_ms"][f"p{args.percentile:g}"]
        ref_p50 = figures["percentiles_ms"]["p50"]
        bound = args.margin * ref
        delay = args.slowdown * ref_p50 / 1000
        print(f"MLServer behind the fault proxy on 127.0.0.1, concurrency {args.concurrency}, one row per request")
        print(f"reference ({args.reference_time:g} s, n={figures['n']}): p{args.percentile:g} {ref:.2f} ms, "
              f"{'' if args.percentile == 50 else f'p50 {ref_p50:.2f} ms, '}{figures['requests_per_s']:.0f} requests/s, "
              f"{figures['in_flight']:.1f} in flight")  # fmt: skip
        print(f"bound max_ms = {args.margin:g} x reference = {bound:.2f} ms; planted slowdown: every request "
              f"held {delay * 1000:.2f} ms ({args.slowdown:.0%} of the reference median)\n")  # fmt: skip
        verdicts: dict[str, collections.Counter[str]] = {
            "A/A": collections.Counter(),
            "planted": collections.Counter(),
        }
        looks: dict[str, list[int]] = {"A/A": [], "planted": []}
        seconds: dict[str, list[float]] = {"A/A": [], "planted": []}
        values: dict[str, list[float]] = {"A/A": [], "planted": []}
        for _ in range(args.runs):
            for condition in ("A/A", "planted"):
                proxy.fault = Fault("slow", seconds=delay) if condition == "planted" else None
                began = time.perf_counter()
                result = check(bound, args.min_time)
                seconds[condition].append(time.perf_counter() - began)
                verdicts[condition][result.status] += 1
                looks[condition].append(result.details["latency"]["looks"])
                values[condition].append(result.value)
        proxy.fault = None
        model.close()
    print("| condition | runs | passed | failed | inconclusive | median value | median looks (max) | median s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for condition in ("A/A", "planted"):
        counts = verdicts[condition]
        print(f"| {condition} | {args.runs} | {counts['passed']} | {counts['failed']} | {counts['inconclusive']} | "
              f"{statistics.median(values[condition]):.2f} ms | {statistics.median(looks[condition]):g} "
              f"({max(looks[condition])}) | {statistics.median(seconds[condition]):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
