"""``kind: latency``: time the gate's model on batches of its own data (and a baseline_model, interleaved).

Thread pools are pinned while timing (``threads``, default ``model.threads`` else 1) and restored
afterwards; the percentile is judged on its bootstrap interval, with sequential looks while the
interval straddles the bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from modelcheck.checks.bounds import baseline_model, judged, model_name, overall_status
from modelcheck.checks.load_latency import judge_load
from modelcheck.errors import CheckError
from modelcheck.measure.timing import (
    LatencyComparison,
    LatencyPlan,
    LatencyResult,
    Verdict,
    compare_latency,
    judge_bound,
    measure_latency,
    timer_for,
)
from modelcheck.models.hardware import pinned_threads
from modelcheck.report.results import CheckResult, Status
from modelcheck.report.samples import thin

if TYPE_CHECKING:
    from modelcheck.checks import GateRun
    from modelcheck.gatefile import CheckSpec, GateSpec
    from modelcheck.models.backends import LoadedModel
    from modelcheck.models.cache import ModelCache

_UNCERTAIN = "the interval straddles the bound, so this run cannot tell pass from fail: raise min_time or "
_UNCERTAIN += "min_iterations, pin the runner, or set on_uncertain: estimate"


def judge(check: CheckSpec, run: GateRun) -> CheckResult:
    """The check kind's entry in :data:`modelcheck.checks.KINDS`."""
    if check.concurrency is not None:  # under load: a served model (modelcheck.checks.load_latency)
        batch = batches(run.timed_inputs, check.batch_size or 1, fixed=check.inputs == "fixed")
        return judge_load(check, run.gate, run.model, batch, latency_verdict)
    return judge_latency(check, run.gate, run.model, run.timed_inputs, run.models)


def judge_latency(
    check: CheckSpec, gate: GateSpec, model: LoadedModel, inputs: Sequence[Any], models: ModelCache
) -> CheckResult:
    """Time the gate's model (and its baseline_model, interleaved) on batches of the gate's data."""
    baseline = model if check.baseline_self else baseline_model(check, gate, models)
    result, comparison = time_model(
        check, model, inputs, baseline=baseline, threads=check.threads or gate.model.threads
    )
    overall, message = latency_verdict(check, result, comparison)
    if "real_time_factor" in result.context:
        message += (
            f" (real-time factor {result.context['real_time_factor']:.3g} at the median call: "
            f"{result.context['audio_seconds_per_call']:.3g} s of audio per call)"
        )
    if "output_tokens_per_s" in result.context:
        rates = result.context
        message += (
            f" ({rates['output_tokens_per_s']:.1f} output tokens/s, {rates['ms_per_output_token']:.3g} ms per output "
            f"token at the median call, {rates['output_tokens_per_call']:.1f} tokens per call)"
        )
    judged_ratio = comparison is not None and check.max_ms is None
    details: dict[str, Any] = {"unit": "x" if judged_ratio else "ms", "latency": result.to_dict()}
    details["latency"]["timings_ms"] = thin(result.timings_ms)  # for the HTML report's plot, thinned
    if comparison is not None:
        details["comparison"] = comparison.to_dict()
        details["interleaved"] = {
            "interleaved": True,
            "how": f"rounds of {comparison.calls_per_round} call(s) of each model, in ABBA order, the same inputs "
            "in a round; the ratio's interval resamples whole rounds",
            "rounds": comparison.rounds,
            "calls_per_round": comparison.calls_per_round,
        }
        if baseline is not None and baseline is not model:
            details["baseline_model"] = _served(check.baseline_model, baseline)
        for side in ("candidate", "baseline"):
            details["comparison"][side]["timings_ms"] = thin(getattr(comparison, side).timings_ms)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        status=overall,
        message=message,
        value=comparison.ratio if judged_ratio and comparison else result.value_ms,
        threshold=check.threshold,
        n=result.n,
        ci=list(comparison.ci if judged_ratio and comparison else result.ci),
        details=details,
    )


def _served(spec: Any, loaded: LoadedModel) -> dict[str, Any]:
    """What the report says of the baseline_model: backend and source, and a served one's endpoint (no headers)."""
    record: dict[str, Any] = {"backend": spec.backend, "source": spec.source}
    endpoint_record = getattr(loaded, "endpoint_record", None)
    if callable(endpoint_record):
        record["endpoint"] = endpoint_record()
    return record


