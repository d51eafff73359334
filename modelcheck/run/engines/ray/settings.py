"""The Ray engine's settings from the environment, checked: a bad value is a usage error naming it.

``MODELCHECK_RAY_ACTORS`` (a whole number, 1 or more; unset: from the cluster's CPUs), ``MODELCHECK_RAY_CPUS``
and ``MODELCHECK_RAY_GPUS`` per actor (numbers, 0 or more), ``MODELCHECK_RAY_RESTARTS`` (a whole number, 0 or
more) and ``MODELCHECK_RAY_START_TIMEOUT`` (seconds, more than 0): how long the actors may wait to be placed on
the cluster. Pure: nothing here imports Ray.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

#: How often an actor that died is restarted, and a chunk it held retried (``MODELCHECK_RAY_RESTARTS``).
RESTARTS = 3
#: Seconds the actors may wait to be placed and started on the cluster (``MODELCHECK_RAY_START_TIMEOUT``);
#: the model's load is not counted (it runs after, however long it takes).
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Settings:
    actors: int | None  # None: as many as the cluster's CPUs allow
    cpus: float
    gpus: float
    restarts: int
    start_timeout: float


def _number(name: str, default: str, *, whole: bool, least: float, what: str) -> float:
    value = os.environ.get(name, default)
    try:
        number = int(value.strip()) if whole else float(value.strip())
    except ValueError:
        number = math.nan
    if math.isnan(number) or math.isinf(number) or number < least:
        raise ValueError(f"{name}={value!r}: use {what}")
    return number


def settings() -> Settings:
    """The settings the environment gives now; ValueError naming the variable and its value for a bad one."""
    given = os.environ.get("MODELCHECK_RAY_ACTORS", "").strip()
    actors = "a whole number of actors, 1 or more (or unset it: as many as the cluster's CPUs allow, at most 8)"
    cpus, gpus = "the CPUs each actor holds, a number 0 or more (default 1)", "the GPUs each actor holds, 0 or more"
    restarts = f"a whole number of restarts, 0 or more (default {RESTARTS})"
    timeout = f"seconds, more than 0 (default {START_TIMEOUT:g})"
    return Settings(
        actors=int(_number("MODELCHECK_RAY_ACTORS", "", whole=True, least=1, what=actors)) if given else None,
        cpus=_number("MODELCHECK_RAY_CPUS", "1", whole=False, least=0, what=cpus),
        gpus=_number("MODELCHECK_RAY_GPUS", "0", whole=False, least=0, what=gpus + " (default 0)"),
        restarts=int(_number("MODELCHECK_RAY_RESTARTS", str(RESTARTS), whole=True, least=0, what=restarts)),
        start_timeout=_number(
            "MODELCHECK_RAY_START_TIMEOUT", f"{START_TIMEOUT:g}", whole=False, least=1e-9, what=timeout
        ),
    )
