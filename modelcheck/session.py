"""The state of one ``pytest --modelcheck`` run, kept in ``config.stash`` and registered as a plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelcheck.results import CheckResult, GateResult
from modelcheck.runner import ModelCache, run_gate

if TYPE_CHECKING:
    from modelcheck.collect import GateFile

_GATE_SUFFIXES = (".yaml", ".yml")


class ModelcheckSession:
    """Finds gate files, runs each gate once, collects results, writes the report and the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.stage: str | None = config.getoption("modelcheck_stage")
        report = config.getoption("modelcheck_report")
        self.report_path = Path(config.invocation_params.dir, report).resolve() if report else None
        self.models = ModelCache()
        self.results: dict[Path, GateResult] = {}
        self.warnings: list[tuple[str, CheckResult]] = []
        self.report_error: str | None = None
        self.gate_files = self._find_gate_files()
        self.explicit_files = self._explicit_files()
        self._check_report_path()
        self._add_gate_files_to_args()

    # -- finding gate files ---------------------------------------------------------------------

    def _find_gate_files(self) -> set[Path]:
        root = self.config.rootpath
        found: set[Path] = set()
        for pattern in self.config.getini("modelcheck_gates"):
            found.update(p.resolve() for p in root.glob(pattern) if p.is_file())
        return found

    def _arg_paths(self) -> list[Path]:
        base = self.config.invocation_params.dir
        return [Path(base, arg.split("::")[0]).resolve() for arg in self.config.args]

    def _explicit_files(self) -> set[Path]:
        if self.config.args_source != pytest.Config.ArgsSource.ARGS:
            return set()
        return {p for p in self._arg_paths() if p.suffix in _GATE_SUFFIXES}

    def _add_gate_files_to_args(self) -> None:
        """Without explicit paths, collect the gate files even where testpaths does not reach."""
        if self.config.args_source == pytest.Config.ArgsSource.ARGS:
            return
        covered = self._arg_paths()
        for gate in sorted(self.gate_files):
            if not any(gate == arg or arg in gate.parents for arg in covered):
                self.config.args.append(str(gate))

    def _check_report_path(self) -> None:
        if self.report_path is None:
            return
        if self.report_path.is_dir():
            raise pytest.UsageError(f"--modelcheck-report {self.report_path} is a folder; give a file path")
        parent = self.report_path.parent
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            raise pytest.UsageError(f"--modelcheck-report {self.report_path}: {existing} is not a folder")

    # -- hooks ----------------------------------------------------------------------------------

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> GateFile | None:
        if file_path.suffix not in _GATE_SUFFIXES:
            return None
        resolved = file_path.resolve()
        if resolved not in self.gate_files and resolved not in self.explicit_files:
            return None
        from modelcheck.collect import GateFile

        gate_file: GateFile = GateFile.from_parent(parent, path=file_path)
        return gate_file

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.models.close()
        if self.report_path is None or hasattr(self.config, "workerinput"):
            return
        from modelcheck.errors import ModelcheckError
        from modelcheck.report import build_report, write_report

        try:
            write_report(self.report_path, build_report(list(self.results.values()), stage=self.stage))
        except (OSError, ModelcheckError) as exc:
            self.report_error = f"could not write the report to {self.report_path}: {exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from modelcheck.report import build_report
        from modelcheck.summary import terminal_rows

        if not self.results:
            return
        rows = terminal_rows(build_report(list(self.results.values()), stage=self.stage, env={}))
        write = terminalreporter.write_line
        terminalreporter.section("modelcheck")
        header = ("check", "value", "threshold", "status")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if self.stage is not None:
            write(f"stage: {self.stage} (only its checks block; other failures are warnings)")
        for nodeid, check in self.warnings:
            terminalreporter.write_line(f"WARNING {nodeid}: {check.message} (not in the blocking stage)", yellow=True)
        if self.report_error:
            terminalreporter.write_line(f"ERROR {self.report_error}", red=True)
        elif self.report_path is not None:
            write(f"report written to {self.report_path}")

    # -- used by the items ----------------------------------------------------------------------

    def result_for(self, gate_file: GateFile) -> GateResult:
        """The gate's results, running the gate the first time one of its checks asks."""
        if gate_file.path not in self.results:
            self.results[gate_file.path] = run_gate(
                gate_file.spec, file=gate_file.display_path, models=self.models, stage=self.stage
            )
        return self.results[gate_file.path]

    def record_invalid(self, display_path: str, message: str) -> None:
        """An invalid gate file still appears in the report, as an error, so no stage passes it."""
        self.results[Path(display_path)] = GateResult(
            file=display_path, model={}, data={}, stages={}, checks=[], error=message
        )

    def warn(self, nodeid: str, check: CheckResult) -> None:
        self.warnings.append((nodeid, check))
