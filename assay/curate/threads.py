"""Threads for the curation engine: one per core over independent work units (numpy and Polars
release the GIL), and reading one block ahead of the work on the last."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
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


_DONE = object()


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """`items`, with the next item produced in a thread while the caller works on this one.

    Reading a block (file I/O, Polars' parser) then overlaps the caller's work on the previous block.
    The producer makes one item, hands it over and waits until the caller has taken it before making
    the next, so at most one item is held beyond the caller's. An exception in the producer is raised
    here, and a caller that stops early stops the producer (which then closes its iterator).
    """
    slot: queue.Queue = queue.Queue(maxsize=1)  # never full when put to: the last item was taken
    taken = threading.Semaphore(0)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                slot.put((item, None))
                if not _taken(taken, stop):
                    return
            slot.put((_DONE, None))
        except BaseException as exc:  # raised again in the consumer
            slot.put((_DONE, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="assay-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = slot.get()
            taken.release()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _taken(taken: threading.Semaphore, stop: threading.Event) -> bool:
    """Wait until the caller takes the item just handed over; False when it stopped first."""
    while not taken.acquire(timeout=0.05):
        if stop.is_set():
            return False
    return True
