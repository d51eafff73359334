"""The default evaluation threads: the usable cores less what other processes keep busy, never less than 1."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelcheck.models import threads


def scripted_window(monkeypatch: pytest.MonkeyPatch, readings: list[tuple[float, float, float]]) -> None:
    """(wall s, system busy CPU s, own CPU s) readings, one per look, the first one the window's start."""
    monkeypatch.setattr(threads._Window, "_now", staticmethod(lambda: readings.pop(0)))
    monkeypatch.setattr(threads, "_window", threads._Window())
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)


def test_cores_other_processes_kept_busy_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # over 2 s the system was busy 5 CPU-seconds, 1 of them this process's own: others kept 2 cores busy
    scripted_window(monkeypatch, [(0.0, 0.0, 0.0), (2.0, 5.0, 1.0)])
    assert threads.idle_cores() == 2


def test_this_process_own_work_does_not_count_as_load(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_window(monkeypatch, [(0.0, 0.0, 0.0), (1.0, 3.9, 3.9)])  # all the busy time was ours
    assert threads.idle_cores() == 4


def test_a_fully_loaded_machine_still_gets_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_window(monkeypatch, [(0.0, 0.0, 0.0), (1.0, 4.0, 0.0)])
    assert threads.idle_cores() == 1


def test_a_look_too_soon_after_the_last_waits_for_a_readable_window(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_window(monkeypatch, [(0.0, 0.0, 0.0), (0.01, 0.0, 0.0), (0.06, 0.06, 0.0)])
    assert threads.idle_cores() == 3  # the 60 ms window: one core busy


def test_a_cgroup_quota_caps_the_usable_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(quota if self.name == "cpu.max" else self))
    quota.write_text("150000 100000\n")  # 1.5 CPUs: 2 threads
    assert threads.usable_cores() == min(2, len(threads.os.sched_getaffinity(0)))
    quota.write_text("max 100000\n")
    assert threads.usable_cores() == len(threads.os.sched_getaffinity(0))


def test_a_real_busy_process_takes_its_core_away() -> None:
    usable = threads.usable_cores()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        threads.idle_cores()  # the window starts now, with the spinner running
        time.sleep(0.6)
        assert threads.idle_cores() <= max(1, usable - 1)
    finally:
        spinner.kill()
        spinner.wait()


def test_evaluation_threads_apply_only_where_the_gate_sets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")

    class Model:
        def __init__(self, count: int | None) -> None:
            self.threads = count

    monkeypatch.setattr(threads, "idle_cores", lambda: 1)
    before = torch.get_num_threads()
    with threads.evaluation_threads(Model(None)) as chosen:
        assert chosen == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.evaluation_threads(Model(3)) as chosen:  # the gate's model.threads wins (the backend applies it)
        assert chosen is None and torch.get_num_threads() == before
