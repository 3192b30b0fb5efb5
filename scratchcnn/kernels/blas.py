"""Matrix products through NumPy's BLAS, on one thread when the product is small.

OpenBLAS splits even small products over all cores. Waking the second thread costs more than it
saves below a few million multiply-adds, and on a busy machine the caller can wait a whole
scheduler slice (milliseconds) for a thread that is not running: measured here, a Dense layer's
0.1 ms product took 16 ms at the 90th percentile. :func:`matmul` runs such products on the
calling thread (through ``threadpoolctl``, installed with scikit-learn; without it, it is a plain
``np.matmul``) and leaves large ones to BLAS's own threading.
"""

from __future__ import annotations

import numpy as np

SMALL = 1 << 23  # multiply-adds below which a product runs on one thread

_threads: list | None = None  # (get_num_threads, set_num_threads) of each BLAS library


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


def set_threads(n: int) -> None:
    """Let BLAS use ``n`` threads for the products that :func:`matmul` does not keep on one."""
    for _, set_ in _thread_controls():
        set_(n)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N), into ``out`` (M, N) when given."""
    if a.shape[0] * a.shape[1] * b.shape[1] >= SMALL:
        return np.matmul(a, b, out=out)
    controls = _thread_controls()
    previous = [get() for get, _ in controls]
    for _, set_ in controls:
        set_(1)
    try:
        return np.matmul(a, b, out=out)
    finally:
        for (_, set_), n in zip(controls, previous, strict=True):
            set_(n)
