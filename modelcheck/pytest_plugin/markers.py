"""The ``modelcheck_device`` and ``modelcheck_backend`` markers: skip a test whose device or backend is missing."""

from __future__ import annotations

import importlib.util

import pytest

from modelcheck.models.backends import BACKEND_FRAMEWORKS
from modelcheck.pytest_plugin.fixture_args import DEVICES, check_device
from modelcheck.pytest_plugin.fixtures import _INSTALL, _call

# -- markers --------------------------------------------------------------------------------------


#: A marker with bad arguments: the message its test errors with at setup.
_marker_error: pytest.StashKey[str] = pytest.StashKey()


class _MarkerError(Exception):
    pass


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests whose ``modelcheck_device`` / ``modelcheck_backend`` is missing here as skipped."""
    known: dict[tuple[str, str], str | None] = {}
    for item in items:
        try:
            reason = _missing_requirement(item, known)
        except _MarkerError as exc:
            item.stash[_marker_error] = str(exc)
            continue
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose modelcheck marker has bad arguments errors, with the usage, before its fixtures load."""
    message = item.stash.get(_marker_error, None)
    if message is not None:
        pytest.fail(message, pytrace=False)


def _missing_requirement(item: pytest.Item, known: dict[tuple[str, str], str | None]) -> str | None:
    """Why ``item`` cannot run here (a device or backend its markers require is missing), else None."""
    for mark in item.iter_markers("modelcheck_device"):
        if len(mark.args) != 1 or mark.kwargs or not isinstance(mark.args[0], str):
            raise _MarkerError(
                f"@pytest.mark.modelcheck_device takes one device name ({DEVICES}), "
                f'e.g. @pytest.mark.modelcheck_device("cuda"); got {_call(mark.args, mark.kwargs)}'
            )
        try:
            device = check_device(mark.args[0], "@pytest.mark.modelcheck_device")
        except ValueError as exc:
            raise _MarkerError(str(exc)) from None
        if ("device", device) not in known:
            known["device", device] = device_missing(device)
        if known["device", device] is not None:
            return known["device", device]
    for mark in item.iter_markers("modelcheck_backend"):
        if not mark.args or mark.kwargs or not all(isinstance(a, str) for a in mark.args):
            raise _MarkerError(
                "@pytest.mark.modelcheck_backend takes one or more backend names, "
                f'e.g. @pytest.mark.modelcheck_backend("onnx"); got {_call(mark.args, mark.kwargs)}'
            )
        for name in mark.args:
            if ("backend", name) not in known:
                known["backend", name] = backend_missing(name)
            if known["backend", name] is not None:
                return known["backend", name]
    return None


def device_missing(device: str) -> str | None:
    """Why ``device`` (auto, cpu, cuda, cuda:N, mps) is not usable here, or None where it is."""
    from modelcheck.errors import DeviceUnavailableError
    from modelcheck.models.hardware import resolve_device

    try:
        resolve_device(device)
    except DeviceUnavailableError as exc:
        return str(exc)
    return None


def backend_missing(name: str) -> str | None:
    """Why models of backend ``name`` cannot run here (not installed, framework missing), or None."""
    from modelcheck.errors import BackendError
    from modelcheck.models.backends import available_backends, get_backend

    installed = available_backends()
    if name not in installed:
        return (
            f"backend {name!r} is not installed (installed: {', '.join(installed) or 'none'}); "
            "install the package that provides it"
        )
    for module in BACKEND_FRAMEWORKS.get(name, ()):
        if importlib.util.find_spec(module) is None:
            return f"backend {name!r} needs {module}, which is not installed; pip install {_INSTALL[name]}"
    try:
        get_backend(name)
    except BackendError as exc:
        return str(exc)
    return None
