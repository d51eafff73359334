"""Per-example outputs next to the report, and the baselines that regression checks read.

A run with ``--modelcheck-report out.json`` saves each gate's outputs (labels and scores, values,
embeddings, texts, multi-labels, answer spans or token tags, one row per data row; tags flattened with
their per-row counts in ``tags_lengths``) as ``out.outputs/<model id>.npz``, keyed to the data's
sha256. ``modelcheck baseline update out.json`` turns them into ``baselines/<model id>.json`` +
``baselines/<model id>.npz``, which a ``kind: regression`` check compares against, row by row.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from modelcheck.errors import ModelcheckError, ReportError
from modelcheck.report.files import atomic_copy, atomic_write, read_regular, sha256_file

if TYPE_CHECKING:
    from modelcheck.models.backends import Outputs

BASELINE_VERSION = 1
_FIELDS = (
    "labels", "scores", "values", "embeddings", "pair_embeddings", "texts", "multi_labels", "spans", "token_logprobs",
    "failed",
)  # fmt: skip


class BaselineUnavailable(ModelcheckError):
    """No usable baseline: missing, unreadable, older format, or computed on other data (-> inconclusive)."""


@dataclass(frozen=True)
class Baseline:
    """A baseline as a regression check uses it."""

    path: str
    outputs: Outputs
    data_sha256: str | None
    rows: int
    created_at: str | None


def outputs_dir(report_path: Path) -> Path:
    """Where a report's per-example outputs go: ``out.json`` -> ``out.outputs/``."""
    return report_path.with_name(report_path.stem + ".outputs")


def run_outputs_dir(report_path: Path) -> Path:
    """A fresh folder for one run's outputs: ``out.outputs/run-<UTC time>-<pid>``.

    A run writes its outputs there and the report it writes at the end names them, so the report
    and its outputs change together: until the new report replaces the old one, the old one still
    names its own, untouched files. :func:`prune_outputs` then removes the folders no report names.
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return outputs_dir(report_path) / f"run-{stamp}-{os.getpid()}"


def prune_outputs(report_path: Path, report: dict[str, Any]) -> None:
    """Remove the ``run-*`` outputs folders of ``report_path`` that ``report`` (just written) does not name."""
    kept = set()
    for gate in report.get("gates", []):
        parts = PurePosixPath(str((gate.get("outputs") or {}).get("path", ""))).parts
        if len(parts) >= 2:
            kept.add(parts[1])
    folder = outputs_dir(report_path)
    try:
        runs = [entry for entry in folder.iterdir() if entry.name.startswith("run-") and entry.is_dir()]
    except OSError:
        return
    for run in runs:
        if run.name not in kept and not run.is_symlink():
            shutil.rmtree(run, ignore_errors=True)


def save_outputs(outputs: Outputs, path: Path, *, data_sha256: str | None) -> str:
    """Write ``outputs`` (compressed .npz, atomically) and return the file's sha256."""
    import numpy as np

    arrays: dict[str, Any] = {"rows": np.arange(len(outputs), dtype=np.int64)}
    for name in _FIELDS:
        value = getattr(outputs, name)
        if value is not None:
            arrays[name] = np.asarray(value, dtype=str) if name == "texts" else np.asarray(value)
    if outputs.tags is not None:  # ragged: one flat array of tags and each row's count
        arrays["tags"] = np.asarray([tag for row in outputs.tags for tag in row], dtype=str)
        arrays["tags_lengths"] = np.asarray([len(row) for row in outputs.tags], dtype=np.int64)
    if outputs.detections is not None:  # ragged too: all images' (m, 6) rows stacked, and each image's m
        arrays["detections"] = np.concatenate([np.zeros((0, 6)), *(np.reshape(d, (-1, 6)) for d in outputs.detections)])
        arrays["detections_lengths"] = np.asarray([len(d) for d in outputs.detections], dtype=np.int64)
    arrays["data_sha256"] = np.asarray(data_sha256 or "")
    atomic_write(path, lambda stream: np.savez_compressed(stream, **arrays))
    return sha256_file(path)


