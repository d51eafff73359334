"""The pytest plugin end to end, through pytester, with the real tiny sentiment models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelcheck.report.document import read_report

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("frameworks_imported_once")]

EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv"

GATE = """\
version: 1
model:
  id: {model_id}
  source: {source}
data:
  source: ../data/test.csv
  input: text
  label: label
checks:
  - name: accuracy
    metric: accuracy
    min: 0.9
  - name: macro_f1
    metric: f1
    average: macro
    min: 0.88
  - name: accuracy_by_language
    metric: accuracy
    slice_by: language
    min: 0.85
    min_samples: 50
stages:
  merge: [accuracy, macro_f1]
  deploy: all
"""


@pytest.fixture()
def project(pytester: pytest.Pytester, sentiment_model: Path, untrained_model: Path) -> pytest.Pytester:
    """A user project: models/, data/test.csv, gates/, and an ordinary test beside them."""
    shutil.copytree(sentiment_model, pytester.path / "models" / "good")
    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    (pytester.path / "data").mkdir()
    shutil.copy(EXAMPLE_DATA, pytester.path / "data" / "test.csv")
    pytester.makepyfile(test_ordinary="def test_ordinary():\n    assert 1 + 1 == 2\n")
    return pytester


def add_gate(pytester: pytest.Pytester, name: str, source: str = "../models/good", text: str = GATE) -> Path:
    path = pytester.path / "gates" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.format(model_id=name, source=source), encoding="utf-8")
    return path


def test_checks_are_items_beside_ordinary_tests(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*gates/sentiment.yaml::accuracy PASSED*",
            "*gates/sentiment.yaml::macro_f1 PASSED*",
            "*gates/sentiment.yaml::accuracy_by_language PASSED*",
            "*test_ordinary.py::test_ordinary PASSED*",
            "*= modelcheck =*",
            "check*value*threshold*status",
            "gates/sentiment.yaml::accuracy *1.0 *>= 0.9 *passed",
        ]
    )


def test_without_the_flag_gates_are_not_collected(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*sentiment.yaml*")
    result.stdout.no_fnmatch_line("*= modelcheck =*")


def test_stage_and_report_options_need_the_flag(project: pytest.Pytester) -> None:
    result = project.runpytest("--modelcheck-stage", "merge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-stage needs --modelcheck*"])


def test_bad_stage_name_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--modelcheck", "--modelcheck-stage", "merge stage")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-stage*'merge stage' is not a stage name*"])


def test_disabled_plugin_does_not_know_its_options(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    assert project.runpytest("-p", "no:modelcheck").ret == pytest.ExitCode.OK
    result = project.runpytest("-p", "no:modelcheck", "--modelcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --modelcheck*"])


def test_model_loads_once_and_predicts_once_per_gate(project: pytest.Pytester) -> None:
    add_gate(project, "first")
    add_gate(project, "second")
    project.makeconftest(
        """
        import json, modelcheck_transformers as mt

        calls = {"load": 0, "rows": 0}
        _load = mt.TransformersBackend.load

        def counting_load(self, spec):
            calls["load"] += 1
            model = _load(self, spec)
            predict = model.predict

            def counting_predict(inputs, **kwargs):
                calls["rows"] += len(inputs)
                return predict(inputs, **kwargs)

            model.predict = counting_predict
            return model

        mt.TransformersBackend.load = counting_load

        def pytest_sessionfinish(session):
            mt.TransformersBackend.load = _load
            with open("calls.json", "w") as f:
                json.dump(calls, f)
        """
    )
    project.runpytest("--modelcheck").assert_outcomes(passed=7)
    calls = json.loads((project.path / "calls.json").read_text())
    # Prediction runs in chunks (for progress), but over each row of each gate exactly once.
    assert calls == {"load": 1, "rows": 2 * 400}, "two gates on one model: one load, one pass over each gate's data"


def test_failed_check_reads_as_a_measurement(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", source="../models/untrained")
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["accuracy 0.5 < min 0.9 (n=400)", "f1 (macro) 0.3333 < min 0.88 (n=400)"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*modelcheck/*.py:*")


def test_stage_makes_only_its_checks_block(project: pytest.Pytester) -> None:
    text = GATE.replace("merge: [accuracy, macro_f1]", "merge: [accuracy_by_language]")
    add_gate(project, "sentiment", source="../models/untrained", text=text)
    report = project.path / "out.json"
    result = project.runpytest("--modelcheck", "--modelcheck-stage", "merge", "--modelcheck-report", str(report))
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "gates/sentiment.yaml::accuracy *0.5 *>= 0.9 *warned",
            "WARNING gates/sentiment.yaml::accuracy: accuracy 0.5 < min 0.9 (n=400) (not in the blocking stage)",
            "FAILED gates/sentiment.yaml::accuracy_by_language - *",
        ]
    )
    checks = {c["name"]: c for c in read_report(report)["gates"][0]["checks"]}
    assert checks["accuracy"]["status"] == "failed" and checks["accuracy"]["blocking"] is False
    assert checks["accuracy_by_language"]["blocking"] is True
    totals = {"passed": 0, "failed": 1, "error": 0, "skipped": 0, "inconclusive": 0, "not_run": 0, "warned": 2}
    assert read_report(report)["totals"] == totals


def test_checks_in_no_stage_only_warn(project: pytest.Pytester) -> None:
    text = GATE.replace("  deploy: all\n", "")
    add_gate(project, "sentiment", source="../models/untrained", text=text)
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["gates/sentiment.yaml::accuracy_by_language *warned"])


def test_report_records_hashes_environment_and_results(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    project.runpytest("--modelcheck", "--modelcheck-report", "reports/out.json").assert_outcomes(passed=4)
    report = read_report(project.path / "reports" / "out.json")  # validates against the report schema
    gate = report["gates"][0]
    assert gate["file"] == "gates/sentiment.yaml"
    files = {f["path"]: f for f in gate["model"]["files"]}
    assert {"config.json", "model.safetensors"} <= set(files)
    import hashlib

    weights = project.path / "models" / "good" / "model.safetensors"
    assert files["model.safetensors"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert gate["data"]["sha256"] == hashlib.sha256(EXAMPLE_DATA.read_bytes()).hexdigest()
    assert gate["data"]["rows"] == 400 and gate["model"]["device"] == "cpu"
    assert report["environment"]["packages"]["transformers"]
    by_language = next(c for c in gate["checks"] if c["name"] == "accuracy_by_language")
    assert {s["slice"] for s in by_language["details"]["slices"]} == {"en", "de"}
    assert all(c["status"] == "passed" and c["value"] >= 0.9 for c in gate["checks"])


def test_invalid_gate_file_is_a_collection_error(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", text=GATE.replace("metric: f1", "metric: f2"))
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting gates/sentiment.yaml*",
            "gates/sentiment.yaml:14 at $.checks?1?.metric: metric 'f2' is not supported; expected one of*",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")
    gate = read_report(project.path / "out.json")["gates"][0]
    assert gate["file"] == "gates/sentiment.yaml" and "metric 'f2'" in gate["error"]


def test_missing_model_errors_that_gate_only(project: pytest.Pytester) -> None:
    add_gate(project, "broken", source="../models/missing")
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(["error: model folder not found: */models/missing*"])
    gates = {g["file"]: g for g in read_report(project.path / "out.json")["gates"]}
    assert {c["status"] for c in gates["gates/broken.yaml"]["checks"]} == {"error"}
    assert {c["status"] for c in gates["gates/sentiment.yaml"]["checks"]} == {"passed"}


def test_missing_column_lists_the_columns(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", text=GATE.replace("input: text", "input: review"))
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        ["error: column 'review' (data.input) not found in */data/test.csv; its columns are: text, label, language"]
    )


def test_missing_data_file(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", text=GATE.replace("../data/test.csv", "../data/nope.csv"))
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["error: data file not found: */data/nope.csv (data.source)*"])


def test_unknown_label_is_named(project: pytest.Pytester) -> None:
    data = project.path / "data" / "test.csv"
    data.write_text(data.read_text().replace(",positive,en\n", ",great,en\n", 1))
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        ["*label column 'label' holds values the model does not know: 'great'*0=negative, 1=positive*"]
    )


def test_label_ids_work_like_names(project: pytest.Pytester) -> None:
    data = project.path / "data" / "test.csv"
    data.write_text(data.read_text().replace(",negative,", ",0,").replace(",positive,", ",1,"))
    add_gate(project, "sentiment")
    project.runpytest("--modelcheck").assert_outcomes(passed=4)


def test_jsonl_and_parquet_data(project: pytest.Pytester) -> None:
    import pandas as pd

    frame = pd.read_csv(project.path / "data" / "test.csv")
    frame.to_json(project.path / "data" / "test.jsonl", orient="records", lines=True)
    frame.to_parquet(project.path / "data" / "test.parquet")
    add_gate(project, "jsonl", text=GATE.replace("test.csv", "test.jsonl"))
    add_gate(project, "parquet", text=GATE.replace("test.csv", "test.parquet"))
    project.runpytest("--modelcheck").assert_outcomes(passed=7)


def test_limit_evaluates_the_first_rows(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", text=GATE.replace("  label: label\n", "  label: label\n  limit: 120\n"))
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=4)
    gate = read_report(project.path / "out.json")["gates"][0]
    assert gate["data"]["rows"] == 120 and {c["n"] for c in gate["checks"]} == {120}


def test_gates_outside_testpaths_are_collected(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntestpaths = tests\n")
    (project.path / "tests").mkdir()
    shutil.move(project.path / "test_ordinary.py", project.path / "tests" / "test_ordinary.py")
    add_gate(project, "sentiment")
    project.runpytest("--modelcheck").assert_outcomes(passed=4)


def test_explicit_gate_file_and_custom_glob(project: pytest.Pytester) -> None:
    path = add_gate(project, "sentiment")
    other = project.path / "quality"
    other.mkdir()
    shutil.move(path, other / "sentiment.yaml")
    # Explicit path outside the globs.
    project.runpytest("--modelcheck", "quality/sentiment.yaml").assert_outcomes(passed=3)
    # Or configured through the ini option.
    project.makeini("[pytest]\nmodelcheck_gates = quality/*.yaml\n")
    project.runpytest("--modelcheck").assert_outcomes(passed=4)


def test_env_var_points_the_gate_at_another_model(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    add_gate(project, "sentiment", source="${CANDIDATE:-../models/good}")
    project.runpytest("--modelcheck").assert_outcomes(passed=4)
    monkeypatch.setenv("CANDIDATE", str(project.path / "models" / "untrained"))
    project.runpytest("--modelcheck").assert_outcomes(passed=1, failed=3)


def test_deselecting_checks_with_k(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "-k", "accuracy and not language")
    result.assert_outcomes(passed=1, deselected=3)


def test_reference_gate_runs(pytester: pytest.Pytester, sentiment_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gates/sentiment.yaml, as shipped, passes against a freshly built example model."""
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "gates", pytester.path / "gates")
    shutil.copytree(repo / "examples", pytester.path / "examples", ignore=shutil.ignore_patterns("model*"))
    monkeypatch.setenv("MODELCHECK_SENTIMENT_MODEL", str(sentiment_model))
    pytester.runpytest("--modelcheck", "--modelcheck-stage", "deploy").assert_outcomes(passed=6)


