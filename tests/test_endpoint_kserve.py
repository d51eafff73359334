"""The kserve-v2 backend against a real MLServer on 127.0.0.1, directly and through a fault proxy.

The same gate file judges the scikit-learn model as ONNX on disk and as served by MLServer: the
metric values agree exactly (classification: the same predicted labels), and the report says which
it judged (``model.source``/``backend``, and ``model.endpoint`` for the server). The token sent in a
header appears in no output: report, JUnit XML, summary, pytest's output.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterator
from importlib.util import find_spec

import pytest
from endpoint_servers import Fault, FaultProxy, start_mlserver

from modelcheck.cli import main
from modelcheck.report.document import read_report

# MLServer runs in its own process: importing it here (grpc) is not needed, so only look for it
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),  # pytester drops modules first imported under it
    pytest.mark.skipif(find_spec("mlserver_sklearn") is None, reason="needs mlserver and mlserver-sklearn (dev extra)"),
]

TOKEN = "tok-9f3c1e7d5b2a4680"
GATE = """\
version: 1
model:
  id: wine
  source: ${{WINE_SOURCE}}
  backend: ${{WINE_BACKEND}}
  task: tabular-classification
  labels: ["0", "1", "2"]
{extra}
data:
  source: wine_test.csv
  input: [{features}]
  label: target
checks:
  - name: accuracy
    metric: accuracy
    min: 0.8
  - name: macro_f1
    metric: f1
    average: macro
    min: 0.8
"""
ENDPOINT_KEYS = """\
  headers:
    Authorization: "Bearer ${MC_TEST_TOKEN}"
  timeout: 2
  retries: 2
  concurrency: 3
  batch_size: 8
