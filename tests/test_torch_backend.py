"""The torch backend against real tiny MLPs trained on scikit-learn's bundled wine and diabetes data.

``tabular_models`` (beside this file) builds, trains (about a second for both, once per module) and
saves the models as safetensors, a weights-only ``.pt`` state dict, a ``torch.export`` ``.pt2`` and a
fully pickled module. Tests that need the trained models or run pytest through pytester are ``e2e``;
the error paths use untrained models built in milliseconds. Nothing touches the network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.errors import BackendError, DataError, ModelLoadError
from modelcheck.gatefile import ModelSpec
from modelcheck.models.backends import LoadedModel, get_backend

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import tabular_models as tm  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-relative import mode)
from modelcheck_torch import SUPPORTED_TASKS, TorchBackend, TorchModel  # noqa: E402

TABULAR_MODELS = Path(tm.__file__).resolve()


def spec(source: str | Path, task: str = "tabular-classification", **kwargs: Any) -> ModelSpec:
    return ModelSpec(id="tabular", source=str(source), backend="torch", task=task, device="cpu", **kwargs)


def load(source: str | Path, task: str = "tabular-classification", **kwargs: Any) -> TorchModel:
    return TorchBackend().load(spec(source, task, **kwargs))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Trained:
    """A trained model, its data and its saved forms (keys of ``tabular_models.save_artifacts``)."""

    model: Any
    table: tm.Table
    paths: dict[str, Path]

    @property
    def x_test(self) -> np.ndarray:
        return self.table.x(self.table.test)

    @property
    def y_test(self) -> np.ndarray:
        return self.table.y(self.table.test)


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    table = tm.load_table("wine")
    model = tm.train(tm.build_wine(), table.x(table.train), table.y(table.train), classification=True)
    return Trained(model, table, tm.save_artifacts(model, 13, tmp_path_factory.mktemp("wine"), "wine"))


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    table = tm.load_table("diabetes")
    model = tm.train(tm.build_diabetes(), table.x(table.train), table.y(table.train), classification=False)
    return Trained(model, table, tm.save_artifacts(model, 10, tmp_path_factory.mktemp("diabetes"), "diabetes"))


@pytest.fixture()
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write an importable module ``name`` with ``body``; returns its name (forgotten after the test)."""

    def write(name: str, body: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    yield write
    for name in [p.stem for p in tmp_path.glob("*.py")]:
        sys.modules.pop(name, None)


def rows(matrix: np.ndarray) -> list[np.ndarray]:
    """What the runner hands a tabular model: one 1-D float32 array per data row."""
    return list(np.asarray(matrix, dtype=np.float32))


# -- importing and registration -------------------------------------------------------------------


def test_import_does_not_import_torch(tmp_path: Path) -> None:
    code = "import sys, modelcheck_torch\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_registered_as_the_torch_backend() -> None:
    assert isinstance(get_backend("torch"), TorchBackend)


def test_unsupported_task_names_the_supported_ones() -> None:
    with pytest.raises(BackendError, match=r"does not support task 'text-classification'.*tabular-classification"):
        load("tabular_models:build_wine", task="text-classification")
    assert SUPPORTED_TASKS == ("tabular-classification", "tabular-regression")


# -- sources that cannot be loaded ----------------------------------------------------------------


def test_unsupported_sources_list_the_supported_kinds(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "weights.safetensors").write_bytes(b"{}")
    cases = {
        str(tmp_path): "it is a folder",
        str(tmp_path / "model.onnx"): "it has suffix '.onnx'",
        str(tmp_path / "weights.safetensors"): 'holds only weights: use source: "package.module:callable"',
        "org/name": "neither a file nor",
        "tabular_models:": "not a valid",
    }
    for source, reason in cases.items():
        with pytest.raises(ModelLoadError) as caught:
            load(source)
        message = str(caught.value)
        assert reason in message and "Supported sources:" in message, message
        assert ".pt2 file written by torch.export.save" in message and "allow_pickle: true" in message


def test_missing_module_names_the_module() -> None:
    with pytest.raises(
        ModelLoadError, match=r"cannot import module 'no_such_models'.*no_such_models:build.*pythonpath"
    ):
        load("no_such_models:build")


def test_missing_attribute_names_module_and_attribute() -> None:
    with pytest.raises(ModelLoadError, match=r"module 'tabular_models' .* has no attribute 'build_wnie'.*'build_wine'"):
        load("tabular_models:build_wnie")


def test_module_that_fails_to_import(user_module: Callable[[str, str], str]) -> None:
    name = user_module("broken_models", "import no_such_dependency_xyz\n")
    with pytest.raises(ModelLoadError, match=r"importing module 'broken_models'.*failed.*no_such_dependency_xyz"):
        load(f"{name}:build")


def test_callable_returning_a_non_module_names_the_type(user_module: Callable[[str, str], str]) -> None:
    name = user_module("dict_models", "def build():\n    return {'weights': [1, 2]}\n")
    with pytest.raises(
        ModelLoadError, match=r"dict_models:build \(model.source\) returned a dict .*not a torch.nn.Module"
    ):
        load(f"{name}:build")
    name = user_module("const_models", "build = 3\n")
    with pytest.raises(ModelLoadError, match=r"is a int, not a callable"):
        load(f"{name}:build")


def test_callable_that_raises(user_module: Callable[[str, str], str]) -> None:
    name = user_module("raising_models", "def build():\n    raise ValueError('no config')\n")
    with pytest.raises(ModelLoadError, match=r"calling raising_models:build .*failed: ValueError: no config"):
        load(f"{name}:build")


def test_artifact_files_hash_the_code(user_module: Callable[[str, str], str]) -> None:
    """The module named in the source, and the file that defines the callable and the model class."""
    name = user_module("reexported_models", "from tabular_models import build_wine as build\n")
    model = load(f"{name}:build")
    module_file = Path(sys.modules[name].__file__ or "").resolve()
    assert model.artifact_files() == [module_file, TABULAR_MODELS]


# -- weights --------------------------------------------------------------------------------------


def test_weights_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model.weights file not found: .*missing.safetensors"):
        load("tabular_models:build_wine", weights=str(tmp_path / "missing.safetensors"))
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"model.weights '.*w.bin' has suffix '.bin'.*\.safetensors, \.pt, \.pth"):
        load("tabular_models:build_wine", weights=str(tmp_path / "w.bin"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(
        ModelLoadError, match=r"junk.pt \(model.weights\): it is not a checkpoint written by torch.save"
    ):
        load("tabular_models:build_wine", weights=str(tmp_path / "junk.pt"))


def test_weights_that_do_not_fit_are_reported(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tm.build_wine().state_dict().items()}
    save_file(state, str(tmp_path / "wine.safetensors"))
    with pytest.raises(
        ModelLoadError,
        match=r"wine.safetensors .*:build_diabetes: size mismatch for mean: checkpoint \[13\] vs module \[10\]",
    ):
        load("tabular_models:build_diabetes", task="tabular-regression", weights=str(tmp_path / "wine.safetensors"))

    renamed = {("extra.bias" if k == "net.2.bias" else k): v for k, v in state.items()}
    save_file(renamed, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(ModelLoadError, match=r"missing keys: net.2.bias; unexpected keys: extra.bias"):
        load("tabular_models:build_wine", weights=str(tmp_path / "renamed.safetensors"))

    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "ckpt.pt")
    with pytest.raises(ModelLoadError, match=r"holds a dict that is not a state dict \(keys: 'epoch', 'optimizer'\)"):
        load("tabular_models:build_wine", weights=str(tmp_path / "ckpt.pt"))


def test_nested_state_dict_checkpoint_loads(tmp_path: Path) -> None:
    model = tm.build_mlp(13, 3, hidden=32)
    with torch.no_grad():
        model.net[2].bias.fill_(5.0)
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, tmp_path / "ckpt.pt")
    loaded = load("tabular_models:build_wine", weights=str(tmp_path / "ckpt.pt"))
    assert torch.equal(loaded._network.net[2].bias, torch.full((3,), 5.0))


def test_weights_with_a_file_source_are_refused(tmp_path: Path) -> None:
    torch.save(tm.build_wine().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match=r'only used with a "module:callable" source'):
        load(tmp_path / "model.pt2", weights=str(tmp_path / "w.pt"))


def test_state_dict_as_source_is_explained(tmp_path: Path) -> None:
    torch.save(tm.build_wine().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelLoadError, match=r"holds a OrderedDict .*not a whole module.*weights: sd.pt"):
        load(tmp_path / "sd.pt")


# -- labels ---------------------------------------------------------------------------------------


def test_label_names_default_to_class_ids() -> None:
    model = load("tabular_models:build_wine")
    assert model.label_names == ("0", "1", "2")
    assert load("tabular_models:build_diabetes", task="tabular-regression").label_names == ()


def test_labels_from_the_gate() -> None:
    assert load("tabular_models:build_wine", labels=("a", "b", "c")).label_names == ("a", "b", "c")


def test_wrong_label_count_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match=r"2 labels \(a, b\) from model.labels in the gate, .* outputs 3 logits"):
        load("tabular_models:build_wine", labels=("a", "b"))


