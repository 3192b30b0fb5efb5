"""Sequential: a stack of layers built from an input shape, trained and used batch by batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import numpy as np

from scratchcnn import inference
from scratchcnn.kernels import get_backend
from scratchcnn.layers import Dropout, Layer, MaxPool2D, Parameter, ReLU, _WeightedLayer
from scratchcnn.losses import SoftmaxCrossEntropy, softmax


def execution_order(layers: list[Layer]) -> list[Layer]:
    """The order in which to run ``layers``: theirs, except that a ReLU directly followed by a
    MaxPool2D runs after it.

    ReLU is monotone, so max(relu(x)) == relu(max(x)) exactly, and the gradient is the same too:
    a window whose maximum is positive sends its gradient to the same first maximum in both orders,
    and a window whose maximum is <= 0 sends 0 in both. Run second, the ReLU touches the pooled
    output (4x smaller for 2x2 pooling) instead of the convolution's, forward and backward.
    """
    plan = list(layers)
    for i in range(len(plan) - 1):
        if type(plan[i]) is ReLU and type(plan[i + 1]) is MaxPool2D:
            plan[i], plan[i + 1] = plan[i + 1], plan[i]
    return plan


class MaxPoolReLU:
    """A MaxPool2D and the ReLU that runs after it (see :func:`execution_order`), as one step:
    the pooling kernel applies max(., 0) while each row is in cache, and the backward pass masks
    the gradient, then routes it. The same numbers as the two layers one after the other; the
    layer objects themselves are left untouched (they still work on their own)."""

    def __init__(self, pool: MaxPool2D, relu: ReLU):
        self.layers = (pool, relu)
        self._cache = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        pool = self.layers[0]
        out, argmax = get_backend().maxpool2d_forward(x, pool.pool_size, pool.stride, relu=True)
        self._cache = (argmax, x.shape, out) if training else None
        return out

    def bind(self, x: np.ndarray):
        pool = self.layers[0]
        return get_backend().bind_maxpool2d_forward(x, pool.pool_size, pool.stride, relu=True)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        pool = self.layers[0]
        argmax, x_shape, out = pool._require_cache(self._cache)
        self._cache = None
        kernels = get_backend()
        dout = kernels.relu_backward(dout, out)
        return kernels.maxpool2d_backward(dout, argmax, x_shape, pool.pool_size, pool.stride)


def fused_plan(layers: list[Layer]) -> list:
    """The steps a :class:`Sequential` runs: :func:`execution_order`, with each MaxPool2D that a
    ReLU follows merged with it into one :class:`MaxPoolReLU` step."""
    plan, steps = execution_order(layers), []
    for layer in plan:
        if type(layer) is ReLU and steps and type(steps[-1]) is MaxPool2D:
            steps[-1] = MaxPoolReLU(steps[-1], layer)
        else:
            steps.append(layer)
    return steps


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
        # the most recently used inference plans, by (thread, input shape, kernels)
        self._inference_plans: dict[tuple, inference.InferencePlan] = {}

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
            self._inference_plans.clear()
        if not training and 0 < len(out) <= inference.MAX_BATCH:
            return self._inference_plan(out.shape)(out)
        for layer in self._plan:
            out = layer.forward(out, training)
        return out

    def _inference_plan(self, shape: tuple[int, ...]) -> inference.InferencePlan:
        """This thread's plan for batches of ``shape`` with the active kernels (made on first use;
        the few most recently used are kept)."""
        key = (threading.get_ident(), shape, get_backend())
        plan = self._inference_plans.pop(key, None)
        if plan is None:
            plan = inference.InferencePlan(self._plan, shape, self.dtype)
            while len(self._inference_plans) >= inference.MAX_PLANS:
                del self._inference_plans[next(iter(self._inference_plans))]
        self._inference_plans[key] = plan  # last: the most recently used
        return plan

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
            total_loss, total_correct = 0.0, 0
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                if schedule is not None:
                    optimizer.lr = schedule(step)
                value, correct = self.train_step(x[idx], y[idx], optimizer, loss)
                total_loss += value * len(idx)
                total_correct += correct
                if on_batch is not None:
                    on_batch(epoch, step, value, correct)
                step += 1
            history.append({"loss": total_loss / len(x), "accuracy": total_correct / len(x)})
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
