"""Tiny torch models with planted costs, for latency and memory tests (``source: "planted_models:slow"``).

Each forward busy-waits ``extra_ms`` (not a sleep: the CPU is busy, as a slower model's would be) and holds
``extra_mb`` of touched memory while it runs; the network itself is a 4-feature, 2-class linear layer.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


class Planted(nn.Module):
    def __init__(self, extra_ms: float = 0.0, extra_mb: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.net = nn.Linear(4, 2)
        self.extra_ms, self.extra_mb = extra_ms, extra_mb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        held = np.ones(self.extra_mb * 2**20, dtype=np.uint8) if self.extra_mb else None
        end = time.perf_counter() + self.extra_ms / 1000
        while time.perf_counter() < end:
            pass
        del held
        out: torch.Tensor = self.net(x)
        return out


def fast() -> Planted:
    return Planted()


def slow() -> Planted:
    """About 4 ms slower per call than ``fast``."""
    return Planted(extra_ms=4)


def hungry() -> Planted:
    """Holds 200 MB during each forward."""
    return Planted(extra_mb=200)


def peckish() -> Planted:
    """Holds 50 MB during each forward."""
    return Planted(extra_mb=50)
