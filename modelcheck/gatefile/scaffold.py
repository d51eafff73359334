"""``modelcheck init``: write a gate file for a model and a data file, with checks chosen from the task.

The task is read from the model where it says (a transformers folder's ``config.json``, an ONNX export's
folder, a torch source is tabular) and from the data (a numeric label with fractions is a regression);
the input and label columns are guessed from their names and types. Whatever cannot be told is asked
for in a terminal, or is an error that names the flag. The written file validates (it is loaded before
it is written) and is never written over an existing file.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import ModelcheckError, ScaffoldError
from modelcheck.gatefile.schema import gate_schema
from modelcheck.gatefile.starting_checks import quality_checks, scalar
from modelcheck.gatefile.tasks import TASKS

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    Ask = Callable[[str, "str | None"], "str | None"]

TEXT_COLUMNS = ("text", "sentence", "prompt", "input", "source", "article", "review", "content", "question", "document")
LABEL_COLUMNS = ("label", "labels", "target", "y", "class", "score", "expected", "answer", "output",
                 "answers", "tags", "ner_tags", "summary", "translation", "reference", "references", "transcript",
                 "transcription", "objects")  # fmt: skip
#: Transcript columns of speech recognition, looked for before the other label columns.
TRANSCRIPT_COLUMNS = ("transcript", "transcription", "sentence", "text")
#: Audio columns (file paths or datasets audio records) of the speech tasks.
AUDIO_COLUMNS = ("audio", "path", "file", "audio_path", "wav")
#: Word-list columns of token classification.
WORD_COLUMNS = ("words", "tokens")
_GENERATION = re.compile(r"(ForCausalLM|LMHeadModel|ForConditionalGeneration)$")


@dataclass
class Answers:
    """What the user said (flags or prompts); None where they said nothing."""

    model: str | None = None
    data: str | None = None
    label: str | None = None
    input: list[str] | None = None
    task: str | None = None
    backend: str | None = None
    model_id: str | None = None
    reference: str | None = None
    schema: str | None = None


@dataclass
class _Model:
    source: str
    backend: str
    task: str | None = None
    tokenizer: str | None = None
    notes: list[str] = field(default_factory=list)


def schema_path() -> Path:
    """Where the installed gate-file schema is (for editor settings)."""
    return Path(str(resources.files("modelcheck").joinpath("schemas/gate.schema.json")))


def ask(question: str, default: str | None) -> str | None:
    """Ask in the terminal; an empty answer takes ``default``, end of input gives None."""
    try:
        answer = input(f"{question}{f' [{default}]' if default else ''}: ").strip()
    except EOFError:
        return None
    return answer or default


def write_gate(answers: Answers, path: str | os.PathLike[str] | None, *, ask: Ask | None = None) -> tuple[Path, str]:
    """Write the gate file for ``answers`` at ``path`` (default ``gates/<id>.yaml``); the path and a summary."""
    model_raw = _answer(answers.model, ask, "Model (folder, .onnx/.pt2 file, Hub id or module:callable)", "--model")
    data_raw = _answer(answers.data, ask, "Data file (.csv, .json, .jsonl, .parquet) or image folder", "--data")
    model = _inspect_model(model_raw, answers.backend)
    frame = _read_columns(data_raw)
    columns = [] if frame is None else [str(c) for c in frame.columns]
    named = TRANSCRIPT_COLUMNS + LABEL_COLUMNS if model.task == "automatic-speech-recognition" else LABEL_COLUMNS
    label = answers.label or _guess(columns, named) or _class_column(model, frame)
    if ask is not None and frame is not None:
        label = ask(f"Label column ({', '.join(columns)})", label) or label
    if label is not None and frame is not None and label not in columns:
        raise ScaffoldError(f"label column {label!r} is not in {data_raw}; its columns: {', '.join(columns)}")
    if label is not None and frame is not None and len(frame) and _empty(frame[label]):
        raise ScaffoldError(
            f"label column {label!r} of {data_raw} is empty in its first {len(frame)} rows; fill in the expected "
            "outputs, or pass --label with the column that holds them"
        )
    task = answers.task or model.task or _task_from_data(model, frame, label)
    if task is None and ask is not None:
        task = ask(f"Task ({', '.join(TASKS)})", None)
    if task not in TASKS:
        raise ScaffoldError(
            f"cannot tell the task of {model_raw}" + (f" ({task!r} is not one)" if task else "")
            + f"; pass --task, one of: {', '.join(TASKS)}"
        )  # fmt: skip
    if label is None and task != "feature-extraction":
        raise ScaffoldError(f"cannot tell which column of {data_raw} holds the expected outputs; pass --label"
                            + (f", one of: {', '.join(columns)}" if columns else ""))  # fmt: skip
    inputs = answers.input or _guess_inputs(task, frame, label, data_raw)
    model_id = answers.model_id or _model_id(model_raw)
    target = Path(path) if path else Path("gates") / f"{model_id}.yaml"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; modelcheck init never overwrites a file: pass another path")
    text, checks = _compose(answers, model, model_id, data_raw, inputs, label, task, target.parent)
    _validated_write(target, text)
    return target, f"task {task}, checks {', '.join(checks)}; stages merge and deploy"


def _answer(given: str | None, ask: Ask | None, question: str, flag: str) -> str:
    answer = given or (ask(question, None) if ask is not None else None)
    if not answer:
        asked = "or run modelcheck init in a terminal to be asked"
        raise ScaffoldError(f"no {flag.lstrip('-')} given: pass {flag} ({asked})")
    return answer


def _inspect_model(raw: str, backend: str | None) -> _Model:
    """The backend, task and tokenizer a model source implies, where the source says."""
    path = Path(raw).expanduser()
    if path.suffix == ".onnx" or (path.is_dir() and (path / "model.onnx").is_file()):
        onnx = path if path.suffix == ".onnx" else path / "model.onnx"
        folder = onnx.parent
        tokenizer = str(folder) if (folder / "tokenizer.json").is_file() else None
        return _Model(str(onnx), backend or "onnx", _config_task(folder) if tokenizer else None, tokenizer)
    if path.suffix in (".pt2", ".pt", ".pth") or (":" in raw and not path.exists() and "/" not in raw):
        return _Model(raw, backend or "torch")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ScaffoldError(f"model folder {raw} has no config.json (nor model.onnx); pass the model's folder")
        return _Model(raw, backend or "transformers", _config_task(path))
    if path.exists() or raw.startswith((".", "/", "~")):
        if not path.exists():
            raise ScaffoldError(f"model {raw} does not exist; pass a folder, an .onnx/.pt2 file or a Hub id")
        raise ScaffoldError(f"cannot tell how to load {raw}; pass a folder, an .onnx/.pt2/.pt file or --backend")
    return _Model(raw, backend or "transformers")  # a Hub id: its task is not known offline


def _config_task(folder: Path) -> str | None:
    """The task of a transformers folder, from ``config.json``'s architectures (or sentence-transformers files)."""
    if (folder / "modules.json").is_file():
        return "feature-extraction"
    path = folder / "config.json"
    _require_regular(path, "model config")
    try:
        config = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(config, dict) or not (
        architectures is None or (isinstance(architectures, list) and all(isinstance(a, str) for a in architectures))
    ):
        shape = "its architectures are not a list of names" if isinstance(config, dict) else "it is not a JSON object"
        raise ScaffoldError(
            f"{path}: {shape}, so it is not a transformers config; pass the model's folder, or --task and --backend"
        )
    for architecture in architectures or ():
        if architecture.endswith("ForSequenceClassification") and _audio_features(folder):
            return "audio-classification"  # wav2vec2, HuBERT, WavLM heads: a feature extractor, no tokenizer
        if architecture.endswith("ForSequenceClassification"):
            multi = config.get("problem_type") == "multi_label_classification"
            return "multi-label-classification" if multi else "text-classification"
        if architecture.endswith("ForTokenClassification"):
            return "token-classification"
        if architecture.endswith("ForQuestionAnswering"):
            return "question-answering"
        if architecture.endswith("ForImageClassification"):
            return "image-classification"
        if architecture.endswith("ForObjectDetection"):  # DETR, YOLOS, RT-DETR, Conditional/Deformable DETR
            return "object-detection"
        if architecture.endswith("ForCTC"):
            return "automatic-speech-recognition"
        if architecture.endswith("ForAudioClassification"):
            return "audio-classification"
        if _GENERATION.search(architecture) and config.get("is_encoder_decoder") and _audio_features(folder, True):
            return "automatic-speech-recognition"  # Whisper, Speech2Text: an audio feature extractor and a decoder
        if architecture.endswith("MTModel"):  # MarianMTModel: a translator
            return "translation"
        if _GENERATION.search(architecture):
            return "text2text-generation" if config.get("is_encoder_decoder") else "text-generation"
        if architecture.endswith("Model"):
            return "feature-extraction"
    return None


