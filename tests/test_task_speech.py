"""Speech: WER/CER equal to jiwer from per-row edits; audio decoded with its errors; real tiny wav2vec2 gates.

The models are trained in the session on synthetic audio (``tests/tiny_speech.py``: tones stand for
letters): a CTC transcriber and a classifier. Their gates run through ``pytest --modelcheck`` and
the values equal jiwer and scikit-learn on the outputs the run saved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck.errors import CheckError, DataError
from modelcheck.gatefile import CheckSpec
from modelcheck.models.backends import Outputs
from modelcheck.tasks import speech

jiwer = pytest.importorskip("jiwer")
soundfile = pytest.importorskip("soundfile")

WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "Mat,")
sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
maybe_empty = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join)


def stats_of(metric: str, references: list[str], hypotheses: list[str], **options: Any) -> Any:
    check = CheckSpec(name="c", metric=metric, max=1.0, options=options)
    return speech.row_statistics(check, references, Outputs(texts=hypotheses), ())


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(sentences, maybe_empty), min_size=1, max_size=12))
@pytest.mark.parametrize("metric", ["wer", "cer"])
def test_error_rates_equal_jiwer_on_all_rows_slices_and_resamples(metric: str, rows: list[tuple[str, str]]) -> None:
    references, hypotheses = [r for r, _ in rows], [h for _, h in rows]
    corpus = jiwer.wer if metric == "wer" else jiwer.cer
    stats = stats_of(metric, references, hypotheses)
    assert stats.value() == pytest.approx(corpus(references, hypotheses), abs=1e-12)
    draws = np.random.default_rng(0).integers(0, len(rows), size=(3, len(rows)))
    for drawn, value in zip(draws, stats.resampled(draws), strict=True):
        expected = corpus([references[i] for i in drawn], [hypotheses[i] for i in drawn])
        assert value == pytest.approx(expected, abs=1e-12)


def test_normalize_steps_apply_before_jiwer_and_are_recorded() -> None:
    stats = stats_of("wer", ["The cat, sat."], ["the cat sat"], normalize=["lowercase", "punctuation"])
    assert stats.value() == 0.0 and stats.details["normalize"] == ["lowercase", "punctuation"]
    assert stats_of("wer", ["The cat, sat."], ["the cat sat"]).value() == pytest.approx(1.0)
    with pytest.raises(CheckError, match=r"transcript at data row 1 \(.*?\) is empty after normalize"):
        stats_of("wer", ["..."], ["x"], normalize=["punctuation"])


@pytest.mark.parametrize(("value", "message"), [("", "is empty"), (None, "is empty"), (3, "holds 3, not a text")])
def test_an_empty_transcript_names_the_row_and_column(value: object, message: str) -> None:
    frame = pd.DataFrame({"text": ["a b", value]})
    with pytest.raises(DataError, match=rf"d\.csv: transcript column 'text' data row 2 \(.*?\) {message}"):
        speech.targets("automatic-speech-recognition", "text", frame, (), source="d.csv")


# -- audio decoding -------------------------------------------------------------------------------


def test_audio_files_decode_to_mono_float_clips_with_their_rate(tmp_path: Path) -> None:
    from modelcheck.run.audio import audio_clips

    stereo = np.stack([np.linspace(-0.5, 0.5, 800), np.zeros(800)], axis=1)
    soundfile.write(tmp_path / "two.wav", stereo, 8000)
    soundfile.write(tmp_path / "one.flac", np.full(1600, 0.25), 16000)
    record = {"array": np.ones(10), "sampling_rate": 4000}
    clips = audio_clips(["two.wav", {"path": "one.flac"}, record], column="audio", base=tmp_path)
    assert [rate for _, rate in clips] == [8000, 16000, 4000]
    np.testing.assert_allclose(clips[0][0], stereo.mean(axis=1), atol=1e-4)  # channels averaged
    assert clips[1][0].dtype == np.float32 and clips[1][0].shape == (1600,)


def test_bad_audio_is_an_error_naming_the_file_and_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.run import audio

    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0), 8000)
    soundfile.write(tmp_path / "long.wav", np.zeros(8000 * 3), 8000)
    (tmp_path / "folder.wav").mkdir()
    cases = {
        "missing.wav": r"audio file not found: .*missing\.wav \(data row 1 \(.*?\) of column 'audio'\)",
        "noise.wav": r"cannot decode audio .*noise\.wav \(data row 1 .*\): .*; give WAV, FLAC, OGG or MP3",
        "empty.wav": r"audio at data row 1 \(.*?\) of column 'audio' is empty",
        "folder.wav": r"folder\.wav \(data row 1 .*\) is not a regular file",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=message):
            audio.audio_clips([name], column="audio", base=tmp_path)
    monkeypatch.setattr(audio, "MAX_SECONDS", 2.0)
    with pytest.raises(DataError, match=r"long\.wav \(data row 1 .*\) is 3 s long; clips longer than 2 s are refused"):
        audio.audio_clips(["long.wav"], column="audio", base=tmp_path)
    with pytest.raises(DataError, match=r"data row 1 \(.*?\) of column 'audio' holds int, not an audio file path"):
        audio.audio_clips([7], column="audio", base=tmp_path)


# -- real models, end to end ------------------------------------------------------------------------

ASR_GATE = """\
version: 1
model: {{id: ctc, source: ../models/{model}, task: automatic-speech-recognition, device: cpu, batch_size: 8}}
data: {{source: ../data/speech.csv, input: audio, label: text}}
checks:
  - {{name: words, metric: wer, max: 0.9}}
  - {{name: letters, metric: cer, max: 0.9}}
  - {{name: words_by_length, metric: wer, slice_by: letters, max: 2.0}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_similarity: 0.5}}
  - {{name: speed, kind: latency, batch_size: 4, inputs: fixed, max_ms: 60000, min_iterations: 10, max_time: 3}}