"""


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The wine classifier as ONNX on disk and served by MLServer; its test rows as CSV."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame
    test = frame.index % 3 == 0
    features = [c for c in frame.columns if c != "target"]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipe.fit(frame.loc[~test, features].to_numpy(dtype="float32"), frame.loc[~test, "target"])
    frame.loc[test].to_csv(folder / "wine_test.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(pipe, initial_types=[("X", FloatTensorType([None, len(features)]))],
                                         options={LogisticRegression: {"zipmap": False}})  # fmt: skip
    (folder / "wine.onnx").write_bytes(graph.SerializeToString())
    from sklearn.feature_selection import SelectKBest

    # a weak model (one feature), whose rows are right and wrong: what row-by-row comparisons need
    weak = make_pipeline(SelectKBest(k=1), LogisticRegression(max_iter=1000))
    weak.fit(frame.loc[~test, features].to_numpy(dtype="float32"), frame.loc[~test, "target"])
    with start_mlserver(folder / "server", {"wine": pipe, "weak": weak}) as url, FaultProxy(url) as proxy:
        yield {"folder": folder, "url": url, "proxy": proxy, "features": features, "pipe": pipe, "frame": frame,
               "weak": weak}  # fmt: skip


@pytest.fixture()
def project(pytester: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "wine_test.csv").write_bytes((wine["folder"] / "wine_test.csv").read_bytes())
    monkeypatch.setenv("MC_TEST_TOKEN", TOKEN)
    monkeypatch.chdir(pytester.path)
    wine["proxy"].fault = None
    wine["proxy"].reset_seen()
    return pytester


def write_gate(project: pytest.Pytester, wine: dict, *, endpoint: bool) -> None:
    text = GATE.format(features=", ".join(wine["features"]), extra=ENDPOINT_KEYS if endpoint else "")
    (project.path / "gates" / "wine.yaml").write_text(text)


def run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, backend: str) -> tuple[dict, str]:
    monkeypatch.setenv("WINE_SOURCE", source)
    monkeypatch.setenv("WINE_BACKEND", backend)
    started = time.monotonic()
    # in a subprocess, as a user runs it (and away from this process's threads and servers)
    result = project.runpytest_subprocess("--modelcheck", "--modelcheck-report", "out.json", "--junitxml", "junit.xml")
    assert time.monotonic() - started < 60
    report = read_report(project.path / "out.json")
    shown = "\n".join(result.outlines + result.errlines)
    return report["gates"][0], shown


def test_the_same_gate_judges_the_file_and_the_server_alike(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_gate(project, wine, endpoint=False)
    local, _ = run(project, monkeypatch, str(wine["folder"] / "wine.onnx"), "onnx")
    write_gate(project, wine, endpoint=True)
    served, shown = run(project, monkeypatch, wine["url"] + "?tenant=acme", "kserve-v2")

    assert local["model"]["backend"] == "onnx" and local["model"]["files"]
    assert "endpoint" not in local["model"]
    assert served["model"]["backend"] == "kserve-v2"
    assert served["model"]["source"] == wine["url"]  # the query is left out of what is shown
    assert served["model"]["files"] == []
    endpoint = served["model"]["endpoint"]
    assert endpoint["url"] == wine["url"] and endpoint["model"] == "wine" and endpoint["protocol"] == "kserve-v2"
    assert endpoint["server"]["oip_name"] == "mlserver"
    rows = served["data"]["rows"]
    assert endpoint["requests"] == 3 + -(-rows // 8)  # ready, server and model metadata, then ceil(rows / 8) infers
    assert endpoint["failures"] == {}
    for check in ("accuracy", "macro_f1"):
        local_check = next(c for c in local["checks"] if c["name"] == check)
        served_check = next(c for c in served["checks"] if c["name"] == check)
        assert served_check["status"] == local_check["status"] == "passed"
        assert served_check["value"] == pytest.approx(local_check["value"], abs=0)  # the same labels

    # against scikit-learn itself: the served model's accuracy is the pipeline's
    frame = wine["frame"]
    test = frame[frame.index % 3 == 0]
    expected = float((wine["pipe"].predict(test[wine["features"]].to_numpy("float32")) == test["target"]).mean())
    assert next(c for c in served["checks"] if c["name"] == "accuracy")["value"] == pytest.approx(expected)

    assert main(["summary", "out.json"]) == 0
    outputs = [shown, capsys.readouterr().out, (project.path / "out.json").read_text(),
               (project.path / "junit.xml").read_text()]  # fmt: skip
    assert all(TOKEN not in text for text in outputs)
    assert wine["proxy"].seen == []  # the proxy was not used here (the fixture resets what it saw)


FAULTS = [
    (Fault("status", status=401), "http_401", "header Authorization (from $MC_TEST_TOKEN)"),
    (Fault("status", status=503, headers={"retry-after": "0.2"}), "http_5xx", "failed after 3 tries: HTTP 503"),
    (Fault("slow", seconds=5), "timeout", "within timeout 2 s"),
    (Fault("invalid_json"), "invalid_json", "not valid JSON"),
    (Fault("missing_rows"), "missing_rows", "rows for the 8 rows sent"),
    (Fault("redirect", location="http://localhost:9"), "redirect", "redirects are not followed"),
    (Fault("huge"), "body_too_large", "over the limit"),
    (Fault("huge_chunked"), "body_too_large", "over the limit"),
    (Fault("truncated"), "protocol", "the connection broke mid-answer"),
]


@pytest.mark.parametrize(("fault", "kind", "says"), FAULTS, ids=[f[1] + "-" + f[0].kind for f in FAULTS])
def test_a_failing_server_ends_as_a_check_error_with_counts(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, fault: Fault, kind: str, says: str
) -> None:
    write_gate(project, wine, endpoint=True)
    proxy = wine["proxy"]
    proxy.reset_seen()
    # faults hit the infer requests: the readiness and metadata requests of loading pass
    proxy.fault = None
    monkeypatch.setenv("WINE_SOURCE", proxy.url)
    monkeypatch.setenv("WINE_BACKEND", "kserve-v2")
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    gate = load_gate(project.path / "gates" / "wine.yaml")
    models = ModelCache()
    models.get(gate.model)  # loaded through the proxy before the fault is set
    proxy.fault = fault
    started = time.monotonic()
    result = run_gate(gate, file="gates/wine.yaml", models=models, stage=None)
    assert time.monotonic() - started < 30
    models.close()
    assert {check.status for check in result.checks} == {"error"}
    message = result.checks[0].message or ""
    assert says in message and proxy.url in message and kind in message
    assert TOKEN not in message and TOKEN not in json.dumps(result.model)
    assert result.model["endpoint"]["failures"][kind] >= 1
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in proxy.seen)  # sent to the server itself


def test_a_429_storm_is_waited_out_honouring_retry_after(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_gate(project, wine, endpoint=True)
    proxy = wine["proxy"]
    proxy.fault = Fault("status", status=429, headers={"retry-after": "1"}, times=2)
    started = time.monotonic()
    served, _ = run(project, monkeypatch, proxy.url, "kserve-v2")
    assert time.monotonic() - started >= 1.0  # it waited as asked
    assert {c["status"] for c in served["checks"]} == {"passed"}
    assert served["model"]["endpoint"]["failures"] == {"http_429": 2}
    assert served["model"]["endpoint"]["retries"] == 2


def test_a_server_that_is_not_running_is_a_clear_error_within_the_timeout(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from endpoint_servers import free_port

    write_gate(project, wine, endpoint=True)
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    served, shown = run(project, monkeypatch, url, "kserve-v2")
    assert time.monotonic() - started < 20
    assert {c["status"] for c in served["checks"]} == {"error"}
    assert f"kserve-v2 endpoint {url}: GET /v2/health/ready failed after 3 tries: cannot connect" in served["error"]
    counts = re.search(r"\(tries so far: (\d+) sent, (\d+) failed: connect (\d+)(; the other (\d+) answered or were "
                       r"cut short)?\)", served["error"])  # fmt: skip
    assert counts, served["error"]  # the counts add up: every try sent either failed or is among the others
    sent, failed, connect, others = (int(counts[i] or 0) for i in (1, 2, 3, 5))
    assert 3 <= failed == connect <= sent == failed + others, served["error"]
    assert "is the server running" in served["error"]
    assert "Traceback" not in shown


def test_gate_file_rules_for_endpoints(project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.errors import GateFileError
    from modelcheck.gatefile import load_gate

    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    cases = {
        ("http://user:pw@127.0.0.1:1", "kserve-v2"): "the URL holds credentials",
        ("http://127.0.0.1:1", "onnx"): "the onnx backend loads model files",
    }
    for (source, backend), says in cases.items():
        monkeypatch.setenv("WINE_SOURCE", source)
        monkeypatch.setenv("WINE_BACKEND", backend)
        with pytest.raises(GateFileError, match=says) as caught:
            load_gate(path)
        assert "pw" not in str(caught.value)
    monkeypatch.setenv("WINE_SOURCE", wine["url"])
    monkeypatch.setenv("WINE_BACKEND", "kserve-v2")
    path.write_text(
        path.read_text() + "  - {name: p95, kind: latency, max_ms: 50, max_ratio: 1.2, baseline_model: x.onnx}\n"
    )
    with pytest.raises(GateFileError, match=r"checks\[2\].baseline_model: the model compared with is in "
                       r"files \(x.onnx\), so it needs its own backend"):  # fmt: skip
        load_gate(path)
    write_gate(project, wine, endpoint=False)
    path.write_text(path.read_text().replace("  labels:", "  timeout: 3\n  labels:"))
    monkeypatch.setenv("WINE_SOURCE", str(wine["folder"] / "wine.onnx"))
    monkeypatch.setenv("WINE_BACKEND", "onnx")
    with pytest.raises(GateFileError, match="timeout applies to a model behind an inference server"):
        load_gate(path)


def test_header_secrets_stay_unexpanded_in_the_spec(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcheck.gatefile import load_gate

    write_gate(project, wine, endpoint=True)
    monkeypatch.setenv("WINE_SOURCE", wine["url"])
    monkeypatch.setenv("WINE_BACKEND", "kserve-v2")
    gate = load_gate(project.path / "gates" / "wine.yaml")
    assert gate.model.endpoint is not None
    assert dict(gate.model.endpoint.headers) == {"Authorization": "Bearer ${MC_TEST_TOKEN}"}
    assert TOKEN not in repr(gate)
    monkeypatch.delenv("MC_TEST_TOKEN")
    from modelcheck.errors import BackendError
    from modelcheck.models.backends import get_backend

    with pytest.raises(BackendError, match=r"header Authorization reads \$\{MC_TEST_TOKEN\}, which is not set"):
        get_backend("kserve-v2").load(gate.model)
    monkeypatch.setenv("MC_TEST_TOKEN", TOKEN[:5] + "\r\nX-Evil: 1")
    with pytest.raises(BackendError, match=r"from \$MC_TEST_TOKEN\) holds a control character") as caught:
        get_backend("kserve-v2").load(gate.model)
    assert "X-Evil" not in str(caught.value)


TOLERANT_CHECKS = """\
  - name: tolerant_accuracy
    metric: accuracy
    min: 0.8
    max_error_rate: 0.3
  - name: strict_rate
    metric: accuracy
    min: 0.8
    max_error_rate: 0.1