def _audio_features(folder: Path, tokenizer: bool = False) -> bool:
    """Whether the folder's preprocessor is an audio feature extractor (not an image processor), and without a
    tokenizer unless ``tokenizer`` (a speech encoder-decoder has both)."""
    config: Any = None
    for name in ("preprocessor_config.json", "processor_config.json"):  # transformers 5 saves processors in one file
        try:
            config = json.loads((folder / name).read_text("utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(config, dict) and isinstance(config.get("feature_extractor"), dict):
            config = config["feature_extractor"]
        break
    if not isinstance(config, dict):
        return False
    kind = str(config.get("feature_extractor_type", ""))
    alone = tokenizer or not (folder / "tokenizer_config.json").is_file()
    return bool(kind) and "sampling_rate" in config and alone


def _read_columns(raw: str) -> pd.DataFrame | None:
    """The first rows of a local data file (None for a Hub dataset id); an image folder has image/label."""
    import pandas as pd

    path = Path(raw).expanduser()
    if path.is_dir():
        return pd.DataFrame({"image": [], "label": []})
    if not path.exists():
        if raw.startswith((".", "/", "~")) or path.suffix:
            raise ScaffoldError(f"data file {raw} does not exist; pass a .csv, .json, .jsonl or .parquet file")
        return None
    _require_regular(path, "data file")
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, nrows=500)
        if path.suffix in (".jsonl", ".json"):
            lines = path.suffix == ".jsonl"
            return pd.read_json(path, lines=lines, nrows=500) if lines else pd.read_json(path).head(500)
        if path.suffix == ".parquet":
            return pd.read_parquet(path).head(500)
    except (OSError, ValueError, ImportError) as exc:
        raise ScaffoldError(f"cannot read {raw} ({exc}); pass a readable data file") from None
    raise ScaffoldError(f"data file {raw}: unsupported type {path.suffix!r}; use .csv, .json, .jsonl or .parquet")


def _require_regular(path: Path, what: str) -> None:
    """ScaffoldError unless ``path`` is a regular file (a FIFO would block the read that follows)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: the read that follows says so
    if not stat.S_ISREG(mode):
        raise ScaffoldError(f"{what} {path} is not a regular file (a FIFO, socket or device); pass a file")


def _empty(column: pd.Series) -> bool:
    """Whether every value of ``column`` is missing or blank text."""
    values = column.dropna()
    return bool(values.map(lambda v: isinstance(v, str) and not v.strip()).all())


def _guess(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[name] for name in names if name in lowered), None)


def _class_column(model: _Model, frame: pd.DataFrame | None) -> str | None:
    """The one column holding only the class labels a converted ONNX classifier carries (skl2onnx), if any."""
    if model.backend != "onnx" or model.tokenizer or frame is None:
        return None
    try:  # through the backend's entry point: the core imports no plugin by name
        from importlib.metadata import entry_points

        from modelcheck.gatefile.build import BACKENDS_GROUP

        (onnx,) = entry_points(group=BACKENDS_GROUP, name="onnx")
        classes = {str(c) for c in onnx.load().graph_classes(Path(model.source)) or ()}
    except (ImportError, ValueError, AttributeError, ModelcheckError):
        return None
    found = [c for c in frame.columns if classes and set(frame[c].dropna().astype(str)) <= classes]
    return str(found[0]) if len(found) == 1 else None


def _task_from_data(model: _Model, frame: pd.DataFrame | None, label: str | None) -> str | None:
    """Tabular models: a regression when the label holds fractions, else a classification."""
    if model.backend not in ("torch", "onnx") or model.tokenizer or frame is None:
        return None
    if label is not None and frame[label].dtype.kind == "f" and (frame[label] % 1 != 0).any():
        return "tabular-regression"
    return "tabular-classification"


def _guess_inputs(task: str, frame: pd.DataFrame | None, label: str | None, data: str) -> list[str]:
    if frame is None:
        raise ScaffoldError(f"cannot read the columns of {data} here; pass --input (and --label)")
    columns = [str(c) for c in frame.columns if c != label]
    if task in ("image-classification", "object-detection"):
        return ["image"] if "image" in columns else columns[:1]
    if task in ("automatic-speech-recognition", "audio-classification"):
        audio = _guess(columns, AUDIO_COLUMNS)
        if audio is None:
            raise ScaffoldError(f"{data} has no audio column ({', '.join(AUDIO_COLUMNS)}) for {task}; pass --input")
        return [audio]
    if TASKS[task].tabular:
        numeric = [c for c in columns if frame[c].dtype.kind in "biuf"]
        if not numeric:
            raise ScaffoldError(f"{data} has no numeric feature columns for {task}; pass --input for each feature")
        return numeric
    if task == "question-answering":
        pair = [_guess(columns, ("question",)), _guess(columns, ("context",))]
        if None in pair:
            raise ScaffoldError(f"{data} needs a question and a context column for {task}; pass --input QUESTION "
                                "--input CONTEXT")  # fmt: skip
        return [str(c) for c in pair]
    if task == "token-classification":
        words = _guess(columns, WORD_COLUMNS)
        if words is None:
            raise ScaffoldError(f"{data} has no word-list column (words, tokens) for {task}; pass --input COLUMN")
        return [words]
    texts = [c for c in columns if frame[c].dtype.kind == "O"]
    named = _guess(texts, TEXT_COLUMNS)
    if task == "feature-extraction" and named is None and len(texts) == 2:
        return texts
    if named or texts:
        return [named or texts[0]]
    listed = ", ".join(columns)
    raise ScaffoldError(f"{data} has no text column for {task}; pass --input COLUMN (its columns: {listed})")


def _model_id(raw: str) -> str:
    name = raw.rstrip("/").split("@")[0]
    name = Path(name).stem if name.endswith((".onnx", ".pt2", ".pt", ".pth")) else Path(name).name
    if name == "model" and Path(raw).parent.name:  # models/sentiment/model.onnx -> sentiment
        name = Path(raw).parent.name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name.split(":")[0]).strip("-._")
    return name or "model"


def _relative(raw: str | None, folder: Path) -> str | None:
    """A relative local path as seen from the gate file's folder (``./x`` or ``../x``); anything else as given."""
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if path.is_absolute() or not path.exists():
        return raw
    relative = os.path.relpath(path.resolve(), folder.resolve())
    return relative if relative.startswith("..") else f"./{relative}"


def _compose(
    answers: Answers, model: _Model, model_id: str, data: str, inputs: list[str], label: str | None, task: str,
    folder: Path,
) -> tuple[str, list[str]]:  # fmt: skip
    schema = answers.schema or gate_schema()["$id"]
    lines = [f"# yaml-language-server: $schema={schema}", "# Written by modelcheck init: adjust the thresholds.",
             "version: 1", "model:", f"  id: {scalar(model_id)}",
             f"  source: {scalar(_relative(model.source, folder))}",
             f"  backend: {scalar(model.backend)}", f"  task: {scalar(task)}"]  # fmt: skip
    if model.tokenizer:
        lines.append(f"  tokenizer: {scalar(_relative(model.tokenizer, folder))}")
    lines += ["data:", f"  source: {scalar(_relative(data, folder))}"]
    lines.append(f"  input: {scalar(inputs[0] if len(inputs) == 1 else inputs)}")
    if label is not None:
        lines.append(f"  label: {scalar(label)}")
    quality = quality_checks(task, inputs, label, _relative(answers.reference, folder))
    performance = [
        ["- name: latency_p95", "  kind: latency", "  batch_size: 1", "  percentile: 95",
         "  max_ms: 250               # placeholder: your latency budget"],
        ["- name: peak_memory", "  kind: memory", "  max_mb: 2000              # placeholder: your memory budget"],
    ]  # fmt: skip
    lines.append("checks:")
    if not quality and task == "feature-extraction":
        lines.append("  # cosine_similarity needs reference embeddings: modelcheck init --reference emb.npy")
    for check in quality + performance:
        lines += [f"  {line}" for line in check]
    names = [check[0].removeprefix("- name: ") for check in quality + performance]
    merge = [name for name in names if name not in ("latency_p95", "peak_memory")] or names
    lines += ["stages:", f"  merge: [{', '.join(merge)}]     # these block a pull request", "  deploy: all"]
    return "\n".join(lines) + "\n", names


def _validated_write(target: Path, text: str) -> None:
    """Load ``text`` as a gate at ``target``'s place, then create ``target`` (never over an existing file)."""
    from modelcheck.gatefile import load_gate

    target.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name, created exclusively (mkstemp: O_CREAT|O_EXCL, so never through a symlink planted there).
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".modelcheck-tmp")
    probe = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        load_gate(probe, display_path=str(target))
    except ModelcheckError as exc:
        fix = "pass --task, --input or --label"
        raise ScaffoldError(f"the gate modelcheck init composed does not validate ({exc}); {fix}") from None
    finally:
        probe.unlink(missing_ok=True)
    try:
        with open(target, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ScaffoldError(f"{target} already exists; modelcheck init never overwrites a file") from None