def load_outputs(path: Path) -> tuple[Outputs, str | None]:
    """Read outputs written by :func:`save_outputs`; BaselineUnavailable names a corrupt file."""
    import numpy as np

    from modelcheck.models.backends import Outputs

    if path.exists() and not path.is_file():
        raise BaselineUnavailable(f"baseline outputs {path} are not a regular file")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields: dict[str, Any] = {name: data[name] for name in _FIELDS if name in data.files}
            if "tags" in data.files and "tags_lengths" in data.files:
                flat = [str(tag) for tag in data["tags"].tolist()]
                lengths = data["tags_lengths"].tolist()
                ends = np.cumsum(lengths).tolist()
                fields["tags"] = [flat[end - size : end] for end, size in zip(ends, lengths, strict=True)]
            if "detections" in data.files and "detections_lengths" in data.files:
                stacked = np.asarray(data["detections"], dtype=np.float64).reshape(-1, 6)
                cuts = np.cumsum(data["detections_lengths"])[:-1]
                fields["detections"] = list(np.split(stacked, cuts)) if len(data["detections_lengths"]) else []
            data_sha = str(data["data_sha256"]) if "data_sha256" in data.files else ""
    except FileNotFoundError:
        raise BaselineUnavailable(f"baseline outputs not found: {path}") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, KeyError ...
        raise BaselineUnavailable(
            f"baseline outputs {path} are corrupt ({type(exc).__name__}: {exc}); "
            "recreate them with modelcheck baseline update REPORT"
        ) from None
    if "texts" in fields:
        fields["texts"] = [str(t) for t in fields["texts"].tolist()]
    return Outputs(**fields), data_sha or None


#: A model id as gate files allow it: a file name, never a path.
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def update_baselines(report: dict[str, Any], report_path: Path, out_dir: Path) -> list[Path]:
    """Write ``<model id>.json`` + ``.npz`` in ``out_dir`` for every gate of the report that has outputs.

    The report is untrusted input: model ids must be plain file names, outputs paths must stay inside
    the report's folder, each outputs file must have the sha256 the report records, and two gates
    may not share a model id. Every gate is checked before anything is written (ReportError names
    the gate and the fix).
    """
    planned: list[tuple[dict[str, Any], str, Path, str]] = []
    owners: dict[str, str] = {}
    root = report_path.parent.resolve()
    for gate in report.get("gates", []):
        saved = gate.get("outputs")
        if gate.get("error") or not saved:
            continue
        model_id = str(gate["model"]["id"])
        if not _MODEL_ID.match(model_id) or len(model_id) > 128:
            raise ReportError(
                f"{report_path}: gate {gate['file']} has model id {model_id!r}, which is not a plain file name "
                "(letters, digits, '.', '_', '-'); refusing to write a baseline for it"
            )
        if model_id in owners:
            raise ReportError(
                f"{report_path}: gates {owners[model_id]} and {gate['file']} both have model id {model_id!r}, "
                f"so both would write {out_dir / model_id}.json; give each gate its own model.id"
            )
        owners[model_id] = gate["file"]
        source = _outputs_file(report_path, root, gate, str(saved["path"]))
        actual = sha256_file(source)
        if actual != saved["sha256"]:
            raise ReportError(
                f"{report_path}: outputs {saved['path']} of gate {gate['file']} have sha256 {actual}, but the report "
                f"records {saved['sha256']}: they do not belong to this report; run the gates again"
            )
        planned.append((gate, model_id, source, actual))

    written: list[Path] = []
    for gate, model_id, source, digest in planned:
        out_dir.mkdir(parents=True, exist_ok=True)
        npz = out_dir / f"{model_id}.npz"
        atomic_copy(source, npz)
        document = {
            "baseline_version": BASELINE_VERSION,
            "modelcheck_version": report.get("modelcheck_version"),
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "gate": gate["file"],
            "model": {k: gate["model"].get(k) for k in ("id", "source", "backend", "task", "device", "files")},
            "data": gate["data"],
            "results": {c["name"]: c.get("value") for c in gate.get("checks", [])},
            "outputs": {"path": npz.name, "sha256": digest},
            "environment": report.get("environment", {}),
        }
        atomic_write(out_dir / f"{model_id}.json", json.dumps(document, indent=2) + "\n")
        written.append(out_dir / f"{model_id}.json")
    return written


def _outputs_file(report_path: Path, root: Path, gate: dict[str, Any], relative: str) -> Path:
    """The outputs file a gate names, which must be a relative path inside the report's folder."""
    pure = PurePosixPath(relative)
    if "\\" in relative or "\0" in relative or pure.is_absolute() or ".." in pure.parts:
        raise ReportError(
            f"{report_path}: gate {gate['file']} names outputs {relative!r}; an outputs path is relative to the "
            "report and stays inside its folder (no '..', no absolute path)"
        )
    source = report_path.parent / relative
    try:
        inside = source.resolve().is_relative_to(root) and source.is_file()
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise BaselineUnavailable(
            f"{report_path} names outputs {relative} for gate {gate['file']}, but {source} is missing "
            "(or leads outside the report's folder); run the gates again with --modelcheck-report"
        )
    return source


