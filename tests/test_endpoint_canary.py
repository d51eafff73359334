"""Canary against production: two real MLServer instances on 127.0.0.1, each behind the tests' fault proxy.

Production serves the good wine classifier as ``wine``; the canary serves the same classifier as ``wine``
and a weaker one (one feature) as ``weak``. The gate's model is the canary, its ``baseline_model`` /
``against`` is production. The proxies' request logs (arrival times) show the interleaving.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest
from endpoint_servers import Fault, FaultProxy, free_port, start_mlserver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_spec("mlserver_sklearn") is None, reason="needs mlserver and mlserver-sklearn (dev extra)"),
]

TOKEN = "tok-canary-5e1d77a0c3"
GATE = """\
version: 1
model:
  id: wine
  url: {canary}
  model: {served}
  backend: kserve-v2
  task: tabular-classification
  labels: ["0", "1", "2"]
  headers:
    Authorization: "Bearer ${{MC_CANARY_TOKEN}}"
  timeout: 2
  retries: 0
  concurrency: 3
  batch_size: 8
data:
  source: wine.csv
  input: [{features}]
  label: target
checks:
{checks}"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from sklearn.datasets import load_wine
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("canary")
    frame = load_wine(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    train = frame.index % 3 != 0
    x, y = frame.loc[train, features].to_numpy(dtype="float32"), frame.loc[train, "target"]
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    weak = make_pipeline(SelectKBest(k=1), LogisticRegression(max_iter=1000)).fit(x, y)
    frame.to_csv(folder / "wine.csv", index=False)  # every row: 178, so that a 5-point margin is 9 rows
    with (
        start_mlserver(folder / "production", {"wine": good}) as production,
        start_mlserver(folder / "canary", {"wine": good, "weak": weak}) as canary,
        FaultProxy(production) as production_proxy,
        FaultProxy(canary) as canary_proxy,
    ):
        yield {"folder": folder, "features": features, "production": production_proxy, "canary": canary_proxy,
               "good": good, "weak": weak, "frame": frame}  # fmt: skip


@pytest.fixture()
def gate_of(servers: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a gate file judging the canary (``served``: its model name) with ``checks``; load it."""
    from modelcheck.gatefile import load_gate

    monkeypatch.setenv("MC_CANARY_TOKEN", TOKEN)
    (tmp_path / "wine.csv").write_bytes((servers["folder"] / "wine.csv").read_bytes())
    for proxy in (servers["production"], servers["canary"]):
        proxy.fault = None
        proxy.reset_seen()

    def make(checks: str, *, served: str = "wine", canary: str | None = None):  # type: ignore[no-untyped-def]
        text = GATE.format(canary=canary or servers["canary"].url, served=served,
                           features=", ".join(servers["features"]), checks=checks)  # fmt: skip
        (tmp_path / "gate.yaml").write_text(text)
        return load_gate(tmp_path / "gate.yaml")

    return make


def run(gate):  # type: ignore[no-untyped-def]
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    models = ModelCache()
    started = time.monotonic()
    try:
        result = run_gate(gate, file="gate.yaml", models=models, stage=None)
    finally:
        models.close()
    assert time.monotonic() - started < 90
    assert TOKEN not in json.dumps(result.to_dict(), default=str)  # the token appears nowhere in the report
    from modelcheck.report.document import build_report
    from modelcheck.report.summary import markdown
    from modelcheck.view.page import render_html

    document = build_report([result], stage=None)  # nor in what is made of it: summary, HTML page, messages
    shown = [markdown(document), render_html(document), *(check.message or "" for check in result.checks)]
    assert not [text for text in shown if TOKEN in text]
    return result, {check.name: check for check in result.checks}


def sides(servers: dict, path_part: str) -> list[str]:
    """Which proxy each request containing ``path_part`` reached, in order of arrival: C (canary), P (production)."""
    seen = [(float(h[":at"]), "C") for h in servers["canary"].seen if path_part in h[":path"]]
    seen += [(float(h[":at"]), "P") for h in servers["production"].seen if path_part in h[":path"]]
    return [side for _, side in sorted(seen)]


def runs(order: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding: ``C C P P P C`` -> ``[(C, 2), (P, 3), (C, 1)]``."""
    out: list[tuple[str, int]] = []
    for side in order:
        if out and out[-1][0] == side:
            out[-1] = (side, out[-1][1] + 1)
        else:
            out.append((side, 1))
    return out


REGRESSION = """\
  - name: accuracy
    metric: accuracy
    min: 0.5
  - name: no_worse_than_production
    kind: regression
    metric: accuracy
    max_drop: 0.05
    baseline_model: {url: %s, model: wine}
  - name: same_answers_as_production
    kind: parity
    against: {url: %s, model: wine}   # the served name would otherwise be the gate's (weak, in one test)
    min_agreement: 1.0
"""


def test_a_worse_canary_fails_regression_against_production(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    production = servers["production"].url
    gate = gate_of(REGRESSION % (production, production), served="weak")
    result, checks = run(gate)
    regression = checks["no_worse_than_production"]
    assert regression.status == "failed", regression.message
    frame = servers["frame"]
    x, y = frame[servers["features"]].to_numpy("float32"), frame["target"].to_numpy()
    good, weak = float((servers["good"].predict(x) == y).mean()), float((servers["weak"].predict(x) == y).mean())
    assert good - weak > 0.15  # the weak model is clearly worse, as scikit-learn itself says
    assert regression.details["baseline"] == pytest.approx(good) and regression.details["candidate"] == pytest.approx(
        weak
    )
    assert regression.message.startswith(f"accuracy {weak:.4g} vs baseline {good:.4g}: drop ")
    parity = checks["same_answers_as_production"]
    assert parity.status == "failed", parity.message  # another model: other answers
    # both endpoints are in the report: the canary as the gate's model, production in the check's details
    assert result.model["endpoint"]["url"] == servers["canary"].url and result.model["endpoint"]["model"] == "weak"
    baseline = regression.details["baseline_model"]
    assert baseline["endpoint"]["url"] == production and baseline["endpoint"]["model"] == "wine"
    assert baseline["endpoint"]["protocol"] == "kserve-v2" and baseline["endpoint"]["failures"] == {}
    assert baseline["interleaved"] is True and baseline["block_rows"] == 24 and baseline["blocks"] == 8


def test_an_equal_canary_passes_and_its_requests_alternate_with_production(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    production = servers["production"].url
    gate = gate_of(REGRESSION % (production, production))
    _, checks = run(gate)
    assert {name: c.status for name, c in checks.items()} == dict.fromkeys(checks, "passed"), [
        c.message for c in checks.values()
    ]
    parity = checks["same_answers_as_production"]
    assert parity.details["agreement"] == 1.0
    assert parity.message.startswith(f"kserve-v2 {production} (model 'wine') vs kserve-v2 {servers['canary'].url}")
    assert checks["no_worse_than_production"].value == 0.0
    # the one production model serves both checks: its rows went once, interleaved with the canary's, in
    # blocks of 24 rows (3 requests of 8 at once), ABBA: C P P C C P P C ...
    order = sides(servers, "/infer")
    assert order.count("C") == order.count("P") == 23  # ceil(178 / 8) requests each
    assert runs(order) == [("C", 3), ("P", 6), ("C", 6), ("P", 6), ("C", 6), ("P", 6), ("C", 6), ("P", 5), ("C", 2)]
    interleaving = parity.details["against"]
    assert interleaving["interleaved"] is True and "ABBA" in interleaving["how"]
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in servers["production"].seen)  # sent, not shown


LATENCY = """\
  - name: p50_against_production
    kind: latency
    batch_size: 1
    percentile: 50
    max_ratio: 1.5
    baseline_model: {url: %s}
    min_iterations: 150
    min_time: 0.5
    max_time: 30
"""


def test_latency_against_production_passes_a_to_a_and_catches_a_slowed_canary(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    production = servers["production"].url
    gate = gate_of(LATENCY % production)
    _, checks = run(gate)
    same = checks["p50_against_production"]
    assert same.status == "passed", same.message
    assert same.details["unit"] == "x" and same.ci is not None and same.ci[1] <= 1.5
    interleaved = same.details["interleaved"]
    assert interleaved["interleaved"] is True and interleaved["rounds"] >= 10
    # the timed calls alternate: at least one switch of server per round (ABBA rounds), where one after the
    # other would switch once
    order = sides(servers, "/infer")[23:]  # after the gate's own prediction pass (23 canary requests)
    assert len(runs(order)) >= interleaved["rounds"]
    assert same.details["baseline_model"]["endpoint"]["url"] == production

    servers["canary"].fault = Fault("slow", seconds=0.03)  # every canary request waits 30 ms in the proxy
    _, checks = run(gate)
    slowed = checks["p50_against_production"]
    assert slowed.status == "failed", slowed.message
    assert slowed.ci is not None and slowed.ci[0] > 1.5
    assert "max_ratio 1.5 against baseline_model " + production in slowed.message


def test_production_down_is_a_check_error_naming_its_url(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    down = f"http://127.0.0.1:{free_port()}"
    checks_text = (REGRESSION % (down, down)) + (LATENCY % down)
    gate = gate_of(checks_text)
    started = time.monotonic()
    result, checks = run(gate)
    assert time.monotonic() - started < 30
    assert checks["accuracy"].status == "passed"  # the canary itself is judged
    for name in ("no_worse_than_production", "same_answers_as_production", "p50_against_production"):
        check = checks[name]
        assert check.status == "error", (name, check.status)
        assert down in (check.message or "") and "cannot connect" in (check.message or "")
        assert "Traceback" not in (check.message or "")
    assert "baseline_model" in (checks["no_worse_than_production"].message or "")
    assert result.error is None


def test_production_failing_mid_run_errors_only_the_checks_comparing_with_it(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    production = servers["production"]
    gate = gate_of(REGRESSION % (production.url, production.url))
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    models = ModelCache()
    models.get(gate.check("no_worse_than_production").baseline_model)  # loaded before the fault
    production.fault = Fault("status", status=503)
    result = run_gate(gate, file="gate.yaml", models=models, stage=None)
    models.close()
    checks = {c.name: c for c in result.checks}
    assert checks["accuracy"].status == "passed"
    for name in ("no_worse_than_production", "same_answers_as_production"):
        message = checks[name].message or ""
        assert checks[name].status == "error" and production.url in message and "HTTP 503" in message, message


LOCAL = """\
version: 1
model:
  id: wine
  source: wine.onnx
  backend: onnx
  task: tabular-classification
  labels: ["0", "1", "2"]
data:
  source: wine.csv
  input: [{features}]
  label: target
checks:
  - name: no_worse_than_production
    kind: regression
    metric: accuracy
    max_drop: 0.05
    baseline_model:
      url: {production}
      backend: kserve-v2
      headers: {{Authorization: "Bearer ${{MC_CANARY_TOKEN}}"}}
  - name: same_answers_as_production
    kind: parity
    against: {{url: {production}, backend: kserve-v2, model: wine}}
    min_agreement: 1.0
"""


def test_a_model_in_files_against_a_server(servers: dict, gate_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The gate's model on disk (ONNX) and production's server: compared, not interleaved (one side is local)."""
    skl2onnx = pytest.importorskip("skl2onnx")
    import warnings

    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    from modelcheck.gatefile import load_gate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(servers["good"], initial_types=[("X", FloatTensorType([None, 13]))],
                                         options={LogisticRegression: {"zipmap": False}})  # fmt: skip
    (tmp_path / "wine.onnx").write_bytes(graph.SerializeToString())
    gate_of(LATENCY % "http://127.0.0.1:1")  # copies the data and sets the token
    text = LOCAL.format(features=", ".join(servers["features"]), production=servers["production"].url)
    (tmp_path / "gate.yaml").write_text(text)
    _, judged = run(load_gate(tmp_path / "gate.yaml"))
    regression = judged["no_worse_than_production"]
    assert regression.status == "passed" and regression.value == 0.0, regression.message
    assert regression.details["baseline_model"]["endpoint"]["model"] == "wine"
    parity = judged["same_answers_as_production"]
    assert parity.status == "passed" and parity.details["agreement"] == 1.0, parity.message
    assert parity.details["against"]["interleaved"] is False and "in files" in parity.details["against"]["how"]
    # regression's baseline_model sends the header it names, parity's against (no headers given) none
    infers = [h.get("authorization") for h in servers["production"].seen if "/infer" in h[":path"]]
    assert infers.count(f"Bearer {TOKEN}") == infers.count(None) == 6  # ceil(178 / 32) each


def test_a_tolerated_canary_failure_compares_production_on_the_rows_answered(servers: dict, gate_of) -> None:  # type: ignore[no-untyped-def]
    """max_error_rate on the regression check: the canary's failed request leaves its 8 rows out, and production's
    outputs (all rows, interleaved) are compared on the same 170 rows."""
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    production = servers["production"].url
    checks_text = (REGRESSION % (production, production)).replace("    max_drop: 0.05\n", "    max_drop: 0.05\n"
                                                                   "    max_error_rate: 0.1\n")  # fmt: skip
    gate = gate_of(checks_text)
    models = ModelCache()
    models.get(gate.model)  # loaded before the fault: it hits the first infer request
    servers["canary"].fault = Fault("status", status=503, times=1)
    result = run_gate(gate, file="gate.yaml", models=models, stage=None)
    models.close()
    checks = {c.name: c for c in result.checks}
    regression = checks["no_worse_than_production"]
    assert regression.status == "passed" and regression.n == 170 and regression.value == 0.0, regression.message
    assert regression.details["requests"]["failed"] == 1 and regression.details["requests"]["failed_rows"][:8] == list(
        range(8)
    )
    assert regression.details["baseline_model"]["interleaved"] is True
    for name in ("accuracy", "same_answers_as_production"):  # no max_error_rate on them: not silently tolerated
        assert checks[name].status == "error", (name, checks[name].message)
        assert (checks[name].message or "").startswith("1 of 23 requests failed (http_5xx 1) and this check sets no")
