"""Fixtures and markers for hand-written tests, through pytester, with the real tiny sentiment models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelcheck.models.hardware import available_devices, resolve_device

pytestmark = pytest.mark.usefixtures("frameworks_imported_once")

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"
HAS_CUDA = any(d.startswith("cuda") for d in available_devices())

# The README's example test file, as users write it.
USER_TESTS = """
import pytest

MODEL = "models/sentiment"           # relative to rootdir
DATA = "data/sentiment_test.csv"


@pytest.fixture(scope="module")
def model(modelcheck_load):
    return modelcheck_load(MODEL, task="text-classification")


@pytest.fixture(scope="module")
def rows(modelcheck_dataset):
    return modelcheck_dataset(DATA, input="text", label="label", limit=2000)


def test_quality(model, rows, modelcheck_evaluate):
    result = modelcheck_evaluate(model, rows, metrics=["accuracy", {"metric": "f1", "average": "macro"}])
    assert set(result.metrics) == {"accuracy", "f1"} and result.n == len(rows)
    result.assert_metric("accuracy", min=0.90)
    result.assert_metric("f1", average="macro", min=0.88)
    result.assert_metric("accuracy", min=0.85, slice_by="language", min_samples=50)


def test_fast_and_small_enough(model, rows, modelcheck_latency, modelcheck_memory):
    modelcheck_latency(model, rows, batch_size=1).assert_max(max_ms=40)   # p95, on its 95% interval
    modelcheck_memory(model, rows).assert_max(max_mb=600)


def test_runs_on_the_best_device(model, modelcheck_device):
    assert model.device == modelcheck_device


@pytest.mark.modelcheck_device("cuda")
def test_half_precision_on_gpu(modelcheck_load, rows, modelcheck_evaluate):
    fp16 = modelcheck_load(MODEL, device="cuda", dtype="float16")
    modelcheck_evaluate(fp16, rows).assert_metric("accuracy", min=0.90)


@pytest.mark.modelcheck_backend("onnx")
def test_only_where_onnxruntime_is_installed():
    pass
"""

COUNT_LOADS = """
import json
from modelcheck.pytest_plugin.state import models_key

def pytest_sessionfinish(session):
    cache = session.config.stash[models_key]
    with open("cache.json", "w") as f:
        json.dump({"loads": cache.loads, "evictions": cache.evictions}, f)
