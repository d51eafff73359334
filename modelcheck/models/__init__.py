"""Models: the backend protocol and its entry-point registry, devices, the session's model cache, export.

What a third-party backend needs is importable from here: :class:`Outputs`, :class:`LoadedModel`,
:class:`Backend`, :func:`check_predict`, :func:`require_task` (see ``modelcheck.models.backends``).
"""

from __future__ import annotations

from modelcheck.models.backends import Backend, LoadedModel, Outputs, check_predict, require_task

__all__ = ["Backend", "LoadedModel", "Outputs", "check_predict", "require_task"]
