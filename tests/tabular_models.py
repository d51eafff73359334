"""Tiny tabular torch models for the torch backend's tests: build, train in well under a second, save.

Everything is offline and deterministic: the data are scikit-learn's bundled ``load_wine`` (3 classes,
13 features) and ``load_diabetes`` (regression, 10 features); the models are seeded MLPs whose
standardisation of the inputs and scaling of the target live in buffers, so they travel with the
state dict. The zero-argument factories (``build_wine``, ``build_diabetes``) are what a gate's
``source: "tabular_models:build_wine"`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

SEED = 0


class TabularMLP(nn.Module):
    """Standardise the features, one hidden layer, then undo the target's scaling (regression)."""

    def __init__(self, n_features: int, n_outputs: int, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("out_mean", torch.zeros(n_outputs))
        self.register_buffer("out_scale", torch.ones(n_outputs))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - self.mean) / self.scale)
        return out * self.out_scale + self.out_mean


def build_mlp(n_features: int, n_outputs: int, hidden: int = 32) -> TabularMLP:
    """A freshly initialised MLP, the same every call (seeded without touching the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return TabularMLP(n_features, n_outputs, hidden)


def build_wine() -> TabularMLP:
    """The wine classifier's architecture (13 features, 3 classes), untrained."""
    return build_mlp(13, 3)


def build_diabetes() -> TabularMLP:
    """The diabetes regressor's architecture (10 features, 1 output), untrained."""
    return build_mlp(10, 1)


@dataclass(frozen=True)
class Table:
    """A bundled scikit-learn dataset split deterministically: every third row is a test row."""

    features: tuple[str, ...]
    train: pd.DataFrame
    test: pd.DataFrame

    def x(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array(frame[list(self.features)], dtype=np.float32)

    def y(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["target"].to_numpy()


def load_table(name: str) -> Table:
    """``wine`` or ``diabetes`` as a Table with a ``target`` column."""
    from sklearn import datasets

    loader = {"wine": datasets.load_wine, "diabetes": datasets.load_diabetes}[name]
    frame: pd.DataFrame = loader(as_frame=True).frame
    test = np.arange(len(frame)) % 3 == 0
    features = tuple(c for c in frame.columns if c != "target")
    return Table(features, frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True))


def train(model: TabularMLP, x: np.ndarray, y: np.ndarray, *, classification: bool, steps: int = 150) -> TabularMLP:
    """Full-batch Adam on (x, y); sets the standardisation buffers first. ~0.1 s on one core."""
    features = torch.tensor(np.asarray(x, dtype=np.float32))
    model.mean.copy_(features.mean(0))
    model.scale.copy_(features.std(0).clamp_min(1e-6))
    if classification:
        target = torch.tensor(np.asarray(y, dtype=np.int64))
        loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        values = torch.tensor(np.asarray(y, dtype=np.float32)).unsqueeze(1)
        model.out_mean.copy_(values.mean(0))
        model.out_scale.copy_(values.std(0))
        target = (values - model.out_mean) / model.out_scale
        loss_fn = nn.MSELoss()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3 if classification else 1e-2)
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model.net((features - model.mean) / model.scale), target).backward()
            optimizer.step()
    return model.eval()


def save_artifacts(model: nn.Module, n_features: int, folder: Path, stem: str) -> dict[str, Path]:
    """Write ``model`` in every form the torch backend reads; returns the paths by kind.

    ``safetensors`` and ``state_dict`` (a weights-only ``.pt``) hold the state dict, ``pt2`` a
    ``torch.export`` program with a dynamic batch dimension, ``pickled`` the whole module
    (``torch.save(model)``, which needs full unpickling to load).
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "safetensors": folder / f"{stem}.safetensors",
        "state_dict": folder / f"{stem}.pt",
        "pt2": folder / f"{stem}.pt2",
        "pickled": folder / f"{stem}-full.pt",
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(paths["safetensors"]))
    torch.save(state, paths["state_dict"])
    torch.save(model, paths["pickled"])
    example = torch.zeros(4, n_features)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, paths["pt2"])
    return paths


def write_csv(table: Table, frame: pd.DataFrame, path: Path) -> Path:
    """The feature columns and ``target`` of ``frame`` as CSV (what a gate's data.source reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[[*table.features, "target"]].to_csv(path, index=False)
    return path