def test_labels_from_module_attributes(user_module: Callable[[str, str], str]) -> None:
    name = user_module(
        "labelled_models",
        """
        import tabular_models

        def with_classes():
            model = tabular_models.build_wine()
            model.classes_ = ["barolo", "grignolino", "barbera"]
            return model

        def with_id2label():
            model = tabular_models.build_wine()
            model.id2label = {"2": "barbera", "0": "barolo", "1": "grignolino"}
            return model

        def with_two_labels():
            model = tabular_models.build_wine()
            model.classes_ = ["red", "white"]
            return model
        """,
    )
    expected = ("barolo", "grignolino", "barbera")
    assert load(f"{name}:with_classes").label_names == expected
    assert load(f"{name}:with_id2label").label_names == expected
    assert load(f"{name}:with_classes", labels=("x", "y", "z")).label_names == ("x", "y", "z")  # the gate wins
    with pytest.raises(BackendError, match=r"2 labels \(red, white\) from the model's id2label/classes_ attribute"):
        load(f"{name}:with_two_labels")


def test_class_count_without_a_readable_input_width(user_module: Callable[[str, str], str]) -> None:
    name = user_module(
        "opaque_models",
        """
        import torch

        class Opaque(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.ones(4, 3))

            def forward(self, x):
                return x @ self.weight

        def build():
            return Opaque()
        """,
    )
    with pytest.raises(BackendError, match=r"cannot tell how many classes .* model.labels: \[name0, name1, ...\]"):
        load(f"{name}:build")
    model = load(f"{name}:build", labels=("a", "b", "c"))
    outputs = model.predict(rows(np.ones((5, 4))), batch_size=2)
    assert outputs.scores is not None and outputs.scores.shape == (5, 3)
    mismatch = load(f"{name}:build", labels=("a", "b"))  # width unknown at load time: predict checks it
    with pytest.raises(BackendError, match=r"2 labels \(a, b\) .* outputs 3 logits"):
        mismatch.predict(rows(np.ones((5, 4))), batch_size=2)