"""


@pytest.fixture(scope="module")
def speech_models(frameworks_imported_once: None) -> None:
    """Build every model before any in-process pytester run (which drops the modules first imported in it)."""
    pytest.importorskip("transformers")
    import tiny_speech

    for name in ("ctc", "ctc-untrained", "audio-classifier", "whisper", "whisper-untrained"):
        tiny_speech.shared(name)


def speech_project(pytester: pytest.Pytester, model: str, rows: int = 48) -> list[str]:
    import tiny_speech

    shutil.copytree(tiny_speech.shared(model), pytester.path / "models" / model)
    utterances = tiny_speech.utterances(rows, seed=11)
    half = rows // 2  # half the clips at 16 kHz: the model takes 8 kHz, so those are resampled
    names = tiny_speech.write_clips(pytester.path / "data" / "clips", utterances[:half])
    names += tiny_speech.write_clips(pytester.path / "data" / "clips16k", utterances[half:], rate=16000)
    transcripts = [t for _, t in utterances]
    pd.DataFrame({"audio": names, "text": transcripts, "letters": [len(t.split()) for t in transcripts]}).to_csv(
        pytester.path / "data" / "speech.csv", index=False
    )
    (pytester.path / "gates").mkdir()
    return transcripts


@pytest.mark.e2e
@pytest.mark.usefixtures("speech_models", "one_torch_thread")
def test_ctc_gate_values_equal_jiwer_on_its_transcripts(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("librosa")
    from modelcheck.report.baselines import load_outputs

    references = speech_project(pytester, "ctc")
    (pytester.path / "gates" / "asr.yaml").write_text(ASR_GATE.format(model="ctc"), encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    result.assert_outcomes(passed=5)
    import tiny_speech

    latency = checks["speed"]["details"]["latency"]  # the real-time factor of the first batch, decoded once
    audio = sum(len(samples) / tiny_speech.RATE for samples, _ in tiny_speech.utterances(48, seed=11)[:4])
    assert latency["audio_seconds_per_call"] == pytest.approx(audio, rel=1e-6)
    assert latency["real_time_factor"] == pytest.approx(latency["percentiles_ms"]["p50"] / 1000 / audio)
    assert "real-time factor " in checks["speed"]["message"]
    texts = [str(t) for t in load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0].texts]
    assert any(texts)
    assert checks["words"]["value"] == pytest.approx(jiwer.wer(references, texts), abs=1e-12)
    assert checks["letters"]["value"] == pytest.approx(jiwer.cer(references, texts), abs=1e-12)
    audio = checks["words"]["details"]["audio"]
    assert audio["rates_in_data"] == [8000, 16000] and audio["resampled"].startswith("librosa.resample (soxr_hq)")
    slices = {s["slice"]: s["value"] for s in checks["words_by_length"]["details"]["slices"]}
    three = [i for i, t in enumerate(references) if len(t.split()) == 3]
    assert slices["3"] == pytest.approx(jiwer.wer([references[i] for i in three], [texts[i] for i in three]))


@pytest.mark.e2e
@pytest.mark.usefixtures("speech_models", "one_torch_thread")
def test_untrained_ctc_fails_its_gate_and_a_regression_check_sees_the_rise(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("librosa")
    import tiny_speech

    from modelcheck.report.baselines import update_baselines

    speech_project(pytester, "ctc")
    (pytester.path / "gates" / "asr.yaml").write_text(ASR_GATE.format(model="ctc"), encoding="utf-8")
    pytester.runpytest("--modelcheck", "--modelcheck-report", "base.json")
    update_baselines(json.loads((pytester.path / "base.json").read_text()), pytester.path / "base.json",
                     pytester.path / "baselines")  # fmt: skip
    shutil.copytree(tiny_speech.shared("ctc-untrained"), pytester.path / "models" / "ctc-untrained")
    gate = ASR_GATE.format(model="ctc-untrained") + (
        "  - {name: no_rise, kind: regression, metric: wer, baseline: ../baselines/ctc.json, max_drop: 0.05}\n"
    )
    (pytester.path / "gates" / "asr.yaml").write_text(gate, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    checks = {c["name"]: c for c in json.loads((pytester.path / "out.json").read_text())["gates"][0]["checks"]}
    assert checks["words"]["status"] == "failed" and checks["no_rise"]["status"] == "failed", result.outlines[-20:]
    assert checks["no_rise"]["value"] > 0.05 and checks["no_rise"]["details"]["interval"] == "bca"


WHISPER_GATE = """\
version: 1
model: {{id: whisper, source: ../models/{model}, task: automatic-speech-recognition, device: cpu, batch_size: 8}}
data: {{source: ../data/speech.csv, input: audio, label: text}}
checks:
  - {{name: words, metric: wer, max: 0.7}}
  - {{name: letters, metric: cer, max: 0.6}}
  - {{name: same_in_bfloat16, kind: parity, against: {{dtype: bfloat16}}, min_similarity: 0.5}}
  - {{name: speed, kind: latency, batch_size: 4, inputs: fixed, max_ms: 60000, min_iterations: 10, max_time: 2}}
