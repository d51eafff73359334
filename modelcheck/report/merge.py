"""``modelcheck report merge A.json B.json ... -o ALL.json``: join the reports of gate shards into one.

Legs of a CI matrix each run ``pytest --modelcheck --modelcheck-shard I/N --modelcheck-report leg.json``;
the merged report is what ``gate``, ``summary``, ``baseline update``, ``publish`` and ``modelcheck github``
read, as they read the report of one run. It keeps every leg's environment under ``shards`` and copies
each gate's per-example outputs (checked against their sha256) into its own ``.outputs`` folder.

Refused (ReportError, exit 2), before anything is written: a report given twice, ``-o`` naming one of
the reports (also through a symlink or another spelling of the path), two results for one gate file,
mixed stages, mixed modelcheck versions, reports of another report version, a shard set with a missing
or duplicate index or mixed counts, a shard count above :data:`MAX_SHARDS`, sharded and unsharded
reports together, and outputs that are missing or changed since their run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelcheck.errors import ReportError
from modelcheck.report.baselines import outputs_dir, prune_outputs, run_outputs_dir
from modelcheck.report.document import REPORT_VERSION, count_statuses, read_report, write_report
from modelcheck.report.files import atomic_copy, sha256_file

__all__ = ["MAX_SHARDS", "add_commands", "merge_reports"]

#: The most legs a sharded run may record: a report recording more (10**12, say) is refused, not allocated.
MAX_SHARDS = 10_000  # as --modelcheck-shard allows
#: Missing shards listed by name in the refusal; the rest are counted.
_LISTED = 10


@dataclass(frozen=True)
class _Copy:
    """One outputs file to copy: from the leg's report folder into the merged report's."""

    source: Path
    target: Path
    sha256: str


def merge_reports(paths: list[Path], output: Path, *, with_outputs: bool = True) -> dict[str, Any]:
    """Join the reports at ``paths`` into ``output`` (written atomically) and return the merged document.

    With ``with_outputs`` false, the gates' ``outputs`` are dropped (``null``) instead of copied:
    enough for ``gate`` and ``summary``, not for ``baseline update`` or ``publish``.
    """
    if not paths:
        raise ReportError("report merge needs at least one report: modelcheck report merge A.json B.json -o ALL.json")
    _check_output(output)
    seen: dict[Path, str] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise ReportError(f"report {path} is given twice ({seen[key]} and {path}); give each leg's report once")
        seen[key] = str(path)
        if _same_file(path, output):
            raise ReportError(
                f"-o {output} is the report {path} itself: the merge would overwrite that leg (and prune its "
                "outputs); write the merged report to a new path, e.g. -o all.json"
            )
    reports = [(str(path), read_report(path)) for path in paths]
    _same(reports, "modelcheck_version", "modelcheck versions", "run every leg with the same modelcheck version")
    _same(reports, "report_version", "report versions", f"regenerate them with a modelcheck writing {REPORT_VERSION}")
    _same(reports, "stage", "stages", "run every leg with the same --modelcheck-stage (or none)")
    shards = _shards(reports)

    owner: dict[str, str] = {}
    gates: list[dict[str, Any]] = []
    copies: list[_Copy] = []
    run_dir = run_outputs_dir(output)
    for number, ((name, report), path) in enumerate(zip(reports, paths, strict=True), start=1):
        for gate in report["gates"]:
            file = gate["file"]
            if file in owner:
                raise ReportError(
                    f"two results for gate file {file}: in {owner[file]} and in {name}; each gate file must run in "
                    "exactly one leg (use --modelcheck-shard I/N with the same N on every leg)"
                )
            owner[file] = name
            gate = dict(gate)
            saved = gate.get("outputs")
            if saved and with_outputs:
                source = _outputs_file(path, name, file, saved)
                target = run_dir / str(number) / PurePosixPath(saved["path"]).name
                copies.append(_Copy(source, target, saved["sha256"]))
                relative = target.relative_to(output.parent).as_posix()
                gate["outputs"] = {"path": relative, "sha256": saved["sha256"]}
            elif saved:
                gate["outputs"] = None
            gates.append(gate)

    first = reports[0][1]
    document: dict[str, Any] = {
        "report_version": first["report_version"],
        "modelcheck_version": first["modelcheck_version"],
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "stage": first["stage"],
        "environment": shards[0]["environment"],
        "shards": shards,
        "gates": sorted(gates, key=lambda gate: str(gate["file"])),
        "totals": count_statuses(gates),
    }
    stops = [report["stopped"] for _, report in reports if report.get("stopped")]
    if stops:  # a leg whose pytest stopped before its gates ran: the merged report says so too
        document["stopped"] = {**stops[0], "errors": [error for stop in stops for error in stop["errors"]]}
    for copy in copies:
        atomic_copy(copy.source, copy.target)
        if sha256_file(copy.target) != copy.sha256:  # changed while copied
            raise ReportError(f"{copy.source} changed while it was copied to {copy.target}; run the merge again")
    write_report(output, document)
    prune_outputs(output, document)
    return document


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (through symlinks, ``..`` or hard links)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError, ValueError):
        return False


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise ReportError(f"-o {output} is a folder; give the path of the merged report file, e.g. -o all.json")
    if outputs_dir(output).exists() and not outputs_dir(output).is_dir():
        raise ReportError(
            f"-o {output}: {outputs_dir(output)} (where the per-example outputs go) is not a folder; "
            "move it away or choose another path"
        )


def _same(reports: list[tuple[str, dict[str, Any]]], key: str, what: str, fix: str) -> None:
    values = {repr(report.get(key)) for _, report in reports}
    if len(values) > 1:
        listed = ", ".join(f"{name} has {report.get(key)!r}" for name, report in reports)
        raise ReportError(f"cannot merge reports of mixed {what}: {listed}; {fix}")


def _shards(reports: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every leg's shard, environment and gate files (a merged report's legs as they are), checked complete."""
    entries: list[tuple[str, dict[str, Any]]] = []
    for name, report in reports:
        if "shards" in report:
            entries += [(name, entry) for entry in report["shards"]]
        else:
            entry = {
                "shard": report.get("shard"),
                "created_at": report["created_at"],
                "environment": report["environment"],
                "gates": [gate["file"] for gate in report["gates"]],
            }
            entries.append((name, entry))
    recorded = [(name, entry["shard"]) for name, entry in entries if entry["shard"] is not None]
    if not recorded:
        return [entry for _, entry in entries]
    if len(recorded) < len(entries):
        without = sorted({name for name, entry in entries if entry["shard"] is None})
        raise ReportError(
            f"cannot merge sharded and unsharded reports: {', '.join(without)} recorded no --modelcheck-shard; "
            "merge the reports of one sharded run (every leg with --modelcheck-shard I/N)"
        )
    counts = {shard["count"] for _, shard in recorded}
    absurd = [(name, shard) for name, shard in recorded if not 1 <= shard["count"] <= MAX_SHARDS]
    if absurd:
        name, shard = absurd[0]
        raise ReportError(
            f"{name} records shard {shard['index']}/{shard['count']}: modelcheck merges at most {MAX_SHARDS:,} "
            "shards; is this report from a sharded run (--modelcheck-shard I/N)?"
        )
    if len(counts) > 1:
        listed = ", ".join(f"{name} is {shard['index']}/{shard['count']}" for name, shard in recorded)
        raise ReportError(f"cannot merge shards of different counts: {listed}; every leg must use the same N")
    count = counts.pop()
    by_index: dict[int, str] = {}
    for name, shard in recorded:
        index = shard["index"]
        if index > count:
            raise ReportError(f"{name} records shard {index}/{count}, which is not a shard of {count}")
        if index in by_index:
            raise ReportError(
                f"shard {index}/{count} is in both {by_index[index]} and {name}; give each leg's report once"
            )
        by_index[index] = name
    if len(by_index) < count:
        missing = [f"{index}/{count}" for index in range(1, count + 1) if index not in by_index][:_LISTED]
        more = count - len(by_index) - len(missing)
        raise ReportError(
            f"the reports hold {len(by_index)} of {count} shards; missing: {', '.join(missing)}"
            + (f" and {more} more" if more else "")
            + "; "
            "give the report of every leg (a leg that failed before writing its report must run again)"
        )
    return [entry for _, entry in sorted(entries, key=lambda item: int(item[1]["shard"]["index"]))]


