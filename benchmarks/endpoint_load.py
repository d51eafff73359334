"""Requests/s of modelcheck's kserve-v2 backend against a hand-written asyncio + httpx loop and a sequential loop.

A real MLServer on 127.0.0.1 serves a scikit-learn wine classifier (the server of the tests:
``tests/endpoint_servers.py``). Each method sends the same N infer requests, one row each, with the same
typed-tensor body (``FP32``, shape ``[1, 13]``):

- modelcheck: the ``kserve-v2`` backend's ``predict`` with ``batch_size: 1`` and ``concurrency: C`` (its
  client: httpx, with retries, body caps and error accounting);
- a hand loop: ``httpx.AsyncClient`` and an ``asyncio.Semaphore(C)``, nothing else;
- a sequential loop: one ``httpx.Client``, one request after the other.

The hand loop's achieved concurrency is its mean number of requests in flight (time-weighted).
modelcheck's overhead per request is ``(its time - the hand loop's) / N``.

    python benchmarks/endpoint_load.py [--requests 2000] [--concurrency 1 4 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def hand_loop(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, float]:
    """Seconds for all requests, and the mean number in flight."""
    import httpx

    in_flight, area, last = 0, 0.0, time.perf_counter()

    async def main() -> None:
        nonlocal in_flight, area, last
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(body: dict[str, Any]) -> None:
                nonlocal in_flight, area, last
                async with gate:
                    now = time.perf_counter()
                    area += in_flight * (now - last)
                    last, in_flight = now, in_flight + 1
                    answer = await client.post(url, json=body)
                    answer.raise_for_status()
                    now = time.perf_counter()
                    area += in_flight * (now - last)
                    last, in_flight = now, in_flight - 1

            await asyncio.gather(*(one(body) for body in bodies))

    began = time.perf_counter()
    last = began
    asyncio.run(main())
    elapsed = time.perf_counter() - began
    return elapsed, area / elapsed


def sequential(url: str, bodies: list[dict[str, Any]]) -> float:
    import httpx

    began = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            client.post(url, json=body).raise_for_status()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from endpoint_servers import start_mlserver
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelcheck.gatefile import ModelSpec
    from modelcheck.gatefile.spec import EndpointSpec
    from modelcheck.models.backends import get_backend

    data = load_wine()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    rows = np.resize(data.data.astype(np.float32), (args.requests, data.data.shape[1]))
    with tempfile.TemporaryDirectory() as tmp, start_mlserver(Path(tmp) / "server", {"wine": pipe}) as url:
        infer = f"{url}/v2/models/wine/infer"
        print(f"MLServer on 127.0.0.1, {args.requests} requests of one row; median of {args.repeats}\n")
        print("| concurrency | sequential req/s | hand loop req/s | hand loop in flight | modelcheck req/s | "
              "modelcheck ÷ hand | overhead per request |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for concurrency in args.concurrency:
            endpoint = EndpointSpec(url=url, model="wine", concurrency=concurrency, timeout=30.0)
            spec = ModelSpec(id="wine", source=url, backend="kserve-v2", task="tabular-classification",
                             labels=("0", "1", "2"), endpoint=endpoint)  # fmt: skip
            model = get_backend("kserve-v2").load(spec)
            body = [{"inputs": [{"name": model.input_name, "datatype": "FP32", "shape": [1, rows.shape[1]],
                                 "data": row.tolist()}]} for row in rows]  # fmt: skip
            ours, hand, flight, alone = [], [], [], []
            for _ in range(args.repeats):
                began = time.perf_counter()
                model.predict(rows, batch_size=1)
                ours.append(time.perf_counter() - began)
                seconds, mean_flight = hand_loop(infer, body, concurrency)
                hand.append(seconds)
                flight.append(mean_flight)
                alone.append(sequential(infer, body))
            model.close()
            mine, theirs = statistics.median(ours), statistics.median(hand)
            n = args.requests
            print(f"| {concurrency} | {n / statistics.median(alone):,.0f} | {n / theirs:,.0f} | "
                  f"{statistics.median(flight):.1f} | {n / mine:,.0f} | {theirs / mine:.2f}x | "
                  f"{(mine - theirs) / n * 1000:+.2f} ms |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
