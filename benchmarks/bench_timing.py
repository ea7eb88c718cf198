"""Timing of in-process workloads: calibrated rounds, best and median.

The protocol matches the one the external peer programs follow in their loop
mode (see ``tests/interop/peer_programs/opendkim_peer.c``), so that every
figure in the table is measured the same way:

1. one call (warm-up; its result is what the caller checks for correctness);
2. unless that call alone lasted ``min_time``: batches of 1, 2, 4, ... calls
   until one lasts ``min_time / 4``, then ``n`` calls per round so that a
   round lasts about ``min_time``;
3. ``rounds`` rounds of ``n`` calls (fewer when they would exceed
   ``max_time`` in all), each timed with ``time.perf_counter``.

The figure reported is the best round (the least disturbed by the rest of the
machine); the median is kept beside it in the JSON.  The garbage collector is
off while rounds run, as ``timeit`` does.
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, Tuple


@dataclass
class Timing:
    """Rounds of ``n`` operations each; ``times`` in seconds per round."""

    n: int
    times: List[float]
    first: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def rate(self, units_per_op: float = 1.0) -> float:
        """Best rate: units (operations, or MB) per second."""
        return units_per_op * self.n / self.best

    def median_rate(self, units_per_op: float = 1.0) -> float:
        return units_per_op * self.n / self.median

    def as_json(self, units_per_op: float = 1.0) -> Dict[str, Any]:
        return {
            "rate": self.rate(units_per_op),
            "median_rate": self.median_rate(units_per_op),
            "ops_per_round": self.n,
            "round_seconds": self.times,
            "first_seconds": self.first,
        }


def _batch(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], *, min_time: float, rounds: int, max_time: float) -> Tuple[Timing, Any]:
    """Time ``fn``; returns the timing and the result of the first call."""
    return measure_interleaved([fn], min_time=min_time, rounds=rounds, max_time=max_time)[0]


def _calibrate(fn: Callable[[], Any], min_time: float) -> Tuple[int, float, float, Any]:
    """``(n, estimated seconds for n calls, first call's seconds, first result)``:
    ``n`` calls of ``fn`` take about ``min_time``."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    n, est = 1, first
    if first < min_time:
        while True:
            t = _batch(fn, n)
            if t >= min_time / 4 or n >= 1 << 30:
                break
            n *= 2
        n = max(1, math.ceil(n * min_time / max(t, 1e-9)))
        est = min_time
    return n, est, first, result


def measure_interleaved(fns: Sequence[Callable[[], Any]], *, min_time: float, rounds: int,
                        max_time: float) -> List[Tuple[Timing, Any]]:
    """Time each of ``fns`` in rounds taken in turn (a round of the first, a
    round of the second, ..., and again), so that the machine getting slower
    or faster for a while (frequency scaling, other work, a virtual machine's
    neighbours) weighs on all of them alike and their ratios hold; the
    timing and first result of each, in order."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cal = [_calibrate(fn, min_time) for fn in fns]
        est = max(c[1] for c in cal)
        if rounds > 1 and est * rounds > max_time:
            rounds = max(1, int(max_time / max(est, 1e-9)))
        times: List[List[float]] = [[] for _ in fns]
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                times[i].append(_batch(fn, cal[i][0]))
    finally:
        if was_enabled:
            gc.enable()
    return [(Timing(c[0], t, c[2]), c[3]) for c, t in zip(cal, times)]
