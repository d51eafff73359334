"""Everything ``modelcheck publish`` checks before it uploads anything, and the plan it makes.

Local checks first (no network): the report is valid and holds this gate file's results (path and
gate-file sha256), every check of the stage passed, every file to publish hashes now to what the run
recorded, none is a Git LFS pointer, and the files are exactly the model's artifacts plus the gate's
``publish.files`` extras that the run hashed. Then the Hub is read (nothing written): the branch head the
commit will be made on, whether the tag exists and where, whether a commit of this very publish already
landed (its digest is a trailer in the commit message), the README to keep; the card's YAML is
checked by the Hub's ``/api/validate-yaml``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelcheck.errors import PublishRefused, ReportError
from modelcheck.hub.names import check_ref, repo_path_problem
from modelcheck.report import published as hubfiles

TRAILER = "Modelcheck-Publish"
#: A Hub repo id as huggingface_hub's ``validate_repo_id`` accepts it.
_REPO_ID = re.compile(r"(?!.*(--|\.\.))[\w.-]{1,96}/[\w.-]{1,96}", re.ASCII)
_BAD_STATUSES = ("failed", "error", "inconclusive", "skipped")


@dataclass(frozen=True)
class Options:
    """What the command line asks for; None means: take it from the gate's ``publish:`` section (or the default)."""

    repo_id: str | None = None
    tag: str | None = None
    branch: str | None = None
    create_pr: bool = False
    private: bool | None = None
    stage: str = "deploy"
    dry_run: bool = False


@dataclass(frozen=True)
class Upload:
    """One file of the commit. ``pinned`` files (the model's and the extras) are the release: the digest covers them,
    and a rerun verifies them in the commit it finds; the card, report and baseline are made by each run."""

    path: str
    data: bytes | None
    source: Path | None
    sha256: str
    size: int
    role: str
    pinned: bool = True

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()

    def blob_id(self) -> str:
        return hubfiles.git_blob_id_of(self.data) if self.data is not None else hubfiles.git_blob_id(self.source or "")

    def frozen(self, folder: Path, index: int) -> tuple[str, str]:
        """The file that is sent, a private copy in ``folder`` hashed while it was written, and its git blob id.

        huggingface_hub reads (and hashes) this copy for the upload, so the bytes sent are the bytes compared
        here with the report; a file that changed since planning is refused before anything is sent.
        """
        target = folder / f"{index:05d}"
        digest = hashlib.sha256()
        blob = hashlib.sha1(b"blob %d\0" % self.size)
        with open(target, "wb") as dst:
            chunks = [self.data] if self.data is not None else _chunks(self.source)
            for chunk in chunks:
                digest.update(chunk)
                blob.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != self.sha256:
            raise PublishRefused(
                f"{self.source} changed after the plan was made (sha256 now {digest.hexdigest()}, the report records "
                f"{self.sha256}): another process is writing to the model's files. Nothing was sent; no commit was "
                "made. Publish when nothing writes to them, or rerun the stage on the new files"
            )
        return str(target), blob.hexdigest()


def _chunks(path: Path | None) -> Iterator[bytes]:
    assert path is not None
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


