"""The one place that chooses the hot-loop kernels: NumPy (always there) or Numba (when importable).

Every backend module offers the same functions with the same numbers (``conv2d_forward``,
``conv2d_backward``, ``im2col``, ``col2im``, ``maxpool2d_forward``, ``maxpool2d_backward``,
``relu_forward``, ``relu_backward``, and ``bind_conv2d_forward`` and ``bind_maxpool2d_forward``,
the inference passes bound to fixed buffers that a model's inference plans run); layers call
:func:`get_backend` and never ask which one runs.

The choice comes from :func:`set_backend`, else the ``SCRATCHCNN_BACKEND`` environment variable,
else ``"auto"``: Numba when it imports, NumPy otherwise (saying so once on stderr).
:func:`set_threads` (or ``SCRATCHCNN_THREADS``) sets how many threads they use.

Shared by both backends: ``conv`` (the convolution, forward and backward, in blocks of images:
a backend gives it only its im2col and col2im fillers), ``blas`` (matrix products, small ones on
one thread, large ones in chunks), ``team`` (chunks of work handed out to the caller and helper
threads), ``buffers`` (large arrays reused between batches instead of page-faulted in again) and
``layout`` (channel-major views).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

BACKENDS = ("numpy", "numba")
CHOICES = ("auto", *BACKENDS)
_active: ModuleType | None = None


def _load(name: str) -> ModuleType:
    if os.environ.get("SCRATCHCNN_THREADS") and _threads is None:
        set_threads()
    return importlib.import_module(f"scratchcnn.kernels.{name}_kernels")


_threads: int | None = None


def set_threads(n: int | None = None) -> int:
    """How many threads (the caller included) share the kernels' large loops and matrix products.

    ``None`` reads ``SCRATCHCNN_THREADS``, else uses every core. Work is handed out in chunks, so a
    thread that other processes keep off the CPU slows nothing down; 1 runs everything on the
    calling thread. Returns the number set.
    """
    global _threads
    if n is None:
        n = int(os.environ.get("SCRATCHCNN_THREADS") or 0) or os.cpu_count() or 1
    from scratchcnn.kernels import team

    team.set_threads(int(n))
    _threads = int(n)
    return _threads


def set_backend(name: str | None = None) -> str:
    """Select the kernels by name ("numpy", "numba" or "auto"); return the name actually chosen.

    ``None`` reads ``SCRATCHCNN_BACKEND`` (default "auto"). Asking for "numba" when it cannot be
    imported raises ImportError; "auto" falls back to NumPy with one line on stderr.
    """
    global _active
    requested = (name or os.environ.get("SCRATCHCNN_BACKEND") or "auto").strip().lower()
    if requested not in CHOICES:
        raise ValueError(f"unknown backend {requested!r}: choose one of {', '.join(CHOICES)}")
    if requested == "auto":
        try:
            _active = _load("numba")
        except ImportError as err:
            print(
                f"scratchcnn: numba unavailable ({err}); using the NumPy kernels", file=sys.stderr
            )
            _active = _load("numpy")
    else:
        _active = _load(requested)
    return _active.NAME


def get_backend() -> ModuleType:
    """The active kernel module, chosen on first use if :func:`set_backend` was never called."""
    if _active is None:
        set_backend()
    return _active


def backend_name() -> str:
    """Name of the active backend ("numpy" or "numba")."""
    return get_backend().NAME
