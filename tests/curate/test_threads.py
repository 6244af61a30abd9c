"""`read_ahead`: the next block is produced in a thread; order, errors and early stops are the caller's."""

from __future__ import annotations

import threading
import time

import pytest

from assay.curate.threads import parallel_map, read_ahead


def test_read_ahead_yields_every_item_in_order_and_runs_exactly_one_ahead():
    produced: list[int] = []

    def items():
        for k in range(5):
            produced.append(k)
            yield k

    got = []
    for item in read_ahead(items()):
        deadline = time.monotonic() + 5
        while len(produced) < min(item + 2, 5) and time.monotonic() < deadline:
            time.sleep(0.001)  # the producer makes the next item while this one is worked on
        got.append(item)
        assert min(item + 2, 5) <= len(produced) <= item + 2  # made the next one, and no more
    assert got == list(range(5))


def test_read_ahead_raises_the_producers_error_in_the_caller():
    def items():
        yield 1
        raise ValueError("bad line 7 in a.jsonl")

    stream = read_ahead(items())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad line 7"):
        next(stream)


def test_a_caller_that_stops_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    stream = read_ahead(items())
    assert next(stream) == 0
    stream.close()  # what a `with closing(...)` or an exception in the caller's loop does
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "assay-read-ahead"]


def test_parallel_map_keeps_order():
    assert parallel_map(lambda k: k * k, 50) == [k * k for k in range(50)]
