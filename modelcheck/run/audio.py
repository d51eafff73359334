"""Audio columns decoded once per gate: file paths (relative to the data file), ``datasets`` audio records, bytes.

Each clip becomes ``(samples, sampling_rate)``: float32 mono (channels averaged) at the file's own rate;
the backend resamples to its model's rate and says so. ``soundfile`` (libsndfile) decodes WAV, FLAC,
OGG/Vorbis and, with libsndfile 1.1+, MP3. A missing or undecodable file, an empty clip and one longer
than :data:`MAX_SECONDS` are DataErrors naming the file and the row.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from modelcheck.errors import DataError
from modelcheck.models.backends import data_row

__all__ = ["AUDIO_TASKS", "MAX_SECONDS", "audio_clips"]

AUDIO_TASKS = ("automatic-speech-recognition", "audio-classification")
#: The longest clip taken, in seconds: an hour of audio in one row is a data mistake, not an utterance.
MAX_SECONDS = 600.0


def audio_clips(values: list[Any], *, column: str, base: Path | None) -> list[tuple[Any, int]]:
    """Decode an audio column to ``(float32 mono samples, sampling rate)`` per row."""
    try:
        import soundfile
    except ImportError:
        raise DataError("audio inputs need soundfile: pip install 'modelcheck[speech]'") from None
    import numpy as np

    clips = []
    for row, value in enumerate(values):
        where = f"{data_row(row)} of column {column!r}"
        if isinstance(value, dict) and value.get("array") is not None and value.get("sampling_rate"):
            samples, rate = np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"])  # datasets Audio
        else:
            source, name = _source(value, where, base)
            try:
                with soundfile.SoundFile(source) as clip:  # opened once: its length is checked before decoding
                    seconds = clip.frames / max(clip.samplerate, 1)
                    if seconds > MAX_SECONDS:
                        raise DataError(f"audio {name} ({where}) is {seconds:.0f} s long; clips longer than "
                                        f"{MAX_SECONDS:.0f} s are refused: cut it into utterances")  # fmt: skip
                    samples, rate = clip.read(dtype="float32", always_2d=True), clip.samplerate
            except DataError:
                raise
            except FileNotFoundError:
                raise DataError(f"audio file not found: {name} ({where})") from None
            except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError, ...
                raise DataError(f"cannot decode audio {name} ({where}): {exc}; give WAV, FLAC, OGG or MP3") from None
            samples = samples.mean(axis=1)
        if samples.ndim != 1 or samples.size == 0:
            raise DataError(f"audio at {where} is empty (no samples): drop the row or give the clip")
        if not np.isfinite(samples).all():
            raise DataError(f"audio at {where} holds NaN or infinite samples")
        clips.append((samples, rate))
    return clips


def _source(value: Any, where: str, base: Path | None) -> tuple[Any, str]:
    """What soundfile reads (a path or bytes) and how messages name it."""
    if isinstance(value, dict) and value.get("bytes"):
        return io.BytesIO(value["bytes"]), str(value.get("path") or where)
    raw = value.get("path") if isinstance(value, dict) else value
    if not isinstance(raw, str) or not raw:
        raise DataError(f"{where} holds {type(value).__name__}, not an audio file path or a datasets audio record")
    path = Path(raw)
    path = path if path.is_absolute() or base is None else base / path
    if path.exists() and not path.is_file():
        raise DataError(f"audio {path} ({where}) is not a regular file (a folder, FIFO or device)")
    if not path.exists():
        raise DataError(f"audio file not found: {path} ({where})")
    return str(path), str(path)
