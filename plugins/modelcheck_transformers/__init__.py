"""The ``transformers`` backend: Hugging Face models from a local folder or the Hub.

Registered in the ``modelcheck.backends`` entry-point group as ``transformers``. The task picks the
``Auto`` class, the preprocessor and what ``predict`` returns:

- ``text-classification``: ``AutoModelForSequenceClassification`` + ``AutoTokenizer`` -> labels, scores;
- ``feature-extraction``: ``AutoModel`` + ``AutoTokenizer``, mean-pooled and L2-normalised -> embeddings
  (and ``pair_embeddings`` for ``(a, b)`` inputs);
- ``image-classification``: ``AutoModelForImageClassification`` + ``AutoImageProcessor`` -> labels, scores;
- ``object-detection``: ``AutoModelForObjectDetection`` + ``AutoImageProcessor`` -> boxes, scores and class ids
  per image (``_detection``);
- ``multi-label-classification``: ``AutoModelForSequenceClassification`` (``problem_type``
  ``multi_label_classification``) -> sigmoid scores and the labels at 0.5 (``_multilabel``);
- ``token-classification``: ``AutoModelForTokenClassification`` -> one tag per word, read at the word's first
  subword (``_tokens``);
- ``question-answering``: ``AutoModelForQuestionAnswering`` -> the best answer span per question (``_qa``);
- ``text-generation``: ``AutoModelForCausalLM`` + ``AutoTokenizer``, greedy -> texts (the continuations;
  chats through the chat template) and, for ``(prompt, reference)`` inputs, the references' log-likelihoods;
- ``text2text-generation``, ``summarization``, ``translation``: ``AutoModelForSeq2SeqLM`` + ``AutoTokenizer``,
  greedy -> texts;
- ``automatic-speech-recognition``: ``AutoModelForCTC`` + ``AutoProcessor`` (wav2vec2-style) or, for an
  encoder-decoder config, ``AutoModelForSpeechSeq2Seq`` (Whisper, Speech2Text), greedy -> transcripts;
  ``audio-classification``: ``AutoModelForAudioClassification`` -> labels, scores (``_speech``).

torch and transformers are imported only when a model is loaded, so importing this module is cheap.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, ModelLoadError
from modelcheck.models.hardware import resolve_device, torch_dtype
from modelcheck_transformers._common import TransformersModel

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec

log = logging.getLogger(__name__)

__all__ = ["SUPPORTED_TASKS", "TransformersBackend", "TransformersModel", "resolve_device"]


@dataclass(frozen=True)
class _TaskKind:
    auto_model: str
    preprocessor: str
    #: ``module:class`` of the loaded-model class (imported on load).
    loaded: str
    classification: bool = False
    #: Parameters that may be absent from a checkpoint without making the model random (unused heads).
    optional_weights: tuple[str, ...] = ()


_TASKS: dict[str, _TaskKind] = {
    "text-classification": _TaskKind(
        "AutoModelForSequenceClassification", "AutoTokenizer", "_text:TextClassificationModel", classification=True
    ),
    "feature-extraction": _TaskKind(
        "AutoModel", "AutoTokenizer", "_embeddings:EmbeddingModel", optional_weights=("pooler.",)
    ),
    "image-classification": _TaskKind(
        "AutoModelForImageClassification",
        "AutoImageProcessor",
        "_vision:ImageClassificationModel",
        classification=True,
    ),
    "text-generation": _TaskKind("AutoModelForCausalLM", "AutoTokenizer", "_generation:GenerationModel"),
    "multi-label-classification": _TaskKind(
        "AutoModelForSequenceClassification", "AutoTokenizer", "_multilabel:MultiLabelModel", classification=True
    ),
    "token-classification": _TaskKind(
        "AutoModelForTokenClassification", "AutoTokenizer", "_tokens:TokenClassificationModel", classification=True
    ),
    "question-answering": _TaskKind("AutoModelForQuestionAnswering", "AutoTokenizer", "_qa:QuestionAnsweringModel"),
    "object-detection": _TaskKind(
        "AutoModelForObjectDetection", "AutoImageProcessor", "_detection:ObjectDetectionModel", classification=True
    ),
    "automatic-speech-recognition": _TaskKind("AutoModelForCTC", "AutoProcessor", "_speech:SpeechRecognitionModel"),
    "audio-classification": _TaskKind(
        "AutoModelForAudioClassification",
        "AutoFeatureExtractor",
        "_speech:AudioClassificationModel",
        classification=True,
    ),
    **{
        task: _TaskKind("AutoModelForSeq2SeqLM", "AutoTokenizer", "_text2text:Text2TextModel")
        for task in ("text2text-generation", "summarization", "translation")
    },
}
SUPPORTED_TASKS = tuple(_TASKS)
#: Speech recognition by an encoder-decoder (Whisper, Speech2Text) instead of a CTC head.
_SPEECH_SEQ2SEQ = _TaskKind("AutoModelForSpeechSeq2Seq", "AutoProcessor", "_speech:SpeechSeq2SeqModel")
_TRUE = {"1", "on", "yes", "true"}


class TransformersBackend:
    """Loads Hugging Face models for the tasks in ``SUPPORTED_TASKS``."""

    name = "transformers"

    def load(self, model: ModelSpec) -> TransformersModel:
        """Load ``model`` on its device; raise ModelLoadError / BackendError that say how to fix it."""
        kind = _TASKS.get(model.task)
        if kind is None:
            raise BackendError(
                f"the transformers backend does not support task {model.task!r} (model {model.id!r}); "
                f"supported tasks: {', '.join(SUPPORTED_TASKS)}"
            )
        if model.labels and not kind.classification:
            raise BackendError(
                f"model.labels is for classification tasks; task {model.task!r} (model {model.id!r}) has no classes"
            )
        if model.is_local:
            name, revision = _check_local_folder(Path(model.source)), None
            if not model.trust_remote_code:
                _refuse_custom_code(Path(name))
        else:
            name, _, rev = model.source.partition("@")
            revision = rev or None
            _check_cached_when_offline(model, name, revision)
        device = resolve_device(model.device)
        dtype = torch_dtype(model.dtype, device)

        import importlib

        import transformers

        options: dict[str, Any] = {"revision": revision, "trust_remote_code": model.trust_remote_code}
        if model.task == "automatic-speech-recognition" and _encoder_decoder(name, options):
            kind = _SPEECH_SEQ2SEQ
        placement = _placement(model)
        with _quiet_transformers():
            auto_model = getattr(transformers, kind.auto_model)
            try:
                network, info = auto_model.from_pretrained(
                    name, output_loading_info=True, **options, **placement,
                    **({"dtype": dtype} if dtype is not None else {}),
                )  # fmt: skip
            except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for bad models
                raise _load_error(model, name, revision, kind.auto_model, exc) from None
            _check_weights(model, name, kind, info)
            if model.is_local and kind.preprocessor == "AutoTokenizer":
                _check_tokenizer_files(Path(model.source))
            try:
                preprocessor = getattr(transformers, kind.preprocessor).from_pretrained(name, **options)
            except Exception as exc:
                raise _load_error(model, name, revision, kind.preprocessor, exc) from None
        if kind.preprocessor == "AutoTokenizer":
            _check_vocabulary(model, name, preprocessor, network.config)
        if placement:  # accelerate placed the layers; inputs go where the embeddings are
            device = str(network.get_input_embeddings().weight.device)
            placed = getattr(network, "hf_device_map", device)  # transformers keeps no map when all is on one device
            log.info("model %s placed by device_map %s: %s", model.source, model.device_map, placed)
        else:
            network.to(device)
        network.eval()

        module_name, _, class_name = kind.loaded.partition(":")
        loaded_class = getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)
        loaded: TransformersModel = loaded_class(
            network,
            preprocessor,
            device=device,
            source=model.source,
            revision=revision,
            label_names=_label_names(model, network.config, name) if kind.classification else (),
            spec=model,
        )
        return loaded


# -- helpers --------------------------------------------------------------------------------------


def _encoder_decoder(name: str, options: dict[str, Any]) -> bool:
    """Whether the model's config is an encoder-decoder (read from config.json; None if it cannot be read)."""
    import transformers

    try:
        with _quiet_transformers():
            config = transformers.AutoConfig.from_pretrained(name, **options)
    except Exception:  # the model's own load reports what is wrong with it
        return False
    return bool(getattr(config, "is_encoder_decoder", False))


