"""What the Ray engine tests share (tests/test_engine_ray.py, tests/test_engine_ray_cluster.py): a local Ray
runtime, a real ``ray start --head`` cluster, the iris gate, and running a gate on an engine.

Plain functions and context managers: each test module wraps them in its own fixtures. Nothing here imports
Ray at import time (the test modules skip without it first).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcheck.gatefile import load_gate
from modelcheck.models.cache import ModelCache
from modelcheck.run.gate import run_gate

TABULAR = """\
version: 1
model: {{id: iris, source: {model}, backend: onnx, task: tabular-classification, threads: 1}}
data: {{source: {data}, input: [f1, f2, f3, f4], label: kind}}
checks:
  - {{name: accuracy, metric: accuracy, min: 0.8}}
  - {{name: macro_f1, metric: f1, average: macro, min: 0.8}}
"""


@contextlib.contextmanager
def local_runtime() -> Iterator[None]:
    """Ray, and the T5 of the generation test, imported before any in-process pytester run drops modules."""
    import ray.data
    import tiny_seq2seq
    import transformers.models.t5.modeling_t5  # noqa: F401

    tiny_seq2seq.shared("t5")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: What a process needs to start or join the test cluster: Ray rewrites 127.0.0.1 into the machine's outward
#: address (services.resolve_ip_for_localhost) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and ``ray start``
#: turns on token authentication, which a joining process only uses with RAY_AUTH_MODE=token.
def cluster_env(token: str) -> dict[str, str]:
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip


#: Loaded by every Python process of a head started with ``client_servers_dying``: in its Ray Client server
#: (``--mode=proxy``), the server process started for a connection is killed at once and its start reported
#: as failed, as many times as the file MC_TEST_CLIENT_SERVERS_DYING says: what the Ray Client server does
#: when the process it forked dies before it runs (ray-project/ray#63202): "Starting Ray client server failed".
DYING_CLIENT_SERVERS = """\
import os
import sys

_COUNT = os.environ.get("MC_TEST_CLIENT_SERVERS_DYING")
if _COUNT and "--mode=proxy" in sys.argv:
    from ray.util.client.server.proxier import ProxyManager

    _start = ProxyManager.start_specific_server

    def _start_then_die(self, client_id, job_config):
        started = _start(self, client_id, job_config)
        with open(_COUNT) as file:
            left = int(file.read() or 0)
        if left <= 0:
            return started
        with open(_COUNT, "w") as file:
            file.write(str(left - 1))
        process = self._get_server_for_client(client_id).process_handle_future.result().process
        process.kill()
        process.wait()
        return False

    ProxyManager.start_specific_server = _start_then_die
"""


@contextlib.contextmanager
def head_cluster(*, client_servers_dying: int = 0, client_wait: int = 120) -> Iterator[dict[str, Any]]:
    """A real Ray head on 127.0.0.1 (2 CPUs, no dashboard), its processes ended at teardown, none left behind.

    ``client_servers_dying``: the first that many servers its Ray Client server starts for a connection die at
    once (:data:`DYING_CLIENT_SERVERS`; the yielded ``dying`` file counts down what is left). ``client_wait``:
    seconds the Ray Client server waits for a connection's server to answer.
    """
    import psutil

    folder = Path(tempfile.mkdtemp(prefix="mc-ray-"))  # short: Ray's unix socket paths live under it
    port = free_port()
    # the Ray Client server starts a server process per client and waits 30 s for it by default: too short on
    # two cores shared with the other tests (it failed so once: "Proxy failed to Connect to backend!")
    env = {**os.environ, **cluster_env(secrets.token_hex(32)),
           "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": str(client_wait)}  # fmt: skip
    dying = folder / "client-servers-dying"
    if client_servers_dying:
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(DYING_CLIENT_SERVERS, encoding="utf-8")
        dying.write_text(str(client_servers_dying), encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder / "site"), env.get("PYTHONPATH")]))
        env["MC_TEST_CLIENT_SERVERS_DYING"] = str(dying)
    ports = {flag: str(free_port()) for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port",
                                                  "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                                                  "--metrics-export-port")}  # fmt: skip
    command = [shutil.which("ray") or "ray", "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0",
               "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false",
               f"--temp-dir={folder}", "--disable-usage-stats", *(f"{k}={v}" for k, v in ports.items())]  # fmt: skip
    log = (folder / "head.log").open("w")
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (folder / "head.log").read_text(errors="replace"):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not start:\n{(folder / 'head.log').read_text()}", pytrace=False)
            time.sleep(0.25)
        yield {"address": f"127.0.0.1:{port}", "env": cluster_env(env["RAY_AUTH_TOKEN"]), "folder": folder,
               "client": f"ray://127.0.0.1:{ports['--ray-client-server-port']}", "dying": dying}  # fmt: skip
    finally:
        # the head (ray start --block) and everything under it, workers included: by pid, only ours
        tree = (
            [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
            if head.poll() is None
            else []
        )
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()  # SIGTERM: Ray's processes stop gracefully
        _, alive = psutil.wait_procs(tree, timeout=5)  # most outlast 20 s after SIGTERM here: kill them
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
        head.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def write_iris_gate(folder: Path) -> Path:
    """An ONNX logistic regression on 3000 iris rows (several batches), and the gate that checks it."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    frame = data.frame.set_axis(["f1", "f2", "f3", "f4", "kind"], axis=1)
    frame = frame.sample(n=3000, replace=True, random_state=0).reset_index(drop=True)  # several batches
    x = frame[["f1", "f2", "f3", "f4"]].to_numpy(np.float32)
    model = LogisticRegression(max_iter=500).fit(x[::3], frame["kind"][::3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))],
                                         options={id(model): {"zipmap": False}})  # fmt: skip
    (folder / "iris.onnx").write_bytes(graph.SerializeToString())
    frame.to_csv(folder / "iris.csv", index=False)
    gate = folder / "gate.yaml"
    gate.write_text(TABULAR.format(model=folder / "iris.onnx", data=folder / "iris.csv"), encoding="utf-8")
    return gate


def run(gate_file: Path, engine: Any, out: Path) -> Any:
    cache = ModelCache()
    try:
        return run_gate(load_gate(gate_file), file=gate_file.name, models=cache, stage=None, outputs_dir=out,
                        report_dir=out, engine=engine)  # fmt: skip
    finally:
        cache.close()


def same_results(local: Any, remote: Any) -> None:
    assert all(c.status != "error" for c in remote.checks), [c.message for c in remote.checks]
    assert [(c.name, c.status, c.value, c.n) for c in remote.checks] == [
        (c.name, c.status, c.value, c.n) for c in local.checks
    ]
    assert remote.outputs["sha256"] == local.outputs["sha256"]  # the per-example outputs, byte for byte
