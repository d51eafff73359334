"""``python -m modelcheck``: the same command line as ``modelcheck``."""

from __future__ import annotations

from modelcheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