# -- predicting -----------------------------------------------------------------------------------


def test_inputs_that_do_not_fit() -> None:
    model = load("tabular_models:build_wine")
    with pytest.raises(DataError, match=r"data row 2 \(counting from 1.*?\) has 12 features, the first row has 13"):
        model.predict([np.zeros(13, np.float32), np.zeros(12, np.float32)], batch_size=4)
    with pytest.raises(DataError, match=r"input at data row 1 \(counting from 1.*?\) is a str .*1-D numeric arrays"):
        model.predict(["text"], batch_size=4)
    with pytest.raises(BackendError, match=r"failed on a batch of shape \(2, 5\).*data.input lists the features"):
        model.predict(rows(np.zeros((2, 5))), batch_size=4)
    empty = model.predict([], batch_size=4)
    assert len(empty) == 0 and empty.scores is not None and empty.scores.shape == (0, 3)


def test_outputs_of_wrong_shape(user_module: Callable[[str, str], str]) -> None:
    name = user_module(
        "shaped_models",
        """
        import torch

        def two_columns():
            return torch.nn.Linear(4, 2)

        def one_column():
            return torch.nn.Linear(4, 1)
        """,
    )
    with pytest.raises(BackendError, match=r"tabular-regression needs one value per row.*returned shape \(3, 2\)"):
        load(f"{name}:two_columns", task="tabular-regression").predict(rows(np.ones((3, 4))), batch_size=8)
    values = load(f"{name}:one_column", task="tabular-regression").predict(rows(np.ones((3, 4))), batch_size=2).values
    assert values is not None and values.shape == (3,) and values.dtype == np.float64


