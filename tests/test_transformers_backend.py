"""The transformers backend against the real tiny sentiment model from examples/sentiment/build.py.

The trained and untrained models come from the session fixtures in conftest.py (built once per run);
the loaded models here are module-scoped. Only the ``e2e`` tests need the trained model (training
takes about two seconds); the others use the untrained one, built in milliseconds. Nothing touches
the network: Hub ids resolve against a fake Hugging Face cache in a temporary folder.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DataError, ModelLoadError
from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import LoadedModel, get_backend

REPO = Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")
if importlib.util.find_spec("transformers") is None:  # not imported here: it freezes huggingface_hub's env
    pytest.skip("transformers is not installed", allow_module_level=True)

from modelcheck_transformers import TransformersBackend  # noqa: E402


def spec(source: str | Path, **kwargs: Any) -> ModelSpec:
    return ModelSpec(id="sentiment", source=str(source), **kwargs)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory, sentiment_build: ModuleType) -> list[dict[str, str]]:
    path = sentiment_build.write_test_data(tmp_path_factory.mktemp("data") / "test.csv")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(sentiment_model: Path) -> Iterator[LoadedModel]:
    loaded = TransformersBackend().load(spec(sentiment_model, device="cpu"))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def untrained(untrained_model: Path) -> Iterator[LoadedModel]:
    loaded = TransformersBackend().load(spec(untrained_model, device="cpu"))
    yield loaded
    loaded.close()


def accuracy(model: LoadedModel, rows: list[dict[str, str]]) -> float:
    predicted = model.predict([r["text"] for r in rows], batch_size=32).labels
    return float(np.mean([model.label_names[p] == r["label"] for p, r in zip(predicted, rows, strict=True)]))


# -- behaviour of a loaded model ------------------------------------------------------------------


def test_write_test_data_is_deterministic_and_balanced(
    tmp_path: Path, sentiment_build: ModuleType, rows: list[dict[str, str]]
) -> None:
    again = sentiment_build.write_test_data(tmp_path / "again.csv")
    with again.open(newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == rows
    assert len(rows) == 400
    assert {r["label"] for r in rows} == {"negative", "positive"}
    assert {r["language"] for r in rows} == {"en", "de"}
    for language in ("en", "de"):
        labels = [r["label"] for r in rows if r["language"] == language]
        assert 0.4 < labels.count("positive") / len(labels) < 0.6
    assert all(5 <= len(r["text"].split()) <= 12 for r in rows)


def test_committed_example_data_matches_the_builder(tmp_path: Path, sentiment_build: ModuleType) -> None:
    fresh = sentiment_build.write_test_data(tmp_path / "test.csv")
    assert fresh.read_bytes() == (REPO / "examples" / "sentiment" / "test.csv").read_bytes()


@pytest.mark.e2e
def test_trained_model_is_accurate(trained: LoadedModel, rows: list[dict[str, str]]) -> None:
    assert accuracy(trained, rows) >= 0.97


@pytest.mark.e2e
def test_untrained_model_is_clearly_worse(
    trained: LoadedModel, untrained: LoadedModel, rows: list[dict[str, str]]
) -> None:
    assert accuracy(untrained, rows) <= 0.75
    assert accuracy(trained, rows) - accuracy(untrained, rows) >= 0.2


@pytest.mark.e2e
def test_build_is_deterministic(tmp_path: Path, sentiment_build: ModuleType, sentiment_model: Path) -> None:
    again = sentiment_build.build_model(tmp_path / "again", trained=True)
    assert (again / "model.safetensors").read_bytes() == (sentiment_model / "model.safetensors").read_bytes()


def test_loaded_model_shape(untrained: LoadedModel) -> None:
    assert isinstance(untrained, LoadedModel)
    assert untrained.label_names == ("negative", "positive")
    assert untrained.device == "cpu"


@pytest.mark.e2e
def test_predictions_come_back_in_input_order(trained: LoadedModel, rows: list[dict[str, str]]) -> None:
    # Lengths vary from 5 to 12 words and the batches are sorted by length, so a missed un-sort shows.
    texts = [r["text"] for r in rows[:60]]
    one_by_one = [int(trained.predict([t], batch_size=1).labels[0]) for t in texts]
    assert len(set(one_by_one)) == 2
    for batch_size in (1, 7, 64):
        predicted = trained.predict(texts, batch_size=batch_size).labels
        assert predicted.dtype.kind == "i"
        assert predicted.tolist() == one_by_one
    assert trained.predict(texts[::-1], batch_size=8).labels.tolist() == one_by_one[::-1]


@pytest.mark.e2e
def test_predict_accepts_any_sequence_and_truncates_long_texts(trained: LoadedModel) -> None:
    long_text = " ".join(["wonderful"] * 500)  # far beyond the 64 positions
    predicted = trained.predict((long_text, "the film was awful", ""), batch_size=2).labels
    assert predicted.tolist()[:2] == [1, 0]
    assert trained.predict([], batch_size=4).labels.shape == (0,)


@pytest.mark.parametrize("bad", [None, float("nan"), 3])
def test_non_text_input_names_the_row(untrained: LoadedModel, bad: object) -> None:
    with pytest.raises(DataError, match=r"data row 3 .*must be strings"):
        untrained.predict(["good", "bad", bad], batch_size=2)


def test_artifact_files_list_the_folder(untrained: LoadedModel, untrained_model: Path) -> None:
    files = untrained.artifact_files()
    assert files == sorted(files)
    assert all(f.is_absolute() and f.is_file() for f in files)
    names = {f.name for f in files}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert set(files) == {p for p in untrained_model.rglob("*") if p.is_file()}


def test_close_releases_the_model(untrained_model: Path) -> None:
    loaded = TransformersBackend().load(spec(untrained_model, device="auto"))
    assert loaded.device in ("cpu", "mps") or loaded.device.startswith("cuda:")
    loaded.close()
    with pytest.raises(BackendError, match="closed"):
        loaded.predict(["good"], batch_size=1)


# -- Hub ids against a local cache ----------------------------------------------------------------


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, offline Hugging Face cache (patched where huggingface_hub reads it at call time)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_loads_from_the_cache_and_lists_its_snapshot(
    hub_cache: Path, untrained_model: Path, untrained: LoadedModel
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub_cache / "models--modelcheck-test--sentiment"
    shutil.copytree(untrained_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "v1").write_text(commit)

    loaded = TransformersBackend().load(spec("modelcheck-test/sentiment@v1", device="cpu"))
    try:
        assert loaded.label_names == ("negative", "positive")
        texts = ["the film was awful", "a wonderful story", "sehr gut"]
        assert (
            loaded.predict(texts, batch_size=2).labels.tolist()
            == untrained.predict(texts, batch_size=2).labels.tolist()
        )
        files = loaded.artifact_files()
        assert {f.name for f in files} >= {"config.json", "model.safetensors"}
        assert all(f.parent.name == commit for f in files)
    finally:
        loaded.close()


def test_hub_id_not_cached_offline_says_how_to_get_it(hub_cache: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"acme/absent@v2 .*HF_HUB_OFFLINE.*hf download acme/absent --revision v2"):
        TransformersBackend().load(spec("acme/absent@v2", device="cpu"))


# -- errors ---------------------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(ModelLoadError, match=r"model folder not found: .*nowhere/model \(model\.source\)"):
        TransformersBackend().load(spec(missing))


def test_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match=rf"{tmp_path} has no config\.json.*save_pretrained"):
        TransformersBackend().load(spec(tmp_path))


def test_file_instead_of_folder(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match=r"model\.bin is a file"):
        TransformersBackend().load(spec(file))


def test_folder_without_weights_is_a_load_error(tmp_path: Path, untrained_model: Path) -> None:
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(untrained_model / name, tmp_path / name)
    with pytest.raises(ModelLoadError, match=rf"cannot load the transformers model in {tmp_path}"):
        TransformersBackend().load(spec(tmp_path, device="cpu"))


def test_unsupported_task(untrained_model: Path) -> None:
    with pytest.raises(BackendError, match=r"task 'tabular-regression'.*supported tasks: text-classification, "):
        TransformersBackend().load(spec(untrained_model, task="tabular-regression"))


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_absent_device(untrained_model: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"device 'cuda:7' is not available on this machine \(available: cpu"):
        TransformersBackend().load(spec(untrained_model, device="cuda:7"))


def test_unknown_device_name(untrained_model: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"device 'tpu' .*not a device name"):
        TransformersBackend().load(spec(untrained_model, device="tpu"))


# -- packaging ------------------------------------------------------------------------------------


def test_registered_as_entry_point() -> None:
    backend = get_backend("transformers")
    assert isinstance(backend, TransformersBackend)
    assert backend.name == "transformers"


def test_import_does_not_import_the_framework() -> None:
    code = (
        "import sys, modelcheck_transformers; "
        "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    path = os.pathsep.join([str(REPO / "plugins"), str(REPO), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