# -- devices, progress, environment ---------------------------------------------------------------


def test_absent_device_skips_the_gate_and_the_option_overrides_it(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment", text=GATE.replace("  source: {source}\n", "  source: {source}\n  device: cuda:63\n"))
    result = project.runpytest("--modelcheck", "-rs", "--modelcheck-report", "out.json")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=3)
    # Each skip names its check's line in the gate file (where `- name: ...` starts), not ":None".
    result.stdout.fnmatch_lines(
        [f"SKIPPED ?1? gates/sentiment.yaml:{n}: device 'cuda:63' is not available*" for n in (11, 14, 18)]
    )
    gate = read_report(project.path / "out.json")["gates"][0]
    assert gate["error"] is None and gate["model"]["device"] is None
    assert {c["status"] for c in gate["checks"]} == {"skipped"}

    project.runpytest("--modelcheck", "--modelcheck-device", "cpu", "--modelcheck-report", "out.json").assert_outcomes(
        passed=4
    )
    gate = read_report(project.path / "out.json")["gates"][0]
    assert gate["model"]["device_requested"] == "cpu" and gate["model"]["device"] == "cpu"


def test_a_gate_skipped_for_an_absent_device_is_not_a_pass(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runner that lost its GPU: every check skipped, pytest exits 0, but no stage passes."""
    from modelcheck.cli import main

    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "--modelcheck-device", "cuda:63", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=1, skipped=3)
    report = str(project.path / "out.json")
    capsys.readouterr()
    assert main(["gate", "--stage", "merge", report]) == 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("stage merge: INCONCLUSIVE — 0 passed, 0 failed, 0 error, 0 inconclusive, 2 skipped")
    assert "2 checks of the stage skipped, so not measured" in last
    assert main(["gate", "--stage", "deploy", "--skipped", "fail", report]) == 1
    assert "stage deploy: FAILED — 0 passed, 0 failed, 0 error, 0 inconclusive, 3 skipped" in capsys.readouterr().out


def test_an_unrelated_broken_test_module_is_recorded_and_gates_alone_still_run(project: pytest.Pytester) -> None:
    from modelcheck.github.judge import judge

    add_gate(project, "sentiment")
    project.makepyfile(test_app="import not_installed_in_the_gate_job\n\ndef test_app():\n    pass\n")
    result = project.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["modelcheck: not every gate check ran: pytest stopped early (exit 2): 1 error during collection — "
         "test_app.py: ModuleNotFoundError: No module named 'not_installed_in_the_gate_job'"]
    )  # fmt: skip
    report = read_report(project.path / "out.json")
    assert report["stopped"] == {
        "reason": "1 error during collection",
        "exit_status": 2,
        "errors": [
            {"nodeid": "test_app.py", "message": "ModuleNotFoundError: No module named 'not_installed_in_the_gate_job'"}
        ],
    }
    verdict = judge(report, "merge")
    assert verdict.status == "inconclusive" and "test_app.py" in verdict.reasons[0]

    # Only the gates on the command line: the broken module is not collected, the gate judges the model.
    result = project.runpytest("--modelcheck", "gates", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=3)
    report = read_report(project.path / "out.json")
    assert "stopped" not in report and judge(report, "merge").status == "passed"


def test_gate_files_without_the_flag_get_a_hint(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    hint = "modelcheck: {} holds gate files, which pytest collects only with --modelcheck; add it*"
    result = project.runpytest("gates")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([hint.format("gates") + "pytest --modelcheck gates*"])
    result = project.runpytest("gates/sentiment.yaml", "test_ordinary.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # pytest's own "not found": nothing collects the file
    result.stdout.fnmatch_lines([hint.format("gates/sentiment.yaml")])
    for args in ((), ("test_ordinary.py",), ("--modelcheck", "gates")):
        project.runpytest(*args).stdout.no_fnmatch_line("*holds gate files*")


def test_device_option_on_cuda(project: pytest.Pytester) -> None:
    """Runs for real on a CUDA machine; skips every check (never fails) elsewhere."""
    from modelcheck.models.hardware import available_devices

    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "--modelcheck-device", "cuda", "--modelcheck-report", "out.json")
    gate = read_report(project.path / "out.json")["gates"][0]
    assert gate["model"]["device_requested"] == "cuda"
    if any(d.startswith("cuda") for d in available_devices()):
        result.assert_outcomes(passed=4)
        assert gate["model"]["device"].startswith("cuda:")
        env = read_report(project.path / "out.json")["environment"]
        assert env["gpus"] and env["gpu_devices"][0]["memory_mb"] > 0 and env["cuda_runtime"]
    else:
        result.assert_outcomes(passed=1, skipped=3)
        assert all("device 'cuda' is not available" in c["message"] for c in gate["checks"])


def test_bad_device_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--modelcheck", "--modelcheck-device", "gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modelcheck-device: 'gpu' is not a device; use auto, cpu, cuda, cuda:N*"])


def test_progress_line_per_gate_with_verbose(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    result = project.runpytest("--modelcheck", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*gates/sentiment.yaml::accuracy*", "gates/sentiment.yaml: 400 examples in * s (* ex/s)", "*PASSED*"]
    )
    quiet = project.runpytest("--modelcheck")
    quiet.stdout.no_fnmatch_line("*examples in*")


def test_report_environment_records_the_hardware(project: pytest.Pytester) -> None:
    add_gate(project, "sentiment")
    project.runpytest("--modelcheck", "--modelcheck-report", "out.json").assert_outcomes(passed=4)
    env = read_report(project.path / "out.json")["environment"]
    import torch

    assert env["torch_threads"] == torch.get_num_threads() and env["cpu_count"] >= 1
    assert env["cuda_runtime"] == torch.version.cuda
    assert [gpu["name"] for gpu in env["gpu_devices"]] == env["gpus"]
