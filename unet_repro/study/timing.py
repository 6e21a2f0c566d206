"""Timing two ways of computing one thing side by side, for the speed appendices of notebooks 02 and 03.

Speed is no claim of the paper: the notebooks time our code against a baseline only to report it (the
``measured`` columns of their tables, never compared), and ``benchmarks/`` keeps the speed figures
(``results/benchmarks/``). The methods run interleaved in one process, the order rotating from round to round,
so that the noise of a shared machine hits them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

__all__ = ["interleaved_times"]


def interleaved_times(
    methods: Mapping[str, Callable[[], object]], rounds: int = 1, warmup: int = 0
) -> dict[str, list[float]]:
    """Seconds per call of each method, timed round robin.

    Args:
        methods: name -> a call without arguments (e.g. ``functools.partial(f, x)``).
        rounds: timed rounds; each calls every method once, starting with the next method each round.
        warmup: untimed rounds first (compilation, caches).

    Returns:
        name -> ``rounds`` durations in seconds (``time.perf_counter``), in round order.
    """
    if not methods or rounds < 1 or warmup < 0:
        raise ValueError(
            f"need at least one method and rounds >= 1, warmup >= 0; got {len(methods)}, {rounds}, {warmup}"
        )
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            methods[name]()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times
