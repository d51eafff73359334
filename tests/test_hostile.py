"""Hostile and broken input: never a traceback, never a hang, a message naming the place, the documented
exit status, and nothing already measured lost.

The corpus is generated here: malformed and hostile gate files (alias bombs, deep nesting, duplicate keys,
FIFOs, NUL bytes, huge files and paths, numbers out of range), hypothesis-generated gate documents through
``modelcheck validate``, broken data files, untrusted reports for ``baseline update``, and the CLI's own
error paths.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelcheck.cli import EXIT_INTERNAL, EXIT_USAGE, main
from modelcheck.errors import DataError, GateFileError, ReportError
from modelcheck.gatefile import load_gate
from modelcheck.gatefile.parse import MAX_DEPTH, MAX_NODES
from modelcheck.gatefile.source import MAX_GATE_BYTES
from modelcheck.models.backends import Outputs
from modelcheck.report.baselines import save_outputs, update_baselines
from modelcheck.report.document import build_report, read_report, write_report
from modelcheck.report.files import TEMP_SUFFIX, atomic_write
from modelcheck.report.results import CheckResult, GateResult
from modelcheck.run.inputs import label_ids

VALID = """\
version: 1
model:
  id: m
  source: ./model
data:
  source: ./data.csv
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
"""


def validate(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["validate", str(path)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def with_check(extra: str) -> str:
    return VALID + extra


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n" + VALID


# name -> (gate file text, what the message must say, the line it must name or None)
CORPUS: dict[str, tuple[str, str, int | None]] = {
    "duplicate key weakens a bound": (
        VALID + "    min: 0.0\n",
        "duplicate key 'min' at lines 12 and 13",
        13,
    ),
    "duplicate top-level key": (VALID + "version: 1\n", "duplicate key 'version' at lines 1 and 13", 13),
    "alias bomb": (_bomb(), f"more than {MAX_NODES:,} values once its aliases", None),
    "deep nesting": ("version: 1\nx: " + "[" * 1000 + "]" * 1000 + "\n", "nest", 2),
    "deep mappings": ("x: " + "{a: " * (MAX_DEPTH + 5) + "1" + "}" * (MAX_DEPTH + 5) + "\n", "deeper than", 1),
    "recursive alias": ("x: &a [*a]\n" + VALID, "refers to the value that holds it", 1),
    "undefined alias": ("x: *nope\n" + VALID, "names no anchor", 1),
    "two documents": (VALID + "---\n" + VALID, "more than one YAML document", 13),
    "NaN bound": (with_check("  - {name: m, kind: memory, max_mb: .nan}\n"), "not a finite number", 13),
    "infinite bound": (with_check("  - {name: m, kind: memory, max_mb: .inf}\n"), "not a finite number", 13),
    "overflowing float": (with_check("  - {name: m, kind: memory, max_mb: 1.0e+999}\n"), "not a finite number", 13),
    "numeric stage key": (VALID + "stages:\n  1: [accuracy]\n", "key '1' is read as a number", 14),
    "boolean key": (VALID.replace("  label: label\n", "  yes: label\n"), "read as a boolean", 8),
    "null key": (VALID + "~: 1\n", "read as null", 13),
    "list as key": (VALID + "? [a, b]\n: 1\n", "plain name", 13),
    "threads 1e23": (
        with_check("  - {name: l, kind: latency, max_ms: 5, threads: 1.0e+23}\n"),
        "threads must be of type integer",
        13,
    ),
    "threads too many": (with_check("  - {name: l, kind: latency, max_ms: 5, threads: 100000}\n"), "<= 1024", 13),
    "integral float batch size": (
        VALID.replace("  source: ./model\n", "  source: ./model\n  batch_size: 32.0\n"),
        "batch_size must be of type integer",
        5,
    ),
    "negative seed": (
        with_check("  - {name: r, kind: regression, metric: accuracy, baseline: b.json, max_drop: 0.01, seed: -1}\n"),
        "seed -1 is out of range",
        13,
    ),
    "huge seed": (
        with_check(
            "  - {name: r, kind: regression, metric: accuracy, baseline: b.json, max_drop: 0.01, seed: 99999999999}\n"
        ),
        "out of range",
        13,
    ),
    "a billion resamples": (
        with_check(
            "  - {name: r, kind: regression, metric: accuracy, baseline: b.json, max_drop: 0.01, "
            "resamples: 1000000000}\n"
        ),
        "resamples 1000000000 is out of range",
        13,
    ),
    "timing an hour and more": (
        with_check("  - {name: l, kind: latency, max_ms: 5, max_time: 1.0e+9}\n"),
        "max_time 1000000000.0 is out of range",
        13,
    ),
    "stage name with a space": (VALID + 'stages:\n  "bad stage": [accuracy]\n', "stage name 'bad stage'", 14),
    "date where a number goes": (VALID.replace("min: 0.9", "min: 2001-01-01"), "min must be of type number", 12),
    "impossible date": (VALID + "when: 2001-13-01\n", "month must be in 1..12", 13),
    "python object tag": (VALID + "x: !!python/object/apply:os.system [echo hi]\n", "invalid YAML", 13),
    "unknown local tag": (VALID.replace("min: 0.9", "min: !secret 0.9"), "invalid YAML", 12),
    "unclosed ${": (VALID.replace("./model", "${MODEL_DIR"), "is not closed", 4),
    "${ without a name": (VALID.replace("./model", "${1}"), "not followed by a variable name", 4),
    "unset variable": (
        VALID.replace("./model", "${MODELCHECK_HOSTILE_UNSET}"),
        "environment variable MODELCHECK_HOSTILE_UNSET is not set",
        4,
    ),
    "nested defaults too deep": (
        VALID.replace("./model", "${A1:-" * 12 + "x" + "}" * 12),
        "deeper than 8 levels",
        4,
    ),
    "5,000-character source": (VALID.replace("./model", "./" + "a" * 5000), "at most 4096", 4),
    "component too long": (VALID.replace("./model", "./" + "a" * 300 + "/" + "b" * 300), "cannot be resolved", 4),
    "NUL in a source": (VALID.replace("./model", '"./mo\\0del"'), "NUL byte", 4),
    "unknown home folder": (VALID.replace("./model", "~modelcheck-no-such-user/m"), "cannot be resolved", 4),
    "model id with a path": (VALID.replace("id: m", "id: ../../escaped"), "id '../../escaped' is not valid", 3),
    "top level is a list": ("- 1\n- 2\n", "the top level is a list", 1),
    "top level is a string": ("just text\n", "the top level is a string", 1),
    "empty file": ("", "the file is empty", None),
    "only comments": ("# nothing\n" * 10, "the file is empty", None),
    "tabs": (VALID.replace("  source: ./model", "\tsource: ./model"), "invalid YAML", 4),
    "long key": (VALID + "k" * 1000 + ": 1\n", "unknown key 'kkkk", 13),
    "huge key": (VALID + "k" * 100_000 + ": 1\n", "invalid YAML", 13),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_gate_file_is_one_clear_message(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text, expected, line = CORPUS[name]
    for variable in ("A1", "MODEL_DIR", "MODELCHECK_HOSTILE_UNSET"):
        monkeypatch.delenv(variable, raising=False)
    gate = tmp_path / "gate.yaml"
    gate.write_text(text, encoding="utf-8")
    started = time.monotonic()
    status, output = validate(gate, capsys)
    assert time.monotonic() - started < 5, f"{name} took {time.monotonic() - started:.1f} s"
    assert status == EXIT_USAGE, output
    assert "Traceback" not in output
    assert expected in output, output
    assert f"{gate}" in output
    if line is not None:
        assert f"{gate}:{line}" in output, output
    assert len(output) < 2000, "messages quote values, never whole documents"


def test_duplicate_key_error_names_both_lines_and_place(tmp_path: Path) -> None:
    gate = tmp_path / "g.yaml"
    gate.write_text(VALID + "    min: 0.0\n")
    with pytest.raises(GateFileError) as raised:
        load_gate(gate)
    assert raised.value.line == 13
    assert raised.value.json_path == "$.checks[0].min"


def test_nested_env_defaults_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTER", raising=False)
    monkeypatch.delenv("INNER", raising=False)
    gate = tmp_path / "g.yaml"
    gate.write_text(VALID.replace("./model", "${OUTER:-${INNER:-./fallback}}"))
    assert load_gate(gate).model.source == str(tmp_path / "fallback")
    monkeypatch.setenv("INNER", str(tmp_path / "inner"))
    assert load_gate(gate).model.source == str(tmp_path / "inner")
    monkeypatch.setenv("OUTER", "${INNER}")  # a value from the environment is used as is, never expanded again
    assert load_gate(gate).model.source.endswith("${INNER}")


def test_merge_keys_still_work(tmp_path: Path) -> None:
    gate = tmp_path / "g.yaml"
    gate.write_text(
        VALID.replace("checks:\n", "x-bound: &bound {metric: accuracy, min: 0.9}\nchecks:\n").replace(
            "  - name: accuracy\n    metric: accuracy\n    min: 0.9\n", "  - {<<: *bound, name: accuracy}\n"
        )
    )
    with pytest.raises(GateFileError, match="unknown key 'x-bound'"):
        load_gate(gate)  # anchors live in the document itself; the merge is read, the stray key is named


def test_file_too_large_is_refused_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = tmp_path / "big.yaml"
    with gate.open("w") as handle:
        handle.write(VALID)
        comment = "#" + "x" * 1023 + "\n"
        for _ in range(50 * 1024):  # 50 MiB of comments
            handle.write(comment)
    started = time.monotonic()
    status, output = validate(gate, capsys)
    assert time.monotonic() - started < 2
    assert status == EXIT_USAGE
    assert f"larger than {MAX_GATE_BYTES // 1024} KiB" in output


def test_fifo_as_gate_file_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "gate.yaml"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "modelcheck.cli", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_USAGE
    assert "is a FIFO" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "path",
    ["gate\0.yaml", "x" * 5000 + ".yaml", "a" * 300 + "/gate.yaml"],
    ids=["NUL byte", "5,000 characters", "component too long"],
)
def test_unusable_gate_paths(path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, output = validate(tmp_path / path, capsys)
    assert status == EXIT_USAGE
    assert "Traceback" not in output
    assert "error" in output


def test_symlink_loop_as_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    gate = tmp_path / "gate.yaml"
    gate.write_text(VALID.replace("./model", "./loop/model"))
    status, output = validate(gate, capsys)
    assert status == EXIT_USAGE
    assert f"{gate}:4 at $.model.source" in output
    assert "cannot be resolved" in output


def test_gate_folder_with_a_symlink_loop_and_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "pipe.yaml")
    status, output = validate(tmp_path, capsys)  # the FIFO is not a file to read; the loop is not followed
    assert status == 0, output
    assert output.count("ok    ") == 1


# -- generated gate documents ---------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["all", "accuracy", "latency", "memory", "regression", "parity", "${X:-${Y}}", "../..", "~"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_KEYS = [
    ("model", "source"), ("model", "id"), ("model", "threads"), ("model", "batch_size"), ("model", "device"),
    ("data", "input"), ("data", "limit"), ("checks",), ("stages",), ("version",), ("publish",), ("model",),
]  # fmt: skip


@st.composite
def _gate_documents(draw: st.DrawFn) -> Any:
    document: dict[str, Any] = yaml.safe_load(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(_KEYS))
        target = document
        for part in where[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[where[-1]] = draw(_values)
    if draw(st.booleans()):
        document["checks"] = [
            {"name": draw(st.text(max_size=8)) or "c", **draw(st.dictionaries(st.sampled_from(
                ["kind", "metric", "min", "max", "max_ms", "max_mb", "threads", "seed", "resamples", "baseline",
                 "max_drop", "against", "percentile", "min_time", "max_time", "test"]), _values, max_size=5))}
        ]  # fmt: skip
    return document


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_gate_documents())
def test_generated_gate_documents_validate_or_say_why(
    document: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = tmp_path / "generated.yaml"
    gate.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    started = time.monotonic()
    status, output = validate(gate, capsys)
    assert time.monotonic() - started < 5
    assert status in (0, EXIT_USAGE), output
    assert "Traceback" not in output
    if status == EXIT_USAGE:
        assert f"error {gate}" in output


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@`,?~ \n\t.0\\$")), max_size=200))
def test_generated_yaml_text_never_escapes(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = tmp_path / "text.yaml"
    gate.write_text(text, encoding="utf-8")
    status, output = validate(gate, capsys)
    assert status == EXIT_USAGE  # none of these is a gate file
    assert f"error {gate}" in output


# -- data -----------------------------------------------------------------------------------------

DATA_CASES = {
    "empty.csv": (b"", "the file is empty"),
    "header.csv": (b"text,label\n", "header line but no rows"),
    "latin1.csv": (b"text,label\nhello,positive\ncaf\xe9 ole,negative\n", "line 3 is not UTF-8 (byte 0xe9)"),
    "cut.jsonl": (b'{"text": "a", "label": 1}\n{"text": "b", "lab', "line 2 is not valid JSON"),
    "ragged.csv": (b"text,label\na,positive\nb,negative,extra\nc,positive\n", "Expected 2 fields in line 3, saw 3"),
    "bad.json": (b'[{"text": "a", "label": 1},', "not valid JSON"),
}


@pytest.mark.parametrize("name", list(DATA_CASES))
def test_broken_data_says_the_real_reason(name: str, tmp_path: Path) -> None:
    from modelcheck.gatefile import DataSpec
    from modelcheck.run.data import load_data

    content, expected = DATA_CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        load_data(DataSpec(source=str(path), input="text", label="label"), columns=["text", "label"])
    message = str(raised.value)
    assert str(path) in message
    assert expected in message
    assert "An error occurred while generating the dataset" not in message


def test_fifo_as_data_is_refused(tmp_path: Path) -> None:
    from modelcheck.gatefile import DataSpec
    from modelcheck.run.data import load_data

    os.mkfifo(tmp_path / "data.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_data(DataSpec(source=str(tmp_path / "data.csv"), input="text"), columns=["text"])


def test_a_row_without_a_label_is_named() -> None:
    with pytest.raises(DataError, match=r"data row 7 \(counting from 1.*?\) has no label"):
        label_ids([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, float("nan"), 1.0], ("negative", "positive"), column="label")
    with pytest.raises(DataError, match=r"data row 2 \(counting from 1.*?\) has no label"):
        label_ids(["positive", "  ", "negative"], ("negative", "positive"), column="label")
    assert label_ids([0.0, 1.0], ("negative", "positive"), column="label").tolist() == [0, 1]


def test_custom_code_model_names_trust_remote_code(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from modelcheck_transformers import TransformersBackend

    from modelcheck.errors import ModelLoadError
    from modelcheck.gatefile import ModelSpec

    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}))
    (folder / "modeling_evil.py").write_text("raise SystemExit('ran untrusted code')\n")
    with pytest.raises(ModelLoadError, match="trust_remote_code: true") as raised:
        TransformersBackend().load(ModelSpec(id="custom", source=str(folder)))
    assert "auto_map" in str(raised.value)


# -- reports, outputs and baselines ---------------------------------------------------------------

ENV: dict[str, Any] = {
    "python": "3.11.7",
    "implementation": "CPython",
    "platform": "Linux",
    "machine": "x86_64",
    "cpu": None,
    "cpu_count": 1,
    "packages": {"modelcheck": "0.1.0", "pytest": "9.0.0"},
    "git": {"commit": None, "branch": None, "dirty": None},
}


def _gate(file: str, model_id: str = "m", outputs: dict[str, str] | None = None, **check: Any) -> GateResult:
    fields: dict[str, Any] = {"name": "accuracy", "kind": "metric", "status": "passed", "message": "ok", "value": 0.95}
    fields.update(check)
    return GateResult(
        file=file,
        model={"id": model_id, "source": "/m", "backend": "transformers", "task": "text-classification",
               "device_requested": "cpu", "device": "cpu", "files": []},
        data={"source": "/d.csv", "split": "test", "input": "text", "label": "label", "limit": None, "rows": 2,
              "sha256": None},
        stages={},
        checks=[CheckResult(**fields)],
        outputs=outputs,
    )  # fmt: skip


def test_one_unreportable_gate_does_not_cost_the_report(tmp_path: Path) -> None:
    good = _gate("gates/good.yaml")
    bad = _gate("gates/bad.yaml", status="mystery")  # a status the report schema does not know
    bad.stages = {"1 bad": ["accuracy"]}
    report = tmp_path / "out.json"
    write_report(report, build_report([good, bad], stage=None, env=ENV))
    document = read_report(report)
    files = {gate["file"]: gate for gate in document["gates"]}
    assert files["gates/good.yaml"]["checks"][0]["status"] == "passed"
    assert "could not be reported" in files["gates/bad.yaml"]["error"]
    assert document["totals"]["passed"] == 1
    assert main(["gate", "--stage", "merge", str(report)]) == 3  # the broken gate is not a pass


def _report_with_outputs(tmp_path: Path, gates: list[tuple[str, str]]) -> Path:
    """A report whose gates (file, model id) each saved outputs under out.outputs/run-1/."""
    results = []
    for file, model_id in gates:
        relative = f"out.outputs/run-1/{model_id}-{abs(hash(file)) % 10**8}.npz"
        digest = save_outputs(Outputs(labels=np.array([0, 1])), tmp_path / relative, data_sha256=None)
        results.append(_gate(file, model_id, outputs={"path": relative, "sha256": digest}))
    report = tmp_path / "out.json"
    write_report(report, build_report(results, stage=None, env=ENV))
    return report


def _tamper(report: Path, change: Any) -> None:
    document = json.loads(report.read_text())
    change(document["gates"][0])
    report.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda g: g["model"].update(id="../../escaped"), "not a plain file name"),
        (lambda g: g["outputs"].update(path="../outside/secret.bin"), "stays inside its folder"),
        (lambda g: g["outputs"].update(path="/etc/passwd"), "stays inside its folder"),
        (lambda g: g["outputs"].update(sha256="0" * 64), "do not belong to this report"),
    ],
    ids=["id escapes --dir", "outputs path escapes", "absolute outputs path", "swapped outputs"],
)
def test_baseline_update_treats_the_report_as_untrusted(
    change: Any, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.bin").write_bytes(b"secret")
    report = _report_with_outputs(tmp_path, [("gates/a.yaml", "m")])
    _tamper(report, change)
    status = main(["baseline", "update", str(report), "--dir", str(tmp_path / "baselines")])
    assert status == EXIT_USAGE
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "baselines").exists()
    assert not (tmp_path.parent / "escaped.json").exists()


def test_baseline_update_refuses_two_gates_with_one_model_id(tmp_path: Path) -> None:
    report = _report_with_outputs(tmp_path, [("gates/a/x.yaml", "x"), ("gates/b/x.yaml", "x")])
    with pytest.raises(ReportError, match=r"gates/a/x.yaml and gates/b/x.yaml both have model id 'x'"):
        update_baselines(read_report(report), report, tmp_path / "baselines")
    assert not (tmp_path / "baselines").exists()


def test_every_file_gets_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        report = _report_with_outputs(tmp_path, [("gates/a.yaml", "m")])
        assert main(["baseline", "update", str(report), "--dir", str(tmp_path / "baselines")]) == 0
    finally:
        os.umask(old)
    written = [report, *tmp_path.glob("out.outputs/run-1/*.npz"), *(tmp_path / "baselines").iterdir()]
    assert len(written) == 4
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o640)}


def test_stale_temp_files_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.json.{dead.stdout.strip()}.abc123{TEMP_SUFFIX}"
    live = tmp_path / f".out.json.{os.getppid()}.def456{TEMP_SUFFIX}"
    stale.write_text("half a report")
    live.write_text("being written")
    atomic_write(tmp_path / "out.json", "{}")
    assert not stale.exists()
    assert live.exists()
    assert (tmp_path / "out.json").read_text() == "{}"


# -- the CLI's own error paths --------------------------------------------------------------------


def test_os_errors_name_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report_with_outputs(tmp_path, [("gates/a.yaml", "m")])
    blocker = tmp_path / "file"
    blocker.write_text("")
    status = main(["summary", str(report), "-o", str(blocker / "summary.md")])
    err = capsys.readouterr().err
    assert status == EXIT_USAGE
    assert str(blocker / "summary.md") in err
    assert main(["baseline", "update", str(report), "--dir", str(blocker)]) == EXIT_USAGE
    assert f"--dir {blocker} is a file" in capsys.readouterr().err
    assert main(["baseline", "update", str(report), "--dir", str(blocker / "sub")]) == EXIT_USAGE
    assert str(blocker) in capsys.readouterr().err


def test_export_into_a_file_is_refused_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(VALID)
    target = tmp_path / "onnx"
    target.write_text("not a folder")
    assert main(["export", "onnx", str(gate), "-o", str(target)]) == EXIT_USAGE
    assert f"--output {target} is a file" in capsys.readouterr().err
    assert main(["export", "onnx", str(gate), "-o", str(target / "sub")]) == EXIT_USAGE
    assert "cannot write there" in capsys.readouterr().err


@pytest.mark.parametrize("report", ["fifo", "deep", "folder", "nul"])
def test_unreadable_reports(report: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    if report == "fifo":
        os.mkfifo(path)
    elif report == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif report == "folder":
        path.mkdir()
    else:
        path = tmp_path / "r\0.json"
    assert main(["gate", "--stage", "merge", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("modelcheck: error: ") and "Traceback" not in err


def test_unexpected_errors_are_one_line_unless_debugging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelcheck.cli

    report = _report_with_outputs(tmp_path, [("gates/a.yaml", "m")])

    def broken(report: Any) -> str:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(modelcheck.cli, "markdown", broken)
    assert main(["summary", str(report)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: ZeroDivisionError: a bug" in err and "please report this" in err and "--debug" in err
    assert main(["--debug", "summary", str(report)]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("MODELCHECK_DEBUG", "1")
    assert main(["summary", str(report)]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


# -- through pytest: outputs keyed by gate, an unwritable report refused up front ------------------


def test_unwritable_report_path_is_refused_before_any_gate_runs(pytester: pytest.Pytester) -> None:
    (pytester.path / "blocker").write_text("")
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "blocker/out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-report*blocker*is not a folder*"])
    (pytester.path / "out.outputs").write_text("")
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*out.outputs (where the per-example outputs go) is not a folder*"])
    result = pytester.runpytest_subprocess("--modelcheck", "--modelcheck-report", "x" * 300 + "/out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-report*not a usable path (File name too long)*"])
    assert "Traceback" not in result.stderr.str()


SHARED_ID_GATE = """\
version: 1
model: {id: x, source: ../../models/good}
data: {source: ../../data/test.csv, input: text, label: label}
checks:
  - {name: accuracy, metric: accuracy, min: 0.5}
