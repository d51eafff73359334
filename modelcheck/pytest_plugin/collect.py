"""pytest collection of gate files: one ``GateFile`` per file, one ``CheckItem`` per check."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from modelcheck.errors import GateFileError
from modelcheck.gatefile import GateSpec
from modelcheck.report.text import log_text

if TYPE_CHECKING:
    from modelcheck.report.results import CheckResult, GateResult


class GateRunner(Protocol):
    """What gate items ask of the run's session (``ModelcheckSession``): results, once per gate."""

    def record_invalid(self, display_path: str, message: str) -> None: ...
    def result_for(self, gate_file: GateFile, nodeid: str | None = None) -> GateResult: ...
    def warn(self, name: str, check: CheckResult) -> None: ...
    def load(self, path: Path, display_path: str) -> GateSpec: ...


class GateFile(pytest.File):
    """A gate file; invalid ones are a collection error that names the file, place and fix."""

    spec: GateSpec

    def __init__(self, *, runner: GateRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session_state = runner

    @property
    def display_path(self) -> str:
        try:
            return self.path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return str(self.path)

    def collect(self) -> Iterator[CheckItem]:
        try:
            self.spec = self.session_state.load(self.path, self.display_path)
        except GateFileError as exc:
            self.session_state.record_invalid(self.display_path, str(exc))
            raise self.CollectError(log_text(str(exc))) from None
        # pytest-xdist without --dist: the session schedules each gate file whole. These marks (the marker
        # exists where xdist is installed) do the same for users who pass --dist loadgroup themselves.
        xdist = any(str(line).startswith("xdist_group") for line in self.config.getini("markers"))
        group = pytest.mark.xdist_group(self.display_path) if xdist else None
        gate_marker = marker_name(self.spec.model.id)
        self.config.addinivalue_line("markers", f"{gate_marker}: checks of gate files whose model id is {gate_marker}")
        for stage in self.spec.stages:
            self.config.addinivalue_line("markers", f"{marker_name(stage)}: gate-file checks of stage {stage}")
        for check in self.spec.checks:
            item = CheckItem.from_parent(self, name=check.name)
            # -m selects gate checks by kind (-m latency), model id (-m sentiment) and stage (-m merge).
            for name in ("modelcheck", check.kind, gate_marker, *map(marker_name, check.stages)):
                item.add_marker(name)
            if group is not None:
                item.add_marker(group)
            yield item


class CheckItem(pytest.Item):
    """One check of a gate. The gate's model and data run once, at the first of its items."""

    parent: GateFile

    def runtest(self) -> None:
        gate_file = self.parent
        result = gate_file.session_state.result_for(gate_file, self.nodeid)
        check = next(c for c in result.checks if c.name == self.name)
        # JUnit XML <properties>: what the check measured, against what, with what outcome.
        self.user_properties.extend(
            [("status", check.status), ("value", check.value), ("threshold", json.dumps(check.threshold)),
             ("n", check.n), ("kind", check.kind)]
        )  # fmt: skip
        # Messages carry values from the data (slice values, labels): text for a log, not commands.
        message = log_text(check.message)
        if check.status == "skipped":
            pytest.skip(message)
        if check.status == "inconclusive":
            # Neither pass nor fail by luck: visible as a skip here, exit 3 from `modelcheck gate`.
            pytest.skip(f"inconclusive: {message}")
        if check.status == "passed":
            return
        if not check.blocking:
            gate_file.session_state.warn(f"{gate_file.display_path}::{self.name}", check)
            return
        prefix = "" if check.status == "failed" else "error: "
        pytest.fail(prefix + message, pytrace=False)

    @property
    def line_index(self) -> int | None:
        """The 0-based line of this check in its gate file (pytest adds 1 when it shows it)."""
        line = self.parent.spec.check(self.name).line
        return None if line is None else line - 1

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # Shown as the failure header; not a suffix of the node id, so pytest keeps the id as is.
        return self.path, self.line_index, f"{self.name} ({self.parent.display_path})"


def marker_name(name: str) -> str:
    """``name`` as a marker -m can select: letters, digits and ``_`` (others become ``_``)."""
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"