def _outputs_file(report: Path, name: str, gate: str, saved: dict[str, Any]) -> Path:
    """The outputs file a gate names, inside its report's folder and with the sha256 the report records."""
    relative = str(saved["path"])
    pure = PurePosixPath(relative)
    if "\\" in relative or "\0" in relative or pure.is_absolute() or ".." in pure.parts:
        raise ReportError(
            f"{name}: gate {gate} names outputs {relative!r}; an outputs path is relative to the report and stays "
            "inside its folder (no '..', no absolute path)"
        )
    source = report.parent / relative
    fix = (
        "keep each report's .outputs folder next to it (upload both from each leg), "
        "or merge with --without-outputs (then baseline update and publish cannot use the merged report)"
    )
    try:
        found = source.resolve().is_relative_to(report.parent.resolve()) and source.is_file()
    except (OSError, RuntimeError):
        found = False
    if not found:
        raise ReportError(f"{name}: the outputs {source} of gate {gate} are missing; {fix}")
    actual = sha256_file(source)
    if actual != saved["sha256"]:
        raise ReportError(
            f"{name}: the outputs {source} of gate {gate} have sha256 {actual}, but the report records "
            f"{saved['sha256']}: they changed since the run; {fix}"
        )
    return source


# -- the command ----------------------------------------------------------------------------------


def add_commands(commands: Any) -> Any:
    """Register ``modelcheck report merge`` on the top-level subparsers; return the ``report`` subparsers."""
    report = commands.add_parser(
        "report", help="work with results reports (merge the reports of shards, write one as an HTML page)"
    )
    actions = report.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    merge = actions.add_parser(
        "merge",
        help="join the reports of gate shards into one",
        description=(
            "Join the reports of pytest --modelcheck --modelcheck-shard I/N legs into one report that gate, summary, "
            "baseline update, publish and github read. Exit: 0 written, 2 refused or usage."
        ),
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT", help="the legs' reports")
    merge.add_argument("-o", "--output", required=True, metavar="FILE", help="the merged report to write")
    merge.add_argument(
        "--without-outputs",
        action="store_true",
        help="drop the per-example outputs instead of copying them (enough for gate and summary)",
    )
    merge.set_defaults(handler=_cmd_merge)
    return actions


def _cmd_merge(args: argparse.Namespace) -> int:
    output = Path(args.output)
    document = merge_reports([Path(p) for p in args.reports], output, with_outputs=not args.without_outputs)
    shards = [entry["shard"] for entry in document["shards"]]
    legs = ", ".join(f"{s['index']}/{s['count']}" for s in shards if s) or f"{len(shards)} unsharded"
    checks = sum(len(gate["checks"]) for gate in document["gates"])
    print(
        f"merged {len(args.reports)} report{'s' if len(args.reports) != 1 else ''} (shards {legs}): "
        f"{len(document['gates'])} gate files, {checks} checks -> {os.fspath(output)}"
    )
    return 0
