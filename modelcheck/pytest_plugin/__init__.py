"""The pytest11 entry point: options, ini, markers and fixtures; the gate session when ``--modelcheck`` is on.

This module is imported by every pytest run in an environment where modelcheck is installed, so it
imports nothing beyond pytest; the session, gate loading and the frameworks come in only when asked.
The fixtures for hand-written tests (``modelcheck.pytest_plugin.fixtures``, itself light) are registered in every
run, with or without ``--modelcheck``.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Generator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import pytest

from modelcheck.pytest_plugin.state import (
    DEFAULT_MAX_LOADED_MODELS,
    gate_scheduling_key,
    max_loaded_models,
    models_key,
)

if TYPE_CHECKING:
    from modelcheck.pytest_plugin.session import ModelcheckSession

session_key: pytest.StashKey[ModelcheckSession] = pytest.StashKey()

DEFAULT_GATE_GLOBS = ["gates/**/*.yaml", "gates/**/*.yml"]

MARKERS = (
    "modelcheck_device(device): skip the test unless DEVICE (auto, cpu, cuda, cuda:N or mps) is on this machine.",
    "modelcheck_backend(*names): skip the test unless these modelcheck backends and their frameworks are installed.",
)


def _stage_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stage name; stage names are letters, digits, '_' and '-' (e.g. merge, deploy)"
        )
    return value


def _device_name(value: str) -> str:
    from modelcheck.models.hardware import DEVICE_PATTERN

    device = value.strip().lower()
    if not DEVICE_PATTERN.match(device):
        raise argparse.ArgumentTypeError(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps")
    return device


def _shard(value: str) -> object:
    from modelcheck.pytest_plugin.shard import parse_shard

    return parse_shard(value)


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
    group.addoption(
        "--modelcheck-html",
        metavar="PATH",
        default=None,
        help="write the results as one self-contained HTML page with plots to PATH, atomically "
        "(needs the html extra: matplotlib).",
    )
    group.addoption(
        "--modelcheck-device",
        metavar="DEVICE",
        type=_device_name,
        default=None,
        help="run every gate's model on DEVICE (auto, cpu, cuda, cuda:N, mps), whatever its gate file says; "
        "also the modelcheck_device fixture. Checks needing an absent device are skipped.",
    )
    group.addoption(
        "--modelcheck-shard",
        metavar="I/N",
        type=_shard,
        default=None,
        help="run only shard I of N of the gate files (sorted by path, dealt round-robin), e.g. 1/3 on the first of "
        "three CI legs; join the legs' reports with modelcheck report merge. Other tests run on every leg.",
    )
    group.addoption(
        "--modelcheck-engine",
        metavar="ENGINE",
        default=None,
        help="where the gates' predictions run: local (default), ray (a Ray runtime on this machine, or RAY_ADDRESS), "
        "ray:HOST:PORT or ray://HOST:PORT (a running cluster); needs the ray extra. Also ini modelcheck_engine.",
    )
    parser.addini("modelcheck_engine", type="string", default="local", help="the default of --modelcheck-engine.")
    parser.addini(
        "modelcheck_gates",
        type="linelist",
        default=DEFAULT_GATE_GLOBS,
        help="glob patterns, relative to rootdir, of the gate files --modelcheck collects "
        "(default: gates/**/*.yaml gates/**/*.yml).",
    )
    parser.addini(
        "modelcheck_max_loaded_models",
        type="string",
        default=str(DEFAULT_MAX_LOADED_MODELS),
        help="most models kept loaded at once; the least recently used is closed to load another "
        f"(default {DEFAULT_MAX_LOADED_MODELS}; 0: no limit).",
    )


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    # Before pytest-xdist turns "no --dist" into "load": note that the user chose no distribution
    # mode, so the session may schedule each gate file's checks to one worker.
    option = config.option
    chose = getattr(option, "dist", None) != "no" or getattr(option, "distload", False)
    if getattr(option, "modelcheck", False) and getattr(option, "numprocesses", None) and not chose:
        config.stash[gate_scheduling_key] = True
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    max_loaded_models(config)  # a bad ini value is a usage error in every run
    from modelcheck.pytest_plugin import fixtures, markers, perf_fixtures

    registered = (
        (fixtures, "modelcheck-fixtures"),
        (perf_fixtures, "modelcheck-perf-fixtures"),
        (markers, "modelcheck-markers"),
    )
    for module, name in registered:
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)
    if not config.getoption("modelcheck"):
        for option in ("--modelcheck-stage", "--modelcheck-report", "--modelcheck-shard", "--modelcheck-html"):
            if config.getoption(option) is not None:
                raise pytest.UsageError(f"{option} needs --modelcheck (add --modelcheck to the command)")
        return
    from modelcheck.checks import KINDS
    from modelcheck.pytest_plugin.session import ModelcheckSession

    config.addinivalue_line("markers", "modelcheck: a check of a gate file (pytest --modelcheck)")
    for kind in KINDS:
        config.addinivalue_line("markers", f"{kind}: gate-file checks of kind {kind} (select with -m {kind})")

    try:
        session = ModelcheckSession(config)
    except ValueError as exc:  # --modelcheck-engine: unknown, or ray without its extra
        raise pytest.UsageError(str(exc)) from None
    config.stash[session_key] = session
    config.pluginmanager.register(session, "modelcheck-session")
    config.pluginmanager.register(session.early_stop, "modelcheck-early-stop")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    hint = gate_files_hint(config)
    if hint:
        terminalreporter.write_line(hint, yellow=True)


def gate_files_hint(config: pytest.Config) -> str | None:
    """Without ``--modelcheck``: a hint when the command line names gate files, or a folder of gate files.

    A folder counts when it is (or is inside) the folder a ``modelcheck_gates`` pattern starts with (``gates``
    for ``gates/**/*.yaml``) and holds a ``.yaml``/``.yml`` file. Paths only: nothing is imported or parsed.
    """
    if config.getoption("modelcheck") or config.args_source != pytest.Config.ArgsSource.ARGS:
        return None
    root = config.rootpath
    folders = set()
    for pattern in config.getini("modelcheck_gates"):
        parts = PurePosixPath(pattern).parts
        fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts) - 1)
        if fixed:
            folders.add(root.joinpath(*parts[:fixed]).resolve())
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        gate_file = path.suffix in (".yaml", ".yml") and path.is_file()
        if gate_file or (
            path.is_dir()
            and any(path == folder or folder in path.parents for folder in folders)
            and any(p.suffix in (".yaml", ".yml") for p in path.rglob("*"))
        ):
            return (
                f"modelcheck: {arg} holds gate files, which pytest collects only with --modelcheck; "
                f"add it to run their checks: pytest --modelcheck {shlex.join(config.invocation_params.args)}"
            )
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        del config.stash[session_key]
        config.pluginmanager.unregister(session)
        config.pluginmanager.unregister(session.early_stop)
        session.engine.close()  # a Ray runtime this run started stops with it
    models = config.stash.get(models_key, None)
    if models is not None:
        del config.stash[models_key]
        models.close()
