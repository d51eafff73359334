"""Build the wine classifier as an MLServer model folder, for the deploy-gate and monitoring examples.

    python examples/wine/build.py --out served [--name wine] [--bad] [--port 8080]

writes ``served/settings.json`` (MLServer on 127.0.0.1:PORT, gRPC on PORT+1, no metrics server) and
``served/NAME/`` (``model.joblib``, ``model-settings.json``): a scikit-learn pipeline trained in well under a
second on the rows of scikit-learn's bundled wine data that ``test.csv`` (every third row) leaves out.
``--bad`` trains it on shuffled labels: the broken model a deploy gate must stop. ``--data`` rewrites test.csv.
Serve it with ``mlserver start served`` (``pip install mlserver mlserver-sklearn``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the MLServer folder to write")
    parser.add_argument("--name", default="wine", help="the model's name on the server (default wine)")
    parser.add_argument("--bad", action="store_true", help="train on shuffled labels (a broken model)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (gRPC takes the next one)")
    parser.add_argument("--data", action="store_true", help="also rewrite test.csv beside this script")
    args = parser.parse_args(argv)

    import joblib
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_wine(as_frame=True).frame
    test = frame.index % 3 == 0
    features = [c for c in frame.columns if c != "target"]
    labels = frame.loc[~test, "target"].to_numpy()
    if args.bad:
        labels = np.random.default_rng(0).permutation(labels)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(frame.loc[~test, features].to_numpy(dtype="float32"), labels)
    if args.data:
        frame.loc[test].to_csv(HERE / "test.csv", index=False)

    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    settings = {"name": args.name, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}  # fmt: skip
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    server = {"host": "127.0.0.1", "http_port": args.port, "grpc_port": args.port + 1, "metrics_endpoint": None,
              "parallel_workers": 0}  # fmt: skip
    (args.out / "settings.json").write_text(json.dumps(server, indent=2) + "\n")
    print(f"wrote {folder} ({'shuffled labels' if args.bad else 'trained'}); serve it: mlserver start {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
