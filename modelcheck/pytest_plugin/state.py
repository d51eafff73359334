"""The run's state kept in ``config.stash`` that the hooks, the session and the fixtures share."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from modelcheck.models.cache import ModelCache

DEFAULT_MAX_LOADED_MODELS = 4

#: The session's loaded models, shared by gate items and the ``modelcheck_load`` fixture.
models_key: pytest.StashKey[ModelCache] = pytest.StashKey()
#: Set when pytest-xdist runs with ``--modelcheck`` and no ``--dist`` given: gate files are scheduled whole.
gate_scheduling_key: pytest.StashKey[bool] = pytest.StashKey()


def model_cache(config: pytest.Config) -> ModelCache:
    """The run's model cache (created on first use, closed when pytest ends)."""
    models = config.stash.get(models_key, None)
    if models is None:
        from modelcheck.models.cache import ModelCache

        models = config.stash[models_key] = ModelCache(max_loaded=max_loaded_models(config))
    return models


def max_loaded_models(config: pytest.Config) -> int:
    raw = str(config.getini("modelcheck_max_loaded_models")).strip()
    if not re.fullmatch(r"[0-9]+", raw):
        raise pytest.UsageError(
            f"ini option modelcheck_max_loaded_models = {raw!r} is not a whole number >= 0; "
            f"give the most models to keep loaded at once (default {DEFAULT_MAX_LOADED_MODELS}, 0 for no limit)"
        )
    return int(raw)
