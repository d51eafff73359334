"""The state of one ``pytest --modelcheck`` run, kept in ``config.stash`` and registered as a plugin.

With pytest-xdist each worker runs the gates of the items it gets and sends its results to the
controller, which writes the report and prints the summary as a single process would. Unless the
user picks a ``--dist`` mode, every check of a gate file goes to one worker (other tests are spread
one by one, as ``--dist load`` does), so each gate's model loads and runs once.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelcheck.errors import GateFileError
from modelcheck.gatefile import GateSpec, load_gate
from modelcheck.pytest_plugin.collect import CheckItem, GateFile
from modelcheck.pytest_plugin.outputs import check_report_path, html_path, report_path
from modelcheck.pytest_plugin.progress import GateProgress
from modelcheck.pytest_plugin.shard import Shard, shard_members
from modelcheck.pytest_plugin.state import gate_scheduling_key, model_cache
from modelcheck.pytest_plugin.stopped import EarlyStop
from modelcheck.report.baselines import prune_outputs, run_outputs_dir
from modelcheck.report.results import CheckResult, GateResult
from modelcheck.report.text import COLUMN_CHARS, MESSAGE_CHARS, plain, text_table
from modelcheck.run.engines import engine_for
from modelcheck.run.gate import Progress, run_gate

_GATE_SUFFIXES = (".yaml", ".yml")
#: Key of this plugin's payload in xdist's ``workeroutput``.
_XDIST_KEY = "modelcheck"


class ModelcheckSession:
    """Finds gate files, runs each gate once, collects results, writes the report and the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.stage: str | None = config.getoption("modelcheck_stage")
        self.device: str | None = config.getoption("modelcheck_device")
        self.shard: Shard | None = config.getoption("modelcheck_shard")
        #: Where predictions run (--modelcheck-engine / ini modelcheck_engine); ValueError for a bad one.
        self.engine = engine_for(config.getoption("modelcheck_engine") or config.getini("modelcheck_engine"))
        report = config.getoption("modelcheck_report")
        self.report_path = report_path(config.invocation_params.dir, report) if report else None
        #: This run's outputs folder (``out.outputs/run-...``): the report switches to it when it is written.
        self.run_outputs = run_outputs_dir(self.report_path) if self.report_path is not None else None
        html = config.getoption("modelcheck_html")
        #: --modelcheck-html: the page written at the end of the session (modelcheck.view).
        self.html_path = html_path(config.invocation_params.dir, html) if html else None
        self.models = model_cache(config)
        #: Gate results by gate file (as the report names it).
        self.results: dict[str, GateResult] = {}
        self.warnings: list[tuple[str, CheckResult]] = []
        #: torch_threads / cuda_runtime reported by xdist workers (the controller imports no framework).
        self.worker_runtime: dict[str, Any] = {}
        self.report_error: str | None = None
        #: Collection errors and the interrupt of this run (registered as a plugin next to the session).
        self.early_stop = EarlyStop()
        #: The report's ``stopped`` record, once the session finished (None: every gate check ran).
        self.stopped: dict[str, Any] | None = None
        #: Check names per gate file that this run selected (after -k, -m, --deselect, --lf), once collected.
        self.selected: dict[str, set[str]] = {}
        #: Gate files whose every check the run deselected (reported with every check ``not run``).
        self.deselected: dict[str, GateSpec] = {}
        #: Gate files read ahead of collection (to check --modelcheck-stage), by resolved path.
        self.specs: dict[Path, GateSpec] = {}
        self.gate_files = self._find_gate_files()
        self.explicit_files = self._explicit_files()
        check_report_path(self.report_path)
        self._add_gate_files_to_args()
        self._check_stage()
        #: With --modelcheck-shard: the gate files of this run that the shard collects (resolved paths).
        self.shard_files = self._shard_files()

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

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

    def _check_stage(self) -> None:
        """``--modelcheck-stage`` must name a stage of the gate files this run collects: a typo is a usage error."""
        if self.stage is None:
            return
        for path in sorted(self._run_files()):
            with contextlib.suppress(GateFileError):  # reported where the file is collected
                self.specs[path] = load_gate(path, display_path=self._display(path))
        if not self.specs or any(not spec.stages for spec in self.specs.values()):
            return  # a gate without stages blocks on every check: any stage judges it
        known = sorted({name for spec in self.specs.values() for name in spec.stages})
        if self.stage not in known:
            near = difflib.get_close_matches(self.stage, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise pytest.UsageError(
                f"--modelcheck-stage {self.stage!r}: no gate file of this run defines that stage; {hint}"
                f"stages in the gate files: {', '.join(known)}"
            )

    def _run_files(self) -> set[Path]:
        """The gate files this run would collect: the explicit ones, and those under the paths given."""
        args = [p for p in self._arg_paths()] if self.config.args_source == pytest.Config.ArgsSource.ARGS else []
        return self.explicit_files | {g for g in self.gate_files if not args or any(a in g.parents for a in args)}

    def _shard_files(self) -> set[Path] | None:
        if self.shard is None:
            return None
        files = {self._display(path): path for path in self._run_files()}
        return {files[name] for name in shard_members(files, self.shard)}

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return str(path)

    def load(self, path: Path, display_path: str) -> GateSpec:
        """The gate file's spec (read once per run)."""
        spec = self.specs.get(path.resolve())
        return spec if spec is not None else load_gate(path, display_path=display_path)

    # -- hooks ----------------------------------------------------------------------------------

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> GateFile | None:
        if file_path.suffix not in _GATE_SUFFIXES:
            return None
        resolved = file_path.resolve()
        if resolved not in self.gate_files and resolved not in self.explicit_files:
            return None
        if self.shard_files is not None and resolved not in self.shard_files:
            return None  # another shard's gate file: not collected, its model never loads
        gate_file: GateFile = GateFile.from_parent(parent, path=file_path, runner=self)
        return gate_file

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            if isinstance(item, CheckItem):
                self.deselected.setdefault(item.parent.display_path, item.parent.spec)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if isinstance(item, CheckItem):
                self.selected.setdefault(item.parent.display_path, set()).add(item.name)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if isinstance(item, CheckItem) and report.skipped and isinstance(report.longrepr, tuple):
            # A skipped check (device absent) is located at its gate file, not inside modelcheck.
            line = item.line_index
            report.longrepr = (str(item.path), None if line is None else line + 1, report.longrepr[2])
        if isinstance(item, CheckItem) and report.when == "call":
            # JUnit XML and --durations: each check its own time and a share of the gate's, not the
            # whole gate charged to whichever check ran first.
            result = self.results.get(item.parent.display_path)
            check = next((c for c in result.checks if c.name == item.name), None) if result else None
            if check is not None and check.duration_s is not None:
                report.duration = check.duration_s
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for file, spec in self.deselected.items():  # every check left out: in the report, not run
            if file not in self.selected and file not in self.results:
                self.results[file] = run_gate(spec, file=file, models=self.models, stage=self.stage, selected=())
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes the report
            workeroutput[_XDIST_KEY] = self._worker_payload()
            return
        gates_ran = bool(self.results) and all(file in self.results for file in self.selected)
        self.stopped = self.early_stop.record(session, gates_ran=gates_ran)
        if self.report_path is None and self.html_path is None:
            return
        from modelcheck.errors import ModelcheckError
        from modelcheck.report.document import build_report, environment, write_report

        env = environment()
        env.update({k: v for k, v in self.worker_runtime.items() if env.get(k) is None})
        shard = self.shard.pair if self.shard is not None else None
        try:
            document = build_report(self.gate_results(), stage=self.stage, env=env, shard=shard, stopped=self.stopped)
            if self.report_path is not None:
                write_report(self.report_path, document)
        except (OSError, ModelcheckError) as exc:
            self.report_error = f"could not write the report to {self.report_path}: {exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        if self.report_path is not None:
            prune_outputs(self.report_path, document)
        if self.html_path is not None:
            self._write_html(session, document)

    def _write_html(self, session: pytest.Session, document: dict[str, Any]) -> None:
        from modelcheck.view.page import write_html

        assert self.html_path is not None
        try:
            write_html(document, self.html_path, source=self.report_path.name if self.report_path else "")
        except OSError as exc:
            self.report_error = f"could not write the HTML report to {self.html_path}: {exc.strerror or exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        except Exception as exc:  # a bug drawing the page must not cost the run's report and summary
            self.report_error = f"could not draw the HTML report ({type(exc).__name__}: {exc}); please report this"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from modelcheck.report.document import build_report
        from modelcheck.report.stopped import stopped_text
        from modelcheck.report.summary import terminal_rows

        if self.stopped is not None:
            terminalreporter.write_line(f"modelcheck: not every gate check ran: {stopped_text(self.stopped)}", red=True)
        if not self.results:
            return
        rows = terminal_rows(build_report(self.gate_results(), stage=self.stage, env={}))
        write = terminalreporter.write_line
        terminalreporter.section("modelcheck")
        # Gate-file names, check names and values come from the pull request: plain text, bounded columns.
        for line in text_table([("check", "value", "threshold", "status"), *rows]):
            write(line)
        if self.shard_files is not None:
            write(f"shard {self.shard}: {len(self.shard_files)} of {len(self._run_files())} gate files")
        if self.stage is not None:
            write(f"stage: {self.stage} (only its checks block; other failures are warnings)")
        for name, check in self.warnings:
            terminalreporter.write_line(
                f"WARNING {plain(name, COLUMN_CHARS)}: {plain(check.message, MESSAGE_CHARS)} "
                "(not in the blocking stage)",
                yellow=True,
            )
        if self.report_error:
            terminalreporter.write_line(f"ERROR {plain(self.report_error, MESSAGE_CHARS)}", red=True)
        elif self.report_path is not None:
            write(f"report written to {self.report_path}")
        if self.html_path is not None and not self.report_error:
            write(f"HTML report written to {self.html_path}")

    # -- pytest-xdist (optional hooks: called only where xdist is installed) --------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Controller, when the user chose no ``--dist``: schedule each gate file whole, other tests one by one."""
        if not config.stash.get(gate_scheduling_key, False):
            return None
        from xdist.scheduler import LoadScopeScheduling

        class GateFileScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                file = nodeid.split("::", 1)[0]
                return file if file.endswith(_GATE_SUFFIXES) else nodeid

        return GateFileScheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Controller: merge a finished worker's gate results and warnings."""
        payload = getattr(node, "workeroutput", {}).get(_XDIST_KEY)
        if payload:
            self._merge_payload(payload)

    def _worker_payload(self) -> str:
        from modelcheck.report.document import plain, runtime_environment

        return json.dumps(
            {
                "results": [plain(result.to_dict()) for result in self.results.values()],
                "warnings": [[name, plain(check.to_dict())] for name, check in self.warnings],
                "runtime": runtime_environment() if self.results else {},
            }
        )

    def _merge_payload(self, payload: str) -> None:
        data = json.loads(payload)
        for record in data["results"]:
            # A gate split over workers (a --dist mode other than loadgroup) ran whole on each: same result.
            self.results.setdefault(record["file"], _gate_result(record))
        for key, value in data["runtime"].items():
            if value is not None:
                self.worker_runtime.setdefault(key, value)
        seen = {(name, check.name) for name, check in self.warnings}
        for name, record in data["warnings"]:
            if (name, record["name"]) not in seen:
                self.warnings.append((name, CheckResult(**record)))

    # -- used by the items ----------------------------------------------------------------------

    def gate_results(self) -> list[GateResult]:
        """Every gate's results, in the order of their files (the same with or without xdist)."""
        return [self.results[file] for file in sorted(self.results)]

    def result_for(self, gate_file: GateFile, nodeid: str | None = None) -> GateResult:
        """The gate's results, running the gate the first time one of its checks (``nodeid``) asks."""
        file = gate_file.display_path
        if file not in self.results:
            gate = gate_file.spec
            if self.device is not None:
                gate = replace(gate, model=replace(gate.model, device=self.device))
            self.results[file] = run_gate(
                gate,
                file=file,
                models=self.models,
                stage=self.stage,
                progress=self._progress(file, nodeid),
                outputs_dir=self.run_outputs,
                report_dir=self.report_path.parent if self.report_path is not None else None,
                selected=self.selected.get(file),
                engine=self.engine,
            )
        return self.results[file]

    def record_invalid(self, display_path: str, message: str) -> None:
        """An invalid gate file still appears in the report, as an error, so no stage passes it."""
        self.results[display_path] = GateResult(
            file=display_path, model={}, data={}, stages={}, checks=[], error=message
        )

    def warn(self, name: str, check: CheckResult) -> None:
        self.warnings.append((name, check))

    def _progress(self, file: str, nodeid: str | None) -> Progress | None:
        if self.is_worker:
            return None
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return None
        live = bool(getattr(reporter, "isatty", False))
        verbose = self.config.get_verbosity() >= 1
        if not live and not verbose:
            return None
        capture = self.config.pluginmanager.get_plugin("capturemanager")

        def suspended() -> contextlib.AbstractContextManager[None]:
            if capture is None:
                return contextlib.nullcontext()
            cm: contextlib.AbstractContextManager[None] = capture.global_and_fixture_disabled()
            return cm

        def resume() -> None:
            # pytest writes a test's result letter where the cursor is: put the file name back first.
            if nodeid is not None:
                reporter.write_fspath_result(nodeid, "")

        return GateProgress(reporter, file, live=live, verbose=verbose, suspended=suspended, resume=resume)


def _gate_result(record: dict[str, Any]) -> GateResult:
    return GateResult(**{**record, "checks": [CheckResult(**check) for check in record["checks"]]})