def _placement(model: ModelSpec) -> dict[str, Any]:
    """``from_pretrained`` options for ``model.device_map`` (accelerate spreads the layers over the devices)."""
    if model.device_map is None:
        return {}
    if importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError(
            f"model {model.id!r}: device_map {model.device_map!r} needs accelerate, which is not installed; "
            "pip install 'modelcheck[transformers]' (or accelerate), or remove device_map to load on one device"
        )
    return {"device_map": model.device_map}


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or load reports while loading: modelcheck reports what went wrong itself."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _check_local_folder(folder: Path) -> str:
    if not folder.exists():
        raise ModelLoadError(
            f"model folder not found: {folder} (model.source); build or download the model there, or fix the path"
        )
    if not folder.is_dir():
        raise ModelLoadError(
            f"model.source {folder} is a file; the transformers backend loads a folder written by "
            "save_pretrained (config.json, weights, tokenizer files)"
        )
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"model folder {folder} has no config.json, so it is not a transformers model folder; "
            "write it with model.save_pretrained(folder) and tokenizer.save_pretrained(folder), "
            "or point model.source at the folder that holds config.json"
        )
    return str(folder)


#: Files one of which a saved tokenizer has (fast tokenizers, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model",
                   "sentencepiece.bpe.model")  # fmt: skip