"""


@pytest.fixture()
def project(pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path) -> pytest.Pytester:
    """models/sentiment, models/untrained and data/sentiment_test.csv, as a user project has them."""
    shutil.copytree(sentiment_model, pytester.path / "models" / "sentiment")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, pytester.path / "data" / "sentiment_test.csv")
    return pytester


def cache_stats(pytester: pytest.Pytester) -> dict[str, int]:
    stats: dict[str, int] = json.loads((pytester.path / "cache.json").read_text())
    return stats


@pytest.mark.e2e
def test_fixtures_work_without_the_modelcheck_flag(project: pytest.Pytester) -> None:
    project.makepyfile(test_model=USER_TESTS)
    result = project.runpytest("--strict-markers", "-rs")
    import importlib.util

    has_onnx = importlib.util.find_spec("onnxruntime") is not None
    result.assert_outcomes(passed=3 + HAS_CUDA + has_onnx, skipped=(not HAS_CUDA) + (not has_onnx))
    if not HAS_CUDA:
        result.stdout.fnmatch_lines(["SKIPPED ?1? test_model.py:*: device 'cuda' is not available on this machine*"])


@pytest.mark.e2e
def test_failed_assertion_reads_as_a_measurement(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_model="""
        def test_accuracy(modelcheck_load, modelcheck_dataset, modelcheck_evaluate):
            model = modelcheck_load("models/untrained")
            rows = modelcheck_dataset("data/sentiment_test.csv", input="text", label="label")
            modelcheck_evaluate(model, rows).assert_metric("accuracy", min=0.9)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "accuracy 0.5 < min 0.9 (n=400)",
            "FAILED test_model.py::test_accuracy - Failed: accuracy 0.5 < min 0.9 (n=400)",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*modelcheck/*.py:*")


@pytest.mark.e2e
def test_one_load_per_session_shared_with_gate_items(project: pytest.Pytester) -> None:
    (project.path / "gates").mkdir()
    (project.path / "gates" / "sentiment.yaml").write_text(
        "version: 1\nmodel: {source: ../models/sentiment}\n"
        "data: {source: ../data/sentiment_test.csv, input: text, label: label}\n"
        "checks: [{name: accuracy, metric: accuracy, min: 0.9}]\n"
    )
    body = """
    def test_{0}(modelcheck_load, modelcheck_dataset, modelcheck_evaluate):
        model = modelcheck_load("models/sentiment", batch_size={1})
        assert model is modelcheck_load("./models/sentiment/", id="again")
        rows = modelcheck_dataset("data/sentiment_test.csv", "text", "label")
        rows["text"] = ""  # a copy: the next test gets the data unchanged
        rows = modelcheck_dataset("data/sentiment_test.csv", "text", "label")
        modelcheck_evaluate(model, rows).assert_metric("accuracy", min=0.9)
    """
    project.makepyfile(test_a=body.format("a", 8), test_b=body.format("b", 64))
    project.makeconftest(COUNT_LOADS)
    project.runpytest("--modelcheck").assert_outcomes(passed=3)
    assert cache_stats(project) == {"loads": 1, "evictions": 0}


@pytest.mark.e2e
def test_loaded_models_cap_closes_the_least_recently_used(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmodelcheck_max_loaded_models = 1\n")
    project.makeconftest(COUNT_LOADS)
    project.makepyfile(
        test_cap="""
        import pytest
        from modelcheck.errors import BackendError

        def test_cap(modelcheck_load):
            good = modelcheck_load("models/sentiment")
            modelcheck_load("models/untrained")
            with pytest.raises(BackendError, match="was closed"):
                good.predict(["fine"], batch_size=1)
            again = modelcheck_load("models/sentiment")
            assert again is not good and len(again.predict(["fine"], batch_size=1)) == 1
        """
    )
    project.runpytest().assert_outcomes(passed=1)
    assert cache_stats(project) == {"loads": 3, "evictions": 2}


def test_bad_max_loaded_models_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelcheck_max_loaded_models = many\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*modelcheck_max_loaded_models = 'many' is not a whole number >= 0*"])


@pytest.mark.e2e
def test_load_and_data_errors_fail_the_test_with_the_reason(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_errors="""
        import pytest

        def test_missing_model(modelcheck_load):
            modelcheck_load("./models/missing")

        def test_missing_column(modelcheck_dataset):
            modelcheck_dataset("data/sentiment_test.csv", input="review")

        def test_unknown_option(modelcheck_load):
            with pytest.raises(TypeError, match="unknown model option.s. batchsize; model options are: .*batch_size"):
                modelcheck_load("models/sentiment", batchsize=8)

        def test_unknown_metric(modelcheck_load, modelcheck_dataset, modelcheck_evaluate):
            rows = modelcheck_dataset("data/sentiment_test.csv", input="text", label="label", limit=8)
            with pytest.raises(ValueError, match="metric 'mae' is not one of task 'text-classification'"):
                modelcheck_evaluate(modelcheck_load("models/sentiment"), rows, metrics=["mae"])

        def test_plain_frame_names_its_columns(modelcheck_load, modelcheck_evaluate):
            import pandas as pd

            rows = pd.DataFrame({"review": ["good", "bad"], "y": ["positive", "negative"]})
            result = modelcheck_evaluate(modelcheck_load("models/sentiment"), rows, input="review", label="y")
            assert result.metrics["accuracy"] == 1.0
            modelcheck_evaluate(modelcheck_load("models/sentiment"), rows, input="text", label="y")
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_missing_model _*",
            "model folder not found: */models/missing (model.source); build or download the model there*",
            "*_ test_missing_column _*",
            "column 'review' (data.input) not found in */sentiment_test.csv; its columns are: text, label, language",
            "*_ test_plain_frame_names_its_columns _*",
            "column 'text' not found in the frame; its columns are: review, y",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_device_fixture_and_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_device="""
        def test_device(modelcheck_device):
            print("DEVICE", modelcheck_device)
        """
    )
    pytester.runpytest("-s").stdout.fnmatch_lines([f"*DEVICE {resolve_device('auto')}"])
    pytester.runpytest("-s", "--modelcheck-device", "CPU").stdout.fnmatch_lines(["*DEVICE cpu"])
    result = pytester.runpytest("-rs", "--modelcheck-device", "cuda:63")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *device 'cuda:63' is not available on this machine*"])


def test_markers_skip_and_check_their_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_markers="""
        import pytest

        @pytest.mark.modelcheck_device("cpu")
        def test_cpu():
            pass

        @pytest.mark.modelcheck_device("cuda:63")
        def test_absent_gpu():
            pass

        @pytest.mark.modelcheck_device("gpu")
        def test_bad_device():
            pass

        @pytest.mark.modelcheck_device()
        def test_no_device():
            pass

        @pytest.mark.modelcheck_backend("transformers")
        def test_transformers():
            pass

        @pytest.mark.modelcheck_backend("nope")
        def test_unknown_backend():
            pass

        @pytest.mark.modelcheck_backend(name="onnx")
        def test_keyword_backend():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-rs")
    result.assert_outcomes(passed=2, skipped=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad_device*",
            "@pytest.mark.modelcheck_device 'gpu' is not a device; use auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps",
            "*ERROR at setup of test_no_device*",
            '@pytest.mark.modelcheck_device takes one device name (*), e.g. *modelcheck_device("cuda"); got ()',
            "*ERROR at setup of test_keyword_backend*",
            "@pytest.mark.modelcheck_backend takes one or more backend names, e.g. *; got (name='onnx')",
            "SKIPPED ?1? test_markers.py:7: device 'cuda:63' is not available on this machine*",
            "SKIPPED ?1? test_markers.py:23: backend 'nope' is not installed (installed: *transformers); "
            "install the package that provides it",
        ]
    )
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.modelcheck_device(device): *", "@pytest.mark.modelcheck_backend(*"])


def test_backend_marker_needs_the_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.pytest_plugin import markers as fixtures

    real = fixtures.importlib.util.find_spec
    monkeypatch.setattr(fixtures.importlib.util, "find_spec", lambda name: None if name == "torch" else real(name))
    assert fixtures.backend_missing("torch") == (
        "backend 'torch' needs torch, which is not installed; pip install 'modelcheck[torch]'"
    )
    assert fixtures.backend_missing("transformers") is not None
    monkeypatch.undo()
    assert fixtures.backend_missing("transformers") is None