def time_model(
    check: CheckSpec,
    model: LoadedModel,
    inputs: Sequence[Any],
    *,
    baseline: LoadedModel | None = None,
    threads: int | None = None,
) -> tuple[LatencyResult, LatencyComparison | None]:
    """Time ``model`` (and ``baseline``, interleaved; the same object: A/A) as ``check`` says, threads pinned.

    The result's ``context`` says what was timed: device, batch size, inputs, thread settings.
    """
    batch_size = check.batch_size or 1
    batch = batches(inputs, batch_size, fixed=check.inputs == "fixed")
    plan = LatencyPlan(
        percentile=check.percentile,
        min_iterations=check.min_iterations,
        min_time=check.min_time,
        max_time=check.max_time,
        confidence=check.confidence,
        resamples=check.resamples,
        seed=check.seed,
    )
    timer, timer_name = timer_for(model.device)

    produced: dict[int, list[int]] = {id(model): [], id(baseline): []}  # generated tokens per call, per model

    def run(loaded: LoadedModel) -> Callable[[int], object]:
        counts = produced[id(loaded)]

        def call(i: int) -> object:
            outputs = loaded.predict(batch(i), batch_size=batch_size)
            tokens = getattr(outputs, "output_tokens", None)
            if tokens is not None:
                counts.append(int(tokens.sum()))
            return outputs

        return call

    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(pinned_threads(threads or 1, model))
        if baseline is not None and baseline is not model:
            stack.enter_context(pinned_threads(threads or 1, baseline))
        if baseline is None:
            decided = None if check.max_ms is None else partial(_decided, check)
            result = measure_latency(run(model), plan=plan, timer=timer, name=timer_name, decided=decided)
            comparison = None
        else:
            bounded = check.max_ms is not None or check.max_ratio is not None
            comparison = compare_latency(
                run(model),
                run(baseline),
                plan=plan,
                timer=timer,
                self_test=baseline is model,
                name=timer_name,
                decided=partial(_decided_both, check) if bounded else None,
            )
            result = comparison.candidate
    rows = "one fixed batch" if check.inputs == "fixed" else "successive batches of the data"
    result.context.update(
        device=model.device,
        batch_size=batch_size,
        inputs=check.inputs,
        threads=settings,
        measured=f"model.predict on {batch_size} row(s) per call ({rows}), pre-processing included",
    )
    if produced[id(model)]:  # generation: the figures LLM serving benchmarks report
        result.context.update(generation_rates(produced[id(model)], result))
    audio = audio_seconds(batch, calls=1 if check.inputs == "fixed" else -(-len(inputs) // batch_size))
    if audio:  # speech: how much faster than real time
        result.context.update(audio_seconds_per_call=audio, real_time_factor=result.p50_ms / 1000.0 / audio)
    return result, comparison


def audio_seconds(batch: Callable[[int], list[Any]], *, calls: int) -> float | None:
    """Mean seconds of audio per call over the calls' batches, where the inputs are ``(samples, rate)`` clips."""
    total = 0.0
    for i in range(max(calls, 1)):
        clips = batch(i)
        if not clips or not all(isinstance(c, tuple) and len(c) == 2 and hasattr(c[0], "shape") for c in clips):
            return None
        total += sum(len(samples) / float(rate) for samples, rate in clips)
    return total / max(calls, 1)


def generation_rates(tokens_per_call: list[int], result: LatencyResult) -> dict[str, float]:
    """Output tokens per call, output tokens/s and ms per output token, from the median call (warm-up included
    in the token count, which is the same for every call of the same rows under greedy decoding)."""
    import numpy as np

    mean_tokens = float(np.mean(tokens_per_call))
    median_ms = result.p50_ms
    return {
        "output_tokens_per_call": mean_tokens,
        "output_tokens_per_s": mean_tokens / (median_ms / 1000.0) if median_ms > 0 else 0.0,
        "ms_per_output_token": median_ms / mean_tokens if mean_tokens > 0 else float("nan"),
    }


def _decided(check: CheckSpec, result: LatencyResult) -> bool:
    """Whether the interval of the percentile lies wholly on one side of max_ms."""
    return check.max_ms is None or judge_bound(result.value_ms, result.ci, check.max_ms) != "inconclusive"


def _decided_both(check: CheckSpec, comparison: LatencyComparison) -> bool:
    """Whether every bound of the check is decided by its interval (max_ms on the candidate, max_ratio)."""
    ratio = check.max_ratio is None or judge_bound(comparison.ratio, comparison.ci, check.max_ratio) != "inconclusive"
    return ratio and _decided(check, comparison.candidate)


def latency_verdict(
    check: CheckSpec, result: LatencyResult, comparison: LatencyComparison | None
) -> tuple[Status, str]:
    """Judge ``max_ms`` and ``max_ratio``: the status and a message that reads like the measurement."""
    verdicts: list[tuple[Verdict, str]] = []
    if check.max_ms is not None:
        verdicts.append(
            judged(check, result.value_ms, result.ci, check.max_ms, result.describe(), f"{check.max_ms:g} ms")
        )
    if comparison is not None and check.max_ratio is not None:
        against = "itself (A/A)" if comparison.self_test else f"baseline_model {model_name(check.baseline_model)}"
        bound = f"max_ratio {check.max_ratio:g} against {against}"
        floor = f"; noise floor ±{comparison.noise_floor:.1%}" if comparison.self_test else ""
        verdicts.append(
            judged(check, comparison.ratio, comparison.ci, check.max_ratio, comparison.describe(), bound, floor)
        )
    overall = overall_status([s for s, _ in verdicts])
    message = "; ".join(text for _, text in verdicts)
    if overall == "inconclusive":
        message += f" — {_UNCERTAIN}"
    return overall, message


def batches(inputs: Sequence[Any], batch_size: int, *, fixed: bool = False) -> Callable[[int], list[Any]]:
    """``batch(i)``: the inputs of call ``i``, cycling through ``inputs`` in order (``fixed``: always the first)."""
    if len(inputs) == 0:
        raise CheckError("the gate's data has no rows to measure with")
    count = 1 if fixed else -(-len(inputs) // batch_size)
    made = [[inputs[(k * batch_size + j) % len(inputs)] for j in range(batch_size)] for k in range(count)]
    return lambda i: made[i % count]