def read_baseline(where: str, *, model_id: str) -> Baseline:
    """Read a baseline file (or fetch ``hub://org/name@revision``); BaselineUnavailable says what is wrong."""
    path = _fetch_from_hub(where, model_id) if where.startswith("hub://") else Path(where)
    if not path.is_file():
        raise BaselineUnavailable(
            f"no baseline at {path}; create one from a report of a good run: "
            f"pytest --modelcheck --modelcheck-report out.json, then modelcheck baseline update out.json "
            f"--dir {path.parent}"
        )
    try:
        document = json.loads(read_regular(path, limit=64 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise BaselineUnavailable(f"baseline {path} is not readable JSON ({exc})") from None
    version = document.get("baseline_version") if isinstance(document, dict) else None
    if version != BASELINE_VERSION:
        raise BaselineUnavailable(
            f"baseline {path} has baseline_version {version!r}; this modelcheck reads version {BASELINE_VERSION}. "
            "Recreate it: run the baseline model's gate with --modelcheck-report and modelcheck baseline update"
        )
    outputs_file = path.parent / str(document.get("outputs", {}).get("path", f"{model_id}.npz"))
    outputs, data_sha = load_outputs(outputs_file)
    recorded = document.get("outputs", {}).get("sha256")
    if recorded:
        actual = sha256_file(outputs_file)
        if actual != recorded:
            raise BaselineUnavailable(
                f"baseline outputs {outputs_file} have sha256 {actual}, but {path.name} records "
                f"{recorded}: the files do not belong together; recreate both with modelcheck baseline update"
            )
    return Baseline(
        path=str(path),
        outputs=outputs,
        data_sha256=data_sha or document.get("data", {}).get("sha256"),
        rows=len(outputs),
        created_at=document.get("created_at"),
    )


def _fetch_from_hub(where: str, model_id: str) -> Path:
    """``hub://org/name@rev``: the baseline published with a release, fetched (and cached) by huggingface_hub."""
    spec = where.removeprefix("hub://")
    repo_id, _, revision = spec.partition("@")
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(repo_id, f"modelcheck/{model_id}.json", revision=revision or None)
        commit = Path(path).parent.parent.name  # the cache's snapshots/<commit>/modelcheck/<id>.json
        hf_hub_download(repo_id, f"modelcheck/{model_id}.npz", revision=commit)  # the same commit, if a branch moves
    except ImportError:
        raise BaselineUnavailable("hub:// baselines need huggingface_hub: pip install 'modelcheck[hub]'") from None
    except Exception as exc:  # offline, no token, not found: all mean "no baseline to compare with"
        reason = _hub_reason(exc, repo_id, revision or "main", model_id)
        raise BaselineUnavailable(f"cannot fetch baseline {where} ({type(exc).__name__}: {reason})") from None
    return Path(path)


def _hub_reason(exc: Exception, repo_id: str, revision: str, model_id: str) -> str:
    """What went wrong, in words, and what to do: huggingface_hub's first line is often just "404 Client Error."."""
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # LocalEntryNotFoundError is an EntryNotFoundError: test it first.
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return (
            "not in the local cache and the Hub cannot be reached; check the network and HF_HUB_OFFLINE, "
            "or use a local baseline file"
        )
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r}; check the tag or branch the release was published under"
    if isinstance(exc, EntryNotFoundError):
        return (
            f"{repo_id}@{revision} has no modelcheck/{model_id}.json and .npz; publish the files that "
            "modelcheck baseline update writes under modelcheck/ in that revision"
        )
    if isinstance(exc, (RepositoryNotFoundError, GatedRepoError)):
        return f"no repo {repo_id}, or it is private or gated: set HF_TOKEN to a token that can read it"
    if getattr(getattr(exc, "response", None), "status_code", None) == 401:
        return "the Hub answered 401 Unauthorized: HF_TOKEN is wrong or expired"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no details"
    return f"{first}; check the network, HF_TOKEN for private repos and HF_HUB_OFFLINE, or use a local baseline file"
