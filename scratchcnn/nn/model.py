"""Sequential: a stack of layers built from an input shape, trained and used batch by batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from scratchcnn.nn import inference
from scratchcnn.nn.fusion import fused_plan
from scratchcnn.nn.layers import Dropout, Layer, Parameter, ReLU, _WeightedLayer
from scratchcnn.nn.losses import SoftmaxCrossEntropy, softmax


class Sequential:
    """Layers applied in order to per-sample inputs of ``input_shape`` (e.g. (1, 28, 28), NCHW).

    Building infers every layer's shape, so ``Conv2D(32, 3)`` never repeats its channel count.
    All randomness (initial weights, dropout masks) comes from one ``numpy.random.Generator``:
    pass ``rng``, or a ``seed`` — the same seed gives the same weights bit for bit.
    ``dtype`` is float32 by default; gradient checks build the same model in float64.
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
        self.input_shape = tuple(int(d) for d in input_shape)
        self.dtype = np.dtype(dtype)
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
            try:
                shape = layer.build(shape, self.rng, self.dtype)
            except ValueError as err:
                raise ValueError(f"layer {i} ({type(layer).__name__}): {err}") from err
        return tuple(shape)

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
    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"input of shape {x.shape} does not fit this model: expected (N, "
                f"{', '.join(map(str, self.input_shape))})"
            )
        return x.astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits (N, *output_shape) for a batch ``x`` (N, *input_shape).

        ``training=True`` applies dropout and keeps what :meth:`backward` needs.
        """
        return self._run(self._check_input(x), training)

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
        """Class probabilities (N, K), float32, computed ``batch_size`` images at a time."""
        x = self._check_input(x)
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
        loss = SoftmaxCrossEntropy()
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            logits = self.forward(x[i : i + batch_size])
            total_loss += loss.forward(logits, y[i : i + batch_size]) * len(logits)
            correct += int((logits.argmax(axis=1) == y[i : i + batch_size]).sum())
        return total_loss / max(len(x), 1), correct / max(len(x), 1)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        optimizer,
        epochs: int = 1,
        batch_size: int = 128,
        schedule: Callable[[int], float] | None = None,
        on_batch: Callable[[int, int, float, int], None] | None = None,
    ) -> list[dict]:
        """Train for ``epochs`` passes over shuffled ``x``, ``y``; return per-epoch loss/accuracy.

        ``schedule(step)`` sets the learning rate before each step; ``on_batch(epoch, step, loss,
        correct)`` is called after each. Shuffling uses the model's Generator.
        """
        history, step = [], 0
        loss = SoftmaxCrossEntropy()
        for epoch in range(epochs):
            order = self.rng.permutation(len(x))
            batches = (
                (x[order[i : i + batch_size]], y[order[i : i + batch_size]])
                for i in range(0, len(x), batch_size)
            )
            report = None
            if on_batch is not None:

                def report(stats, epoch=epoch, first=step):
                    on_batch(
                        epoch, first + stats.batches - 1, stats.batch_loss, stats.batch_correct
                    )

            stats = train_epoch(self, optimizer, batches, loss, schedule, step, on_batch=report)
            step += stats.batches
            history.append({"loss": stats.loss, "accuracy": stats.accuracy})
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
    seconds counted include making each batch (e.g. augmenting it), not the callbacks.
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
        stats.batches += 1
        stats.batch_loss, stats.batch_correct, stats.batch_images = value, correct, len(y)
        stats.batch_seconds = finished - started
        stats.loss_sum += value * len(y)
        stats.correct += correct
        stats.seen += len(y)
        stats.seconds += stats.batch_seconds
        if on_batch is not None:
            on_batch(stats)
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
    return stats
