"""The openai backend against a real LitServe server (OpenAI chat completions and embeddings) on 127.0.0.1.

A tiny GPT-2 trained in the session and a tiny BERT embedder are judged by the same gate file once
as folders (transformers backend) and once behind the server: exact_match and spearman agree
(generation exactly; embeddings travel as JSON floats, so to 1e-6 per value, and the rank metric
exactly). Faults go through the fault proxy in front of the server.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from importlib.util import find_spec

import pytest
from endpoint_servers import Fault, FaultProxy, start_litserve

from modelcheck.report.document import read_report

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("frameworks_imported_once"),  # pytester drops modules first imported under it
    pytest.mark.skipif(find_spec("litserve") is None, reason="needs litserve (dev extra)"),
]

TOKEN = "sk-test-5e1d9c03b7aa"
GATES = {
    "count": """\
version: 1
model:
  id: counter
  source: ${{GEN_SOURCE}}
  backend: ${{GEN_BACKEND}}
  task: text-generation
  max_new_tokens: 4
  batch_size: 1
{extra}
data:
  source: count.csv
  input: prompt
  label: answer
checks:
  - name: exact
    metric: exact_match
    min: 0.5
""",
    "pairs": """\
version: 1
model:
  id: embedder
  source: ${{EMB_SOURCE}}
  backend: ${{EMB_BACKEND}}
  task: feature-extraction
  batch_size: 8
{extra}
data:
  source: pairs.csv
  input: [a, b]
  label: score
checks:
  - name: rank
    metric: spearman
    min: -1.0