def _check_tokenizer_files(folder: Path) -> None:
    """A folder without tokenizer files would get a tokenizer transformers builds from nothing: refuse it."""
    if not any((folder / file).is_file() for file in TOKENIZER_FILES):
        raise ModelLoadError(
            f"model folder {folder} has no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)}, "
            "with tokenizer_config.json); without them every input would be encoded by an empty tokenizer. "
            "Save the tokenizer beside the model with tokenizer.save_pretrained(folder)"
        )


def _check_vocabulary(model: ModelSpec, name: str, tokenizer: Any, config: Any) -> None:
    """A tokenizer with far fewer tokens than the model's embedding table is not the model's tokenizer."""
    vocab_size = getattr(config, "vocab_size", None)
    try:
        tokens = len(tokenizer)
    except TypeError:
        return
    if isinstance(vocab_size, int) and vocab_size > 0 and tokens < vocab_size // 2:
        raise ModelLoadError(
            f"the tokenizer of {name} (model {model.id!r}) knows {tokens} tokens but the model's embedding table "
            f"has {vocab_size}: it is not the tokenizer the model was trained with (missing or wrong tokenizer "
            "files). Save the model's own tokenizer beside it with tokenizer.save_pretrained(folder)"
        )


def _check_weights(model: ModelSpec, name: str, kind: _TaskKind, info: dict[str, Any]) -> None:
    """A checkpoint that lacks weights the task needs would run with random ones: refuse it."""
    missing = sorted(
        key for key in info.get("missing_keys") or () if not any(part in key for part in kind.optional_weights)
    )
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ModelLoadError(
            f"the model in {name} (model.source) has no weights for {shown}, which {kind.auto_model} needs for "
            f"task {model.task!r}; they would be random. The checkpoint holds a different head or architecture "
            "(e.g. a base model without a classification head): use the task it was trained for, or a fine-tuned model"
        )


