"""What the Ray engine says when a cluster cannot be reached or joined, or a worker fails; addresses shown.

Pure helpers over Ray's exceptions (duck-typed: nothing here imports Ray).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from modelcheck.errors import BackendError, ModelcheckError

if TYPE_CHECKING:
    from modelcheck.gatefile import ModelSpec

#: Seconds to reach a cluster's address before giving up.
CONNECT_TIMEOUT = 10.0
#: Connections tried through Ray Client (``ray://``) where the head's client server fails to start a server
#: for the connection: the process it forks for one can die at once (ray-project/ray#63202, rare, more often
#: on a loaded head), and a new connection gets a new process.
CLIENT_TRIES = 3


def worker_error(exc: Exception, spec: ModelSpec, restarts: int, offset: int = 0) -> ModelcheckError:
    """The worker's own error where Ray carries one (a load or data error keeps its message), else Ray's.

    ``offset``: the first row of the chunk that failed; an error about one input row is renumbered from the
    chunk to the whole data, as a local run does.
    """
    from modelcheck.models.backends import InputRowError

    cause = getattr(exc, "cause", None)
    while cause is not None and not isinstance(cause, ModelcheckError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, InputRowError):
        return cause.shifted(offset)
    if isinstance(cause, ModelcheckError):
        return cause
    text = str(exc).strip().splitlines()
    reason = text[-1] if text else type(exc).__name__
    if "actor is dead" in reason.lower() or "actor died" in reason.lower():
        reason = f"an actor kept dying (restarted up to MODELCHECK_RAY_RESTARTS={restarts} times): {reason}"
    return BackendError(f"the Ray engine could not predict {spec.id}: {reason}")


def through_client(address: str | None) -> bool:
    """Whether ``address`` is joined through Ray Client (``ray://host:port``) rather than the cluster's GCS."""
    return address is not None and address.startswith("ray://")


def same_cluster(ray: Any, address: str | None) -> None:
    """A process already in a Ray runtime cannot join another: say so rather than predict on the wrong one."""
    if not address or through_client(address) or address == "auto":
        return
    joined = str(ray.get_runtime_context().gcs_address or "")
    if joined.rpartition(":")[2] != address.rpartition(":")[2]:
        raise BackendError(
            f"this process already runs Ray (cluster {joined}) and cannot join {shown(address)}: run pytest in a "
            "fresh process, or use the cluster it is in (--modelcheck-engine ray)"
        )


def client_server_failed(exc: BaseException) -> bool:
    """Whether joining through Ray Client failed because the head could not start this connection's server
    (it died at once, or did not answer in time): a new connection may succeed."""
    text = str(exc)
    return "Starting Ray client server failed" in text or "Proxy failed to Connect to backend" in text


def first_line(exc: BaseException) -> str:
    """The message's first line; where it only introduces what follows (Ray Client's ``Initialization failure
    from server:`` and the server's traceback), that line and the traceback's last: the server's exception."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    tail = [line.strip() for line in lines[1:] if not line.startswith((" ", "\t", "Traceback"))]
    return f"{lines[0]} {tail[-1][:300]}" if lines[0].endswith(":") and tail else lines[0]


def cause_of(exc: BaseException) -> str:
    """The deepest cause's message (Ray's ConnectionError hides why: authentication, a wrong address)."""
    cause, seen = exc.__cause__, 0
    while cause is not None and cause.__cause__ is not None and seen < 10:
        cause, seen = cause.__cause__, seen + 1
    if cause is None:
        return ""
    lines = [line for line in str(cause).splitlines() if line.strip() and not line.startswith((" ", "Traceback"))]
    if not lines:
        return ""
    reason = lines[-1].strip().split(". ")[0].removeprefix("ray.exceptions.")[:300]
    if reason.startswith("AuthenticationError"):
        reason += "; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token"
    return f" ({reason})"


def reachable(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there."""
    target = address.removeprefix("ray://").rpartition("@")[2]
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {shown(address)} within {CONNECT_TIMEOUT:g} s ({exc}); start it "
            "(ray start --head) or fix --modelcheck-engine / RAY_ADDRESS"
        ) from None


def shown(address: str | None) -> str | None:
    """The address without credentials (``ray://user:token@host:port`` -> ``ray://host:port``)."""
    if not address:
        return address
    scheme, sep, rest = address.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def rewritten_reachable(address: str) -> None:
    """Fail fast where Ray would join another address than the one given, and nothing listens there.

    Ray turns a loopback host (``127.0.0.1``, ``localhost``) into this machine's outward address, so
    that other machines could join; a cluster bound to 127.0.0.1 is then not found, and ``ray.init``
    retries for minutes. Unless both sides run with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``.
    """
    if through_client(address):
        return
    try:
        from ray._private.services import canonicalize_bootstrap_address  # private: where it moved, no check

        target = canonicalize_bootstrap_address(address)
    except Exception:
        return
    if not target or target == address:
        return
    host, _, port = target.rpartition(":")
    given = address.rpartition(":")[0]
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {shown(address)}: Ray joins {given} as this machine's address "
            f"{host}, where nothing answers on port {port} within {CONNECT_TIMEOUT:g} s ({exc}); a cluster "
            "started with --node-ip-address=127.0.0.1 is joined with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in the "
            "environment of both (ray start and pytest), or give the address it advertises"
        ) from None
