"""The threads that share the kernels' work, and the one setting that says how many.

Work is cut into chunks that are handed out one at a time: the caller works too, and a helper
thread that the scheduler keeps off the CPU delays nothing, because it finds nothing left when it
wakes up. (Numba's ``prange`` and OpenBLAS give each thread one fixed share instead and wait for
the slowest, which on a busy machine is often a whole scheduler time slice.) The chunks release
the GIL: numba's ``nogil`` loops and NumPy's matrix products do.

This is the only thread setting. Every matrix product scratchcnn runs holds BLAS to one thread
(:mod:`scratchcnn.nn.kernels.blas`) and is one of these chunks, and the Numba loops run on these
threads, not on Numba's own pool; so :func:`set_threads` (or ``SCRATCHCNN_THREADS``) governs the
kernels, BLAS and Numba alike, and :func:`limit_threads` lowers it for the calling thread alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def _from_environment() -> int:
    value = os.environ.get("SCRATCHCNN_THREADS", "").strip()
    if not value:
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"SCRATCHCNN_THREADS must be a whole number >= 1, got {value!r}") from None
    if count < 1:
        raise ValueError(f"SCRATCHCNN_THREADS must be a whole number >= 1, got {value!r}")
    return count


_threads = _from_environment()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()  # .limit: this thread's limit_threads() setting, if any


def set_threads(n: int | None = None) -> int:
    """Share the kernels' work among ``n`` threads, the caller included (1: everything runs on
    the calling thread). ``None`` reads ``SCRATCHCNN_THREADS``, else takes every core. Returns
    the number set."""
    global _threads
    n = _from_environment() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
    _threads = n
    return n


class limit_threads:  # noqa: N801 (used like a function: ``with limit_threads(1):``)
    """``with limit_threads(n):`` runs the kernels called from this thread on at most ``n``
    threads (the caller included) until the block ends; other threads keep their setting.
    The digit reader predicts a frame's few crops this way, on one thread."""

    def __init__(self, n: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
        self.n = n
        self._previous: int | None = None

    def __enter__(self):
        self._previous = getattr(_local, "limit", None)
        _local.limit = self.n if self._previous is None else min(self.n, self._previous)
        return self

    def __exit__(self, *exc):
        _local.limit = self._previous


def threads() -> int:
    """How many threads (the caller included) share a job started on this thread."""
    limit = getattr(_local, "limit", None)
    return _threads if limit is None else min(_threads, limit)


def _helpers(workers: int) -> ThreadPoolExecutor:
    """The helper threads (created on first use, grown when more are asked for)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scratchcnn")
        return _pool


def run(chunk: Callable[[int], None], count: int) -> None:
    """Call ``chunk(i)`` for every i in range(count), spread over :func:`threads` threads; return
    when all are done. Chunk 0 runs on the caller first (so numba compiles there, once), and a
    single chunk never wakes a helper."""
    if count <= 0:
        return
    chunk(0)
    team = threads()
    if count == 1:
        return
    if team == 1:
        for i in range(1, count):
            chunk(i)
        return
    job = _Job(chunk, count)
    pool = _helpers(team - 1)
    for _ in range(min(team - 1, count - 1)):
        pool.submit(job.work)
    job.work()
    job.finished.wait()
    if job.error is not None:
        raise job.error


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
