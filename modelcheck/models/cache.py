"""The models of a session, each loaded once: :class:`ModelCache` (least recently used closed first)."""

from __future__ import annotations

import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from modelcheck.errors import DeviceUnavailableError
from modelcheck.models.backends import LoadedModel, get_backend

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec

log = logging.getLogger(__name__)

#: ``measure(load)``: run ``load()`` and return the model with a note about the load (see ModelCache.get).
Measure = Callable[[Callable[[], LoadedModel]], tuple[LoadedModel, Any]]


#: ModelSpec fields that do not change the loaded model (how it is named or run, not what is loaded).
_NOT_IN_CACHE_KEY = frozenset({"id", "batch_size"})


class ModelCache:
    """Loaded models keyed by everything that changes what is loaded, so each loads once per session.

    At most ``max_loaded`` models stay loaded (0: no limit); loading one more first closes the least
    recently used, which frees its memory (on CUDA too). A closed model refuses to predict, so code
    that holds a model across many others should load it again through the cache.
    """

    def __init__(self, max_loaded: int = 4) -> None:
        if max_loaded < 0:
            raise ValueError(f"max_loaded must be 0 (no limit) or more, got {max_loaded}")
        self.max_loaded = max_loaded
        self._models: OrderedDict[tuple[Any, ...], tuple[ModelSpec, LoadedModel]] = OrderedDict()
        #: How many times a model was actually loaded (not served from the cache).
        self.loads = 0
        #: How many models were closed to stay within ``max_loaded``.
        self.evictions = 0
        self._notes: dict[tuple[Any, ...], Any] = {}

    @staticmethod
    def key(model: ModelSpec) -> tuple[Any, ...]:
        """Every field of ``model`` except its id and batch size (both only used at predict time); ``auto`` resolved."""
        key = []
        for spec_field in fields(model):
            if spec_field.name in _NOT_IN_CACHE_KEY:
                continue
            value = getattr(model, spec_field.name)
            if spec_field.name == "device":
                value = _device_key(value)
            key.append((spec_field.name, _hashable(value)))
        return tuple(key)

    def get(self, model: ModelSpec, *, measure: Measure | None = None) -> LoadedModel:
        """The loaded model for ``model``: from the cache, or loaded now (closing the least recently used).

        ``measure(load)`` runs a real load (not a cache hit) and returns the model and a note about the
        load (e.g. its memory figures), which :meth:`load_note` gives back while the model stays loaded.
        """
        key = self.key(model)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key][1]
        while self.max_loaded and len(self._models) >= self.max_loaded:
            _, (spec, evicted) = self._models.popitem(last=False)
            self.evictions += 1
            log.info("closing model %s (at most %d loaded at once)", spec.source, self.max_loaded)
            evicted.close()
            gc.collect()  # what the closed model held in reference cycles goes before the next one loads
        started = time.perf_counter()
        backend = get_backend(model.backend)
        note = None
        if measure is None:
            loaded = backend.load(model)
        else:
            loaded, note = measure(lambda: backend.load(model))
        self._notes[key] = note
        log.info("loaded model %s (%s backend) on %s in %.2f s", model.source, model.backend,
                 getattr(loaded, "device", "?"), time.perf_counter() - started)  # fmt: skip
        self.loads += 1
        self._models[key] = (model, loaded)
        return loaded

    def load_note(self, model: ModelSpec) -> Any:
        """The note ``measure`` returned when ``model`` was loaded (None: loaded without one, or not loaded)."""
        key = self.key(model)
        return self._notes.get(key) if key in self._models else None

    def spec_of(self, loaded: object) -> ModelSpec | None:
        """The spec a cached model was loaded from (None for a model this cache did not load)."""
        return next((spec for spec, model in self._models.values() if model is loaded), None)

    def __len__(self) -> int:
        return len(self._models)

    def close(self) -> None:
        """Close every loaded model."""
        models = [model for _, model in self._models.values()]
        self._models.clear()
        for model in models:
            model.close()


def _device_key(device: str) -> str:
    """``auto``/``cuda`` as the device they resolve to, so ``auto`` and ``cpu`` share a load on a CPU machine."""
    from modelcheck.models.hardware import resolve_device

    try:
        return resolve_device(device)
    except DeviceUnavailableError:
        return device  # loading raises it, with the message


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_hashable(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    return value
