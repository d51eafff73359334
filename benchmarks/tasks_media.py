"""Speech and detection: examples/s of modelcheck against a hand loop and the pipeline, and bootstrap times.

Per task, on the tiny models of the tests (``tests/tiny_speech.py``: a wav2vec2 CTC model, a Whisper and
an audio classifier; ``tests/tiny_detection.py``: a YOLOS detector) and the same data file (CSV or JSONL naming
WAV/PNG files), four ways from the file to the metric's value, so each does the same work:

- the transformers pipeline (``automatic-speech-recognition``, ``audio-classification``, ``object-detection``;
  ``batch_size=16``) on the rows read and decoded as below, then the metric;
- ``evaluate.evaluator`` (speech tasks; evaluate has no object-detection evaluator) on a ``datasets.Dataset``
  of the decoded clips, with its own pipeline call (no batch size: one clip at a time) and a local
  ``evaluate`` metric module (``evaluate.load`` would fetch the metric script);
- a hand-written batched loop: the data file read with pandas, each file decoded (PIL; soundfile, resampled
  with librosa's soxr_hq where the model takes another rate), the processor on 16 clips or images, one forward
  pass (``generate`` for Whisper), the task's decoding (argmax + ``batch_decode``; argmax;
  ``post_process_object_detection``), then the metric with its reference library: WER with jiwer, accuracy,
  COCO mAP with pycocotools' standard evaluation (``COCOeval`` evaluate/accumulate/summarize);
- modelcheck: a gate (the data file, one metric check) run by ``modelcheck.run.gate.run_gate`` with the model
  loaded (as the loops get it loaded), so the figure also includes hashing the data and model files,
  validating the targets and building the report's result.

Until 2026-12-04 the loops and the pipeline were given the decoded inputs and computed no metric, while the
gate's figure included both; on the tiny detector that counted decoding 200 PNGs and pycocotools' matching
(together about half as long as the model's batches) against modelcheck only.

Why the pipelines are close on the tiny speech models: the pipeline is itself a batched loop over the same
processor and model (``batch_size=16``); its own cost is per row (a ``dict`` per clip through its
preprocess/forward/postprocess, and a DataLoader collating the features): 0.2-0.4 ms a row more than the
hand loop in the last table measured (docs/benchmarks.md, inputs given decoded), where the hand loop spent
about 0.8 ms a row, so even a loop with no overhead at all
could not be 2x the pipeline on these models. The larger the model, the more every way's time is the forward
pass and the closer all ratios come to 1; on CTC and the classifier modelcheck's lead over the hand loop
comes from running the clips longest first (less padding in each batch).

Then the time of a ``kind: regression`` check's bootstrap (2,000 resamples, BCa): WER and CER at 10,000 rows
from jiwer's per-row edits, and COCO mAP at 500 and 2,000 images (synthetic scenes of
``benchmarks/detection_fidelity.py``) from pycocotools' matching.

    python benchmarks/tasks_media.py [--rows 400] [--threads 2] [--repeats 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The table's rows that main() reads back by name.
GATE, EVALUATOR = "modelcheck gate (run_gate)", "evaluate.evaluator (its pipeline call)"
#: task -> (tiny model, data keys, check)
GATES = {
    "automatic-speech-recognition (CTC)": ("ctc", "input: audio, label: text", "{name: wer, metric: wer, max: 9}"),
    "automatic-speech-recognition (Whisper)": ("whisper", "input: audio, label: text", "{name: wer, metric: wer, max: 9}"),
    "audio-classification": ("audio-classifier", "input: audio, label: label", "{name: acc, metric: accuracy, min: 0}"),
    "object-detection": ("detector", "input: image, label: objects", "{name: map, metric: map, min: 0}"),
}


def model_path(name: str) -> Path:
    import tiny_detection
    import tiny_speech

    return tiny_detection.shared(name) if name == "detector" else tiny_speech.shared(name)


def write_data(task: str, folder: Path, n: int) -> Path:
    """The data file of ``n`` rows, naming the WAV or PNG files written beside it."""
    import tiny_detection
    import tiny_speech

    if task == "object-detection":
        scenes = tiny_detection.scenes(n, seed=21)
        records = tiny_detection.write_scenes(folder / "scenes", scenes)
        tiny_detection.write_jsonl(folder / "data.jsonl", records)
        return folder / "data.jsonl"
    rows = tiny_speech.utterances(n, seed=11)
    names = tiny_speech.write_clips(folder / "clips", rows)
    labels = [("no_a", "has_a")["a" in t.split()] for _, t in rows]
    lines = ["audio,text,label", *(f"{a},{t},{label}" for a, (_, t), label in zip(names, rows, labels, strict=True))]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "data.csv"


def read_rows(task: str, data: Path, rate: int) -> tuple[list[Any], list[Any]]:
    """What a user's own loop starts with: the data file read with pandas, each file decoded (PIL; soundfile,
    resampled with librosa where the model takes another rate, as modelcheck does), and the label column."""
    import pandas as pd

    if task == "object-detection":
        from PIL import Image

        frame = pd.read_json(data, lines=True)
        return [Image.open(data.parent / name).convert("RGB") for name in frame["image"]], frame["objects"].tolist()
    import librosa
    import soundfile

    frame = pd.read_csv(data)
    clips = []
    for name in frame["audio"]:
        samples, given = soundfile.read(data.parent / name, dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
        clips.append(samples if given == rate else librosa.resample(samples, orig_sr=given, target_sr=rate,
                                                                     res_type="soxr_hq"))  # fmt: skip
    return clips, frame["label" if task == "audio-classification" else "text"].tolist()


def score(task: str, model: Any, found: list[Any], truth: list[Any]) -> float:
    """The gate's metric with its reference library: COCO mAP (pycocotools, its standard evaluation), WER
    (jiwer), accuracy. ``found``: per row a list of ``(x_min, y_min, x_max, y_max, score, class id)``, a
    transcript or a class id."""
    if task.startswith("automatic"):
        import jiwer

        return float(jiwer.wer(truth, found))
    if task == "audio-classification":
        return sum(model.config.id2label[int(i)] == t for i, t in zip(found, truth, strict=True)) / len(truth)
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = model.config.label2id
    boxes = [{"id": k + 1, "image_id": row, "category_id": ids[c], "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
             for k, (row, b, c) in enumerate((row, b, c) for row, o in enumerate(truth)
                                             for b, c in zip(o["bbox"], o["category"], strict=True))]  # fmt: skip
    results = [{"image_id": row, "category_id": int(c), "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(p)}
               for row, rows in enumerate(found) for x0, y0, x1, y1, p, c in rows]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": row} for row in range(len(truth))], "annotations": boxes,
                      "categories": [{"id": i} for i in ids.values()]}  # fmt: skip
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def hand_loop(task: str, model: Any, processor: Any, data: Path, rate: int) -> float:
    """Read and decode the rows, predict in batches of 16, score: a user's own loop, to the metric."""
    import torch

    inputs, truth = read_rows(task, data, rate)
    out: list[Any] = []
    with torch.inference_mode():
        for start in range(0, len(inputs), 16):
            batch = inputs[start : start + 16]
            if task == "object-detection":
                pixels = processor(images=batch, return_tensors="pt").to(model.device)
                found = model(**pixels)
                sizes = [(image.height, image.width) for image in batch]
                for result in processor.post_process_object_detection(found, threshold=0.0, target_sizes=sizes):
                    rows = torch.cat([result["boxes"], result["scores"][:, None], result["labels"][:, None]], dim=1)
                    out.append(rows.tolist())
                continue
            extractor = getattr(processor, "feature_extractor", processor)
            whisper = task.endswith("(Whisper)")
            features = extractor(batch, sampling_rate=rate, padding="max_length" if whisper else True,
                                 return_attention_mask=True, return_tensors="pt").to(model.device)  # fmt: skip
            if whisper:
                out += processor.batch_decode(model.generate(**features), skip_special_tokens=True)
            elif task.startswith("automatic"):
                out += processor.batch_decode(model(**features).logits.argmax(-1))
            else:
                out += model(**features).logits.softmax(-1).argmax(-1).tolist()
    return score(task, model, out, truth)


