"""A release kit for the publish tests: a trained tiny model, its data, a gate with a ``publish:`` section, and
the report of a real ``pytest --modelcheck --modelcheck-stage deploy`` run over it.

    kit/
      gates/release.yaml      model: ../model, data: ../data/test.csv, publish.files: [../LICENSE.txt]
      model/                  the tiny BERT (config, safetensors, tokenizer)
      data/test.csv           examples/sentiment/test.csv
      LICENSE.txt
      out.json, out.outputs/  the report and its per-example outputs
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

GATE = """\
version: 1
model:
  id: sentiment
  source: ../model
  backend: transformers
  task: text-classification
  device: cpu
data:
  source: ../data/test.csv
  split: test
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.90
  - name: accuracy_by_language
    metric: accuracy
    slice_by: language
    min: 0.85
    min_samples: 50
  - name: latency_p95
    kind: latency
    batch_size: 1
    percentile: 95
    max_ms: 2000
    min_iterations: 20
  - name: peak_memory
    kind: memory
    max_mb: 4000
stages:
  deploy: all
publish:
  repo_id: acme/sentiment
  files: ["../LICENSE.txt"]
  card:
    license: apache-2.0
    language: [en, de]
    description: A tiny sentiment classifier, the modelcheck release example.
"""


def build_kit(folder: Path, model: Path, *, gate: str = GATE) -> Path:
    """Lay out the kit in ``folder`` (model copied from ``model``) and write ``out.json`` by running pytest."""
    shutil.copytree(model, folder / "model")
    (folder / "data").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "sentiment" / "test.csv", folder / "data" / "test.csv")
    (folder / "LICENSE.txt").write_text("Apache License 2.0 (test copy)\n", encoding="utf-8")
    (folder / "gates").mkdir()
    (folder / "gates" / "release.yaml").write_text(gate, encoding="utf-8")
    run_deploy_stage(folder)
    return folder


def run_deploy_stage(folder: Path, report: str = "out.json") -> subprocess.CompletedProcess[str]:
    """``pytest --modelcheck --modelcheck-stage deploy --modelcheck-report out.json`` in ``folder``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "pytest", "--modelcheck", "--modelcheck-stage", "deploy",
        "--modelcheck-report", report, "-p", "no:cacheprovider", "-q", "gates",
    ]  # fmt: skip
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