""",
}
ENDPOINT = """\
  headers:
    Authorization: "Bearer ${MC_TEST_TOKEN}"
  timeout: 20
  retries: 1
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    import tiny_models

    folder = tmp_path_factory.mktemp("openai")
    gpt2 = tiny_models.build_gpt2(folder / "gpt2")
    embedder = tiny_models.build_embedder(folder / "embedder")
    tiny_models.write_count_data(folder / "count.csv")
    texts = tiny_models.sentences(40, seed=3)
    with (folder / "pairs.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "score"])
        writer.writerows((texts[i], texts[i + 20], i % 5) for i in range(20))
    with start_litserve(folder / "server", generator=gpt2, embedder=embedder) as url, FaultProxy(url) as proxy:
        yield {"folder": folder, "gpt2": gpt2, "embedder": embedder, "url": url, "proxy": proxy}


@pytest.fixture()
def project(pytester: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    (pytester.path / "gates").mkdir()
    for name in ("count.csv", "pairs.csv"):
        (pytester.path / "gates" / name).write_bytes((served["folder"] / name).read_bytes())
    monkeypatch.setenv("MC_TEST_TOKEN", TOKEN)
    monkeypatch.chdir(pytester.path)
    served["proxy"].fault = None
    return pytester


def judge(project: pytest.Pytester, name: str, *, endpoint: bool) -> tuple[dict, str]:
    for old in (project.path / "gates").glob("*.yaml"):
        old.unlink()
    (project.path / "gates" / f"{name}.yaml").write_text(GATES[name].format(extra=ENDPOINT if endpoint else ""))
    result = project.runpytest_subprocess("--modelcheck", "--modelcheck-report", "out.json", "--junitxml", "j.xml")
    shown = "\n".join(result.outlines + result.errlines)
    texts = [shown, (project.path / "out.json").read_text(), (project.path / "j.xml").read_text()]
    assert all(TOKEN not in text for text in texts)
    return read_report(project.path / "out.json")["gates"][0], shown


def value(gate: dict, check: str) -> float:
    return next(c for c in gate["checks"] if c["name"] == check)["value"]


def test_generation_and_embeddings_judged_alike_on_disk_and_served(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEN_SOURCE", str(served["gpt2"]))
    monkeypatch.setenv("GEN_BACKEND", "transformers")
    local, _ = judge(project, "count", endpoint=False)
    monkeypatch.setenv("GEN_SOURCE", str(served["url"]))
    monkeypatch.setenv("GEN_BACKEND", "openai")
    remote, _ = judge(project, "count", endpoint=True)
    assert value(local, "exact") > 0.5  # the trained counter answers
    assert value(remote, "exact") == value(local, "exact")
    assert remote["model"]["endpoint"]["protocol"] == "openai"
    assert remote["model"]["endpoint"]["requests"] == remote["data"]["rows"]  # one chat request per prompt
    assert remote["model"]["endpoint"]["server"]["server"] == "uvicorn"

    monkeypatch.setenv("EMB_SOURCE", str(served["embedder"]))
    monkeypatch.setenv("EMB_BACKEND", "transformers")
    local, _ = judge(project, "pairs", endpoint=False)
    monkeypatch.setenv("EMB_SOURCE", str(served["url"]))
    monkeypatch.setenv("EMB_BACKEND", "openai")
    remote, _ = judge(project, "pairs", endpoint=True)
    assert value(remote, "rank") == pytest.approx(value(local, "rank"), abs=1e-9)
    assert remote["model"]["endpoint"]["requests"] == 2 * -(-20 // 8)  # both sides of the pairs, 8 texts a request
    assert remote["model"]["files"] == [] and local["model"]["files"]


def test_embeddings_match_the_local_model_to_float32(served: dict) -> None:
    import numpy as np
    import tiny_models

    from modelcheck.gatefile import ModelSpec
    from modelcheck.gatefile.spec import EndpointSpec
    from modelcheck.models.backends import get_backend

    texts = tiny_models.sentences(12, seed=5)
    local = get_backend("transformers").load(
        ModelSpec(id="e", source=str(served["embedder"]), task="feature-extraction", device="cpu")
    )
    spec = ModelSpec(id="e", source=str(served["url"]), backend="openai", task="feature-extraction",
                     endpoint=EndpointSpec(url=str(served["url"]), model="e"))  # fmt: skip
    remote = get_backend("openai").load(spec)
    a = local.predict(texts, batch_size=5).embeddings
    b = remote.predict(texts, batch_size=5).embeddings
    assert a is not None and b is not None and a.shape == b.shape
    np.testing.assert_allclose(b, a, atol=1e-6)
    record = remote.endpoint_record()
    assert record["requests"] == 3 and record["failures"] == {}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("missing_rows"), "missing_rows"),
        (Fault("status", status=403), "http_403"),
        (Fault("status", status=500, times=1), None),
    ],
    ids=["missing_rows", "403", "one-500-retried"],
)
def test_embedding_faults(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch, fault: Fault, kind: str | None
) -> None:
    proxy = served["proxy"]
    proxy.fault = fault
    monkeypatch.setenv("EMB_SOURCE", proxy.url)
    monkeypatch.setenv("EMB_BACKEND", "openai")
    started = time.monotonic()
    remote, shown = judge(project, "pairs", endpoint=True)
    assert time.monotonic() - started < 60
    check = remote["checks"][0]
    endpoint = remote["model"]["endpoint"]
    if kind is None:
        assert check["status"] == "passed" and endpoint["failures"] == {"http_5xx": 1} and endpoint["retries"] == 1
        return
    assert check["status"] == "error" and endpoint["failures"][kind] >= 1  # requests in flight fail alike
    assert proxy.url in check["message"] and "Traceback" not in shown
    if kind == "http_403":
        assert "header Authorization (from $MC_TEST_TOKEN)" in check["message"]


def test_max_error_rate_over_generation_requests(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 chat requests answered 500 for good (no retries), one per prompt: exact_match is judged on the other
    prompts, and equals the local model's on exactly those rows; the rate fails a tighter check."""
    import numpy as np

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    proxy = served["proxy"]
    gates = project.path / "gates"
    text = GATES["count"].format(extra=ENDPOINT.replace("retries: 1", "retries: 0"))
    text += "    max_error_rate: 0.5\n"
    text += "  - name: strict\n    metric: exact_match\n    min: 0.5\n    max_error_rate: 0.01\n"
    (gates / "count.yaml").write_text(text)
    monkeypatch.setenv("GEN_BACKEND", "openai")
    monkeypatch.setenv("GEN_SOURCE", proxy.url)
    served_gate = load_gate(gates / "count.yaml")
    proxy.fault = Fault("status", status=500, times=3)
    models = ModelCache()
    try:
        remote = run_gate(served_gate, file="gates/count.yaml", models=models, stage=None)
        from modelcheck.gatefile import ModelSpec

        spec = ModelSpec(id="gpt2", source=str(served["gpt2"]), task="text-generation", device="cpu", max_new_tokens=4)
        local_model = models.get(spec)
        rows = remote.data["rows"]
        with (gates / "count.csv").open() as f:
            data = list(csv.DictReader(f))
        texts = local_model.predict([row["prompt"] for row in data], batch_size=1).texts
    finally:
        models.close()
    exact, strict = remote.checks
    assert exact.status == "passed", exact.message
    assert exact.details["requests"]["failed_by_kind"] == {"http_5xx": 3} and exact.details["requests"]["sent"] == rows
    assert exact.n == rows - 3
    left_out = exact.details["requests"]["failed_rows"]
    assert len(left_out) == 3
    # the local model on the rows the server answered (the metric's own normalisation: exact after strip)
    right = [texts[i].strip() == data[i]["answer"].strip() for i in range(rows) if i not in left_out]
    assert exact.value == pytest.approx(float(np.mean(right)))
    assert strict.status == "failed" and strict.message.startswith(
        f"error rate {3 / rows:.3g} > max_error_rate 0.01 (3 of {rows} requests failed (http_5xx 3))"
    )


def test_generation_under_load_streams_and_reports_ttft_and_tpot(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed chat completions at concurrency 2 against LitServe, whose app sends one event per generated token:
    the first token arrives before the answer ends, every request reports the 4 tokens the server counted, and
    the figures agree with each other (TPOT = (latency - TTFT) / 3 at the median request, roughly)."""
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    gates = project.path / "gates"
    text = GATES["count"].format(extra=ENDPOINT)
    text += ("  - name: p95_under_load\n    kind: latency\n    concurrency: 2\n    max_ms: 20000\n    inputs: fixed\n"
             "    min_iterations: 16\n    min_time: 0.5\n    max_time: 30\n")  # fmt: skip
    (gates / "count.yaml").write_text(text)
    monkeypatch.setenv("GEN_BACKEND", "openai")
    monkeypatch.setenv("GEN_SOURCE", served["url"])
    models = ModelCache()
    try:
        result = run_gate(load_gate(gates / "count.yaml"), file="gates/count.yaml", models=models, stage=None)
    finally:
        models.close()
    check = next(c for c in result.checks if c.name == "p95_under_load")
    assert check.status == "passed", check.message
    latency = check.details["latency"]
    assert latency["request"] == "chat completions, streamed" and latency["answered"] == check.n >= 16
    # inputs: fixed: every request sends the first prompt; the server counts the tokens the local model makes
    from modelcheck.gatefile import ModelSpec
    from modelcheck.models.backends import get_backend

    local = get_backend("transformers").load(
        ModelSpec(id="g", source=str(served["gpt2"]), task="text-generation", device="cpu", max_new_tokens=4)
    )
    with (gates / "count.csv").open() as f:
        first_prompt = next(csv.DictReader(f))["prompt"]
    produced = local.predict([first_prompt], batch_size=1).output_tokens
    assert produced is not None
    tokens = int(produced[0])
    assert tokens >= 2 and latency["output_tokens_per_request"] == tokens  # from the stream's usage
    ttft, p50 = latency["ttft_ms"], latency["percentiles_ms"]
    assert 0 < ttft["p50"] < p50["p50"]  # the first token comes before the last
    assert latency["tpot_ms"]["p50"] > 0
    # each request's decoding (first token to last) is part of its latency, so the medians keep that order (a
    # difference of medians is no median of differences: the old rel=0.5 comparison failed under CI's load)
    assert latency["tpot_ms"]["p50"] * (tokens - 1) <= p50["p50"] * (1 + 1e-9)
    assert latency["output_tokens_per_s"] == pytest.approx(tokens * check.n / latency["timed_wall_s"])
    assert "TTFT p50 " in check.message and "TPOT p50 " in check.message and "output tokens/s" in check.message
    # the gate's own exact-match pass is not streamed: one plain request per prompt, as before
    assert next(c for c in result.checks if c.name == "exact").status == "passed"


def test_a_load_check_on_the_model_in_files_is_skipped(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    gates = project.path / "gates"
    text = GATES["count"].format(extra="")
    text += "  - name: p95_under_load\n    kind: latency\n    concurrency: 2\n    max_ms: 100\n"
    text += "    max_error_rate: 0.1\n"
    (gates / "count.yaml").write_text(text)
    monkeypatch.setenv("GEN_BACKEND", "transformers")
    monkeypatch.setenv("GEN_SOURCE", str(served["gpt2"]))
    models = ModelCache()
    try:
        result = run_gate(load_gate(gates / "count.yaml"), file="gates/count.yaml", models=models, stage=None)
    finally:
        models.close()
    check = next(c for c in result.checks if c.name == "p95_under_load")
    assert check.status == "skipped"
    assert check.message.startswith("concurrency 2: a load test needs a model behind a server")


def test_max_error_rate_over_embedding_pairs(
    project: pytest.Pytester, served: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One of the 6 embeddings requests (3 batches of each side of the pairs) fails for good: its rows are left out
    on both sides, and spearman is the local embedder's on the remaining pairs (to float32 transport)."""
    import numpy as np
    from scipy import stats

    from modelcheck.gatefile import ModelSpec, load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    proxy = served["proxy"]
    gates = project.path / "gates"
    text = GATES["pairs"].format(extra=ENDPOINT.replace("retries: 1", "retries: 0")) + "    max_error_rate: 0.2\n"
    (gates / "pairs.yaml").write_text(text)
    monkeypatch.setenv("EMB_BACKEND", "openai")
    monkeypatch.setenv("EMB_SOURCE", proxy.url)
    gate = load_gate(gates / "pairs.yaml")
    proxy.fault = Fault("status", status=500, times=1)
    models = ModelCache()
    try:
        result = run_gate(gate, file="gates/pairs.yaml", models=models, stage=None)
        local = models.get(ModelSpec(id="e", source=str(served["embedder"]), task="feature-extraction", device="cpu"))
        with (gates / "pairs.csv").open() as f:
            data = list(csv.DictReader(f))
        outputs = local.predict([(row["a"], row["b"]) for row in data], batch_size=8)
    finally:
        models.close()
    (check,) = result.checks
    requests = check.details["requests"]
    assert check.status == "passed", check.message
    assert requests["sent"] == 6 and requests["failed_by_kind"] == {"http_5xx": 1}
    left_out = requests["failed_rows"]
    assert left_out in (list(range(0, 8)), list(range(8, 16)), list(range(16, 20)))  # one batch of 8, 8 or 4
    kept = [i for i in range(len(data)) if i not in left_out]
    a, b = outputs.embeddings[kept], outputs.pair_embeddings[kept]
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    expected = stats.spearmanr(cosine, [float(data[i]["score"]) for i in kept]).statistic
    assert check.n == len(kept) and check.value == pytest.approx(expected, abs=1e-6)


def test_a_stream_retried_counts_only_the_try_that_answered() -> None:
    """What a broken try streamed before it failed is forgotten when the retry begins (``events(None)``)."""
    from modelcheck.gatefile import ModelSpec
    from modelcheck.gatefile.spec import EndpointSpec
    from modelcheck.models.endpoint import Endpoint
    from modelcheck.models.endpoint_load import StreamReader

    url = "http://127.0.0.1:9"
    spec = ModelSpec(
        id="m", source=url, backend="openai", task="text-generation", endpoint=EndpointSpec(url=url, model="m")
    )
    reader = StreamReader(Endpoint(spec, "openai"), chat=True)
    chunk = {"choices": [{"delta": {"content": "a"}}]}
    reader.event(chunk)
    first_try = reader.first_at
    reader.event(None)
    time.sleep(0.01)
    reader.event(chunk)
    reader.event(chunk)
    reader.event({"choices": [], "usage": None})
    answered = reader.answered()
    assert answered.output_tokens == 2 and first_try is not None and answered.first_token_at is not None
    assert answered.first_token_at > first_try
    reader.event({"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": {"completion_tokens": 5}})
    assert reader.answered().output_tokens == 5  # the server's count, where it sends one
