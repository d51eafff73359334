"""Shared fixtures: an isolated, offline Hugging Face environment and the tiny sentiment models."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sentiment"

# huggingface_hub and datasets read these once, at import: set them before any test module imports them.
_HF_ENV = {
    "HF_HOME": tempfile.mkdtemp(prefix="modelcheck-tests-hf-"),
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
os.environ.update(_HF_ENV)
atexit.register(shutil.rmtree, _HF_ENV["HF_HOME"], ignore_errors=True)


@pytest.fixture(autouse=True)
def offline_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test talks to the real Hub or shares the user's HF cache (restored if a test changes them)."""
    for name, value in _HF_ENV.items():
        monkeypatch.setenv(name, value)


def _example_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sentiment_build", EXAMPLE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sentiment_build() -> ModuleType:
    """``examples/sentiment/build.py`` as a module (build_model, write_test_data)."""
    return _example_builder()


@pytest.fixture(scope="session")
def sentiment_model(tmp_path_factory: pytest.TempPathFactory, sentiment_build: ModuleType) -> Path:
    """The example model, trained (deterministically, ~1 s) once per test session."""
    path: Path = sentiment_build.build_model(tmp_path_factory.mktemp("models") / "sentiment", trained=True)
    return path


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory, sentiment_build: ModuleType) -> Path:
    """The same architecture, untrained: it must fail a 0.9 accuracy gate."""
    path: Path = sentiment_build.build_model(tmp_path_factory.mktemp("models") / "untrained", trained=False)
    return path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Two shared cores: one torch thread is ~10x faster for the tiny models than two competing ones."""
    from modelcheck.models.hardware import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session", autouse=True)
def matplotlib_imported_once() -> None:
    """Import what the HTML report draws with before any in-process pytester run (every worker, first).

    A pytester run drops the modules first imported inside it; matplotlib re-imported in part then mixes
    two copies of its classes ("Invalid arguments to set_clip_path", "Single argument to subplot").
    """
    with contextlib.suppress(ImportError):
        import matplotlib.backends.backend_svg
        import matplotlib.figure  # noqa: F401


@pytest.fixture(scope="session")
def frameworks_imported_once() -> None:
    """Import the frameworks before any in-process pytester run.

    pytester's in-process runs drop the modules first imported inside them; pyarrow (under datasets)
    cannot be imported twice, and re-importing torch's ONNX exporter after such a run aborts the process.
    """
    import datasets  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch.onnx.utils  # noqa: F401
    import transformers.audio_utils  # noqa: F401  (imports soxr where librosa is installed: it aborts imported twice)

    _export_once()


def _export_once() -> None:
    """One tiny export with the current (dynamo) exporter, so everything it imports is imported now.

    Its first import registers artifacts in process-wide tables (torch's mega-cache); imported again
    after a pytester run dropped it, it fails with "already registered".
    """
    import io
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), io.BytesIO(), dynamo=True, verbose=False)


#: Debian's chromium (.ci/run installs it): the browser the HTML report, the docs site and Mermaid are tested in.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (never ``playwright install``, which downloads a browser); one per
    worker: two of Playwright's sync drivers cannot run in one process at once."""
    if not CHROMIUM.is_file():
        pytest.skip("no /usr/bin/chromium: apt-get install chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()