"""
TOLERATED = [
    (Fault("status", status=503, times=2), "http_5xx"),
    (Fault("invalid_json", times=2), "invalid_json"),
    (Fault("missing_rows", times=2), "missing_rows"),
    (Fault("slow", seconds=5, times=2), "timeout"),
]


@pytest.mark.parametrize(("fault", "kind"), TOLERATED, ids=[kind for _, kind in TOLERATED])
def test_max_error_rate_leaves_failed_requests_out_and_judges_their_rate(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, fault: Fault, kind: str
) -> None:
    """2 of the 8 infer requests fail for good (no retries): 25% is within 0.3 and beyond 0.1; a check without
    max_error_rate errors; the answered rows are judged with the accuracy scikit-learn gives them."""
    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    path.write_text(path.read_text().replace("retries: 2", "retries: 0") + TOLERANT_CHECKS)
    proxy = wine["proxy"]
    monkeypatch.setenv("WINE_SOURCE", proxy.url)
    monkeypatch.setenv("WINE_BACKEND", "kserve-v2")
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    gate = load_gate(path)
    models = ModelCache()
    models.get(gate.model)  # loaded before the fault is set: loading is never tolerated
    proxy.fault = fault
    started = time.monotonic()
    result = run_gate(gate, file="gates/wine.yaml", models=models, stage=None)
    assert time.monotonic() - started < 30
    models.close()
    checks = {check.name: check for check in result.checks}
    rows = result.data["rows"]
    assert rows == 60  # 8 requests of 8 rows, the last of 4

    tolerant = checks["tolerant_accuracy"]
    assert tolerant.status == "passed", tolerant.message
    requests = tolerant.details["requests"]
    assert requests["sent"] == 8 and requests["failed"] == 2 and requests["failed_by_kind"] == {kind: 2}
    assert requests["error_rate"] == 0.25 and requests["max_error_rate"] == 0.3
    assert tolerant.n in (rows - 16, rows - 12)  # two batches left out: two of 8 rows, or one of 8 and the 4
    left_out = requests["failed_rows"]
    assert len(left_out) == rows - tolerant.n and all(r // 8 in {left_out[0] // 8, left_out[-1] // 8} for r in left_out)
    frame = wine["frame"]
    test = frame[frame.index % 3 == 0].reset_index(drop=True).drop(index=left_out)
    predicted = wine["pipe"].predict(test[wine["features"]].to_numpy("float32"))
    assert tolerant.value == pytest.approx(float((predicted == test["target"]).mean()))
    assert f"error rate 0.25 <= max_error_rate 0.3 (2 of 8 requests failed ({kind} 2))" in tolerant.message
    assert f"judged on the {tolerant.n} rows answered" in tolerant.message
    assert tolerant.threshold == {"min": 0.8, "max_error_rate": 0.3}

    strict = checks["strict_rate"]
    assert strict.status == "failed"
    assert strict.message.startswith(f"error rate 0.25 > max_error_rate 0.1 (2 of 8 requests failed ({kind} 2)); "
                                     f"on the {tolerant.n} rows answered: accuracy")  # fmt: skip
    assert proxy.url in strict.message and TOKEN not in strict.message
    assert strict.value == tolerant.value  # still measured on the rows answered

    for name in ("accuracy", "macro_f1"):  # no max_error_rate: an error, as without tolerance
        assert checks[name].status == "error"
        assert checks[name].message.startswith(f"2 of 8 requests failed ({kind} 2) and this check sets no "
                                               "max_error_rate")  # fmt: skip
    assert result.model["endpoint"]["failures"] == {kind: 2}
    assert result.model["endpoint"]["requests"] == 3 + 8  # loading, then the infer requests


def test_max_error_rate_through_pytest_with_a_healthy_server(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through pytest as a user runs it: nothing fails, the check passes and its details say 0 of 8 failed."""
    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    path.write_text(path.read_text().replace("average: macro\n    min: 0.8", "average: macro\n    min: 0.8\n"
                                             "    max_error_rate: 0.05"))  # fmt: skip
    served, shown = run(project, monkeypatch, wine["url"], "kserve-v2")
    checks = {c["name"]: c for c in served["checks"]}
    assert {c["status"] for c in served["checks"]} == {"passed"}
    assert checks["macro_f1"]["details"]["requests"] == {
        "sent": 8, "failed": 0, "failed_by_kind": {}, "error_rate": 0.0, "first_failure": None, "max_error_rate": 0.05,
        "failed_rows": [],
    }  # fmt: skip
    assert checks["macro_f1"]["message"].endswith("(error rate 0 <= max_error_rate 0.05 (0 of 8 requests failed))")
    assert "requests" not in checks["accuracy"]["details"]
    assert "Traceback" not in shown


