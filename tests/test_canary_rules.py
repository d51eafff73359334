"""Gate-file rules of canary against production: a ``baseline_model`` or ``against`` on a server (no server needed).

Each bad file is one clear error at the check's key; a good one builds the other model's spec from the gate's
model keys with the ones the check changes (headers kept as ``${VAR}``, never expanded into the spec).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcheck.errors import GateFileError
from modelcheck.gatefile import load_gate

HEAD = """\
version: 1
model:
  id: wine
  {where}
  backend: {backend}
  task: tabular-classification
  labels: ["0", "1"]
{extra}data: {{source: d.csv, input: [a, b], label: target}}
checks:
  - {check}
"""
SERVED = {"where": "url: http://127.0.0.1:9/", "backend": "kserve-v2",
          "extra": "  headers: {Authorization: 'Bearer ${TOK}'}\n  timeout: 3\n"}  # fmt: skip
IN_FILES = {"where": "source: m.onnx", "backend": "onnx", "extra": ""}


def gate(tmp_path: Path, check: str, model: dict[str, str] = SERVED):  # type: ignore[no-untyped-def]
    (tmp_path / "d.csv").write_text("a,b,target\n1,2,0\n3,4,1\n")
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "g.yaml").write_text(HEAD.format(check=check, **model))
    return load_gate(tmp_path / "g.yaml")


REGRESSION = "{name: r, kind: regression, metric: accuracy, max_drop: 0.05, baseline_model: %s}"


def test_a_served_baseline_takes_the_gate_model_keys_it_does_not_change(tmp_path: Path) -> None:
    spec = gate(tmp_path, REGRESSION % "{url: 'http://127.0.0.1:10', model: prod, timeout: 5}").checks[0]
    other = spec.baseline_model
    assert other is not None and other.endpoint is not None
    assert other.id == "wine-baseline" and other.backend == "kserve-v2" and other.source == "http://127.0.0.1:10"
    assert other.endpoint.model == "prod" and other.endpoint.timeout == 5.0 and other.labels == ("0", "1")
    assert dict(other.endpoint.headers) == {"Authorization": "Bearer ${TOK}"}  # read when the server is contacted
    # a URL alone: the gate's served name and keys
    latency = "{name: l, kind: latency, max_ratio: 1.2, baseline_model: 'http://127.0.0.1:11'}"
    other = gate(tmp_path, latency).checks[0].baseline_model
    assert other is not None and other.endpoint is not None
    assert other.endpoint.model == "wine" and other.endpoint.timeout == 3.0
    # parity against a server, from a gate model in files: its own backend, no endpoint keys of the gate's
    parity = "{name: p, kind: parity, min_agreement: 1.0, against: {url: 'http://127.0.0.1:12', backend: kserve-v2}}"
    other = gate(tmp_path, parity, IN_FILES).checks[0].against
    assert other is not None and other.endpoint is not None and other.endpoint.headers == ()
    # a model in files next to a served gate model: no endpoint keys carried over
    other = gate(tmp_path, REGRESSION % "{source: m.onnx, backend: onnx}").checks[0].baseline_model
    assert other is not None and other.endpoint is None and other.source == str(tmp_path / "m.onnx")


BAD = [
    (
        REGRESSION % "m.onnx",
        SERVED,
        r"\$.checks\[0\].baseline_model: the model compared with is in files \(m.onnx\), "
        "so it needs its own backend",
    ),
    (
        REGRESSION % "{url: 'http://u:secretpw@127.0.0.1:10'}",
        SERVED,
        r"\$.checks\[0\].baseline_model.url: the URL holds credentials",
    ),
    (
        REGRESSION % "{url: 'http://127.0.0.1:10'}",
        IN_FILES,
        r"\$.checks\[0\].baseline_model.url: the onnx backend loads model files; a server at http://127.0.0.1:10",
    ),
    (
        REGRESSION % "{url: 'http://127.0.0.1:10', task: text-classification}",
        SERVED,
        r"\$.checks\[0\].baseline_model.task: unknown key 'task'",
    ),
    (
        "{name: r, kind: regression, metric: accuracy, max_drop: 0.05}",
        SERVED,
        r"\$.checks\[0\]: a regression check needs baseline \(saved outputs: a file or hub://\) or baseline_model",
    ),
    (
        "{name: r, kind: regression, metric: accuracy, max_drop: 0.05, baseline: b.json, baseline_model: x}",
        SERVED,
        r"\$.checks\[0\]: a regression check needs baseline .*, not both",
    ),
    (
        (REGRESSION % "{url: 'http://127.0.0.1:10'}")[:-1] + ", on_missing: pass}",
        SERVED,
        r"\$.checks\[0\].on_missing: on_missing says what a missing baseline file means",
    ),
    (REGRESSION % "self", SERVED, r"\$.checks\[0\].baseline_model: baseline_model: self is the A/A mode"),
    (
        "{name: m, kind: memory, max_ratio: 1.2, baseline_model: {url: 'http://127.0.0.1:10'}}",
        SERVED,
        r"\$.checks\[0\].baseline_model: a memory check measures this process, not a server",
    ),
    (
        "{name: p, kind: parity, min_agreement: 1.0, against: {export: true}}",
        SERVED,
        r"\$.checks\[0\].against.export: export: true exports the gate's model files",
    ),
]


@pytest.mark.parametrize(("check", "model", "says"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_comparison_is_one_clear_error_at_its_key(
    tmp_path: Path, check: str, model: dict[str, str], says: str
) -> None:
    with pytest.raises(GateFileError, match=says) as caught:
        gate(tmp_path, check, model)
    text = str(caught.value)
    assert "secretpw" not in text and "Traceback" not in text and "\n" not in text.strip()


@pytest.mark.parametrize("verify", [True, False, "ca"])
def test_an_endpoint_makes_its_tls_settings_once(tmp_path: Path, verify: bool | str) -> None:
    """Loading the CA bundle costs tens of ms: made once per endpoint, not once per client (a client per call)."""
    import ssl

    pytest.importorskip("httpx")
    import certifi

    from modelcheck.gatefile.spec import EndpointSpec, ModelSpec
    from modelcheck.models.endpoint import Endpoint

    setting = certifi.where() if verify == "ca" else verify
    url = "https://127.0.0.1:9"
    spec = ModelSpec(id="m", source=url, backend="kserve-v2", endpoint=EndpointSpec(url=url, model="m",
                                                                                    verify_tls=setting))  # fmt: skip
    endpoint = Endpoint(spec, "kserve-v2")
    context = endpoint._tls()
    assert endpoint._tls() is context
    assert context.verify_mode == (ssl.CERT_NONE if verify is False else ssl.CERT_REQUIRED)
    assert context.check_hostname is (verify is not False)


def test_regression_against_a_baseline_model_in_files(tmp_path: Path) -> None:
    """baseline_model on a regression check is not only for servers: two ONNX files, judged on the same rows."""
    skl2onnx = pytest.importorskip("skl2onnx")
    import warnings

    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_wine
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    frame = load_wine(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    x, y = frame[features].to_numpy("float32"), frame["target"]
    models = {"good.onnx": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y),
              "weak.onnx": make_pipeline(SelectKBest(k=1), LogisticRegression(max_iter=1000)).fit(x, y)}  # fmt: skip
    for name, pipe in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            graph = skl2onnx.convert_sklearn(pipe, initial_types=[("X", FloatTensorType([None, len(features)]))],
                                             options={LogisticRegression: {"zipmap": False}})  # fmt: skip
        (tmp_path / name).write_bytes(graph.SerializeToString())
    frame.to_csv(tmp_path / "wine.csv", index=False)
    text = f"""\
version: 1
model: {{id: wine, source: weak.onnx, backend: onnx, task: tabular-classification, labels: ["0", "1", "2"]}}
data: {{source: wine.csv, input: [{", ".join(features)}], label: target}}
checks:
  - {{name: r, kind: regression, metric: accuracy, max_drop: 0.05, baseline_model: good.onnx}}
"""
    (tmp_path / "g.yaml").write_text(text)
    cache = ModelCache()
    result = run_gate(load_gate(tmp_path / "g.yaml"), file="g.yaml", models=cache, stage=None)
    cache.close()
    (check,) = result.checks
    assert check.status == "failed", check.message
    good = float((models["good.onnx"].predict(x) == y).mean())
    assert check.details["baseline"] == pytest.approx(good) and check.details["candidate"] < good - 0.15
    record = check.details["baseline_model"]
    assert record["source"] == str(tmp_path / "good.onnx") and record["interleaved"] is False
    assert record["how"].startswith("both are models in files")