def pipeline_run(task: str, model: Any, processor: Any, data: Path, rate: int) -> float:
    """Read and decode the rows, the pipeline (``batch_size=16``), score: what ``evaluate.evaluator`` does."""
    from transformers import pipeline

    inputs, truth = read_rows(task, data, rate)
    if task == "object-detection":
        pipe = pipeline("object-detection", model=model, image_processor=processor, device=model.device)
        ids = model.config.label2id
        found = [[(b["box"]["xmin"], b["box"]["ymin"], b["box"]["xmax"], b["box"]["ymax"], b["score"], ids[b["label"]])
                  for b in image] for image in pipe(inputs, batch_size=16, threshold=0.0)]  # fmt: skip
        return score(task, model, found, truth)
    clips = [{"raw": clip, "sampling_rate": rate} for clip in inputs]
    if task.startswith("automatic"):
        pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
                        feature_extractor=processor.feature_extractor, device=model.device)  # fmt: skip
        return score(task, model, [out["text"] for out in pipe(clips, batch_size=16)], truth)
    pipe = pipeline("audio-classification", model=model, feature_extractor=processor, device=model.device)
    ids = model.config.label2id
    return score(task, model, [ids[out[0]["label"]] for out in pipe(clips, batch_size=16, top_k=1)], truth)


