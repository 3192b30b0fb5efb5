"""Matrix products through NumPy's BLAS, one BLAS thread per chunk, chunks spread over the team.

OpenBLAS splits every product into one fixed share per core and waits for the slowest. Below a few
million multiply-adds waking the second core costs more than it saves, and on a busy machine the
caller waits a whole scheduler slice for a thread that is not running (benchmarks/PROFILE.md
has the numbers). So :func:`matmul` keeps BLAS on one thread (through ``threadpoolctl``,
installed with scikit-learn; without it BLAS keeps its own threading), runs small products on the
caller, and cuts large ones into chunks of a fixed size that :mod:`scratchcnn.nn.kernels.team`
hands out one at a time: columns of the result, or slices of a long
summed dimension whose partial products are then added in float64, in order. The same chunks are
computed whatever the number of threads, so the numbers do not depend on it, bit for bit.
"""

from __future__ import annotations

import threading

import numpy as np

from scratchcnn.nn.kernels import team

SMALL = 1 << 23  # multiply-adds below which a product runs on the caller alone
# Chunk sizes are fixed, whatever the number of threads, so that results never depend on it.
COLUMN_CHUNK = 2048
SUM_CHUNK = 4096  # length of the slices of a long summed dimension

_threads: list | None = None  # (get_num_threads, set_num_threads) of each BLAS library
_lock = threading.Lock()
_holders = 0  # threads inside one_thread blocks (nested blocks count too)
_restore: list = []  # (set_num_threads, count) to put back when the last holder leaves


def _thread_controls() -> list:
    global _threads
    if _threads is None:
        _threads = []
        try:
            from threadpoolctl import ThreadpoolController

            for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
                _threads.append(_direct_calls(lib))
        except Exception:  # no threadpoolctl, or a BLAS it cannot drive: use BLAS as it is
            _threads = []
    return _threads


def _direct_calls(lib):
    """The library's own C entry points when threadpoolctl exposes them (a ctypes call costs
    well under a microsecond), else threadpoolctl's methods."""
    try:
        get = lib._get_symbol("openblas_get_num_threads")
        set_ = lib._get_symbol("openblas_set_num_threads")
        if get is not None and set_ is not None:
            return get, set_
    except Exception:
        pass
    return lib.get_num_threads, lib.set_num_threads


class one_thread:  # noqa: N801 (used like a function: ``with blas.one_thread():``)
    """``with one_thread():`` holds BLAS to one thread per product inside the block. Enter it on
    the thread that starts the work, not inside chunks that run in parallel. The setting is the
    library's, shared by all threads: the first to enter sets it, the last to leave restores it,
    so a thread leaving never lets BLAS split another thread's product (a product split in two
    may round differently). (A class rather than a generator: entered several times per layer,
    its cost shows in one-image latency.)"""

    def __enter__(self):
        global _holders
        with _lock:
            if _holders == 0:
                _restore.clear()
                for get, set_ in _thread_controls():
                    count = get()
                    if count != 1:
                        set_(1)
                        _restore.append((set_, count))
            _holders += 1
        return self

    def __exit__(self, *exc):
        global _holders
        with _lock:
            _holders -= 1
            if _holders == 0:
                for set_, count in _restore:
                    set_(count)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N), into ``out`` (M, N) when given."""
    (m, k), n = a.shape, b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    with one_thread():
        if m * n * k < SMALL:
            np.matmul(a, b, out=out)
        elif n < k:  # chunked on one thread too: the same numbers for any number of threads
            _by_sums(a, b, out)
        else:
            _by_columns(a, b, out)
    return out


def _by_columns(a, b, out) -> None:
    """out[:, j0:j1] = a @ b[:, j0:j1] over fixed slices of columns (COLUMN_CHUNK wide)."""
    n = b.shape[1]
    edges = list(range(0, n, COLUMN_CHUNK)) + [n]

    def chunk(i):
        np.matmul(a, b[:, edges[i] : edges[i + 1]], out=out[:, edges[i] : edges[i + 1]])

    team.run(chunk, len(edges) - 1)


def _by_sums(a, b, out) -> None:
    """out = the sum of a[:, k0:k1] @ b[k0:k1] over fixed slices of K (SUM_CHUNK long, whatever the
    number of threads, so results do not depend on it), added in float64 in a fixed order."""
    k = a.shape[1]
    edges = list(range(0, k, SUM_CHUNK)) + [k]
    partial = np.empty((len(edges) - 1, *out.shape), dtype=out.dtype)

    def chunk(i):
        np.matmul(a[:, edges[i] : edges[i + 1]], b[edges[i] : edges[i + 1]], out=partial[i])

    team.run(chunk, len(edges) - 1)
    out[...] = partial.sum(axis=0, dtype=np.float64)
