"""automatic-speech-recognition (CTC: ``AutoModelForCTC`` + ``AutoProcessor``) and audio-classification.

Inputs are ``(samples, sampling_rate)`` clips (:mod:`modelcheck.run.audio`). A clip at another rate
than the feature extractor's ``sampling_rate`` is resampled with ``librosa.resample`` (``soxr_hq``),
and the outputs say so (``generation.audio``: the rates met and the method), which the checks' details
carry. Clips run longest first in padded batches (the feature extractor pads and masks). A CTC model's
transcript is the processor's ``batch_decode`` of the frame-wise argmax (repeats collapsed, blanks
dropped). An encoder-decoder model (Whisper, Speech2Text: ``AutoModelForSpeechSeq2Seq``) transcribes
with greedy ``generate()`` of up to ``model.max_new_tokens`` tokens, decoded without special tokens. A
clip longer than the model's window (Whisper's 30 s: ``chunk_length`` of its feature extractor) is a
DataError naming its row, never cut silently.
"""

from __future__ import annotations

import copy
from typing import Any

from modelcheck.errors import BackendError, DataError
from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, bad_input

#: librosa's resampling filter (soxr, high quality).
RESAMPLING = "soxr_hq"


class SpeechModel(TransformersModel):
    """Clips resampled to the model's rate and run longest first; the subclasses read the logits."""

    def __init__(self, network: Any, preprocessor: Any, **kwargs: Any) -> None:
        super().__init__(network, preprocessor, **kwargs)
        self.dtype = network.dtype  # float inputs are cast to it (a float16/bfloat16 model, e.g. for parity)

    def _extractor(self) -> Any:
        return getattr(self._preprocessor, "feature_extractor", self._preprocessor)

    def _batches(self, inputs: list[Any], batch_size: int) -> Any:
        """``(rows, logits as numpy)`` per padded batch, and the audio details for the outputs."""
        import torch

        out = []
        clips, details = self._clips(inputs)
        with torch.inference_mode():
            for rows, batch in self._features(clips, batch_size):
                out.append((rows, self._network(**batch).logits.float().cpu().numpy()))
        return out, details

    def _clips(self, inputs: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        """The clips' samples at the model's rate (resampled where needed) and what the details say about them."""
        extractor = self._extractor()
        rate = int(getattr(extractor, "sampling_rate", 16000))
        clips, met = [], set()
        for row, clip in enumerate(inputs):
            if not (isinstance(clip, tuple) and len(clip) == 2):
                raise bad_input(row, clip, self.task, "audio clips (samples, sampling rate)")
            samples, given = clip
            met.add(int(given))
            clips.append(samples if int(given) == rate else _resample(samples, int(given), rate, row))
        details: dict[str, Any] = {"sampling_rate": rate, "rates_in_data": sorted(met)}
        if met - {rate}:
            details["resampled"] = f"librosa.resample ({RESAMPLING}) to {rate} Hz"
        return clips, details

    def _features(self, clips: list[Any], batch_size: int) -> Any:
        """``(rows, model inputs on the device)`` per padded batch, the longest clips first."""
        import numpy as np

        extractor = self._extractor()
        rate = int(getattr(extractor, "sampling_rate", 16000))
        window = getattr(extractor, "n_samples", None)  # Whisper: a fixed window (chunk_length seconds)
        order = np.argsort([-len(c) for c in clips], kind="stable")
        if window is not None and len(order) and len(clips[order[0]]) > window:
            raise DataError(
                f"the audio at data row {int(order[0]) + 1} is {len(clips[order[0]]) / rate:.1f} s long; the model "
                f"reads at most {window / rate:g} s (its feature extractor's chunk_length): split the clip"
            )
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            features = extractor([clips[i] for i in rows], sampling_rate=rate, padding=window is None or "max_length",
                                 return_attention_mask=True, return_tensors="pt")  # fmt: skip
            yield (
                rows,
                {
                    key: value.to(self.device, dtype=self.dtype if value.is_floating_point() else value.dtype)
                    for key, value in features.items()
                    if key in ("input_values", "input_features", "attention_mask")
                },
            )


class SpeechRecognitionModel(SpeechModel):
    """One transcript per clip from a CTC head."""

    task = "automatic-speech-recognition"

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        if not hasattr(self._preprocessor, "batch_decode"):
            raise BackendError(f"{self.source}: a CTC model needs its processor's tokenizer to decode (AutoProcessor)")
        texts = [""] * len(inputs)
        batches, details = self._batches(inputs, batch_size)
        for rows, logits in batches:
            for row, text in zip(rows, self._preprocessor.batch_decode(logits.argmax(axis=-1)), strict=True):
                texts[int(row)] = text
        return Outputs(texts=texts, generation={"audio": details, "decoding": "CTC greedy (argmax per frame)"})


class SpeechSeq2SeqModel(SpeechModel):
    """One transcript per clip from an encoder-decoder (Whisper, Speech2Text): greedy ``generate()``."""

    task = "automatic-speech-recognition"

    def __init__(self, network: Any, preprocessor: Any, **kwargs: Any) -> None:
        super().__init__(network, preprocessor, **kwargs)
        self.max_new_tokens = self.spec.max_new_tokens if self.spec is not None else 32
        positions = getattr(network.config, "max_target_positions", None)
        if isinstance(positions, int) and self.max_new_tokens + 4 > positions:  # 4: Whisper's start tokens at most
            raise BackendError(
                f"{self.source}: model.max_new_tokens {self.max_new_tokens} and the decoder's start tokens exceed the "
                f"{positions} positions of the model's decoder; set model.max_new_tokens to at most {positions - 4}"
            )
        config = copy.deepcopy(network.generation_config)
        config.update(do_sample=False, num_beams=1, max_new_tokens=self.max_new_tokens)
        config.max_length = None
        self.generation_config = config

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np
        import torch

        tokenizer = getattr(self._preprocessor, "tokenizer", None)
        if tokenizer is None:
            raise BackendError(f"{self.source}: an encoder-decoder speech model needs its processor's tokenizer")
        texts = [""] * len(inputs)
        counts = np.zeros(len(inputs), dtype=np.int64)
        clips, details = self._clips(inputs)
        special = sorted(set(tokenizer.all_special_ids))
        with torch.inference_mode():
            for rows, batch in self._features(clips, batch_size):
                sequences = self._network.generate(**batch, generation_config=self.generation_config)
                counts[rows] = (~np.isin(sequences.cpu().numpy(), special)).sum(axis=1)
                for row, text in zip(rows, tokenizer.batch_decode(sequences, skip_special_tokens=True), strict=True):
                    texts[int(row)] = text.strip()
        decoding = {"decoding": "greedy generate() (encoder-decoder)", "max_new_tokens": self.max_new_tokens}
        return Outputs(texts=texts, generation={"audio": details, **decoding}, output_tokens=counts)


class AudioClassificationModel(SpeechModel):
    """Class ids and probabilities per clip."""

    task = "audio-classification"

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np

        scores = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        batches, _ = self._batches(inputs, batch_size)
        for rows, logits in batches:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores[rows] = shifted / shifted.sum(axis=1, keepdims=True)
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)


def _resample(samples: Any, given: int, rate: int, row: int) -> Any:
    try:
        import librosa
    except ImportError:
        raise DataError(
            f"the audio at data row {row + 1} is at {given} Hz and the model takes {rate} Hz: resampling needs "
            "librosa (pip install 'modelcheck[speech]'), or give the audio at the model's rate"
        ) from None
    return librosa.resample(samples, orig_sr=given, target_sr=rate, res_type=RESAMPLING)