"""


@pytest.mark.e2e
@pytest.mark.usefixtures("speech_models", "one_torch_thread")
def test_whisper_gate_values_equal_jiwer_and_an_untrained_one_fails(pytester: pytest.Pytester) -> None:
    pytest.importorskip("librosa")
    from modelcheck.report.baselines import load_outputs

    references = speech_project(pytester, "whisper", rows=32)
    (pytester.path / "gates" / "asr.yaml").write_text(WHISPER_GATE.format(model="whisper"), encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    result.assert_outcomes(passed=4)
    outputs = load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0]
    texts = [str(t) for t in outputs.texts or []]
    assert checks["words"]["value"] == pytest.approx(jiwer.wer(references, texts), abs=1e-12)
    assert checks["letters"]["value"] == pytest.approx(jiwer.cer(references, texts), abs=1e-12)
    assert checks["words"]["details"]["decoding"] == "greedy generate() (encoder-decoder)"
    assert checks["words"]["details"]["audio"]["resampled"] == "librosa.resample (soxr_hq) to 16000 Hz"
    latency = checks["speed"]["details"]["latency"]
    assert latency["real_time_factor"] > 0 and latency["output_tokens_per_call"] > 0
    assert checks["same_in_bfloat16"]["details"]["compared"] == "texts"

    shutil.copytree(tiny_speech_shared("whisper-untrained"), pytester.path / "models" / "whisper-untrained")
    (pytester.path / "gates" / "asr.yaml").write_text(WHISPER_GATE.format(model="whisper-untrained"), encoding="utf-8")
    pytester.runpytest("--modelcheck", "--modelcheck-report", "untrained.json")
    untrained = {c["name"]: c for c in json.loads((pytester.path / "untrained.json").read_text())["gates"][0]["checks"]}
    assert untrained["words"]["status"] == "failed" and untrained["words"]["value"] > checks["words"]["value"]


@pytest.mark.e2e
@pytest.mark.usefixtures("speech_models")
def test_a_clip_longer_than_whispers_window_errors_naming_its_row(pytester: pytest.Pytester) -> None:
    import tiny_speech

    speech_project(pytester, "whisper", rows=4)
    long = np.concatenate([samples for samples, _ in tiny_speech.utterances(4, seed=3)] * 2)  # over the 1 s window
    soundfile.write(pytester.path / "data" / "clips" / "clip0001.wav", long, tiny_speech.RATE)
    (pytester.path / "gates" / "asr.yaml").write_text(WHISPER_GATE.format(model="whisper"), encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    checks = json.loads((pytester.path / "out.json").read_text())["gates"][0]["checks"]
    assert {c["status"] for c in checks} == {"error"}, result.outlines[-20:]
    assert f"the audio at data row 2 is {len(long) / tiny_speech.RATE:.1f} s long; the model reads at most 1 s" in (
        checks[0]["message"]
    )


def tiny_speech_shared(name: str) -> Path:
    import tiny_speech

    return tiny_speech.shared(name)


AUDIO_GATE = """\
version: 1
model: {id: tones, source: ../models/audio-classifier, task: audio-classification, device: cpu, batch_size: 8}
data: {source: ../data/tones.csv, input: audio, label: label}
checks:
  - {name: accuracy, metric: accuracy, min: 0.8}
  - {name: macro_f1, metric: f1, average: macro, min: 0.8}
