"""Speech and detection: examples/s of modelcheck against a hand loop and the pipeline, and bootstrap times.

Per task, on the tiny models of the tests (``tests/tiny_speech.py``: a wav2vec2 CTC model, a Whisper and
an audio classifier; ``tests/tiny_detection.py``: a YOLOS detector) and the same rows:

- the transformers pipeline (``automatic-speech-recognition``, ``audio-classification``, ``object-detection``;
  ``batch_size=16``). ``evaluate.evaluator`` runs this same pipeline and then its metric, so ``>= 2x`` the
  pipeline means ``>= 2x`` the evaluator (which cannot run here: it fetches its metric scripts);
- a hand-written batched loop: the processor on 16 decoded clips or images, one forward pass (``generate``
  for Whisper), then the task's decoding (argmax + ``batch_decode``; softmax; ``post_process_object_detection``);
- modelcheck: a gate (CSV or JSONL data naming WAV/PNG files, one metric check) run by
  ``modelcheck.run.gate.run_gate`` with the model loaded, so the figure includes reading and decoding the
  files (the loops and the pipeline get them decoded) and computing the metric with its library.

Then the time of a ``kind: regression`` check's bootstrap (2,000 resamples, BCa): WER and CER at 10,000 rows
from jiwer's per-row edits, and COCO mAP at 500 and 2,000 images (synthetic scenes of
``benchmarks/detection_fidelity.py``) from pycocotools' matching.

    python benchmarks/tasks_media.py [--rows 400] [--threads 2] [--repeats 3]
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


def write_data(task: str, folder: Path, n: int) -> tuple[Path, list[Any]]:
    """The data file of ``n`` rows and the decoded inputs (clips at the model's rate, or images)."""
    import tiny_detection
    import tiny_speech
    from PIL import Image

    if task == "object-detection":
        scenes = tiny_detection.scenes(n, seed=21)
        records = tiny_detection.write_scenes(folder / "scenes", scenes)
        tiny_detection.write_jsonl(folder / "data.jsonl", records)
        return folder / "data.jsonl", [Image.fromarray(image) for image, _, _ in scenes]
    rows = tiny_speech.utterances(n, seed=11)
    names = tiny_speech.write_clips(folder / "clips", rows)
    labels = [("no_a", "has_a")["a" in t.split()] for _, t in rows]
    lines = ["audio,text,label", *(f"{a},{t},{label}" for a, (_, t), label in zip(names, rows, labels, strict=True))]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    clips = [samples for samples, _ in rows]
    if task.endswith("(Whisper)"):  # Whisper takes 16 kHz; the loops get the clips already resampled
        import librosa

        clips = [librosa.resample(c, orig_sr=tiny_speech.RATE, target_sr=16000, res_type="soxr_hq") for c in clips]
    return folder / "data.csv", clips


def hand_loop(task: str, model: Any, processor: Any, inputs: list[Any], rate: int) -> list[Any]:
    import torch

    out: list[Any] = []
    with torch.inference_mode():
        for start in range(0, len(inputs), 16):
            batch = inputs[start : start + 16]
            if task == "object-detection":
                pixels = processor(images=batch, return_tensors="pt")
                found = model(**pixels)
                sizes = [(image.height, image.width) for image in batch]
                out += processor.post_process_object_detection(found, threshold=0.0, target_sizes=sizes)
                continue
            extractor = getattr(processor, "feature_extractor", processor)
            whisper = task.endswith("(Whisper)")
            features = extractor(batch, sampling_rate=rate, padding="max_length" if whisper else True,
                                 return_attention_mask=True, return_tensors="pt")  # fmt: skip
            if whisper:
                out += processor.batch_decode(model.generate(**features), skip_special_tokens=True)
            elif task.startswith("automatic"):
                out += processor.batch_decode(model(**features).logits.argmax(-1))
            else:
                out += model(**features).logits.softmax(-1).argmax(-1).tolist()
    return out


def pipeline_run(task: str, model: Any, processor: Any, inputs: list[Any], rate: int) -> Any:
    from transformers import pipeline

    if task == "object-detection":
        pipe = pipeline("object-detection", model=model, image_processor=processor)
        return pipe(inputs, batch_size=16, threshold=0.0)
    if task.startswith("automatic"):
        pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
                        feature_extractor=processor.feature_extractor)  # fmt: skip
    else:
        pipe = pipeline("audio-classification", model=model, feature_extractor=processor)
    return pipe([{"raw": clip, "sampling_rate": rate} for clip in inputs], batch_size=16)


def throughput(task: str, n: int, threads: int, repeats: int) -> list[tuple[str, float | None]]:
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
    model = getattr(transformers, auto).from_pretrained(folder).eval()
    processor = getattr(transformers, pre).from_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp:
        data, inputs = write_data(task, Path(tmp), n)
        rate = int(getattr(getattr(processor, "feature_extractor", processor), "sampling_rate", 0) or 0)
        seconds: list[tuple[str, float | None]] = []
        try:
            seconds.append(("transformers pipeline (batch_size 16)",
                            timed(lambda: pipeline_run(task, model, processor, inputs, rate), repeats)))  # fmt: skip
        except Exception as exc:  # a pipeline transformers 5 cannot build for this model: say so in the table
            print(f"  ({task}: the pipeline failed: {type(exc).__name__}: {str(exc)[:120]})")
            seconds.append(("transformers pipeline (batch_size 16)", None))
        seconds.append(("hand-written batched loop", timed(lambda: hand_loop(task, model, processor, inputs, rate),
                                                            repeats)))  # fmt: skip
        gate_file = Path(tmp) / "gate.yaml"
        model_task = task.split(" (")[0]
        gate_file.write_text(
            f"version: 1\nmodel: {{source: {folder}, task: {model_task}, device: cpu, batch_size: 16, "
            f"threads: {threads}}}\ndata: {{source: {data}, {data_keys}}}\nchecks:\n  - {check}\n",
            encoding="utf-8",
        )
        gate = load_gate(gate_file)
        cache = ModelCache()
        cache.get(gate.model)  # loading is not part of the figure, as for the loops
        seconds.append(("modelcheck gate (run_gate)",
                        timed(lambda: run_gate(gate, file="g.yaml", models=cache, stage=None), repeats)))  # fmt: skip
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
    args = parser.parse_args(argv)

    import torch
    from tasks import print_header, print_rates
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    for name in ("ctc", "whisper", "audio-classifier", "detector"):  # trained before any timing
        model_path(name)
    print(f"{args.rows} rows per task, {args.threads} threads, median of {args.repeats}\n")
    print_header()
    for task in GATES:
        print_rates(task, throughput(task, args.rows, args.threads, args.repeats))
    print("\nbootstrap of a kind: regression check (2,000 resamples, BCa interval, both models)")
    for label, seconds in bootstrap_times():
        print(f"  {label:48s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
