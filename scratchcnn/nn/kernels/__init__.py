"""The fast twins of :mod:`scratchcnn.nn.functional`, which the layers call: the same function
names and the same numbers, computed in blocks of images, in reused buffers, with compiled loops.

``conv`` holds the convolution, ``pool`` max pooling and ReLU; both ask ``backend`` (the one place
that chooses) for the inner loops, NumPy's or Numba's. ``team`` is the one thread setting,
``blas`` the matrix products, ``buffers`` the reused memory, ``layout`` the channel-major views.
"""

from scratchcnn.nn.kernels.backend import BACKENDS, CHOICES, backend_name, set_backend
from scratchcnn.nn.kernels.team import limit_threads, set_threads

__all__ = ["BACKENDS", "CHOICES", "backend_name", "limit_threads", "set_backend", "set_threads"]