def test_threads_are_set_during_predict_and_restored(user_module: Callable[[str, str], str]) -> None:
    name = user_module(
        "thread_models",
        """
        import torch

        SEEN = []

        class Recorder(torch.nn.Linear):
            def forward(self, x):
                SEEN.append(torch.get_num_threads())
                return super().forward(x)

        def build():
            return Recorder(4, 2)
        """,
    )
    model = load(f"{name}:build", threads=2)
    seen = sys.modules[name].SEEN
    seen.clear()
    model.predict(rows(np.ones((3, 4))), batch_size=2)
    assert seen == [2, 2]
    assert torch.get_num_threads() == 1


def test_close_releases_the_model() -> None:
    model = load("tabular_models:build_wine")
    model.close()
    with pytest.raises(BackendError, match="was closed"):
        model.predict(rows(np.zeros((1, 13))), batch_size=1)


@pytest.mark.e2e
def test_trained_classifier_with_safetensors_weights(wine: Trained) -> None:
    model = load("tabular_models:build_wine", weights=str(wine.paths["safetensors"]), batch_size=16)
    assert isinstance(model, LoadedModel)
    assert model.device == "cpu" and model.label_names == ("0", "1", "2")
    outputs = model.predict(rows(wine.x_test), batch_size=16)
    assert outputs.labels is not None and outputs.scores is not None
    assert outputs.labels.dtype == np.int64 and outputs.scores.shape == (len(wine.x_test), 3)
    np.testing.assert_allclose(outputs.scores.sum(axis=1), 1.0, rtol=1e-5)
    assert (outputs.labels == wine.y_test).mean() >= 0.9
    untrained = load("tabular_models:build_wine").predict(rows(wine.x_test), batch_size=16)
    assert untrained.labels is not None and (untrained.labels == wine.y_test).mean() < 0.9
    assert model.artifact_files() == [wine.paths["safetensors"], TABULAR_MODELS]


@pytest.mark.e2e
def test_weights_only_pt_state_dict_loads_without_allow_pickle(wine: Trained) -> None:
    reference = load("tabular_models:build_wine", weights=str(wine.paths["safetensors"]))
    model = load("tabular_models:build_wine", weights=str(wine.paths["state_dict"]))
    expected = reference.predict(rows(wine.x_test), batch_size=32).scores
    np.testing.assert_array_equal(model.predict(rows(wine.x_test), batch_size=32).scores, expected)
    assert model.artifact_files() == [wine.paths["state_dict"], TABULAR_MODELS]


