"""Artifact files in the report: paths as the user sees them, Hub-cache blobs hashed from their names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelcheck.report import files


def hub_cache(tmp_path: Path, content: bytes, blob_name: str | None = None) -> Path:
    """A snapshot file linking to a blob named by its sha256, as huggingface_hub lays out its cache."""
    repo = tmp_path / "hub" / "models--org--name"
    digest = blob_name or hashlib.sha256(content).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(content)
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs") / digest)
    return snapshot


def test_a_hub_cache_blob_is_named_by_its_sha256_and_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = hub_cache(tmp_path, b"weights" * 1000)
    reads: list[Path] = []
    monkeypatch.setattr(files, "sha256_file", lambda path: reads.append(Path(path)) or "x" * 64)
    (record,) = files.file_records(snapshot, [snapshot / "model.safetensors"])
    assert record == {
        "path": "model.safetensors",
        "sha256": hashlib.sha256(b"weights" * 1000).hexdigest(),
        "size": 7000,
    }
    assert reads == []


def test_a_file_outside_the_hub_cache_layout_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (record,) = files.file_records(folder, [folder / "config.json"])
    assert record["sha256"] == hashlib.sha256(b"{}").hexdigest() and record["path"] == "config.json"
    blobs = tmp_path / "blobs"  # a folder named blobs that is not a Hub cache repo: read, not trusted by name
    blobs.mkdir()
    fake = blobs / ("0" * 64)
    fake.write_bytes(b"data")
    assert files.cached_sha256(fake) == hashlib.sha256(b"data").hexdigest()