@dataclass
class Plan:
    """What will be published where; made by :func:`make_plan`, carried out by ``publish.carry_out``."""

    repo_id: str
    branch: str
    tag: str | None
    create_pr: bool
    private: bool
    stage: str
    endpoint: str
    uploads: list[Upload]
    digest: str
    model_id: str
    repo_exists: bool = False
    parent_commit: str | None = None
    landed_commit: str | None = None
    tag_target: str | None = None
    notes: list[str] = field(default_factory=list)
    #: git blob id of each file as sent (what the read-back compares for files stored in git)
    sent_blobs: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The plan, as ``--dry-run`` prints it."""
        where = f"{self.endpoint}/{self.repo_id}"
        lines = [
            f"publish plan for {where} (stage {self.stage}, digest {self.digest[:16]})",
            f"  branch: {self.branch}"
            + (
                f" at {self.parent_commit}"
                if self.parent_commit
                else " (new repo, created private)"
                if self.private and not self.repo_exists
                else " (new repo)"
            ),
            f"  commit: {self._commit_line()}",
            f"  tag: {self.tag or '(none)'}" + (f" (exists at {self.tag_target})" if self.tag_target else ""),
            "  files:",
        ]
        width = max(len(u.path) for u in self.uploads)
        for upload in self.uploads:
            lines.append(f"    {upload.path:<{width}}  {upload.size:>10} B  sha256 {upload.sha256}  ({upload.role})")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _commit_line(self) -> str:
        if self.landed_commit:
            return f"already made: {self.landed_commit}"
        return f"{'a pull request' if self.create_pr else 'one commit'} of {len(self.uploads)} files"

    def card(self) -> str:
        return next(u for u in self.uploads if u.path == "README.md").content().decode("utf-8")


# -- local checks ------------------------------------------------------------------------------------------------


def find_gate(report: Mapping[str, Any], gate_path: Path, shown: str) -> dict[str, Any]:
    """The report's record of ``gate_path`` (matched by path: as given, from the working directory, or as a suffix)."""
    target = gate_path.resolve()
    for gate in report.get("gates", []):
        recorded = Path(gate["file"])
        if recorded.resolve() == target or target.parts[-len(recorded.parts) :] == recorded.parts:
            return dict(gate)
    held = ", ".join(g["file"] for g in report.get("gates", [])) or "no gates"
    raise PublishRefused(
        f"report {shown} holds no results for gate file {gate_path} (it holds: {held}); run the stage with this gate: "
        f"pytest --modelcheck --modelcheck-stage deploy --modelcheck-report {shown} {gate_path}"
    )


def check_gate_record(gate: Mapping[str, Any], gate_path: Path, shown: str, stage: str) -> list[Mapping[str, Any]]:
    """Refuse unless the record is of this gate file's bytes, the gate ran, and every check of ``stage`` passed."""
    recorded = gate.get("gate_sha256")
    now = hubfiles.sha256_file(gate_path)
    if recorded is None:
        raise PublishRefused(
            f"report {shown} does not record the sha256 of {gate_path} (written by an older modelcheck?); "
            "rerun the stage with this modelcheck to write a new report"
        )
    if recorded != now:
        raise PublishRefused(
            f"gate file {gate_path} changed since the run: its sha256 is {now}, the report {shown} records {recorded}; "
            "rerun the stage with the gate file as it is now"
        )
    if gate.get("error"):
        raise PublishRefused(f"gate {gate_path} did not run: {gate['error']}; fix it and rerun the stage")
    stages = gate.get("stages") or {}
    if stages and stage not in stages:
        raise PublishRefused(
            f"gate file {gate_path} defines no stage {stage!r} (stages: {', '.join(stages)}); pass --stage with one of "
            f"them, or add {stage!r} under stages:"
        )
    members = set(stages.get(stage, ())) if stages else {c["name"] for c in gate["checks"]}
    judged = [c for c in gate["checks"] if c["name"] in members or stage in (c.get("stages") or ())]
    if not judged:
        raise PublishRefused(f"stage {stage!r} of {gate_path} has no checks: nothing was tested, nothing is published")
    bad = [c for c in judged if c["status"] != "passed"]
    if bad:
        listed = "; ".join(f"{c['name']} {_word(c)}: {' '.join(str(c.get('message', '')).split())[:200]}" for c in bad)
        raise PublishRefused(
            f"stage {stage!r} of {gate_path} did not pass in report {shown}: {listed}. Only a model that passed every "
            f"check of the stage is published; fix it and rerun the stage"
        )
    return judged


def _word(check: Mapping[str, Any]) -> str:
    if check["status"] == "failed" and not check.get("blocking", True):
        return "warned (the run judged another stage)"
    return str(check["status"])