@pytest.mark.e2e
def test_exported_program_predicts_like_the_module(wine: Trained) -> None:
    model = load(wine.paths["pt2"])
    assert model.label_names == ("0", "1", "2")  # class count from the program's input shape
    n = len(wine.x_test)
    outputs = model.predict(rows(wine.x_test), batch_size=n - 1)  # a last batch of one row
    with torch.inference_mode():
        expected = wine.model(torch.from_numpy(wine.x_test)).softmax(-1).numpy()
    assert outputs.scores is not None
    np.testing.assert_allclose(outputs.scores, expected, atol=1e-6)
    assert model.artifact_files() == [wine.paths["pt2"]]


@pytest.mark.e2e
def test_pickled_module_is_refused_without_allow_pickle(wine: Trained) -> None:
    why = r"refusing to unpickle .*wine-full.pt \(model.{role}\): it needs full unpickling \(it references .*"
    how = r"tabular_models.TabularMLP.*arbitrary code. If you trust the file, set allow_pickle: true in the gate"
    with pytest.raises(ModelLoadError, match=why.format(role="source") + how):
        load(wine.paths["pickled"])
    with pytest.raises(ModelLoadError, match=why.format(role="weights") + how):
        load("tabular_models:build_wine", weights=str(wine.paths["pickled"]))


@pytest.mark.e2e
def test_pickled_module_is_accepted_with_allow_pickle(wine: Trained) -> None:
    expected = load(wine.paths["pt2"]).predict(rows(wine.x_test), batch_size=32).scores
    as_source = load(wine.paths["pickled"], allow_pickle=True)
    np.testing.assert_allclose(as_source.predict(rows(wine.x_test), batch_size=32).scores, expected, atol=1e-6)
    assert as_source.artifact_files() == [wine.paths["pickled"], TABULAR_MODELS]
    # a pickled module as weights is the model itself: the callable (here another architecture) is not called
    as_weights = load("tabular_models:build_diabetes", allow_pickle=True, weights=str(wine.paths["pickled"]))
    np.testing.assert_allclose(as_weights.predict(rows(wine.x_test), batch_size=32).scores, expected, atol=1e-6)


def test_module_file_readable_weights_only_needs_no_allow_pickle(tmp_path: Path) -> None:
    """A .pt source that torch.load(weights_only=True) can read (here: its class is allowlisted) is accepted."""
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(4, 3), path)
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        load(path)
    with torch.serialization.safe_globals([torch.nn.Linear]):
        model = load(path)
    assert model.label_names == ("0", "1", "2")
    assert model.artifact_files() == [path]


@pytest.mark.e2e
def test_regressor_and_dtype(diabetes: Trained, wine: Trained) -> None:
    model = load("tabular_models:build_diabetes", task="tabular-regression", weights=str(diabetes.paths["state_dict"]))
    values = model.predict(rows(diabetes.x_test), batch_size=50).values
    assert values is not None and values.shape == (len(diabetes.x_test),) and values.dtype == np.float64
    assert np.corrcoef(values, diabetes.y_test)[0, 1] > 0.6

    half = load("tabular_models:build_wine", weights=str(wine.paths["safetensors"]), dtype="bfloat16")
    outputs = half.predict(rows(wine.x_test), batch_size=32)
    assert half._network.net[0].weight.dtype == torch.bfloat16
    assert outputs.scores is not None and outputs.scores.dtype == np.float32
    assert outputs.labels is not None and (outputs.labels == wine.y_test).mean() >= 0.9


# -- end to end through pytest --modelcheck --------------------------------------------------------

GATE = """\
version: 1
model:
  source: {source}
  backend: torch
  task: {task}
  device: cpu
  threads: 1
{extra}data:
  source: ../data/{data}.csv
  input: {features}
  label: target
checks:
{checks}"""

CLASSIFICATION_CHECKS = """\
  - name: accuracy
    metric: accuracy
    min: 0.9
  - name: macro_f1
    metric: f1
    average: macro
    min: 0.85
"""

REGRESSION_CHECKS = """\
  - name: rmse
    metric: rmse
    max: 65
  - name: r2
    metric: r2
    min: 0.4
"""


