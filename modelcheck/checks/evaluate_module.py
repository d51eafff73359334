"""Hugging Face ``evaluate`` modules as metrics: ``metric: {evaluate: path/to/module, key: bleu}``.

For metrics scikit-learn lacks (BLEU, ROUGE, ...). The module is one the user keeps locally (a
folder or a .py script) or has in the evaluate cache; nothing is downloaded at test time.
``evaluate`` is imported only when such a check runs (it costs seconds and hundreds of MB).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelcheck.errors import CheckError

if TYPE_CHECKING:
    from modelcheck.gatefile import CheckSpec
    from modelcheck.models.backends import Outputs

#: A bare evaluate module name (``bleu``, ``word_overlap``): looked up in the evaluate cache.
_MODULE_NAME = re.compile(r"[A-Za-z0-9][\w-]*")


def load_module(check: CheckSpec) -> Any:
    """Load the check's evaluate module, or raise CheckError saying where it looked.

    ``metric.evaluate`` is a local module (a folder holding ``<name>.py``, or the ``.py`` file), or the
    bare name of a module in the evaluate cache (e.g. ``bleu``, loaded once with the network on).
    evaluate runs offline while it loads: nothing is downloaded.
    """
    assert check.evaluate is not None
    where = str(check.evaluate["path"])
    try:
        import evaluate
    except ImportError:
        raise CheckError(
            f"check {check.name!r} uses an evaluate module but the evaluate package is not installed; "
            "pip install 'modelcheck[evaluate]'"
        ) from None
    path = Path(where)
    target = where
    if path.is_absolute() and not path.exists():
        if not _MODULE_NAME.fullmatch(path.name):
            raise CheckError(
                f"check {check.name!r}: evaluate module not found at {where} (metric.evaluate); "
                "give the folder or .py file of a local evaluate module"
            )
        target = path.name  # a name like "bleu": only the evaluate cache can have it
    try:
        with _offline(evaluate):
            return evaluate.load(target)
    except Exception as exc:  # evaluate raises FileNotFoundError, ConnectionError, ImportError, ...
        if target != where:
            raise CheckError(
                f"check {check.name!r}: evaluate module {target!r} not found: there is no local module at {where} "
                f"(nor {path / (target + '.py')}), and {target!r} is not in the evaluate cache "
                f"({evaluate.config.HF_MODULES_CACHE}). modelcheck never downloads metric scripts: keep the module "
                "locally (a folder with <name>.py) and point metric.evaluate at it, or load it once with the "
                f"network on (python -c \"import evaluate; evaluate.load('{target}')\") so that it is cached"
            ) from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckError(
            f"check {check.name!r}: cannot load evaluate module {where!r}: {reason}. modelcheck never downloads "
            "metric scripts: keep the module locally (a folder with <name>.py) and point metric.evaluate at it"
        ) from None


@contextmanager
def _offline(evaluate: Any) -> Iterator[None]:
    """evaluate in offline mode (read at call time from ``evaluate.config``): cache and local files only."""
    before = evaluate.config.HF_EVALUATE_OFFLINE
    evaluate.config.HF_EVALUATE_OFFLINE = True
    try:
        yield
    finally:
        evaluate.config.HF_EVALUATE_OFFLINE = before


def compute(module: Any, check: CheckSpec, targets: Any, outputs: Outputs) -> float:
    """Run the module on the outputs and return the number the check judges."""
    assert check.evaluate is not None
    if outputs.texts is not None:
        predictions: Any = list(outputs.texts)
    elif outputs.labels is not None:
        predictions = outputs.labels.tolist()
    elif outputs.values is not None:
        predictions = outputs.values.tolist()
    else:
        raise CheckError(f"check {check.name!r}: evaluate modules judge labels, numbers or texts, not embeddings")
    references = targets.tolist() if hasattr(targets, "tolist") else list(targets)
    if outputs.texts is not None and all(isinstance(r, list) and len(r) == 1 for r in references):
        references = [r[0] for r in references]  # one reference per row (text generation): the text itself
    try:
        result = module.compute(predictions=predictions, references=references, **check.evaluate["args"])
    except Exception as exc:
        raise CheckError(f"check {check.name!r}: the evaluate module failed: {type(exc).__name__}: {exc}") from None
    return _pick(result, check, getattr(module, "name", None))


def _pick(result: Any, check: CheckSpec, module_name: str | None) -> float:
    assert check.evaluate is not None
    if not isinstance(result, dict):
        raise CheckError(f"check {check.name!r}: the evaluate module returned {type(result).__name__}, not a dict")
    numeric = {k: v for k, v in result.items() if isinstance(v, numbers.Real)}
    key = check.evaluate.get("key")
    if key is None:
        if module_name in numeric:
            key = module_name
        elif len(numeric) == 1:
            key = next(iter(numeric))
        else:
            raise CheckError(
                f"check {check.name!r}: the evaluate module returned several numbers ({', '.join(numeric)}); "
                "say which one to judge with metric.key"
            )
    if key not in numeric:
        raise CheckError(
            f"check {check.name!r}: the evaluate module's result has no number {key!r}; "
            f"it has: {', '.join(numeric) or 'none'}"
        )
    return float(numeric[key])
