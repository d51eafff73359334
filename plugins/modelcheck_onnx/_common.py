"""What the onnx backend's modules share: its tasks, ONNX element types, and the wording of errors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError
from modelcheck.models.backends import InputRowError

if TYPE_CHECKING:
    pass


#: Graphs exported from transformers language models (``_language``): their outputs decoded like the transformers
#: backend's.
LANGUAGE_TASKS = ("token-classification", "question-answering", "multi-label-classification")
TEXT_TASKS = ("text-classification", "feature-extraction", *LANGUAGE_TASKS)


TABULAR_TASKS = ("tabular-classification", "tabular-regression")


SUPPORTED_TASKS = TEXT_TASKS + TABULAR_TASKS


#: ONNX element types -> numpy dtype names.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


_MAX_REASON = 300


def _static(shape: Sequence[Any], axis: int) -> int | None:
    value = shape[axis] if shape else None
    return value if isinstance(value, int) and value > 0 else None


def _dtype(onnx_type: str, name: str) -> str:
    try:
        return _DTYPES[onnx_type]
    except KeyError:
        raise BackendError(
            f"graph input {name!r} has type {onnx_type}; the onnx backend feeds numeric tensors ({', '.join(_DTYPES)})"
        ) from None


def _describe_inputs(inputs: Sequence[Any]) -> str:
    return ", ".join(f"{i.name} {i.shape} {i.type}" for i in inputs)


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, without ORT's ``[ONNXRuntimeError] : 7 : ...`` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text.startswith("[ONNXRuntimeError]"):
        text = text.split(" : ", 3)[-1]
    text = text.rstrip(". ")  # callers end the sentence: no ".." after a reason that ends in a full stop
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if name == "transformers":
            raise BackendError(
                f"a tokenizer given as a Hub id, or saved without tokenizer.json, is read by transformers ({exc}): "
                "pip install 'modelcheck[transformers]', or save the tokenizer with save_pretrained (it writes "
                "tokenizer.json, which the onnx backend reads with tokenizers alone)"
            ) from None
        raise BackendError(
            f"the onnx backend needs {name} ({exc}); install it with pip install 'modelcheck[onnx]'"
        ) from None


def _bad_text(row: int, value: object, task: str, expected: str | None = None) -> InputRowError:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        what = "missing (None/NaN)"
    else:
        what = f"of type {type(value).__name__} ({value!r:.40})"
    if expected is None:
        expected = "strings, or pairs of strings" if task == "feature-extraction" else "strings"
    return InputRowError(
        row, "the input at ", f" is {what}; {task} inputs must be {expected}. Drop or fill them in the data"
    )
