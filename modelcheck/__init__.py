"""modelcheck: test ML models like code.

A pytest plugin (``pytest --modelcheck``) that turns gate files into test items, a results report,
and a CLI that judges the report for a CI stage. Importing this package is cheap: no ML framework
is imported until a gate runs.
"""

from __future__ import annotations

import logging

# The "modelcheck" logger is quiet unless the application shows it (`modelcheck -v`, pytest's --log-level).
logging.getLogger("modelcheck").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = ["__version__"]
