"""The one place that chooses the inner loops: NumPy's (always there) or Numba's (when it imports).

Both loop modules, :mod:`~scratchcnn.nn.kernels.numpy_loops` and
:mod:`~scratchcnn.nn.kernels.numba_loops`, define the same four functions with the same numbers:
``im2col_block``, ``col2im_block``, ``maxpool_forward`` and ``maxpool_backward``. The kernels that
the layers call (:mod:`~scratchcnn.nn.kernels.conv`, :mod:`~scratchcnn.nn.kernels.pool`) ask
:func:`loops` for the active one; nothing else asks which one runs.

The choice comes from :func:`set_backend`, else the ``SCRATCHCNN_BACKEND`` environment variable,
else ``"auto"``: Numba when it imports, NumPy otherwise (saying so once on stderr).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

BACKENDS = ("numpy", "numba")
CHOICES = ("auto", *BACKENDS)
_active: ModuleType | None = None


def set_backend(name: str | None = None) -> str:
    """Select the loops by name ("numpy", "numba" or "auto"); return the name actually chosen.

    ``None`` reads ``SCRATCHCNN_BACKEND`` (default "auto"). Asking for "numba" when it cannot be
    imported raises ImportError; "auto" falls back to NumPy with one line on stderr.
    """
    global _active
    requested = (name or os.environ.get("SCRATCHCNN_BACKEND") or "auto").strip().lower()
    if requested not in CHOICES:
        raise ValueError(f"unknown backend {requested!r}: choose one of {', '.join(CHOICES)}")
    if requested == "auto":
        try:
            _active = importlib.import_module("scratchcnn.nn.kernels.numba_loops")
        except ImportError as err:
            print(
                f"scratchcnn: numba unavailable ({err}); using the NumPy kernels", file=sys.stderr
            )
            _active = importlib.import_module("scratchcnn.nn.kernels.numpy_loops")
    else:
        _active = importlib.import_module(f"scratchcnn.nn.kernels.{requested}_loops")
    return _active.NAME


def loops() -> ModuleType:
    """The active loop module, chosen on first use if :func:`set_backend` was never called."""
    if _active is None:
        set_backend()
    return _active


def backend_name() -> str:
    """Name of the active backend ("numpy" or "numba")."""
    return loops().NAME
