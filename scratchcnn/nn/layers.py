"""Layers with hand-written forward and backward passes.

Every layer follows one small protocol:

* ``build(input_shape, rng, dtype)`` creates parameters for a per-sample ``input_shape``
  (e.g. ``(C, H, W)``, batch excluded) and returns the per-sample output shape;
* ``forward(x, training)`` returns the output and, in training mode only, keeps what
  ``backward`` needs (nothing more);
* ``backward(dout)`` writes the gradient of every parameter into ``param.grad`` and returns the
  gradient with respect to the input (``None`` when ``needs_input_grad`` is False: the first
  layer of a model has no one to pass it to);
* ``get_config()`` returns the JSON-able constructor arguments, so a model can be rebuilt from
  its saved description.

Activations are NCHW. Parameters are float32 unless the layer is built with another dtype;
gradient checks build the same layers in float64.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.kernels import blas, buffers, conv, pool


class Parameter:
    """A trainable array and its gradient, side by side (``grad`` has ``data``'s shape and dtype)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def _is_int(value) -> bool:
    """An int or a NumPy integer, but not a bool (True is an int to Python, never a size here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _positive_int(value, name: str) -> int:
    """``value`` as an int >= 1; TypeError for another type (2.5, "10", True), ValueError below 1."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _pair(value, name: str, what: str = "an int or a pair of ints") -> tuple[int, int]:
    if _is_int(value):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list, np.ndarray))
        and len(value) == 2
        and all(_is_int(v) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be {what}, got {value!r}")


def _positive_pair(value, name: str) -> tuple[int, int]:
    pair = _pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same": output ceil(size/stride); odd padding goes to the bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def glorot_uniform(rng, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(rng, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """He/Kaiming normal for ReLU layers: N(0, 2 / fan_in)."""
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal}


class Layer(ABC):
    """Base class: by default a layer has no parameters and keeps its input's shape."""

    needs_input_grad = True

    def __init__(self):
        self.params: dict[str, Parameter] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None

    def build(self, input_shape, rng: np.random.Generator, dtype=np.float32) -> tuple[int, ...]:
        self.input_shape = tuple(input_shape)
        self.output_shape = self.input_shape
        return self.output_shape

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Output for a batch ``x`` (N, *input_shape); in training mode keep what backward needs."""

    @abstractmethod
    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Fill ``param.grad`` and return d(loss)/d(input) for ``dout`` = d(loss)/d(output)."""

    def get_config(self) -> dict:
        return {}

    def _require_cache(self, cache):
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called without a forward pass in training mode"
            )
        return cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _WeightedLayer(Layer):
    """Shared initialization of layers with a weight and an optional bias."""

    def __init__(self, use_bias: bool, kernel_initializer: str):
        super().__init__()
        if kernel_initializer not in ("auto", *INITIALIZERS):
            raise ValueError(
                f"unknown kernel_initializer {kernel_initializer!r}: "
                f"choose 'auto', {', '.join(map(repr, INITIALIZERS))}"
            )
        self.use_bias = _flag(use_bias, "use_bias")
        self.kernel_initializer = kernel_initializer
        # Set by Sequential: "auto" means He when a ReLU follows, Glorot otherwise.
        self.followed_by_relu = False

    def _init_params(self, rng, shape, fan_in, fan_out, n_out, dtype):
        name = self.kernel_initializer
        if name == "auto":
            name = "he_normal" if self.followed_by_relu else "glorot_uniform"
        self.params["weight"] = Parameter(INITIALIZERS[name](rng, shape, fan_in, fan_out, dtype))
        if self.use_bias:
            self.params["bias"] = Parameter(np.zeros(n_out, dtype=dtype))


