"""Shared helpers of the benchmark scripts: interleaved timing, machine facts, atomic JSON.

Every speed number in ``benchmarks/`` is a ratio against a baseline measured in the same
process: the variants of one case are timed round by round (A, B, C, A, B, C, ...), so a
neighbour stealing the CPU for a while slows every variant alike instead of one of them.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_REPEATS = 200  # cap on the calibrated steps per round (tiny models, fast GPUs)


def interleaved_rates(
    steps: dict[str, Callable[[], None]],
    work: dict[str, float],
    *,
    rounds: int,
    warmup: int = 1,
    min_time: float = 0.0,
    repeats: int | None = None,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, Any]]:
    """Time each variant's ``step`` in interleaved rounds; rates are ``work`` units per second.

    Args:
        steps: ``{variant: step}``; one call does ``work[variant]`` units (e.g. jets).
        work: units per call of each variant.
        rounds: timed rounds; every round runs every variant once, in the same order.
        warmup: untimed calls per variant first (allocator, kernels, lazy init).
        min_time: with ``repeats=None``, each variant repeats its step so that one round takes
            at least this long (calibrated from its last warm-up call), which keeps the
            timer's resolution out of the fast cases.
        repeats: fixed calls per round instead of the calibration.
        sync: called around each timed block (``torch.cuda.synchronize`` on a GPU).

    Returns:
        ``{variant: {"rate": best, "rate_median": median, "rates": [per round],
        "repeats": calls per round}}``. The best round is the headline: on a shared
        machine interference only ever slows a round down.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    reps: dict[str, int] = {}
    for name, step in steps.items():
        elapsed = 0.0
        for _ in range(max(warmup, 1)):  # at least one call, for the calibration
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            elapsed = time.perf_counter() - t0
        if repeats is not None:
            reps[name] = repeats
        else:
            reps[name] = int(min(MAX_REPEATS, max(1, math.ceil(min_time / max(elapsed, 1e-9)))))
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                step()
            sync()
            rates[name].append(reps[name] * work[name] / (time.perf_counter() - t0))
    return {
        name: {
            "rate": max(r),
            "rate_median": statistics.median(r),
            "rates": r,
            "repeats": reps[name],
        }
        for name, r in rates.items()
    }


def geomean(values: list[float]) -> float:
    """Geometric mean (the right average of ratios); ``nan`` for an empty list."""
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Facts that the numbers depend on: CPU, cores usable, torch, threads, device, date."""
    import numpy
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        from jetfm.version import __version__ as jetfm_version
    except ImportError:  # pragma: no cover - the package is always importable from the repo
        jetfm_version = "unknown"
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "jetfm": jetfm_version,
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically (:func:`jetfm.atomic.write_text`), so a reader never
    sees half a file (and an interrupted run leaves the old one)."""
    from jetfm.atomic import write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def status_mib(key: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``, ...) in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM), so import-time spikes do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def variant_report(
    timed: dict[str, dict[str, Any]], widths: dict[str, int], baseline: str
) -> dict[str, Any]:
    """Per-variant jets/s (from :func:`interleaved_rates`) and ratios against ``baseline``."""
    rate = {name: t["rate"] for name, t in timed.items()}
    return {
        "baseline": baseline,
        "variants": {
            name: {
                "width": widths[name],
                "jets_per_s": t["rate"],
                "jets_per_s_median": t["rate_median"],
                "jets_per_s_rounds": t["rates"],
                "steps_per_round": t["repeats"],
            }
            for name, t in timed.items()
        },
        "ratio_vs_baseline": {name: r / rate[baseline] for name, r in rate.items()},
    }