"""


def tones_project(pytester: pytest.Pytester) -> list[str]:
    """models/audio-classifier, data/tones.csv (40 clips; label has_a / no_a) and gates/; the true labels."""
    import tiny_speech

    shutil.copytree(tiny_speech.shared("audio-classifier"), pytester.path / "models" / "audio-classifier")
    utterances = tiny_speech.utterances(40, seed=12)
    names = tiny_speech.write_clips(pytester.path / "data" / "clips", utterances)
    truth = ["has_a" if "a" in t.split() else "no_a" for _, t in utterances]
    pd.DataFrame({"audio": names, "label": truth}).to_csv(pytester.path / "data" / "tones.csv", index=False)
    (pytester.path / "gates").mkdir()
    return truth


@pytest.mark.e2e
@pytest.mark.usefixtures("speech_models", "one_torch_thread")
def test_audio_classifier_gate_equals_scikit_learn(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    from sklearn.metrics import accuracy_score, f1_score

    from modelcheck.report.baselines import load_outputs

    truth = tones_project(pytester)
    (pytester.path / "gates" / "tones.yaml").write_text(AUDIO_GATE, encoding="utf-8")
    result = pytester.runpytest("--modelcheck", "--modelcheck-report", "out.json")
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "out.json").read_text())
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    labels = load_outputs(pytester.path / report["gates"][0]["outputs"]["path"])[0].labels
    predicted = [("no_a", "has_a")[int(i)] for i in labels]
    assert checks["accuracy"]["value"] == pytest.approx(accuracy_score(truth, predicted))
    assert checks["macro_f1"]["value"] == pytest.approx(f1_score(truth, predicted, average="macro"))


def test_init_reads_speech_and_audio_classifier_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcheck.gatefile import load_gate
    from modelcheck.gatefile.scaffold import Answers, write_gate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("audio,transcript,label\nclips/a.wav,a b,has_a\n", encoding="utf-8")
    extractor = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "sampling_rate": 16000}
    folders = {
        "ctc": ({"architectures": ["Wav2Vec2ForCTC"]}, "automatic-speech-recognition", "transcript", ["wer", "cer"]),
        "heads": ({"architectures": ["Wav2Vec2ForSequenceClassification"], "id2label": {"0": "has_a", "1": "no_a"}},
                  "audio-classification", "label", ["accuracy", "f1"]),
        "ast": ({"architectures": ["ASTForAudioClassification"], "id2label": {"0": "has_a", "1": "no_a"}},
                "audio-classification", "label", ["accuracy", "f1"]),
        "whisper": ({"architectures": ["WhisperForConditionalGeneration"], "is_encoder_decoder": True},
                    "automatic-speech-recognition", "transcript", ["wer", "cer"]),
    }  # fmt: skip
    for name, (config, task, label, metrics) in folders.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config), encoding="utf-8")
        if name == "whisper":  # a tokenizer too, and the processor as transformers 5 saves it (one file)
            (tmp_path / name / "tokenizer_config.json").write_text("{}", encoding="utf-8")
            processor = {"feature_extractor": {**extractor, "feature_extractor_type": "WhisperFeatureExtractor"}}
            (tmp_path / name / "processor_config.json").write_text(json.dumps(processor), encoding="utf-8")
        else:
            (tmp_path / name / "preprocessor_config.json").write_text(json.dumps(extractor), encoding="utf-8")
        answers = Answers(model=name, data="data.csv", label=None if task.startswith("automatic") else "label")
        path, _ = write_gate(answers, f"gates/{name}.yaml")
        gate = load_gate(path)
        assert (gate.model.task, gate.data.input, gate.data.label) == (task, "audio", label), name
        assert [c.metric for c in gate.checks if c.kind == "metric"] == metrics, name
