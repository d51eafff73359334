"""Where a run happened: Python, platform, CPU/GPU, package versions, git state (never a framework import)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

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


def modelcheck_version() -> str:
    """This modelcheck's version: ``modelcheck.__version__``, the one source (pyproject reads it too)."""
    from modelcheck import __version__

    return __version__


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