def local_files(gate_spec: Any, gate: Mapping[str, Any], shown: str) -> list[Upload]:
    """Model files + extras, re-hashed now and compared with the report; refused on any difference."""
    root = hubfiles.model_root(gate_spec)
    if root is None:
        raise PublishRefused(
            f"model source {gate_spec.model.source!r} of {gate_spec.path} is not local files; publish publishes the "
            "files that were tested: point model.source at a folder or file"
        )
    model_files = gate["model"].get("files") or []
    if not model_files:
        raise PublishRefused(f"report {shown} lists no model files for {gate_spec.path}; nothing tested to publish")
    uploads: dict[str, Upload] = {}
    for record in model_files:
        uploads[record["path"]] = _verified(_inside(root, str(record["path"]), shown), record, "model", shown)
    if gate_spec.publish is not None:
        recorded = {r["path"]: r for r in gate.get("publish_files") or []}
        if gate.get("publish_files") is None:
            raise PublishRefused(
                f"report {shown} did not hash the publish.files of {gate_spec.path} (written by an older modelcheck?); "
                "rerun the stage to write a new report"
            )
        for pattern in hubfiles.unmatched_patterns(gate_spec):
            raise PublishRefused(
                f"publish.files pattern {pattern!r} in {gate_spec.path} matches no file; fix the pattern"
            )
        for file in hubfiles.extra_files(gate_spec):
            path = hubfiles.repo_path(file, root)
            if path not in recorded:
                raise PublishRefused(
                    f"{file} (publish.files of {gate_spec.path}) was not there when the stage ran: the report {shown} "
                    "never hashed it, so it is untested; rerun the stage"
                )
            upload = _verified(file, recorded.pop(path), "extra", shown)
            if path in uploads and uploads[path].sha256 != upload.sha256:
                raise PublishRefused(
                    f"two different files would be published as {path}: {uploads[path].source} and {file}"
                )
            uploads.setdefault(path, upload)
        for path in recorded:
            raise PublishRefused(
                f"{path} was hashed by the run (publish.files of {gate_spec.path}) but no file matches it now; "
                "restore it or rerun the stage"
            )
    for path, upload in uploads.items():
        problem = repo_path_problem(path)
        if problem is not None:
            raise PublishRefused(f"{str(upload.source)!a} would be published as {path!a}: {problem}; rename the file")
    reserved = [p for p in uploads if p == "README.md" or p.startswith("modelcheck/")]
    if reserved:
        raise PublishRefused(
            f"{reserved[0]} would be overwritten by the card or the baseline modelcheck writes; rename it"
        )
    return [uploads[p] for p in sorted(uploads)]


def _inside(root: Path, path: str, shown: str) -> Path:
    """``root / path`` for a model file the report records; refused when ``path`` could leave the model folder."""
    problem = repo_path_problem(path)
    if problem is not None:
        raise PublishRefused(
            f"report {shown} records a model file {path!r}: {problem}. Only files under the model folder {root} are "
            "published; the report was not written by this gate's run: rerun the stage"
        )
    return root / path


def _verified(file: Path, record: Mapping[str, Any], role: str, shown: str) -> Upload:
    if not file.is_file():
        raise PublishRefused(
            f"{file} is in report {shown} but not on disk; publish runs where the stage ran, on its files"
        )
    if hubfiles.is_lfs_pointer(file):
        raise PublishRefused(
            f"{file} is a Git LFS pointer ({file.stat().st_size} bytes), not the file itself; fetch the LFS objects "
            "(actions/checkout with lfs: true, or git lfs pull) and rerun the stage"
        )
    digest = hubfiles.sha256_file(file)
    if digest != record["sha256"]:
        raise PublishRefused(
            f"{file} changed since the run: its sha256 is now {digest}, the report {shown} records {record['sha256']}; "
            "only the bytes that passed are published: rerun the stage on these files, or restore them"
        )
    return Upload(record["path"], None, file, digest, file.stat().st_size, role)


