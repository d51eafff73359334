"""text-generation (LLMs): exact match / contains / regex, prompts and chats, perplexity equal to a hand computation
with the model, stop strings, and the chat GPT-2 of tests/tiny_seq2seq.py judged end to end through pytest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import generation


def check(metric: str, **options: Any) -> CheckSpec:
    return CheckSpec(name="c", metric=metric, min=0.0, options=options)


def value(metric: str, texts: list[str], refs: list[list[str]] | None, **options: Any) -> float:
    return generation.row_statistics(check(metric, **options), refs, Outputs(texts=texts), ()).value()


def test_exact_match_and_contains_keep_their_values() -> None:
    texts = [" 6 7 ", "6  7", "it is 6 7.", "8"]
    refs = [["6 7"], ["6 7"], [" 6 7"], ["9"]]
    # today's rules: exact = both stripped and equal; contains = the stripped reference occurs in the output
    pairs = list(zip(texts, refs, strict=True))
    assert value("exact_match", texts, refs) == np.mean([t.strip() == r[0].strip() for t, r in pairs])
    assert value("contains", texts, refs) == np.mean([r[0].strip() in t for t, r in pairs])
    assert value("exact_match", texts, refs, normalize=["whitespace"]) == 0.5
    assert value("contains", ["The Answer: B"], [["answer: b"]], normalize=["lowercase"]) == 1.0
    assert value("exact_match", ["x"], [["y", " x"]]) == 1.0  # any of several references


def test_regex_searches_each_output() -> None:
    texts = ["Answer: B", "answer: b", "The answer is C", "Answer: E"]
    assert value("regex", texts, None, pattern=r"^Answer: [A-D]$") == 0.25
    assert value("regex", texts, None, pattern=r"(?i)answer") == 1.0
    with pytest.raises(CheckError, match=r"pattern '\(' is not a regular expression"):
        value("regex", texts, None, pattern="(")


def test_perplexity_pools_log_likelihoods_over_tokens() -> None:
    scored = np.array([[-2.0, 2.0], [-6.0, 3.0], [0.0, 1.0]])
    stats = generation.row_statistics(check("perplexity"), None, Outputs(texts=["", "", ""], token_logprobs=scored), ())
    assert stats.value() == pytest.approx(np.exp(8.0 / 6.0))
    assert stats.value(np.array([1])) == pytest.approx(np.exp(2.0))
    assert stats.resampled(np.array([[0, 0, 0], [2, 2, 2]])) == pytest.approx([np.exp(1.0), 1.0])
    with pytest.raises(CheckError, match="perplexity needs the model's log-likelihoods"):
        generation.row_statistics(check("perplexity"), None, Outputs(texts=[""]), ())


def test_prompts_texts_and_chats() -> None:
    chat = [{"role": "user", "content": "3 4"}]
    values = ["plain", json.dumps(chat), chat, " [ " + json.dumps(chat)[1:], "[not a chat]", '[{"x": 1}] stays text']
    expected = ["plain", chat, chat, chat, "[not a chat]", '[{"x": 1}] stays text']
    assert generation.prompts(values, column="prompt") == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, r"data.csv: input column 'prompt' data row 2 \(.*?\) holds no value; a prompt is a string or a chat"),
        ('[{"role": "user"}]', r"input column 'prompt' data row 2 \(.*?\)"
            r", message 0 is .*needs a string \"role\".* \"content\""),
        ([{"role": "user", "content": 3}], r"data row 2 \(.*?\), message 0"),
        ([], r"data row 2 \(.*?\) is an empty chat"),
    ],
)
def test_malformed_prompts_name_the_row_and_column(bad: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        generation.prompts(["fine", bad], column="prompt", source="data.csv")


def test_empty_reference_names_the_row() -> None:
    frame = pd.DataFrame({"answer": ["6 7", ""]})
    with pytest.raises(DataError, match=r"label column 'answer' data row 2 \(.*?\) has an empty reference"):
        generation.targets("text-generation", "answer", frame, ())


# -- the chat GPT-2 -------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tiny_models  # noqa: E402
import tiny_seq2seq  # noqa: E402
from modelcheck_transformers import TransformersBackend  # noqa: E402

from modelcheck.gatefile import ModelSpec  # noqa: E402


def chats() -> list[tuple[list[dict[str, str]], str]]:
    """The counting examples as chats: a system message, then the numbers as the user's message."""
    return [
        ([{"role": "system", "content": "count on"}, {"role": "user", "content": p[len("count ") : -len(" ->")]}], a)
        for p, a in tiny_models.count_examples()
    ]


def rendered(tokenizer: Any, chat: list[dict[str, str]]) -> str:
    return str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))


