"""One thread per core over independent work units: numpy and Polars release the GIL."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def cores() -> int:
    """Cores this process may run on (its CPU affinity, where the platform reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(work: Callable[[int], T], n_items: int) -> list[T]:
    """`[work(k) for k in range(n_items)]`, in order, in one thread per core.

    Work units must not depend on each other, so results never depend on the thread count.
    """
    threads = min(cores(), n_items)
    if threads <= 1:
        return [work(k) for k in range(n_items)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, range(n_items)))