"""


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once")
def test_gates_sharing_a_model_id_keep_their_own_outputs_and_a_broken_gate_costs_nothing(
    pytester: pytest.Pytester, sentiment_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    (pytester.path / "data").mkdir()
    shutil.copy(repo / "examples" / "sentiment" / "test.csv", pytester.path / "data" / "test.csv")
    for name in ("a", "b"):
        (pytester.path / "gates" / name).mkdir(parents=True)
        (pytester.path / "gates" / name / "x.yaml").write_text(SHARED_ID_GATE)
    (pytester.path / "gates" / "bad.yaml").write_text(VALID + "    min: 0.0\n")
    monkeypatch.chdir(pytester.path)

    first = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json", "--continue-on-collection-errors")
    first.assert_outcomes(passed=2, errors=1)
    report = read_report("out.json")
    gates = {gate["file"]: gate for gate in report["gates"]}
    assert "duplicate key 'min'" in gates["gates/bad.yaml"]["error"]
    paths = [gates[f"gates/{name}/x.yaml"]["outputs"]["path"] for name in ("a", "b")]
    assert len(set(paths)) == 2 and all((pytester.path / p).is_file() for p in paths)
    assert main(["baseline", "update", "out.json", "--dir", "baselines"]) == EXIT_USAGE
    assert not (pytester.path / "baselines").exists()

    # A second run switches the report to its own outputs and removes the first run's, none left behind.
    second = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json", "--continue-on-collection-errors")
    second.assert_outcomes(passed=2, errors=1)
    again = [gate["outputs"]["path"] for gate in read_report("out.json")["gates"] if gate["outputs"]]
    assert set(again).isdisjoint(paths) and all((pytester.path / p).is_file() for p in again)
    assert not any((pytester.path / p).exists() for p in paths)
    assert len(list((pytester.path / "out.outputs").iterdir())) == 1
    assert not list(pytester.path.rglob(f"*{TEMP_SUFFIX}"))


def _paths(value: Any, parts: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [parts]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, (*parts, key))
    return found


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_reports_are_judged_or_refused(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = _gate("gates/b.yaml", status="failed", stages=["merge"])
    failed.stages = {"merge": ["accuracy"]}
    document = build_report([_gate("gates/a.yaml"), failed], stage="merge", env=ENV)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        where = data.draw(st.sampled_from(_paths(document)[1:]))
        target = document
        for part in where[:-1]:
            target = target[part]
        target[where[-1]] = data.draw(_values)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(document, allow_nan=True))
    for command in (["gate", "--stage", "merge", str(report)], ["summary", str(report)]):
        status = main(command)
        err = capsys.readouterr().err
        assert status in (0, 1, 2, 3), (command, err)
        assert "Traceback" not in err