def _label_names(model: ModelSpec, config: Any, name: str) -> tuple[str, ...]:
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    names = tuple(id2label[k] for k in sorted(id2label))
    if model.labels is None:
        return names
    if len(model.labels) != len(names):
        raise BackendError(
            f"model.labels lists {len(model.labels)} labels ({', '.join(model.labels)}) but the model in {name} "
            f"has {len(names)} classes ({', '.join(names)}); list one name per class id, in class-id order"
        )
    return tuple(model.labels)


def _is_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    return env or bool(constants.HF_HUB_OFFLINE)


def _check_cached_when_offline(model: ModelSpec, name: str, revision: str | None) -> None:
    """With HF_HUB_OFFLINE set, a Hub id missing from the local cache fails now, not after transformers' retries."""
    if not _is_offline():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json", revision=revision)
    except Exception:  # a malformed id: transformers says what is wrong with it
        return
    if not isinstance(cached, str):
        rev = f" --revision {revision}" if revision else ""
        raise ModelLoadError(
            f"model {model.source} (model.source) is not in the local Hugging Face cache and downloads are "
            f"disabled (HF_HUB_OFFLINE=1). Download it first with `hf download {name}{rev}`, or unset HF_HUB_OFFLINE"
        )


_CLASS_REPR = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def _first_line(exc: Exception) -> str:
    text = _CLASS_REPR.sub(r"\1", str(exc).strip())
    line = text.splitlines()[0] if text else repr(exc)
    return f"{type(exc).__name__}: {line[:300].rstrip('. ')}"  # the caller ends the sentence


def _refuse_custom_code(folder: Path) -> None:
    """A folder whose config.json maps auto classes to its own Python code (``auto_map``) is not run unasked."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # transformers reports an unreadable config.json itself
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if auto_map:
        classes = ", ".join(sorted(str(k) for k in auto_map)) if isinstance(auto_map, dict) else str(auto_map)
        raise ModelLoadError(
            f"the model in {folder} (model.source) ships its own Python code (config.json auto_map: {classes}); "
            "modelcheck does not run a model's code unless the gate file sets model.trust_remote_code: true. "
            "Read that code first: trust_remote_code runs it with your permissions"
        )


def _load_error(model: ModelSpec, name: str, revision: str | None, auto: str, exc: Exception) -> ModelLoadError:
    detail = _first_line(exc)
    if "trust_remote_code" in str(exc) and not model.trust_remote_code:
        return ModelLoadError(
            f"the model {model.source} (model.source) needs its own Python code to load ({auto}: {detail}); "
            "modelcheck does not run a model's code unless the gate file sets model.trust_remote_code: true. "
            "Read that code first: trust_remote_code runs it with your permissions"
        )
    if model.is_local:
        if "Unrecognized configuration class" in detail or "Unrecognized image processor" in detail:
            hint = (
                f"The folder holds a model of another architecture than task {model.task!r} needs: "
                "set model.task to what the model was made for, or point model.source at a model for this task"
            )
        else:
            hint = (
                "The folder needs config.json, the weights (model.safetensors) and the "
                f"{'image processor' if auto == 'AutoImageProcessor' else 'tokenizer'} files, as written by "
                "save_pretrained"
            )
        return ModelLoadError(
            f"cannot load the transformers model in {name} (model.source) for task {model.task!r}: "
            f"{auto} failed with {detail}. {hint}"
        )
    rev = f" --revision {revision}" if revision else ""
    if _is_offline():
        return ModelLoadError(
            f"model {model.source} (model.source) is not in the local Hugging Face cache and downloads "
            f"are disabled (HF_HUB_OFFLINE=1): {auto} failed with {detail}. Download it first with "
            f"`hf download {name}{rev}` (formerly huggingface-cli download), or unset HF_HUB_OFFLINE"
        )
    return ModelLoadError(
        f"cannot load model {model.source} (model.source) from the Hugging Face Hub: {auto} failed with {detail}. "
        f"Check the repository id and revision, your network and HF_TOKEN for private or gated models, or "
        f"download it with `hf download {name}{rev}` and set HF_HUB_OFFLINE=1"
    )