def generated_files(report_path: Path, report: Mapping[str, Any], gate: Mapping[str, Any]) -> list[Upload]:
    """``modelcheck/report.json`` and the baseline (``modelcheck/<id>.json`` + ``.npz``) of the gate."""
    from modelcheck.report.baselines import BaselineUnavailable, update_baselines

    model_id = gate["model"]["id"]
    saved = gate.get("outputs")
    sent = report_path.read_bytes()
    try:
        same = json.loads(sent) == report
    except ValueError:
        same = False
    if not same:
        raise PublishRefused(f"report {report_path} changed while publish read it; publish when nothing writes to it")
    uploads = [_generated("modelcheck/report.json", sent, "report")]
    if not saved:
        raise PublishRefused(
            f"report {report_path} has no per-example outputs for {gate['file']}; the baseline of the next release is "
            "made of them: rerun the stage with --modelcheck-report"
        )
    outputs = report_path.parent / saved["path"]
    if not outputs.is_file() or hubfiles.sha256_file(outputs) != saved["sha256"]:
        raise PublishRefused(
            f"the outputs {outputs} of report {report_path} are missing or changed since the run; keep the report's "
            f".outputs folder next to it, or rerun the stage"
        )
    one = {**report, "gates": [gate]}
    with tempfile.TemporaryDirectory(prefix="modelcheck-publish-") as folder:
        try:
            written = update_baselines(one, report_path, Path(folder))
        except BaselineUnavailable as exc:
            raise PublishRefused(str(exc)) from None
        document = json.loads(written[0].read_text(encoding="utf-8"))
        document["created_at"] = report.get("created_at")  # the same report gives the same baseline bytes
        text = (json.dumps(document, indent=2) + "\n").encode()
        uploads.append(_generated(f"modelcheck/{model_id}.json", text, "baseline"))
        uploads.append(
            _generated(f"modelcheck/{model_id}.npz", written[0].with_suffix(".npz").read_bytes(), "baseline")
        )
    return uploads


def _generated(path: str, data: bytes, role: str) -> Upload:
    return Upload(path, data, None, hashlib.sha256(data).hexdigest(), len(data), role, pinned=False)


def card_upload(text: str) -> Upload:
    """README.md: not pinned (it keeps the repo's prose, which may change)."""
    return _generated("README.md", text.encode("utf-8"), "card")


def digest_of(
    repo_id: str, branch: str, tag: str | None, gate: Mapping[str, Any], stage: str, uploads: list[Upload]
) -> str:
    """What identifies a release: where (repo, branch, tag), the gate file's sha256, the stage, and the sha256 of
    the model files and extras. Not the report (its timestamps change on every run of the stage), so a rerun of
    the same release finds the commit an earlier run made."""
    pinned = sorted((u.path, u.sha256) for u in uploads if u.pinned)
    payload = {
        "repo_id": repo_id, "branch": branch, "tag": tag, "gate_sha256": gate.get("gate_sha256"), "stage": stage,
        "files": pinned,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_inputs(report_path: Path, gate_path: Path) -> tuple[dict[str, Any], Any]:
    """The report (refused when invalid) and the gate spec (GateFileError, a usage error, when invalid)."""
    from modelcheck.gatefile import load_gate
    from modelcheck.report.document import read_report

    if not gate_path.is_file():
        raise FileNotFoundError(f"gate file {gate_path} not found; pass the gate file the stage ran: --gate PATH")
    gate_spec = load_gate(gate_path, display_path=str(gate_path))
    try:
        report = read_report(report_path)
    except ReportError as exc:
        raise PublishRefused(str(exc)) from None
    return report, gate_spec


def resolve(options: Options, publish: Mapping[str, Any] | None, gate_path: Path) -> tuple[str, str | None, str, bool]:
    """repo id, tag, branch, private: the flags win over the gate's ``publish:`` section."""
    section = dict(publish or {})
    repo_id = options.repo_id or section.get("repo_id")
    if not repo_id:
        raise ValueError(f"no Hub repo to publish to: pass --repo-id ORG/NAME or add publish: repo_id: to {gate_path}")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")) or not _REPO_ID.fullmatch(repo_id):
        raise ValueError(
            f"--repo-id {repo_id!r} is not a Hub repo id; expected ORG/NAME of letters, digits, '-', '_' and '.' "
            "(no '--' or '..', at most 96 characters)"
        )
    tag = options.tag or section.get("tag")
    branch = options.branch or section.get("branch") or "main"
    if tag is not None:
        check_ref(str(tag), "--tag" if options.tag else f"publish.tag of {gate_path}")
    check_ref(str(branch), "--branch" if options.branch else f"publish.branch of {gate_path}")
    private = options.private if options.private is not None else bool(section.get("private", False))
    return repo_id, tag, branch, private
