"""The results report: one JSON document per run, with its own JSON Schema.

``build_report`` turns in-memory :class:`~modelcheck.report.results.GateResult` objects into the document,
``write_report`` validates and writes it atomically, ``read_report`` loads and validates one.
``gate``, ``summary``, ``baseline update`` and ``publish`` read the report; they never re-run a model.

This module is imported by the CLI and the pytest plugin: it must never import a framework
(torch, transformers, datasets, onnxruntime), not even to read its version.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from modelcheck.errors import ReportError
from modelcheck.report.results import GateResult, totals

REPORT_VERSION = 1

#: Distributions whose versions go into ``environment.packages`` (report key -> distribution names).
PACKAGES: dict[str, tuple[str, ...]] = {
    "modelcheck": ("modelcheck",),
    "pytest": ("pytest",),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "datasets": ("datasets",),
    "huggingface_hub": ("huggingface_hub", "huggingface-hub"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "scikit-learn": ("scikit-learn",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
}

_GIT_TIMEOUT_S = 3.0
_CHUNK = 1 << 20


# -- environment ----------------------------------------------------------------------------------


def modelcheck_version() -> str:
    """The installed modelcheck version (``0+unknown`` when run from a source tree without metadata)."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("modelcheck")
    return "0+unknown"


def environment(*, cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Describe where the run happens: Python, platform, CPU/GPU, package versions, git state.

    Cheap and side-effect free: versions come from distribution metadata and GPUs from ``nvidia-smi``
    (no framework is imported; torch is asked about CUDA and threads only when the run already
    imported it), git runs with a short timeout in ``cwd`` (default: the current directory).
    No host name is recorded: reports get shared.
    """
    gpus, driver, cuda_driver = _nvidia_gpus()
    torch = sys.modules.get("torch")
    if not gpus and torch is not None:
        gpus = _torch_gpus(torch)
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [gpu["name"] for gpu in gpus],
        "gpu_devices": gpus,
        "gpu_driver": driver,
        "cuda_driver": cuda_driver,
        **runtime_environment(),
        "packages": {key: _dist_version(names) for key, names in PACKAGES.items()},
        "git": _git_state(cwd),
    }
    return env


def runtime_environment() -> dict[str, Any]:
    """What this process's already-imported torch says: ``torch_threads`` and ``cuda_runtime`` (None without it).

    Part of :func:`environment`; a pytest-xdist controller, which runs no model itself, takes these
    from its workers.
    """
    torch = sys.modules.get("torch")
    return {"torch_threads": _torch_threads(torch), "cuda_runtime": _torch_cuda(torch)}


def _dist_version(names: Iterable[str]) -> str | None:
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return None


def _cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"], None)
        if out:
            return out
    return platform.processor() or None


def _nvidia_gpus() -> tuple[list[dict[str, Any]], str | None, str | None]:
    """NVIDIA GPUs (index, name, memory_mb), the driver version and the CUDA version the driver supports.

    Read from ``nvidia-smi`` when it is on PATH (no framework import); ``([], None, None)`` otherwise.
    """
    if shutil.which("nvidia-smi") is None:
        return [], None, None
    query = "--query-gpu=index,name,memory.total,driver_version"
    out = _run(["nvidia-smi", query, "--format=csv,noheader,nounits"], None)
    gpus: list[dict[str, Any]] = []
    drivers: list[str] = []
    for line in (out or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4 or not fields[1]:
            continue
        index, name, memory, driver = fields
        gpus.append(
            {
                "index": int(index) if index.isdigit() else len(gpus),
                "name": name,
                "memory_mb": int(float(memory)) if _is_number(memory) else None,
            }
        )
        drivers.append(driver)
    header = _run(["nvidia-smi"], None) if gpus else None
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header or "")
    return gpus, (drivers[0] if drivers else None), (match.group(1) if match else None)


def _torch_gpus(torch: Any) -> list[dict[str, Any]]:
    """GPUs as an already-imported torch sees them (where nvidia-smi is missing, e.g. ROCm)."""
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            gpus = []
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                gpus.append({"index": index, "name": str(props.name), "memory_mb": int(props.total_memory) >> 20})
            return gpus
    return []


def _torch_cuda(torch: Any) -> str | None:
    """The CUDA version torch was built with, where torch is imported and is a CUDA build."""
    found = getattr(getattr(torch, "version", None), "cuda", None) if torch is not None else None
    return str(found) if found else None


def _torch_threads(torch: Any) -> int | None:
    """The threads torch uses on the CPU (``torch.get_num_threads()``), where torch is imported."""
    if torch is None:
        return None
    with contextlib.suppress(Exception):
        return int(torch.get_num_threads())
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _run(command: list[str], cwd: str | os.PathLike[str] | None) -> str | None:
    """stdout of ``command`` (stripped), or None when it fails, is missing or takes too long."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()


def _git_state(cwd: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Commit, branch and dirtiness of the git checkout at ``cwd``; None where git cannot tell."""
    commit = _run(["git", "rev-parse", "HEAD"], cwd)
    if not commit:
        return {"commit": None, "branch": None, "dirty": None}
    branch = _run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd)
    if branch in (None, "", "HEAD"):
        # Detached HEAD, as in CI checkouts of a pull request: take the branch CI names.
        branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "branch": branch, "dirty": None if status is None else bool(status)}


# -- hashing ---------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_records(root: Path, files: list[Path]) -> list[dict[str, Any]]:
    """``{"path", "sha256", "size"}`` for each file, the path relative to ``root`` in POSIX form.

    A file outside ``root`` (or ``root`` being the file itself) is named by its file name. Sorted by
    path so the same artifacts always give the same list.
    """
    root = Path(root).resolve()
    records = []
    for file in files:
        resolved = Path(file).resolve()
        try:
            relative = resolved.relative_to(root).as_posix()
        except ValueError:
            relative = resolved.name
        if relative in ("", "."):
            relative = resolved.name
        records.append({"path": relative, "sha256": sha256_file(resolved), "size": resolved.stat().st_size})
    return sorted(records, key=lambda record: record["path"])


# -- building -------------------------------------------------------------------------------------


def build_report(
    gates: list[GateResult],
    *,
    stage: str | None,
    env: dict[str, Any] | None = None,
    created_at: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The report document for ``gates`` (see ``schemas/report.schema.json``).

    ``env`` defaults to :func:`environment` and ``created_at`` to now (UTC). Values are made
    JSON-plain: numpy scalars become Python numbers, tuples lists, NaN/infinity ``None``.
    """
    when = created_at or _dt.datetime.now(_dt.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    doc = {
        "report_version": REPORT_VERSION,
        "modelcheck_version": modelcheck_version(),
        "created_at": when.isoformat(timespec="seconds"),
        "stage": stage,
        "environment": env if env is not None else environment(),
        "gates": [gate.to_dict() for gate in gates],
        "totals": totals(gates),
    }
    document: dict[str, Any] = plain(doc)
    return document


def plain(value: Any) -> Any:
    """A JSON-plain copy of ``value`` (numpy scalars/arrays without importing numpy)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):  # numpy.float64 is a float: make it a plain one
        return float(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return plain(value.tolist())
        if hasattr(value, "item"):
            return plain(value.item())
    return value


# -- schema ---------------------------------------------------------------------------------------


@cache
def report_schema() -> dict[str, Any]:
    """The report JSON Schema that ships inside the package."""
    text = resources.files("modelcheck").joinpath("schemas/report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(doc: Any, *, source: str) -> None:
    """Raise ReportError naming ``source``, the JSON path and what is expected if ``doc`` is not a report."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return
    path = error.json_path
    where = f"{source}" if path == "$" else f"{source} at {path}"
    raise ReportError(f"{where}: {_describe(error)} (the report does not match the report schema, version 1)")


def _describe(error: Any) -> str:
    """One jsonschema error as a sentence that quotes the value and says what is expected."""
    parts = list(error.absolute_path)
    name = str(parts[-1]) if parts else "the document"
    value = error.instance
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}"
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [str(k) for k in value if k not in allowed]
        if unknown and allowed:
            return f"unknown key {unknown[0]!r}; allowed keys here: {', '.join(allowed)}"
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return f"{name} {_short(value)} is not allowed; expected one of {choices}"
    if kind == "const":
        return f"{name} must be {error.validator_value!r}, not {_short(value)}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{name} must be of type {expected}, got {type(value).__name__} {_short(value)}"
    if kind == "pattern":
        if error.validator_value == report_schema()["$defs"]["sha256"]["pattern"]:
            return f"{name} {_short(value)} is not a sha256; expected 64 lowercase hex digits"
        return f"{name} {_short(value)} is not valid; expected it to match {error.validator_value}"
    if kind == "minimum":
        return f"{name} {_short(value)} is out of range; expected a number >= {error.validator_value}"
    if kind == "minLength":
        return f"{name} must not be empty"
    return str(error.message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- reading and writing --------------------------------------------------------------------------


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a report; ReportError names the file and the fix when it cannot."""
    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(
            f"report {shown} not found; write one with pytest --modelcheck --modelcheck-report {shown}"
        ) from None
    except IsADirectoryError:
        raise ReportError(f"report {shown} is a folder; give the path of the JSON report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read report {shown} ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"report {shown} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "was it cut short? regenerate it with pytest --modelcheck --modelcheck-report"
        ) from None
    if not isinstance(doc, dict):
        raise ReportError(f"report {shown}: the top level is a {type(doc).__name__}; a report is a JSON object")
    found = doc.get("report_version")
    if "report_version" in doc and found != REPORT_VERSION:
        raise ReportError(
            f"report {shown} has report_version {found!r}; this modelcheck ({modelcheck_version()}) reads "
            f"report_version {REPORT_VERSION}; regenerate the report with this modelcheck, or install the "
            "modelcheck version that wrote it"
        )
    validate_report(doc, source=f"report {shown}")
    return doc


def write_report(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Validate ``doc`` and write it to ``path`` atomically (temp file in the same folder + rename).

    A crash mid-write leaves the previous report (if any) untouched and no partial file behind.
    Parent folders are created.
    """
    target = Path(path)
    shown = os.fspath(path)
    validate_report(doc, source=f"report for {shown}")
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ReportError(f"report for {shown} cannot be written as JSON ({exc})") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".modelcheck-tmp")
    except OSError as exc:
        raise ReportError(f"cannot write report {shown} ({exc}); check that its folder is writable") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise ReportError(f"cannot write report {shown} ({exc}); check that its folder is writable") from None
        raise