class Conv2D(_WeightedLayer):
    """2-D convolution (cross-correlation, as in every framework) over NCHW input.

    ``weight`` has shape (F, C, KH, KW) and ``bias`` (F,). ``padding`` is an int, a pair
    (ph, pw), "valid" (0) or "same" (output ceil(H/stride), padded like TensorFlow).
    The math: :func:`scratchcnn.nn.functional.conv2d_forward` (im2col, one matrix product);
    run by :func:`scratchcnn.nn.kernels.conv.conv2d_forward`, the same numbers in blocks of images.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        stride=1,
        padding=0,
        use_bias: bool = True,
        kernel_initializer: str = "auto",
    ):
        super().__init__(use_bias, kernel_initializer)
        self.filters = _positive_int(filters, "filters")
        self.kernel_size = _positive_pair(kernel_size, "kernel_size")
        self.stride = _positive_pair(stride, "stride")
        if isinstance(padding, str):
            if padding.lower() not in ("same", "valid"):
                raise ValueError(
                    f"padding must be an int, a pair, 'same' or 'valid', not {padding!r}"
                )
            self.padding = padding.lower()
        else:
            self.padding = _pair(padding, "padding", "an int, a pair of ints, 'same' or 'valid'")
            if min(self.padding) < 0:
                raise ValueError(f"padding must be >= 0, got {padding!r}")
        self._cache = None

    def build(self, input_shape, rng, dtype=np.float32):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D expects (C, H, W) input, got shape {tuple(input_shape)}")
        c, h, w = input_shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        if self.padding == "same":
            self.pads = (*_same_pads(h, kh, sh), *_same_pads(w, kw, sw))
        elif self.padding == "valid":
            self.pads = (0, 0, 0, 0)
        else:
            ph, pw = self.padding
            self.pads = (ph, ph, pw, pw)
        oh = output_size(h, kh, sh, self.pads[0] + self.pads[1])
        ow = output_size(w, kw, sw, self.pads[2] + self.pads[3])
        if oh < 1 or ow < 1:
            raise ValueError(
                f"Conv2D kernel {self.kernel_size} does not fit input {h}x{w} with padding "
                f"{self.padding!r}"
            )
        fan_in, fan_out = c * kh * kw, self.filters * kh * kw
        self._init_params(rng, (self.filters, c, kh, kw), fan_in, fan_out, self.filters, dtype)
        self.input_shape = (c, h, w)
        self.output_shape = (self.filters, oh, ow)
        return self.output_shape

    def forward(self, x, training=False):
        bias = self.params["bias"].data if self.use_bias else None
        out, saved = conv.conv2d_forward(
            x, self.params["weight"].data, bias, self.stride, self.pads, training
        )
        self._cache = (saved, x.shape) if training else None
        return out

    def backward(self, dout):
        saved, x_shape = self._require_cache(self._cache)
        weight = self.params["weight"]
        dx, dweight, dbias = conv.conv2d_backward(
            dout, saved, x_shape, weight.data, self.stride, self.pads, self.needs_input_grad
        )
        weight.grad = dweight
        if self.use_bias:
            self.params["bias"].grad = dbias
        self._cache = None
        return dx

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": padding,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }


class MaxPool2D(Layer):
    """Max pooling over NCHW input; windows may overlap (stride < pool) and need not tile the input.

    Output size is floor((H - pool) / stride) + 1 (Keras's padding="valid"). The gradient of each
    window goes to exactly one input, its first maximum in row-major order, ties included.
    """

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        self.pool_size = _positive_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else _positive_pair(stride, "stride")
        self._cache = None

    def build(self, input_shape, rng, dtype=np.float32):
        if len(input_shape) != 3:
            raise ValueError(f"MaxPool2D expects (C, H, W) input, got shape {tuple(input_shape)}")
        c, h, w = input_shape
        oh = output_size(h, self.pool_size[0], self.stride[0], 0)
        ow = output_size(w, self.pool_size[1], self.stride[1], 0)
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPool2D pool {self.pool_size} is larger than its input {h}x{w}")
        self.input_shape = (c, h, w)
        self.output_shape = (c, oh, ow)
        return self.output_shape

    def forward(self, x, training=False):
        out, argmax = pool.maxpool2d_forward(x, self.pool_size, self.stride, False, training)
        self._cache = (argmax, x.shape) if training else None
        return out

    def backward(self, dout):
        argmax, x_shape = self._require_cache(self._cache)
        self._cache = None
        return pool.maxpool2d_backward(dout, argmax, x_shape, self.pool_size, self.stride)

    def get_config(self):
        return {"pool_size": list(self.pool_size), "stride": list(self.stride)}


class Dense(_WeightedLayer):
    """Fully connected layer: ``x @ weight + bias`` with x (N, D), weight (D, units), bias (units,)."""

    def __init__(self, units: int, use_bias: bool = True, kernel_initializer: str = "auto"):
        super().__init__(use_bias, kernel_initializer)
        self.units = _positive_int(units, "units")
        self._x = None

    def build(self, input_shape, rng, dtype=np.float32):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects flat (D,) input, got shape {tuple(input_shape)}: add a Flatten()"
            )
        (d,) = input_shape
        self._init_params(rng, (d, self.units), d, self.units, self.units, dtype)
        self.input_shape = (d,)
        self.output_shape = (self.units,)
        return self.output_shape

    def forward(self, x, training=False):
        out = blas.matmul(x, self.params["weight"].data)
        if self.use_bias:
            out += self.params["bias"].data
        self._x = x if training else None
        return out

    def backward(self, dout):
        x = self._require_cache(self._x)
        weight = self.params["weight"]
        weight.grad = blas.matmul(x.T, dout)
        if self.use_bias:
            self.params["bias"].grad = dout.sum(axis=0)
        self._x = None
        return blas.matmul(dout, weight.data.T) if self.needs_input_grad else None

    def get_config(self):
        return {
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }


class ReLU(Layer):
    """max(x, 0); its backward needs only the output (positive where the gradient passes)."""

    def __init__(self):
        super().__init__()
        self._out = None

    def forward(self, x, training=False):
        out = pool.relu_forward(x)
        self._out = out if training else None
        return out

    def backward(self, dout):
        out = self._require_cache(self._out)
        self._out = None
        return pool.relu_backward(dout, out)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in NCHW (channel-major) order."""

    def build(self, input_shape, rng, dtype=np.float32):
        self.input_shape = tuple(input_shape)
        self.output_shape = (math.prod(self.input_shape),)
        return self.output_shape

    def forward(self, x, training=False):
        if x.flags.c_contiguous:
            return x.reshape(x.shape[0], -1)
        return buffers.copy_of(x).reshape(x.shape[0], -1)  # e.g. a channel-major activation

    def backward(self, dout):
        return dout.reshape(dout.shape[0], *self.input_shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and scale the rest
    by 1/(1-rate); at inference, the identity. The mask comes from the model's Generator."""

    def __init__(self, rate: float = 0.5):
        super().__init__()
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.number)):
            raise TypeError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = rate
        self.rng: np.random.Generator | None = None
        self._mask = None

    def build(self, input_shape, rng, dtype=np.float32):
        self.rng = rng
        return super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError("Dropout used before build(): it has no random generator")
        mask = buffers.empty(x.shape, x.dtype)
        self.rng.random(dtype=x.dtype, out=mask)  # the same draws as rng.random(x.shape)
        np.multiply(mask >= self.rate, x.dtype.type(1.0 / (1.0 - self.rate)), out=mask)
        self._mask = mask
        return np.multiply(x, mask, out=buffers.empty(x.shape, x.dtype))

    def backward(self, dout):
        if self._mask is None:
            return dout
        mask, self._mask = self._mask, None
        return np.multiply(dout, mask, out=buffers.empty(dout.shape, dout.dtype))

    def get_config(self):
        return {"rate": self.rate}


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Conv2D, MaxPool2D, Dense, ReLU, Flatten, Dropout)
}
