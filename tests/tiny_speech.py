"""Tiny real speech models trained in seconds on synthetic audio: tones stand for letters.

Each letter of ``LETTERS`` is a pure tone (``TONES`` Hz); an utterance says 1 to 3 letters, 0.12 s
each with 0.04 s of silence between, at ``RATE`` Hz. The transcript names the letters as words
("a c b"), so WER counts letters and CER characters. A wav2vec2 CTC model (two conv layers, one
transformer layer) learns to transcribe them, and a wav2vec2 classifier to tell low tones from high.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

RATE = 8000
LETTERS = ("a", "b", "c")
TONES = {"a": 400.0, "b": 1000.0, "c": 2200.0}


def utterances(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """``n`` deterministic (samples at RATE, transcript) pairs."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        said = [LETTERS[int(i)] for i in rng.integers(0, len(LETTERS), int(rng.integers(1, 4)))]
        parts = [np.zeros(int(0.04 * RATE), np.float32)]
        for letter in said:
            t = np.arange(int(0.12 * RATE)) / RATE
            parts += [
                (0.5 * np.sin(2 * np.pi * TONES[letter] * t)).astype(np.float32),
                np.zeros(int(0.04 * RATE), np.float32),
            ]
        samples = np.concatenate(parts) + rng.normal(0, 0.01, sum(len(p) for p in parts)).astype(np.float32)
        out.append((samples, " ".join(said)))
    return out


def write_clips(folder: Path, rows: list[tuple[np.ndarray, str]], *, rate: int = RATE) -> list[str]:
    """Write each clip as a WAV file in ``folder`` (resampled to ``rate``); the file names, relative to it."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (samples, _) in enumerate(rows):
        if rate != RATE:
            import librosa

            samples = librosa.resample(samples, orig_sr=RATE, target_sr=rate)
        soundfile.write(folder / f"clip{i:04d}.wav", samples, rate)
        names.append(f"{folder.name}/clip{i:04d}.wav")
    return names


def _processor(out: Path) -> Any:
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    vocab = {"<pad>": 0, "|": 1, "<unk>": 2, **{letter: 3 + i for i, letter in enumerate(LETTERS)}}
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(
        str(out / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)  # fmt: skip
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def _config(**extra: Any) -> Any:
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, feat_extract_norm="layer", do_stable_layer_norm=True,
        mask_time_prob=0.0, layerdrop=0.0, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, final_dropout=0.0, **extra,
    )  # fmt: skip


def build_ctc(out: Path, *, trained: bool = True, steps: int = 250, seed: int = 0) -> Path:
    """A tiny Wav2Vec2ForCTC that transcribes the tones (``trained``), or its random start."""
    import torch
    from transformers import Wav2Vec2ForCTC

    out.mkdir(parents=True, exist_ok=True)
    processor = _processor(out)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(_config(vocab_size=3 + len(LETTERS), pad_token_id=0, ctc_loss_reduction="mean"))
    if trained:
        rows = utterances(96, seed=seed + 1)
        features = processor.feature_extractor([s for s, _ in rows], sampling_rate=RATE, padding=True,
                                               return_attention_mask=True, return_tensors="pt")  # fmt: skip
        labels = processor.tokenizer([t for _, t in rows], padding=True, return_tensors="pt")
        targets = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for step in range(steps):
            pick = torch.arange(step * 16, step * 16 + 16) % len(rows)
            loss = model(input_values=features["input_values"][pick], attention_mask=features["attention_mask"][pick],
                         labels=targets[pick]).loss  # fmt: skip
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_classifier(out: Path, *, trained: bool = True, steps: int = 40, seed: int = 0) -> Path:
    """A tiny Wav2Vec2ForSequenceClassification: does the clip say an "a" (low tone) or not."""
    import torch
    from transformers import Wav2Vec2ForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    extractor = _processor(out).feature_extractor
    torch.manual_seed(seed)
    config = _config(num_labels=2, id2label={0: "no_a", 1: "has_a"}, label2id={"no_a": 0, "has_a": 1})
    model = Wav2Vec2ForSequenceClassification(config)
    if trained:
        rows = utterances(64, seed=seed + 2)
        features = extractor([s for s, _ in rows], sampling_rate=RATE, padding=True, return_attention_mask=True,
                             return_tensors="pt")  # fmt: skip
        labels = torch.tensor([int("a" in t.split()) for _, t in rows])
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            loss = model(**features, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    model.save_pretrained(out)
    extractor.save_pretrained(out)
    return out


def build_whisper(out: Path, *, trained: bool = True, steps: int = 250, seed: int = 0) -> Path:
    """A tiny WhisperForConditionalGeneration (one encoder and one decoder layer, 16 mel bins, a 1 s window at
    16 kHz) with a byte-level tokenizer of the letters, trained to write the transcripts (``trained``)."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    out.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
    vocab = {token: i for i, token in enumerate([*LETTERS, "\u0120", *specials])}  # \u0120: byte-level space
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], unk_token=end, bos_token=end, eos_token=end, pad_token=end)
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    # Whisper's mel filters reach 8 kHz, so it takes 16 kHz audio (the test clips at RATE are resampled)
    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, chunk_length=1, n_fft=400)
    start, no_times, stop = (tokenizer.convert_tokens_to_ids(t) for t in ("<|startoftranscript|>", "<|notimestamps|>",
                                                                           end))  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=16, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=extractor.nb_max_frames // 2, max_target_positions=48, pad_token_id=stop,
        bos_token_id=stop, eos_token_id=stop, decoder_start_token_id=start, dropout=0.0,
        begin_suppress_tokens=None, suppress_tokens=None,
    ))  # fmt: skip
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=stop, pad_token_id=stop, max_length=48,
        no_timestamps_token_id=no_times, is_multilingual=False,
    )  # fmt: skip
    if trained:
        rows = utterances(256, seed=seed + 3)
        import librosa

        clips = [librosa.resample(s, orig_sr=RATE, target_sr=16000, res_type="soxr_hq") for s, _ in rows]
        features = extractor(clips, sampling_rate=16000, return_tensors="pt").input_features
        labels = tokenizer([t for _, t in rows], padding=True, return_tensors="pt")
        # the decoder starts from <|startoftranscript|> itself, so the labels begin after it (as Whisper's fine-tuning)
        targets = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)[:, 1:]
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for step in range(steps):
            pick = torch.arange(step * 16, step * 16 + 16) % len(rows)
            loss = model(input_features=features[pick], labels=targets[pick]).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    model.save_pretrained(out)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    return out


@functools.cache
def shared(name: str) -> Path:
    """``ctc``, ``ctc-untrained``, ``audio-classifier``, ``whisper`` or ``whisper-untrained``, built once per process
    (read-only)."""
    import tiny_models

    builders = {
        "ctc": lambda out: build_ctc(out),
        "ctc-untrained": lambda out: build_ctc(out, trained=False),
        "audio-classifier": lambda out: build_classifier(out),
        "whisper": lambda out: build_whisper(out),
        "whisper-untrained": lambda out: build_whisper(out, trained=False),
    }
    return builders[name](tiny_models._shared_root() / name)
