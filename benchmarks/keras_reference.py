"""The scratchcnn networks rebuilt in Keras 3 (TensorFlow backend), the reference we measure against.

:func:`keras_model_like` translates a scratchcnn :class:`~scratchcnn.Sequential` layer by layer, so
the Keras network has the same layers, padding, initializer kinds and parameter order:

* input channels last, ``(28, 28, 1)``: feed ``x_nchw.transpose(0, 2, 3, 1)`` (see :func:`to_nhwc`);
* ``Conv2D``/``Dense`` followed by ``ReLU`` become one Keras layer with ``activation="relu"``
  (Keras's idiom, and its fastest path); the weights are the same;
* padding "same"/"valid" map directly; integer padding becomes ``ZeroPadding2D`` + "valid";
* initializers: scratchcnn's He normal (untruncated N(0, 2/fan_in)) is
  ``VarianceScaling(2, "fan_in", "untruncated_normal")`` — not Keras's ``"he_normal"``, which is
  truncated; Glorot uniform is the same; biases start at zero. Same kinds, not the same numbers:
  copy weights with :mod:`scratchcnn.nn.interop` for identical starts;
* the output is logits; the loss is ``SparseCategoricalCrossentropy(from_logits=True)``.

Optimizer: Keras's SGD has scratchcnn's update rule (``v = m*v - lr*g``; Nesterov
``w += m*v - lr*g``). Weight decay differs: Keras's ``weight_decay=`` is decoupled
(``w -= lr*wd*w``), scratchcnn's is an L2 term added to the gradient, so :func:`compile_like` expresses
it as ``L2(wd/2)`` regularizers on every kernel and bias — the same updates, but the loss Keras
reports then includes the penalty ``wd/2 * sum(w**2)`` while scratchcnn's does not.

Importing this module imports Keras (and sets ``KERAS_BACKEND=tensorflow`` unless set).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import scratchcnn as sc  # noqa: E402
from scratchcnn.nn.interop import to_keras_weights  # noqa: E402


def configure_threads(threads: int | None = None) -> int:
    """Set TensorFlow's intra- and inter-op thread pools to ``threads`` (default: all cores).

    Must run before TensorFlow executes its first op; returns the number set.
    """
    import tensorflow as tf

    threads = threads or os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return threads


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """NCHW (N, C, H, W) -> a C-contiguous NHWC (N, H, W, C) copy, Keras's channels-last input."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _initializer(layer, seed: int | None):
    name = layer.kernel_initializer
    if name == "auto":
        name = "he_normal" if layer.followed_by_relu else "glorot_uniform"
    if name == "he_normal":
        return keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_in", distribution="untruncated_normal", seed=seed
        )
    return keras.initializers.GlorotUniform(seed=seed)


def keras_model_like(
    model: sc.Sequential, seed: int | None = 0, weight_decay: float = 0.0, copy_weights=False
) -> keras.Sequential:
    """A Keras ``Sequential`` with ``model``'s architecture, channels-last input (H, W, C), and
    its dtype (a float64 scratchcnn model gives float64 Keras layers).

    ``weight_decay`` > 0 adds ``L2(weight_decay / 2)`` to every kernel and bias (scratchcnn's
    coupled decay, see the module notes). ``copy_weights=True`` starts from ``model``'s weights.
    Raises ValueError for a layer type it cannot translate.
    """
    c, h, w = model.input_shape
    dtype = model.dtype.name
    layers: list = [keras.Input((h, w, c), dtype=dtype)]
    reg = (lambda: keras.regularizers.L2(weight_decay / 2)) if weight_decay else (lambda: None)
    skip_next_relu = False
    for i, layer in enumerate(model.layers):
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        fused = "relu" if isinstance(nxt, sc.ReLU) else None
        layer_seed = None if seed is None else seed + i
        if isinstance(layer, sc.ReLU):
            if not skip_next_relu:
                layers.append(keras.layers.ReLU(dtype=dtype))
            skip_next_relu = False
            continue
        skip_next_relu = fused is not None and isinstance(layer, (sc.Conv2D, sc.Dense))
        if isinstance(layer, sc.Conv2D):
            padding = layer.padding if isinstance(layer.padding, str) else "valid"
            if not isinstance(layer.padding, str) and any(layer.pads):
                top, bottom, left, right = layer.pads
                layers.append(
                    keras.layers.ZeroPadding2D(((top, bottom), (left, right)), dtype=dtype)
                )
            layers.append(
                keras.layers.Conv2D(
                    layer.filters,
                    layer.kernel_size,
                    strides=layer.stride,
                    padding=padding,
                    activation=fused,
                    use_bias=layer.use_bias,
                    kernel_initializer=_initializer(layer, layer_seed),
                    kernel_regularizer=reg(),
                    bias_regularizer=reg() if layer.use_bias else None,
                    dtype=dtype,
                )
            )
        elif isinstance(layer, sc.Dense):
            layers.append(
                keras.layers.Dense(
                    layer.units,
                    activation=fused,
                    use_bias=layer.use_bias,
                    kernel_initializer=_initializer(layer, layer_seed),
                    kernel_regularizer=reg(),
                    bias_regularizer=reg() if layer.use_bias else None,
                    dtype=dtype,
                )
            )
        elif isinstance(layer, sc.MaxPool2D):
            layers.append(
                keras.layers.MaxPooling2D(layer.pool_size, strides=layer.stride, dtype=dtype)
            )
        elif isinstance(layer, sc.Flatten):
            layers.append(keras.layers.Flatten(dtype=dtype))
        elif isinstance(layer, sc.Dropout):
            layers.append(keras.layers.Dropout(layer.rate, seed=layer_seed, dtype=dtype))
        else:
            raise ValueError(f"layer {i} ({type(layer).__name__}) has no Keras translation")
    kmodel = keras.Sequential(layers, name="reference")
    if copy_weights:
        kmodel.set_weights(to_keras_weights(model))
    return kmodel


def build_keras_model(
    name: str = "keras-example",
    seed: int | None = 0,
    dropout: float | None = None,
    weight_decay: float = 0.0,
) -> keras.Sequential:
    """The named scratchcnn architecture ("keras-example", "lenet5", "scratchnet") in Keras.

    ``dropout`` overrides the architecture's rate as in ``scratchcnn.build_model`` (0 disables).
    Weights are drawn by Keras (same kinds as scratchcnn's, seeded by ``seed``); not compiled.
    """
    template = sc.build_model(name, seed=seed, dropout=dropout)
    return keras_model_like(template, seed=seed, weight_decay=weight_decay)


def compile_like(
    kmodel: keras.Model,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> keras.Model:
    """Compile with scratchcnn's SGD settings, logits cross-entropy and an accuracy metric."""
    kmodel.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return kmodel


def versions() -> dict:
    """Versions of Keras, its backend and TensorFlow, for reports."""
    import tensorflow as tf

    return {
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "tensorflow": tf.__version__,
    }