def _load_gate(project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, checks: str, source: str):
    from modelcheck.gatefile import load_gate

    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    text = path.read_text().replace("retries: 2", "retries: 0")
    path.write_text(text[: text.index("checks:\n")] + "checks:\n" + checks)
    monkeypatch.setenv("WINE_SOURCE", source)
    monkeypatch.setenv("WINE_BACKEND", "kserve-v2")
    return load_gate(path)


LOAD_CHECK = """\
  - name: p95_under_load
    kind: latency
    concurrency: {concurrency}
    batch_size: 2
    max_ms: {max_ms}
    min_iterations: 60
    min_time: 0.5
    max_time: 20
{extra}"""


@pytest.mark.parametrize("concurrency", [1, 4])
def test_latency_under_load_on_a_real_server(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    """Through the proxy, which counts what reaches the server: every request the test reports was sent, the
    achieved concurrency is the one asked for, and the percentiles are those of the reported timings."""
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    proxy = wine["proxy"]
    gate = _load_gate(project, wine, monkeypatch, LOAD_CHECK.format(concurrency=concurrency, max_ms=5000, extra=""),
                      proxy.url)  # fmt: skip
    models = ModelCache()
    models.get(gate.model)
    proxy.reset_seen()
    result = run_gate(gate, file="gates/wine.yaml", models=models, stage=None)
    models.close()
    (check,) = result.checks
    assert check.status == "passed", check.message
    latency = check.details["latency"]
    prediction = -(-result.data["rows"] // 8)  # the gate's own pass over the data first
    assert len(proxy.seen) == prediction + latency["warmup_requests"] + latency["requests"]
    assert latency["requests"] == latency["answered"] == check.n >= 60 and latency["failed_by_kind"] == {}
    assert latency["concurrency"] == concurrency and latency["request"] == "POST /v2/models/wine/infer, 2 row(s)"
    assert latency["requests_per_s"] == pytest.approx(check.n / latency["timed_wall_s"])
    if concurrency == 1:
        assert 0.8 < latency["in_flight"] <= 1.0 + 1e-9
    else:
        assert 2.5 < latency["in_flight"] <= 4.0 + 1e-9  # four in flight, less the moments between requests
    assert latency["percentiles_ms"]["p50"] <= latency["percentiles_ms"]["p95"] <= latency["percentiles_ms"]["p99"]
    assert check.ci is not None and check.ci[0] <= check.value <= check.ci[1]
    assert check.message.startswith("p95 latency under load ") and f"at concurrency {concurrency}: " in check.message
    assert "requests/s" in check.message and "requests" not in check.details  # no max_error_rate: no rate judged


def test_latency_under_load_catches_a_slow_server(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy holds every request 150 ms: p95 under load is over 100 ms for sure, and fails."""
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    proxy = wine["proxy"]
    gate = _load_gate(project, wine, monkeypatch, LOAD_CHECK.format(concurrency=4, max_ms=100, extra=""), proxy.url)
    models = ModelCache()
    models.get(gate.model)
    proxy.fault = Fault("slow", seconds=0.15)
    try:
        result = run_gate(gate, file="gates/wine.yaml", models=models, stage=None)
    finally:
        proxy.fault = None
        models.close()
    (check,) = result.checks
    assert check.status == "failed", check.message
    assert check.ci is not None and check.ci[0] > 100 and check.details["latency"]["percentiles_ms"]["p50"] >= 150
    assert check.message.startswith("p95 latency under load ") and " > 100 ms " in check.message


def test_failed_requests_under_load_error_or_count_against_max_error_rate(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    proxy = wine["proxy"]
    checks = LOAD_CHECK.format(concurrency=2, max_ms=5000, extra="    max_error_rate: 0.2\n")
    checks += LOAD_CHECK.format(concurrency=2, max_ms=5000, extra="").replace("p95_under_load", "strict")
    gate = _load_gate(project, wine, monkeypatch, checks, proxy.url)
    models = ModelCache()
    models.get(gate.model)
    outcomes = {}
    try:
        for check in gate.checks:  # each check against its own 3 failures, after the gate's prediction pass
            from dataclasses import replace

            one = replace(gate, checks=(check,))
            proxy.fault = None
            from modelcheck.run import gate as gate_module

            original = gate_module.judge

            def faulted(spec, run, original=original):  # the fault starts when the load test does
                proxy.fault = Fault("status", status=503, times=3)
                return original(spec, run)

            monkeypatch.setattr(gate_module, "judge", faulted)
            outcomes[check.name] = run_gate(one, file="gates/wine.yaml", models=models, stage=None).checks[0]
    finally:
        proxy.fault = None
        models.close()
    tolerant, strict = outcomes["p95_under_load"], outcomes["strict"]
    assert tolerant.status == "passed", tolerant.message
    requests = tolerant.details["requests"]
    assert requests["failed_by_kind"] == {"http_5xx": 3} and requests["failed"] == 3
    assert requests["sent"] == tolerant.details["latency"]["warmup_requests"] + tolerant.details["latency"]["requests"]
    latency = tolerant.details["latency"]
    timed_failures = sum(latency["failed_by_kind"].values())  # those of the 3 that fell after the warm-up
    assert tolerant.n == latency["answered"] == latency["requests"] - timed_failures  # left out of the percentiles
    assert f"error rate {3 / requests['sent']:.3g} <= max_error_rate 0.2" in tolerant.message
    assert strict.status == "error"
    assert strict.message.startswith("load test at concurrency 2 (POST /v2/models/wine/infer, 2 row(s) per request): "
                                     "3 of ")  # fmt: skip
    assert "(http_5xx 3) and this check sets no max_error_rate" in strict.message and "HTTP 503" in strict.message


def test_regression_with_failed_requests_compares_the_baseline_on_the_answered_rows(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A baseline of the weak served model from a healthy run; the same model with 2 of 8 requests failing:
    compared on the same rows the two are identical (difference 0), and the baseline's value is that of the
    answered rows, not of the first rows."""
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    text = path.read_text().replace("retries: 2", "retries: 0").replace("  id: wine\n", "  id: weak\n")
    path.write_text(text)
    run(project, monkeypatch, wine["url"], "kserve-v2")
    assert main(["baseline", "update", "out.json", "--dir", "baselines"]) == 0
    path.write_text(text + "  - name: no_regression\n    kind: regression\n    metric: accuracy\n"
                    "    baseline: ../baselines/weak.json\n    max_drop: 0.3\n    max_error_rate: 0.3\n")  # fmt: skip
    monkeypatch.setenv("WINE_SOURCE", wine["proxy"].url)
    gate = load_gate(path)
    models = ModelCache()
    models.get(gate.model)
    wine["proxy"].fault = Fault("status", status=500, times=2)
    result = run_gate(gate, file="gates/wine.yaml", models=models, stage=None)
    models.close()
    check = next(c for c in result.checks if c.name == "no_regression")
    assert check.status == "passed", check.message
    left_out = check.details["requests"]["failed_rows"]
    assert check.details["requests"]["failed"] == 2 and len(left_out) in (12, 16)
    frame = wine["frame"]
    test = frame[frame.index % 3 == 0].reset_index(drop=True)
    right = wine["weak"].predict(test[wine["features"]].to_numpy("float32")) == test["target"].to_numpy()
    assert 0.3 < right.mean() < 0.95  # rows right and wrong
    answered = [i for i in range(len(test)) if i not in left_out]
    expected = float(right[answered].mean())
    assert check.details["candidate"] == pytest.approx(expected) and check.details["baseline"] == pytest.approx(
        expected
    )
    assert check.value == 0.0


def test_a_load_check_through_pytest_the_report_and_its_views(
    project: pytest.Pytester, wine: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a user runs it: the load check is a pytest item like the others, its figures reach the report (which
    validates against its schema when read), the summary and the HTML page; the token appears in none of them."""
    write_gate(project, wine, endpoint=True)
    path = project.path / "gates" / "wine.yaml"
    path.write_text(path.read_text() + LOAD_CHECK.format(concurrency=3, max_ms=5000, extra="    max_error_rate: 0.1\n"))
    served, shown = run(project, monkeypatch, wine["url"], "kserve-v2")
    check = next(c for c in served["checks"] if c["name"] == "p95_under_load")
    assert check["status"] == "passed" and check["threshold"] == {"max_ms": 5000, "max_error_rate": 0.1}
    assert check["details"]["latency"]["concurrency"] == 3 and check["details"]["requests"]["failed"] == 0
    assert "gates/wine.yaml::p95_under_load" in shown and "Traceback" not in shown
    assert main(["summary", "out.json"]) == 0
    assert main(["report", "html", "out.json", "-o", "out.html"]) == 0
    summary = capsys.readouterr().out
    assert "p95_under_load" in summary
    page = (project.path / "out.html").read_text()
    assert "p95_under_load" in page and "requests/s" in page
    assert all(TOKEN not in text for text in (shown, summary, page, (project.path / "out.json").read_text()))
