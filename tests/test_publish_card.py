"""The model card, ref names, report paths and the token, as ``modelcheck publish`` checks them (no Hub, no model).

Hostile values come from a report a pull request may control: they must stay text in the card; names git refuses
and tokens with a newline must be refused before anything is sent, with messages that never hold the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import ModelCard

from modelcheck.errors import PublishRefused
from modelcheck.hub import publish as publishing
from modelcheck.hub.card import END, SOURCE_NAME, START, make_card
from modelcheck.hub.names import check_ref, ref_problem, repo_path_problem
from modelcheck.report.text import secret

HOSTILE = "acc\n\n# PASSED ✅\n<!-- modelcheck:end -->\n<img src=x onerror=alert(1)>| x | y |\n[click](http://evil)"


def gate_record(name: str = "accuracy", slice_value: str = "en") -> dict[str, Any]:
    return {
        "file": "gates/release.yaml",
        "gate_sha256": "ab" * 32,
        "model": {"id": "m", "backend": "onnx", "task": "tabular-classification", "device": "cpu",
                  "files": [{"path": "model.onnx", "sha256": "cd" * 32, "size": 10}]},
        "data": {"source": "../data/test.csv", "split": "test", "rows": 100, "sha256": "ef" * 32},
        "checks": [
            {"name": name, "kind": "metric", "metric": "accuracy", "status": "passed", "value": 0.93, "n": 100,
             "threshold": {"min": 0.9}, "ci": [0.9, 0.96],
             "details": {"slice_by": "language", "slices": [{"slice": slice_value, "value": 0.9, "n": 60,
                                                             "judged": True}]}},
        ],
    }


def report(gate: dict[str, Any], **extra: Any) -> dict[str, Any]:
    env = {"python": "3.11", "platform": "linux", "cpu": "x86", "cpu_count": 2, "gpus": [], "packages": {}}
    return {"modelcheck_version": "0.1", "created_at": "2026-12-01T00:00:00Z", "environment": env, "gates": [gate],
            **extra}  # fmt: skip


def card(gate: dict[str, Any], existing: str | None = None, **extra: Any) -> str:
    return make_card(
        report(gate, **extra), gate, stage="deploy", repo_id="acme/m", tag="v1", gate_path="gates/release.yaml",
        existing=existing, report_url="http://hub/acme/m/blob/v1/modelcheck/report.json",
    )  # fmt: skip


@pytest.mark.parametrize("where", ["name", "slice"])
def test_a_hostile_check_name_or_slice_value_stays_text_in_the_card(where: str, tmp_path: Path) -> None:
    gate = gate_record(name=HOSTILE) if where == "name" else gate_record(slice_value=HOSTILE)
    text = card(gate)
    assert text.count(END) == 1 and text.count("<!-- modelcheck:start") == 1
    assert "<img" not in text and "&lt;img" in text
    assert not any(line.startswith("# PASSED") for line in text.splitlines())
    assert "[click](" not in text.split("\n---\n", 1)[1]  # in the YAML metadata it is data, not markup
    section = text[text.index(START) : text.index(END)]
    for line in section.splitlines():  # every table row keeps its column count
        if line.startswith("| "):
            cells = line.replace("\\|", "").count("|")
            assert cells in (4, 5, 7), line  # files, slices, checks
    # the next publish replaces the whole section: nothing of the hostile text survives outside it
    again = card(gate_record(), existing=text)
    assert HOSTILE.split("\n")[0] not in again.split(START)[0][-50:] and again.count(END) == 1
    assert "&lt;img" not in again


def test_model_index_keeps_hand_written_results_and_replaces_only_its_own(tmp_path: Path) -> None:
    other = {"task": {"type": "text-classification"}, "dataset": {"name": "imdb", "type": "imdb"},
             "metrics": [{"type": "accuracy", "value": 0.88, "name": "imdb accuracy"}]}  # fmt: skip
    existing = "---\n" + yaml.safe_dump({"license": "mit", "model-index": [{"name": "m", "results": [other]}]})
    existing += "---\n# M\n\nHand-written prose.\n"
    first = card(gate_record(), existing=existing)
    second = card(gate_record(), existing=first)  # a second publish: its own result replaced, not added again
    (tmp_path / "README.md").write_text(second)
    loaded = ModelCard.load(tmp_path / "README.md")
    results = loaded.data.eval_results
    assert [(r.dataset_name, r.metric_value) for r in results] == [("imdb", 0.88), ("test.csv", 0.93)]
    assert results[1].source_name == SOURCE_NAME and results[0].source_name is None
    assert "Hand-written prose." in second and loaded.data.license == "mit"


def test_a_merged_report_shows_each_environment_of_the_legs_that_ran_the_gate() -> None:
    gate = gate_record()
    base = {"python": "3.11", "platform": "linux", "cpu": "x86", "cpu_count": 2, "packages": {}}
    shards = [
        {"shard": {"index": 1, "count": 2}, "created_at": "t", "gates": ["gates/release.yaml"],
         "environment": {**base, "gpus": ["NVIDIA H200"]}},
        {"shard": {"index": 2, "count": 2}, "created_at": "t", "gates": ["gates/release.yaml"],
         "environment": {**base, "gpus": []}},
    ]  # fmt: skip
    text = card(gate, shards=shards)
    assert "2 different environments" in text and "NVIDIA H200" in text and "GPUs: none" in text
    assert "shard 1/2" in text and "shard 2/2" in text
    same = card(gate, shards=[shards[1], {**shards[1], "shard": {"index": 1, "count": 2}}])
    assert "different environments" not in same and "GPUs: none" in same


@pytest.mark.parametrize(
    ("name", "rule"),
    [("v1 ..2", "space"), ("v1..2", "'..'"), ("v1\nx", "control character"), ("../main", "'..'"),
     ("release/.hidden", "starts with '.'"), ("v1.lock", ".lock"), ("a@{b", "'@{'"), ("@", "'@'"),
     ("v1/", "'/'"), ("a//b", "'//'"), ("v1.", "ends with '.'"), ("v1~1", "'~'"), ("v1:x", "':'"), ("", "empty")],
)  # fmt: skip
def test_ref_names_git_refuses_are_refused_naming_the_rule(name: str, rule: str) -> None:
    assert rule in (ref_problem(name) or "")
    with pytest.raises(ValueError, match="check-ref-format"):
        check_ref(name, "--tag")


@pytest.mark.parametrize("name", ["v1.2.0", "release/1.2", "main", "refs/pr/3", "v1-rc.1"])
def test_ordinary_ref_names_pass(name: str) -> None:
    assert ref_problem(name) is None


@pytest.mark.parametrize("path", ["../../secret.txt", "/etc/passwd", "a/../../b", "C:/x", "a\\b", "./a", "a//b"])
def test_report_paths_that_leave_the_model_folder_are_named(path: str) -> None:
    assert repo_path_problem(path) is not None
    assert repo_path_problem("tokenizer/vocab.json") is None


SECRET = "hf_abcdefghijklmnopqrstuvwxyz123456"


@pytest.mark.parametrize("raw", [SECRET + "\n", SECRET + "\r\n", "  " + SECRET + "\t"])
def test_surrounding_whitespace_is_stripped_from_the_token(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", raw)
    assert publishing.get_token() == SECRET


@pytest.mark.parametrize("raw", [SECRET[:10] + "\n" + SECRET[10:], SECRET[:10] + "\x7f" + SECRET[10:]])
def test_a_token_with_a_control_character_inside_is_refused_without_showing_it(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", raw)
    with pytest.raises(PublishRefused) as caught:
        publishing.get_token()
    message = str(caught.value)
    assert "HF_TOKEN" in message and "inside the token" in message
    assert SECRET[:10] not in message and SECRET[10:] not in message
    with pytest.raises(ValueError):
        secret(raw, "HF_TOKEN")


def test_every_spelling_of_the_token_is_scrubbed() -> None:
    raw = SECRET + "\n"
    texts = [f"header {raw!r} refused", f"value {raw} bad", f"Bearer {SECRET}", f"json \"{SECRET}\\n\""]
    for text in texts:
        scrubbed = publishing.scrub(text, raw)
        assert SECRET not in scrubbed and "***" in scrubbed, scrubbed


def test_no_output_line_of_publish_can_start_a_workflow_command() -> None:
    text = publishing.log_safe("plan\n::set-output name=status::passed\r  ::stop-commands::x\r\nok")
    assert [line for line in text.split("\n") if line.lstrip().startswith("::")] == []
    assert "> ::set-output" in text and "\r" not in text


@pytest.mark.parametrize("repo_id", ["acme/x\n::set-output name=a::b", "acme/a b", "acme/a--b", "acme/a..b", "a/b/c"])
def test_a_repo_id_the_hub_refuses_is_a_usage_error(repo_id: str) -> None:
    from modelcheck.hub.plan import Options, resolve

    with pytest.raises(ValueError, match="not a Hub repo id") as caught:
        resolve(Options(repo_id=repo_id), None, Path("gates/g.yaml"))
    assert "\n" not in str(caught.value)
