"""``--modelcheck-shard I/N``: a deterministic share of the gate files for each leg of a CI matrix.

The gate files a run would collect are sorted by their path relative to the rootdir and dealt out
round-robin: file ``k`` (0-based) goes to shard ``k % N + 1``. Every leg of the same command on the
same checkout sees the same files in the same order, so each gate file runs in exactly one shard.
Only gate files are sharded; other tests run on every leg. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @property
    def pair(self) -> tuple[int, int]:
        return (self.index, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: Most shards: well beyond any CI matrix (GitHub Actions allows 256 jobs per matrix).
MAX_SHARDS = 10_000


def parse_shard(value: str) -> Shard:
    """``"I/N"`` as a :class:`Shard`; argparse.ArgumentTypeError (a pytest usage error) otherwise."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", value)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a shard; write I/N, this leg's number I of N legs, e.g. 1/3 (I from 1 to N)"
        )
    index, count = int(match[1]), int(match[2])
    if not 1 <= count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"{value!r}: the number of shards N must be 1 to {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{value!r}: the shard number I must be 1 to {count} (I/N, counted from 1)")
    return Shard(index, count)


def shard_members(display_paths: Iterable[str], shard: Shard) -> set[str]:
    """The gate files (by their rootdir-relative path) that ``shard`` runs."""
    ordered = sorted(set(display_paths))
    return {path for position, path in enumerate(ordered) if position % shard.count == shard.index - 1}
