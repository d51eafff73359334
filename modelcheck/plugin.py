"""The pytest11 entry point: options and ini only, plus the session object when ``--modelcheck`` is on.

This module is imported by every pytest run in an environment where modelcheck is installed, so it
imports nothing beyond pytest; the session, gate loading and the frameworks come in only when asked.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from modelcheck.session import ModelcheckSession

session_key: pytest.StashKey[ModelcheckSession] = pytest.StashKey()

DEFAULT_GATE_GLOBS = ["gates/**/*.yaml", "gates/**/*.yml"]


def _stage_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stage name; stage names are letters, digits, '_' and '-' (e.g. merge, deploy)"
        )
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelcheck", "modelcheck: model quality gates")
    group.addoption(
        "--modelcheck",
        action="store_true",
        default=False,
        help="collect gate files (ini modelcheck_gates) and run each of their checks as a test item.",
    )
    group.addoption(
        "--modelcheck-stage",
        metavar="STAGE",
        type=_stage_name,
        default=None,
        help="only checks of this stage fail the run; failing checks outside it are reported as warnings.",
    )
    group.addoption(
        "--modelcheck-report",
        metavar="PATH",
        default=None,
        help="write the results report (JSON) to PATH, atomically.",
    )
    parser.addini(
        "modelcheck_gates",
        type="linelist",
        default=DEFAULT_GATE_GLOBS,
        help="glob patterns, relative to rootdir, of the gate files --modelcheck collects "
        "(default: gates/**/*.yaml gates/**/*.yml).",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("modelcheck"):
        for option in ("--modelcheck-stage", "--modelcheck-report"):
            if config.getoption(option) is not None:
                raise pytest.UsageError(f"{option} needs --modelcheck (add --modelcheck to the command)")
        return
    from modelcheck.session import ModelcheckSession

    session = ModelcheckSession(config)
    config.stash[session_key] = session
    config.pluginmanager.register(session, "modelcheck-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        del config.stash[session_key]
        config.pluginmanager.unregister(session)