def local_metric(name: str) -> Any:
    """An ``evaluate`` metric module computing ``wer`` (jiwer, as the Hub's ``wer`` script does) or ``accuracy``,
    built here: ``evaluate.load`` would fetch the script from the Hub."""
    import datasets
    import evaluate

    kind = datasets.Value("string" if name == "wer" else "int64")

    class Local(evaluate.Metric):
        def _info(self) -> Any:
            return evaluate.MetricInfo(description=f"{name}, local", citation="",
                                       features=datasets.Features({"predictions": kind, "references": kind}))  # fmt: skip

        def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
            if name == "wer":
                import jiwer

                return {"wer": float(jiwer.wer(references, predictions))}
            return {"accuracy": sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)}

    return Local()


def evaluator_run(task: str, model: Any, processor: Any, data: Path, rate: int) -> float:
    """Read and decode the rows, then ``evaluate.evaluator`` as its users run it: a ``datasets.Dataset`` of the
    clips, its pipeline call (one clip at a time: the evaluator passes no batch size) and the metric module."""
    import datasets
    import transformers
    from evaluate import evaluator
    from transformers import pipeline

    if not hasattr(transformers, "TFPreTrainedModel"):  # evaluate 0.4.6 checks for it; transformers 5 removed it
        transformers.TFPreTrainedModel = type("TFPreTrainedModel", (), {})
    inputs, truth = read_rows(task, data, rate)
    pipe: Any
    if task.startswith("automatic"):
        pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
                        feature_extractor=processor.feature_extractor, device=model.device)  # fmt: skip
        labels, mapping = truth, None
    else:
        pipe = pipeline("audio-classification", model=model, feature_extractor=processor, device=model.device)
        labels, mapping = [model.config.label2id[t] for t in truth], model.config.label2id
    rows = datasets.Dataset.from_dict({"audio": [{"raw": clip, "sampling_rate": rate} for clip in inputs],
                                       "label": labels}).with_format("numpy")  # fmt: skip
    metric = "wer" if task.startswith("automatic") else "accuracy"
    result = evaluator(task.split(" (")[0]).compute(model_or_pipeline=pipe, data=rows, metric=local_metric(metric),
                                                    input_column="audio", label_column="label",
                                                    **({"label_mapping": mapping} if mapping else {}))  # fmt: skip
    return float(result[metric])


def throughput(task: str, n: int, threads: int, repeats: int, device: str) -> list[tuple[str, float | None]]:
    import transformers
    from tasks import timed

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    name, data_keys, check = GATES[task]
    folder = model_path(name)
    auto, pre = {
        "automatic-speech-recognition (CTC)": ("AutoModelForCTC", "AutoProcessor"),
        "automatic-speech-recognition (Whisper)": ("AutoModelForSpeechSeq2Seq", "AutoProcessor"),
        "audio-classification": ("AutoModelForAudioClassification", "AutoFeatureExtractor"),
        "object-detection": ("AutoModelForObjectDetection", "AutoImageProcessor"),
    }[task]
    model = getattr(transformers, auto).from_pretrained(folder).eval().to(device)
    processor = getattr(transformers, pre).from_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(task, Path(tmp), n)
        rate = int(getattr(getattr(processor, "feature_extractor", processor), "sampling_rate", 0) or 0)
        seconds: list[tuple[str, float | None]] = []
        try:
            seconds.append(("transformers pipeline (batch_size 16)",
                            timed(lambda: pipeline_run(task, model, processor, data, rate), repeats)))  # fmt: skip
        except Exception as exc:  # a pipeline transformers 5 cannot build for this model: say so in the table
            print(f"  ({task}: the pipeline failed: {type(exc).__name__}: {str(exc)[:120]})")
            seconds.append(("transformers pipeline (batch_size 16)", None))
        seconds.append(("hand-written batched loop", timed(lambda: hand_loop(task, model, processor, data, rate),
                                                            repeats)))  # fmt: skip
        gate_file = Path(tmp) / "gate.yaml"
        model_task = task.split(" (")[0]
        gate_file.write_text(
            f"version: 1\nmodel: {{source: {folder}, task: {model_task}, device: {device}, batch_size: 16, "
            f"threads: {threads}}}\ndata: {{source: {data}, {data_keys}}}\nchecks:\n  - {check}\n",
            encoding="utf-8",
        )
        gate = load_gate(gate_file)
        cache = ModelCache()
        cache.get(gate.model)  # loading is not part of the figure, as for the loops

        def gate_run() -> None:
            result = run_gate(gate, file="g.yaml", models=cache, stage=None)
            if any(check.status != "passed" for check in result.checks):  # a broken run must not look fast
                raise SystemExit(f"{task}: the gate did not pass: {[c.message for c in result.checks]}")

        seconds.append((GATE, timed(gate_run, repeats)))
        if task != "object-detection":  # evaluate has no object-detection evaluator
            try:
                print(f"  ({task}: the evaluator's metric {evaluator_run(task, model, processor, data, rate):.6f})")
                seconds.append((EVALUATOR,
                                timed(lambda: evaluator_run(task, model, processor, data, rate), repeats)))  # fmt: skip
            except Exception as exc:  # evaluate 0.4.6 passes truncation=True, which Whisper's generate() refuses
                print(f"  ({task}: the evaluator failed: {type(exc).__name__}: {str(exc)[:120]})")
                seconds.append((EVALUATOR, None))
        value = run_gate(gate, file="g.yaml", models=cache, stage=None).checks[0].value
        print(f"  ({task}: the metric: hand loop {hand_loop(task, model, processor, data, rate):.6f}, "
              f"modelcheck {value:.6f})")
        cache.close()
    return [(label, None if s is None else n / s) for label, s in seconds]


