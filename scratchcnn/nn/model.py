"""Sequential: a stack of layers built from an input shape, trained and used batch by batch."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from scratchcnn.nn import inference
from scratchcnn.nn.fusion import fused_plan
from scratchcnn.nn.layers import (
    Dropout,
    Layer,
    Parameter,
    ReLU,
    _is_int,
    _positive_int,
    _WeightedLayer,
)
from scratchcnn.nn.losses import OUTLIER, SoftmaxCrossEntropy, softmax

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the kernels compute in


class Sequential:
    """Layers applied in order to per-sample inputs of ``input_shape`` (e.g. (1, 28, 28), NCHW).

    Building infers every layer's shape, so ``Conv2D(32, 3)`` never repeats its channel count.
    All randomness (initial weights, dropout masks) comes from one ``numpy.random.Generator``:
    pass ``rng``, or a ``seed`` — the same seed gives the same weights bit for bit.
    ``dtype`` is float32 (the default) or float64 (gradient checks build the same model in it).
    """

    def __init__(
        self,
        layers: Iterable[Layer],
        input_shape,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ):
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise ValueError("a Sequential model needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"{layer!r} is not a scratchcnn layer")
        self.input_shape = _shape(input_shape)
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype.name}")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.metadata: dict = {}  # JSON-able notes saved with the model (e.g. training metrics)
        self.output_shape = self._build()
        self._plan, self._plan_key = fused_plan(self.layers), tuple(map(id, self.layers))
        self._small_batches = inference.Plans()  # the fast path for a few images at a time

    def _build(self) -> tuple[int, ...]:
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if isinstance(layer, _WeightedLayer):
                following = next(
                    (nxt for nxt in self.layers[i + 1 :] if not isinstance(nxt, Dropout)), None
                )
                layer.followed_by_relu = isinstance(following, ReLU)
            layer.needs_input_grad = i > 0
            layer.input_shape = shape  # a layer's own build may set them itself; a user's need not
            try:
                shape = tuple(layer.build(shape, self.rng, self.dtype))
            except ValueError as err:
                raise ValueError(f"layer {i} ({type(layer).__name__}): {err}") from err
            layer.output_shape = shape
        return shape

    # -- parameters -------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``("layers.<i>.<name>", Parameter)`` for every parameter, in a fixed order."""
        return [
            (f"layers.{i}.{name}", param)
            for i, layer in enumerate(self.layers)
            for name, param in layer.params.items()
        ]

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    def count_params(self) -> int:
        return sum(p.data.size for p in self.parameters())

    # -- passes -----------------------------------------------------------------------------
    def _check_input(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """``x`` as an array of (N, *input_shape), or a ValueError that says how to get there."""
        x = np.asarray(x)
        if x.shape[1:] == self.input_shape:
            return x
        expected = f"(N, {', '.join(map(str, self.input_shape))})"
        message = (
            f"{name} of shape {x.shape} ({x.dtype}) does not fit this model: expected {expected}"
        )
        hints = []
        if x.shape[1:] == self.input_shape[1:] and self.input_shape[0] == 1:
            hints.append(f"add the channel axis: {name}[:, None]")
        if len(x.shape) == 4 and x.shape[1:] == (*self.input_shape[1:], self.input_shape[0]):
            hints.append(f"channels last (NHWC)? {name}.transpose(0, 3, 1, 2) gives NCHW")
        if x.dtype == np.uint8:
            hints = ["sc.to_float_images(images) turns uint8 images (N, H, W), as load_mnist() "
                     "returns them, into float32 (N, 1, H, W) in [0, 1]"]  # fmt: skip
        raise ValueError(message + "".join(f"; {hint}" for hint in hints))

    def _check_values(self, x: np.ndarray, name: str = "x") -> None:
        """A ValueError for NaN or infinite inputs; a warning for what looks like 0-255 pixels."""
        if x.size == 0:
            return
        low, high = x.min(), x.max()  # NaN propagates into both
        if not (np.isfinite(low) and np.isfinite(high)):
            flat = x.reshape(len(x), -1)
            first = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
            raise ValueError(
                f"{name} holds NaN or infinite values (the first in image {first}): "
                "the network would answer them with garbage; clean or drop those images"
            )
        if low >= 0 and high > 2:
            warnings.warn(
                f"{name} looks like 0-255 pixel values (max {float(high):g}); the models expect "
                "[0, 1]: sc.to_float_images(images) converts load_mnist()'s uint8 images "
                "(a network trained on 0-255 inputs usually stays at chance)",
                UserWarning,
                stacklevel=4,
            )

    def _check_data(self, x, y, where: str = "", purpose: str = "train on"):
        """``(x, y)`` checked as a labelled set: shapes, lengths, labels, finite values."""
        x = self._check_input(x, f"{where}x")
        y = np.asarray(y)
        if y.ndim != 1:
            onehot = " (one-hot? use y.argmax(axis=1))" if y.ndim == 2 else ""
            raise ValueError(
                f"{where}y must hold one class index per image, shape (N,); got shape "
                f"{y.shape}{onehot}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{where}labels must be integers, got dtype {y.dtype}")
        if len(x) != len(y):
            raise ValueError(f"{where}x has {len(x)} images but y has {len(y)} labels")
        if len(x) == 0:
            raise ValueError(f"{where}x is empty: no images to {purpose}")
        classes = self.output_shape[0] if len(self.output_shape) == 1 else None
        if classes is not None and (y.min() < 0 or y.max() >= classes):
            raise ValueError(
                f"{where}labels must lie in [0, {classes - 1}] (this model has {classes} "
                f"outputs), got {y.min()} to {y.max()}"
            )
        self._check_values(x, f"{where}x")
        return x, y

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits (N, *output_shape) for a batch ``x`` (N, *input_shape).

        ``training=True`` applies dropout and keeps what :meth:`backward` needs.
        """
        return self._run(self._check_input(x).astype(self.dtype, copy=False), training)

    def _run(self, out: np.ndarray, training: bool) -> np.ndarray:
        key = tuple(map(id, self.layers))
        if key != self._plan_key:  # follows any edit of self.layers
            self._plan, self._plan_key = fused_plan(self.layers), key
            self._small_batches.clear()
        if not training and 0 < len(out) <= inference.MAX_BATCH:
            return self._small_batches.forward(self._plan, out)
        for step in self._plan:
            out = step.forward(out, training)
        return out

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Back-propagate d(loss)/d(logits), filling every ``param.grad``."""
        for layer in reversed(self._plan):
            dout = layer.backward(dout)
        return dout

    def train_step(self, x, y, optimizer, loss: SoftmaxCrossEntropy | None = None):
        """One SGD step on batch ``x`` (N, *input_shape), labels ``y`` (N,).

        Returns ``(mean loss, number of correct predictions)`` measured before the update.
        """
        loss = loss or SoftmaxCrossEntropy()
        logits = self.forward(x, training=True)
        value = loss.forward(logits, y)
        self.backward(loss.backward())
        optimizer.step()
        return value, int((logits.argmax(axis=1) == y).sum())

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, K), float32, computed ``batch_size`` images at a time.

        ``x`` is float (N, *input_shape), e.g. (N, 1, 28, 28) in [0, 1]; NaN or infinite values
        raise ValueError, and values that look like 0-255 pixels warn.
        """
        batch_size = _positive_int(batch_size, "batch_size")
        x = self._check_input(x)
        self._check_values(x)
        x = x.astype(self.dtype, copy=False)
        if 0 < len(x) <= batch_size:  # one batch (one image, say): nothing to split or join
            return softmax(self._run(x, False))
        chunks = [
            softmax(self._run(x[i : i + batch_size], False)) for i in range(0, len(x), batch_size)
        ]
        if not chunks:
            return np.zeros((0, *self.output_shape), dtype=self.dtype)
        return np.concatenate(chunks)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted class (N,) int64."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def evaluate(self, x, y, batch_size: int = 256) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on ``x`` (N, *input_shape), labels ``y`` (N,)."""
        batch_size = _positive_int(batch_size, "batch_size")
        x, y = self._check_data(x, y, purpose="evaluate")
        loss = SoftmaxCrossEntropy()
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            logits = self.forward(x[i : i + batch_size])
            total_loss += loss.forward(logits, y[i : i + batch_size]) * len(logits)
            correct += int((logits.argmax(axis=1) == y[i : i + batch_size]).sum())
        return total_loss / len(x), correct / len(x)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        optimizer,
        epochs: int = 1,
        batch_size: int = 128,
        schedule: Callable[[int], float] | None = None,
        on_batch: Callable[[int, int, float, int], None] | None = None,
        *,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        verbose: int = 1,
    ) -> History:
        """Train for ``epochs`` passes over shuffled ``x`` (N, *input_shape), labels ``y`` (N,).

        Returns a :class:`History`, as Keras does: ``history.history["loss"]`` and
        ``["accuracy"]`` per epoch (measured on the training batches, before each step's update),
        and ``["val_loss"]``, ``["val_accuracy"]`` on ``validation_data=(x_val, y_val)`` after
        each epoch. ``verbose``: 0 silent, 1 (default) a progress bar on a terminal and one line
        per epoch, 2 the line only. ``schedule(step)`` sets the learning rate before each step;
        ``on_batch(epoch, step, loss, correct)`` is called after each. Shuffling uses the model's
        Generator. The data are checked first: lengths, labels, NaN or infinite values
        (ValueError), 0-255 pixels (a warning).
        """
        epochs = _positive_int(epochs, "epochs")
        batch_size = _positive_int(batch_size, "batch_size")
        if verbose not in (0, 1, 2) or not _is_int(verbose):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        x, y = self._check_data(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(
                    "validation_data must be a pair (x_val, y_val), got "
                    f"{type(validation_data).__name__}"
                )
            x_val, y_val = self._check_data(*validation_data, "validation_data: ", "validate on")
        history, step = History(), 0
        loss = SoftmaxCrossEntropy()
        steps_per_epoch = -(-len(x) // batch_size)
        for epoch in range(epochs):
            order = self.rng.permutation(len(x))
            batches = (
                (x[order[i : i + batch_size]], y[order[i : i + batch_size]])
                for i in range(0, len(x), batch_size)
            )
            bar = tqdm(
                total=steps_per_epoch,
                desc=f"epoch {epoch + 1}/{epochs}",
                unit="batch",
                leave=False,
                disable=None if verbose == 1 else True,  # None: only on a terminal
            )

            def report(stats, epoch=epoch, first=step, bar=bar):
                bar.update(1)
                bar.set_postfix_str(f"loss {stats.loss:.4f}  accuracy {stats.accuracy:.2%}")
                if on_batch is not None:
                    on_batch(
                        epoch, first + stats.batches - 1, stats.batch_loss, stats.batch_correct
                    )

            with bar:
                stats = train_epoch(self, optimizer, batches, loss, schedule, step, on_batch=report)
            step += stats.batches
            logs = {"loss": stats.loss, "accuracy": stats.accuracy}
            if validation_data is not None:
                logs["val_loss"], logs["val_accuracy"] = self.evaluate(x_val, y_val)
            history.append(epoch, logs)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}  {format_logs(logs)}  {stats.seconds:.1f} s")
        return history

    # -- description ------------------------------------------------------------------------
    def summary(self, print_fn: Callable[[str], None] | None = print) -> str:
        """A Keras-style table of each layer's output shape and parameter count."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for i, layer in enumerate(self.layers):
            n = sum(p.data.size for p in layer.params.values())
            shape = "(None, " + ", ".join(map(str, layer.output_shape)) + ")"
            rows.append((f"{i}: {type(layer).__name__}", shape, f"{n:,}"))
        widths = [max(len(r[c]) for r in rows) + 3 for c in range(3)]
        rule = "-" * sum(widths)

        def fmt(r):
            return f"{r[0]:<{widths[0]}}{r[1]:<{widths[1]}}{r[2]:>{widths[2] - 3}}"

        lines = [f"Sequential: input (None, {', '.join(map(str, self.input_shape))})", rule]
        lines += [fmt(rows[0]), rule.replace("-", "=")]
        lines += [fmt(r) for r in rows[1:]]
        lines += [rule, f"Total params: {self.count_params():,} ({self.dtype.name})"]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self) -> dict:
        """JSON-able architecture: input shape, dtype, and each layer's class and config."""
        return {
            "input_shape": list(self.input_shape),
            "dtype": self.dtype.name,
            "layers": [
                {"class": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    def __repr__(self) -> str:
        return f"Sequential({len(self.layers)} layers, params={self.count_params()})"


def _shape(input_shape) -> tuple[int, ...]:
    """A per-sample input shape as a tuple of ints >= 1, e.g. (1, 28, 28)."""
    if not isinstance(input_shape, (tuple, list, np.ndarray)) or len(input_shape) == 0:
        raise TypeError(
            f"input_shape must be a tuple of ints such as (1, 28, 28), got {input_shape!r}"
        )
    if not all(_is_int(d) for d in input_shape):
        raise TypeError(f"input_shape must hold ints, such as (1, 28, 28), got {input_shape!r}")
    if min(input_shape) < 1:
        raise ValueError(f"input_shape sizes must be >= 1, got {tuple(input_shape)}")
    return tuple(int(d) for d in input_shape)


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.1234  accuracy 97.50%  ...``: accuracies as percentages, losses to 4 places."""
    return "  ".join(
        f"{key} {value:.2%}" if key.endswith("accuracy") else f"{key} {value:.4f}"
        for key, value in logs.items()
    )


class History:
    """What :meth:`Sequential.fit` returns, as Keras's ``History``: ``history`` maps each
    measure ("loss", "accuracy", and with validation data "val_loss", "val_accuracy") to its
    value after each epoch; ``epoch`` lists the epochs (from 0)."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        return f"History({len(self.epoch)} epochs: {', '.join(self.history)})"


@dataclass
class EpochStats:
    """What :func:`train_epoch` has seen so far in an epoch: the sums behind the running mean loss
    and accuracy, images, batches and seconds, and the latest batch's own figures."""

    loss_sum: float = 0.0  # sum over images of their mean batch loss
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    batches: int = 0  # in this call of train_epoch
    batch_loss: float = 0.0
    batch_correct: int = 0
    batch_images: int = 0
    batch_seconds: float = 0.0

    @property
    def loss(self) -> float:
        """Mean training loss over the images seen."""
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        """Share of the images seen that were classified right (before each step's update)."""
        return self.correct / max(self.seen, 1)


def train_epoch(
    model: Sequential,
    optimizer,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    loss: SoftmaxCrossEntropy | None = None,
    schedule: Callable[[int], float] | None = None,
    step: int = 0,
    stats: EpochStats | None = None,
    on_batch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EpochStats:
    """The epoch loop: one :meth:`Sequential.train_step` for each ``(x, y)`` of ``batches``.

    ``schedule(step)`` sets the learning rate before each step (``step`` counts on from the
    argument); ``stats`` carries running totals on from an interrupted epoch; ``on_batch(stats)``
    runs after each batch, and the loop stops early after a batch for which ``should_stop()`` is
    true. Returns the totals; ``stats.batches`` says how many batches this call trained on. The
    seconds counted include making each batch (e.g. augmenting it), not the callbacks. Images
    labelled ``OUTLIER`` (:class:`~scratchcnn.nn.losses.OutlierExposureLoss`) are trained on but
    not counted as images seen: the accuracy is over the labelled ones.
    """
    loss = loss or SoftmaxCrossEntropy()
    stats = stats if stats is not None else EpochStats()
    stats.batches = 0
    started = time.perf_counter()
    for x, y in batches:
        if schedule is not None:
            optimizer.lr = schedule(step + stats.batches)
        value, correct = model.train_step(x, y, optimizer, loss)
        finished = time.perf_counter()
        labelled = int(np.count_nonzero(np.asarray(y) != OUTLIER))
        stats.batches += 1
        stats.batch_loss, stats.batch_correct, stats.batch_images = value, correct, labelled
        stats.batch_seconds = finished - started
        stats.loss_sum += value * labelled
        stats.correct += correct
        stats.seen += labelled
        stats.seconds += stats.batch_seconds
        if on_batch is not None:
            on_batch(stats)
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
    return stats
