"""Work split over the cores by handing out chunks one at a time: the caller works too, and a
helper thread that the scheduler keeps off the CPU delays nothing.

Numba's ``prange`` and OpenBLAS both cut a job into one fixed share per thread and wait at the end
for the slowest share. When other processes keep the cores busy, that wait is often a whole
scheduler time slice: measured on a shared 2-core machine, a 1 ms pooling kernel took 24 ms and a
whole training step 5x longer than on one thread. Here the job is cut into a few chunks per
thread, every thread (the caller included) takes the next chunk until none is left, and the caller
waits only for chunks actually started. A helper that wakes up late finds nothing left to do.

The chunks must release the GIL to run in parallel: numba's ``nogil`` functions and NumPy's
matrix products do.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_threads = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None


def threads() -> int:
    """How many threads (the caller included) share a job."""
    return _threads


def set_threads(n: int) -> None:
    """Share jobs among ``n`` threads, the caller included (1: run everything on the caller)."""
    global _threads, _pool
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n!r}")
    if _pool is not None and n - 1 > _pool._max_workers:
        _pool.shutdown(wait=False)
        _pool = None
    _threads = n


def _helpers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=max(1, _threads - 1), thread_name_prefix="scratchcnn"
        )
    return _pool


def run(chunk: Callable[[int], None], count: int) -> None:
    """Call ``chunk(i)`` for every i in range(count), spread over the team; return when all are
    done. The first chunk runs on the caller first (so numba compiles there, once)."""
    if count <= 0:
        return
    chunk(0)
    if count == 1:
        return
    if _threads == 1:
        for i in range(1, count):
            chunk(i)
        return
    state = _Job(chunk, count)
    pool = _helpers()
    for _ in range(min(_threads - 1, count - 1)):
        pool.submit(state.work)
    state.work()
    state.finished.wait()
    if state.error is not None:
        raise state.error


class _Job:
    """The chunks still to hand out, and how many are not finished yet."""

    def __init__(self, chunk: Callable[[int], None], count: int):
        self.chunk = chunk
        self.todo = iter(range(1, count))
        self.unfinished = count - 1
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        while True:
            with self.lock:
                i = next(self.todo, None)
            if i is None:
                return
            try:
                self.chunk(i)
            except BaseException as err:  # reported to the caller by run()
                self.error = err
            with self.lock:
                self.unfinished -= 1
                if self.unfinished == 0:
                    self.finished.set()