def bootstrap_times() -> list[tuple[str, float]]:
    """Seconds of a regression check's bootstrap (2,000 resamples, BCa) per metric."""
    import detection_fidelity as df
    import numpy as np

    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs
    from modelcheck.tasks import detection, speech

    out = []
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat dog ran to big red house quickly".split()
    refs = [" ".join(rng.choice(words, size=int(rng.integers(3, 20)))) for _ in range(10_000)]
    first = [" ".join(w if rng.random() > 0.1 else "x" for w in r.split()) for r in refs]
    second = [" ".join(w if rng.random() > 0.12 else "y" for w in r.split()) for r in refs]
    for metric in ("wer", "cer"):
        check = CheckSpec(name=metric, metric=metric, max=1.0)
        a, b = (speech.row_statistics(check, refs, Outputs(texts=t), ()) for t in (first, second))
        began = time.perf_counter()
        df.gate_test(a, b, 0.01)  # the same bootstrap + BCa as any family metric's regression check
        out.append((f"{metric}, 10,000 rows", time.perf_counter() - began))
    boxes, labels = df.scenes(rng, 2000)
    good = df.detector(boxes, labels, rng, found=0.85, jitter=0.04, false_alarms=0.5)
    worse = df.detector(boxes, labels, rng, found=0.65, jitter=0.08, false_alarms=1.0)
    for n in (500, 2000):
        truth = detection.GroundTruth(boxes[:n], labels[:n], "objects", "scenes", "xywh")
        check = CheckSpec(name="map", metric="map", min=0.0)
        a, b = (detection.row_statistics(check, truth, Outputs(detections=d[:n]), df.CLASSES) for d in (good, worse))
        began = time.perf_counter()
        df.gate_test(a, b, 0.02)
        out.append((f"map, {n:,} images ({sum(len(d) for d in good[:n] + worse[:n])} detections)",
                    time.perf_counter() - began))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", action="append", help="only these tasks (as in the table)")
    parser.add_argument("--device", default="cpu", help="where every way runs the model (cpu, cuda, cuda:N)")
    args = parser.parse_args(argv)

    import torch
    from tasks import print_header, print_rates
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    tasks = [t for t in GATES if not args.task or t in args.task]
    for task in tasks:  # the models these tasks run, trained before any timing
        model_path(GATES[task][0])
    print(f"{args.rows} rows per task on {args.device}, {args.threads} threads, median of {args.repeats}\n")
    print_header()
    for task in tasks:
        rates = throughput(task, args.rows, args.threads, args.repeats, args.device)
        print_rates(task, rates)
        named = dict(rates)
        evaluated, gated = named.get(EVALUATOR), named[GATE]
        if evaluated and gated:
            print(f"  ({task}: modelcheck / evaluate.evaluator {gated / evaluated:.2f}x)")
    print("\nbootstrap of a kind: regression check (2,000 resamples, BCa interval, both models)")
    for label, seconds in bootstrap_times():
        print(f"  {label:48s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
