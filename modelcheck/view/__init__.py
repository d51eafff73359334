"""Views of a results report for people: the self-contained HTML page with the plots behind each verdict.

Like :mod:`modelcheck.github` and :mod:`modelcheck.hub`, views read reports and never run a model.
Importing this package is cheap: matplotlib (the ``html`` extra) is imported only when a page is drawn.

- :mod:`modelcheck.view.page`: the page (verdicts, checks tables, model and data identity), written atomically
- :mod:`modelcheck.view.plots`: one plot per check kind, from what the report records
- :mod:`modelcheck.view.svg`: matplotlib figures as themeable inline SVG
- :mod:`modelcheck.view.cli`: ``modelcheck report html``
"""

from __future__ import annotations

import importlib.util

from modelcheck.errors import ModelcheckError

__all__ = ["HTML_EXTRA", "HtmlUnavailableError", "require_html"]

#: The extra that installs what the HTML report needs.
HTML_EXTRA = "html"


class HtmlUnavailableError(ModelcheckError, ImportError):
    """matplotlib (the ``html`` extra) is not installed."""


def require_html(what: str) -> None:
    """Raise HtmlUnavailableError naming ``what`` and the extra when matplotlib cannot be imported."""
    if importlib.util.find_spec("matplotlib") is None:
        raise HtmlUnavailableError(
            f"{what} needs matplotlib, which is not installed; install the {HTML_EXTRA!r} extra: "
            f"pip install 'modelcheck[{HTML_EXTRA}]'"
        )