def hand_logprob(model: Any, tokenizer: Any, prompt: str, reference: str) -> tuple[float, int]:
    """log p(reference | prompt) summed over the reference's tokens, one row at a time, no padding."""
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    tail = tokenizer(reference, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + tail])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(float(logprobs[len(head) + i - 1, t]) for i, t in enumerate(tail)), len(tail)


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_chat_template_stop_strings_and_perplexity_equal_a_hand_computation() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_seq2seq.shared("chat-gpt2")
    spec = ModelSpec(id="chat", source=str(folder), task="text-generation", device="cpu", max_new_tokens=4)
    loaded = TransformersBackend().load(spec)
    rows = chats()
    try:
        outputs = loaded.predict([(c, a) for c, a in rows], batch_size=7)
    finally:
        loaded.close()
    assert outputs.texts == [a for _, a in rows]  # the template rendered "count 3 4 ->": the model answers
    assert outputs.generation == {"decoding": "greedy", "max_new_tokens": 4, "stop": [], "seed": 0}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    by_hand = [hand_logprob(model, tokenizer, rendered(tokenizer, c), a) for c, a in rows]
    np.testing.assert_allclose(np.asarray(outputs.token_logprobs), np.asarray(by_hand), rtol=1e-5, atol=1e-5)

    stopped = TransformersBackend().load(
        ModelSpec(id="s", source=str(folder), task="text-generation", device="cpu", max_new_tokens=4, stop=(" 7",))
    )
    try:
        assert stopped.predict([c for c, _ in rows[:3]], batch_size=2).texts == ["2 3", "3 4", "4 5"]
        assert stopped.predict([[{"role": "user", "content": "4 5"}]], batch_size=1).texts == ["6"]
        with pytest.raises(
            DataError, match=r"prompt \(data.input\) at data row 2 \(.*?\) has \d+ tokens, more than the 28 the model"
        ):
            stopped.predict(["count 1 ->", "count " + "1 " * 40 + "->"], batch_size=2)
        with pytest.raises(DataError, match=r"data row 1 \(.*?\) is a text prompt among chats"):
            stopped.predict(["count 1 ->", rows[0][0]], batch_size=2)
    finally:
        stopped.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_chat_without_a_template_is_a_clear_error() -> None:
    source = str(tiny_models.shared("gpt2"))
    loaded = TransformersBackend().load(
        ModelSpec(id="g", source=source, task="text-generation", device="cpu", max_new_tokens=2)
    )
    try:
        with pytest.raises(DataError, match=r"the prompts are chats \(data row 1 \(.*?\)"
            r"\) but the tokenizer .* no chat template"):
            loaded.predict([chats()[0][0]], batch_size=1)
    finally:
        loaded.close()


GATE = """\
version: 1
model:
  source: ../models/chat
  task: text-generation
  device: cpu
  max_new_tokens: 4
data:
  source: ../data/chats.csv
  input: chat
  label: answer
checks:
  - name: exact
    metric: exact_match
    normalize: [whitespace]
    min: 0.95
  - name: contains
    metric: contains
    min: 0.95
  - name: two_numbers
    metric: regex
    pattern: '^\\d+ \\d+$'
    min: 0.95
  - name: rouge
    metric: rouge1
    min: 0.95
  - name: chrf
    metric: chrf
    min: 90
  - name: perplexity
    metric: perplexity
    max: 1.5
  - name: no_regression
    kind: regression
    metric: perplexity
    baseline: ../baselines/chat.json
    max_drop: 0.1
    on_missing: pass
"""


def chat_project(pytester: pytest.Pytester, model: str) -> None:
    shutil.copytree(tiny_seq2seq.shared(model), pytester.path / "models" / "chat")
    frame = pd.DataFrame({"chat": [json.dumps(c) for c, _ in chats()], "answer": [a for _, a in chats()]})
    (pytester.path / "data").mkdir()
    frame.to_csv(pytester.path / "data" / "chats.csv", index=False)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "chat.yaml").write_text(GATE, encoding="utf-8")


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_chat_gate_end_to_end(pytester: pytest.Pytester) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    chat_project(pytester, "chat-gpt2")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=7)
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    folder = pytester.path / "models" / "chat"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    scored = np.array([hand_logprob(model, tokenizer, rendered(tokenizer, c), a) for c, a in chats()])
    assert checks["perplexity"]["value"] == pytest.approx(np.exp(-scored[:, 0].sum() / scored[:, 1].sum()), rel=1e-6)
    assert checks["exact"]["details"]["normalize"] == ["whitespace"]
    assert checks["two_numbers"]["details"]["pattern"] == r"^\d+ \d+$"
    decoding = {"decoding": "greedy", "max_new_tokens": 4, "stop": [], "seed": 0}
    assert checks["perplexity"]["details"]["generation"] == checks["rouge"]["details"]["generation"] == decoding


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once", "one_torch_thread")
def test_untrained_chat_model_fails_and_bad_rows_error(pytester: pytest.Pytester) -> None:
    chat_project(pytester, "chat-gpt2-untrained")
    result = pytester.runpytest("--modelcheck")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 5, result.stdout.str()
    result.stdout.fnmatch_lines(["*perplexity * > max 1.5*"])

    frame = pd.read_csv(pytester.path / "data" / "chats.csv")
    frame.loc[3, "chat"] = '[{"role": "user"}]'
    frame.to_csv(pytester.path / "data" / "chats.csv", index=False)
    result = pytester.runpytest("--modelcheck")
    result.stdout.fnmatch_lines(["*input column 'chat' data row 4 (counting from 1*), message 0 *"])


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"metric": "bleu", "min": 150}, r"min 150 is out of range for bleu, whose values lie in \[0, 100\]"),
        ({"metric": "perplexity", "max": 0.5}, r"max 0.5 is out of range for perplexity"),
        ({"metric": "regex", "min": 0.5}, r"metric regex needs pattern"),
        ({"metric": "contains", "min": 0.5, "pattern": "x"}, r"pattern is only used by metric regex"),
        ({"metric": "exact_match", "min": 0.5, "normalize": ["case"]}, r"normalize"),
    ],
)
def test_gate_file_mistakes_are_refused(tmp_path: Path, check: dict[str, Any], message: str) -> None:
    import yaml

    from modelcheck.errors import GateFileError
    from modelcheck.gatefile import load_gate

    document = {
        "version": 1,
        "model": {"source": "./model", "task": "text-generation"},
        "data": {"source": "data.csv", "input": "prompt", "label": "answer"},
        "checks": [{"name": "c", **check}],
    }
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(GateFileError, match=message):
        load_gate(tmp_path / "gate.yaml")