@pytest.fixture()
def project(pytester: pytest.Pytester, frameworks_imported_once: None, wine: Trained, diabetes: Trained) -> Any:
    """A user project: its own model module (on pythonpath), saved models, CSV data, and gate files."""
    pytester.makeini("[pytest]\npythonpath = .\n")
    pytester.makepyfile(
        mymodels="""
        from tabular_models import build_diabetes, build_wine

        untrained_wine = build_wine
        untrained_diabetes = build_diabetes
        """
    )
    models = pytester.mkdir("models")
    for trained in (wine, diabetes):
        for path in trained.paths.values():
            (models / path.name).write_bytes(path.read_bytes())
    tm.write_csv(wine.table, wine.table.test, pytester.path / "data" / "wine.csv")
    tm.write_csv(diabetes.table, diabetes.table.test, pytester.path / "data" / "diabetes.csv")
    return pytester


def add_gate(pytester: pytest.Pytester, name: str, source: str, trained: Trained, *, extra: str = "") -> None:
    classification = trained.table.train["target"].dtype.kind in "iu"
    text = GATE.format(
        source=source,
        task="tabular-classification" if classification else "tabular-regression",
        extra=textwrap.indent(extra, "  "),
        data="wine" if classification else "diabetes",
        features=json.dumps(list(trained.table.features)),
        checks=CLASSIFICATION_CHECKS if classification else REGRESSION_CHECKS,
    )
    path = pytester.path / "gates" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.e2e
def test_gates_pass_and_fail_end_to_end(project: pytest.Pytester, wine: Trained, diabetes: Trained) -> None:
    """Trained models pass their gates, untrained ones fail them, a pickled model errors unless allowed."""
    add_gate(project, "wine", "mymodels:build_wine", wine, extra="weights: ../models/wine.safetensors\n")
    add_gate(project, "wine_untrained", "mymodels:untrained_wine", wine)
    add_gate(project, "wine_exported", "../models/wine.pt2", wine)
    add_gate(project, "wine_pickled", "../models/wine-full.pt", wine)
    add_gate(project, "wine_pickled_allowed", "../models/wine-full.pt", wine, extra="allow_pickle: true\n")
    add_gate(project, "diabetes", "mymodels:build_diabetes", diabetes, extra="weights: ../models/diabetes.pt\n")
    add_gate(project, "diabetes_untrained", "mymodels:untrained_diabetes", diabetes)

    result = project.runpytest("--modelcheck", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8, failed=6)
    expected = {
        "wine::accuracy": "1.0 *>= 0.9 *passed",
        "wine::macro_f1": "1.0 *>= 0.85 *passed",
        "wine_untrained::accuracy": "0.4 *>= 0.9 *failed",
        "wine_untrained::macro_f1": "* *>= 0.85 *failed",
        "wine_exported::accuracy": "1.0 *>= 0.9 *passed",
        "wine_exported::macro_f1": "1.0 *>= 0.85 *passed",
        "wine_pickled::accuracy": "* error",
        "wine_pickled::macro_f1": "* error",
        "wine_pickled_allowed::accuracy": "1.0 *>= 0.9 *passed",
        "wine_pickled_allowed::macro_f1": "1.0 *>= 0.85 *passed",
        "diabetes::rmse": "5?.* *<= 65 *passed",
        "diabetes::r2": "0.4* *>= 0.4 *passed",
        "diabetes_untrained::rmse": "17?.* *<= 65 *failed",
        "diabetes_untrained::r2": "-3.* *>= 0.4 *failed",
    }
    for check, row in expected.items():
        gate, name = check.split("::")
        result.stdout.fnmatch_lines([f"gates/{gate}.yaml::{name} *{row}"])
    result.stdout.fnmatch_lines(["*error: refusing to unpickle *wine-full.pt*arbitrary code*allow_pickle: true*"])
