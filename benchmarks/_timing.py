"""Shared by the benchmarks: median wall times, measured interleaved so that drift in the machine's speed
(this virtual machine's varies by tens of percent within a minute) affects every contender alike."""

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    return interleaved({"fn": fn}, repeats, warmup)["fn"]


def interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median milliseconds of each function, timed in rounds (one call of each per round); ``clock`` may be
    ``time.process_time`` (CPU time of every thread of this process: steadier than wall time on a loaded machine,
    and fair to libraries that compute on threads of their own)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}
