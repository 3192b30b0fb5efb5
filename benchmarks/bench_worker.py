"""One benchmarked system in its own process, driven by ``compare.py`` over a line protocol.

The parent writes one command per line on stdin — ``epoch``, ``inference``, ``finish`` — and the
worker answers each with one JSON line on its original stdout (anything else the libraries print
goes to stderr). The first message, sent unasked, is ``ready`` (or ``unavailable`` with a reason,
e.g. numba or Keras not installed). Peak memory is this process's own (VmHWM).

Systems: ``numpy`` and ``numba`` (scratchcnn with that kernel backend), ``keras`` (the Keras 3
/ TensorFlow reference from ``keras_reference.py``) and ``torch`` (the PyTorch CPU reference from
``torch_reference.py``), the references started from scratchcnn's initial weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's scratchcnn, then our helpers

import mnist_data  # noqa: E402
from process_memory import peak_rss_mb  # noqa: E402

import scratchcnn as sc  # noqa: E402


def blas_threads() -> list[dict]:
    """The BLAS libraries NumPy loaded and their thread counts (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {k: info.get(k) for k in ("internal_api", "version", "num_threads")}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]


class ScratchSystem:
    """scratchcnn with one kernel backend; raises ImportError when the backend is missing."""

    def __init__(self, args, backend: str):
        self.name = f"scratchcnn-{backend}"
        sc.set_backend(backend)
        threads = sc.set_threads(args.threads or None)
        self.model = sc.build_model(args.arch, seed=args.seed)
        self.optimizer = sc.SGD(self.model.parameters(), lr=args.lr, momentum=args.momentum)
        self.batch_size = args.batch_size
        self.info = {
            "backend": sc.backend_name(),
            "numpy": np.__version__,
            "threads": threads,
            "blas": blas_threads(),
        }
        if backend == "numba":
            import numba

            self.info.update(numba=numba.__version__, numba_threads=numba.get_num_threads())

    def load(self, x_train, y_train, x_test, y_test):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test

    def warm_up(self) -> None:
        """One training step and one single-image call, then every weight, velocity and random
        state put back: compiles (or loads from cache) Numba's kernels outside the timings."""
        params = [p.data.copy() for p in self.model.parameters()]
        velocities = [v.copy() for v in self.optimizer.velocities]
        rng_state = self.model.rng.bit_generator.state
        n = self.batch_size
        self.model.train_step(self.x_train[:n], self.y_train[:n], self.optimizer)
        self.model.predict(self.x_test[:n])
        self.predict_one(0)
        for p, saved in zip(self.model.parameters(), params, strict=True):
            p.data[...] = saved
        for v, saved in zip(self.optimizer.velocities, velocities, strict=True):
            v[...] = saved
        self.model.rng.bit_generator.state = rng_state

    def train_epoch(self) -> float:
        history = self.model.fit(
            self.x_train,
            self.y_train,
            self.optimizer,
            epochs=1,
            batch_size=self.batch_size,
            verbose=0,
        )
        return history.history["loss"][0]

    def evaluate(self, batch_size: int) -> tuple[float, float]:
        return self.model.evaluate(self.x_test, self.y_test, batch_size=batch_size)

    def predict_all(self, batch_size: int) -> np.ndarray:
        return self.model.predict(self.x_test, batch_size=batch_size)

    def call_one(self, i: int):
        """Logits of one image: the model's forward call, as Keras's ``model(x)``."""
        return self.model.forward(self.x_test[i : i + 1])

    def predict_one(self, i: int):
        return self.model.predict(self.x_test[i : i + 1])


class KerasSystem:
    """The Keras reference, channels last, started from scratchcnn's initial weights."""

    def __init__(self, args):
        self.name = "keras"
        import keras_reference as kr

        self.kr = kr
        threads = kr.configure_threads(args.threads or None)
        import keras

        self.keras = keras
        keras.utils.set_random_seed(args.seed)
        self.model = kr.build_keras_model(args.arch, seed=args.seed)
        template = sc.build_model(args.arch, seed=args.seed)  # same start as scratchcnn's
        from scratchcnn.nn.interop import to_keras_weights

        self.model.set_weights(to_keras_weights(template))
        kr.compile_like(self.model, lr=args.lr, momentum=args.momentum)
        self.batch_size = args.batch_size
        self.info = {
            **kr.versions(),
            "tf_intra_op_threads": threads,
            "tf_inter_op_threads": threads,
            "jit_compile": bool(self.model.jit_compile),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        }

    def load(self, x_train, y_train, x_test, y_test):
        to_nhwc = self.kr.to_nhwc
        self.x_train, self.y_train = to_nhwc(x_train), y_train
        self.x_test, self.y_test = to_nhwc(x_test), y_test

    def warm_up(self) -> None:
        """One training step (traces Keras's train function) and the inference paths, then the
        weights and optimizer state (velocities, step counter) put back."""
        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)  # its velocities exist from here on
        weights = self.model.get_weights()
        state = [v.numpy() for v in optimizer.variables]
        n = self.batch_size
        self.model.train_on_batch(self.x_train[:n], self.y_train[:n])
        self.model.predict(self.x_test[:n], batch_size=n, verbose=0)
        self.call_one(0)
        self.predict_one(0)
        self.model.set_weights(weights)
        for variable, value in zip(optimizer.variables, state, strict=True):
            variable.assign(value)

    def train_epoch(self) -> float:
        history = self.model.fit(
            self.x_train, self.y_train, batch_size=self.batch_size, epochs=1, verbose=0
        )
        return float(history.history["loss"][0])

    def evaluate(self, batch_size: int) -> tuple[float, float]:
        result = self.model.evaluate(
            self.x_test, self.y_test, batch_size=batch_size, verbose=0, return_dict=True
        )
        return float(result["loss"]), float(result["accuracy"])

    def predict_all(self, batch_size: int) -> np.ndarray:
        return self.model.predict(self.x_test, batch_size=batch_size, verbose=0).argmax(axis=1)

    def call_one(self, i: int):
        return self.model(self.x_test[i : i + 1], training=False)

    def predict_one(self, i: int):
        return self.model.predict(self.x_test[i : i + 1], verbose=0)


class TorchSystem:
    """The PyTorch reference (CPU), NCHW like scratchcnn, started from scratchcnn's initial
    weights through the interop layer; inference under ``torch.inference_mode``."""

    def __init__(self, args):
        self.name = "torch"
        import torch
        import torch_reference as tr

        self.torch = torch
        threads = tr.configure_threads(args.threads or None)
        torch.manual_seed(args.seed)
        self.generator = torch.Generator().manual_seed(args.seed)
        self.model = tr.build_torch_model(args.arch, seed=args.seed)  # scratchcnn's start
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=args.lr, momentum=args.momentum
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.batch_size = args.batch_size
        self.info = {
            **tr.versions(),
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "threads": threads,
        }

    def load(self, x_train, y_train, x_test, y_test):
        t = self.torch
        self.x_train, self.y_train = t.from_numpy(x_train), t.from_numpy(y_train)
        self.x_test_np = x_test
        self.x_test, self.y_test = t.from_numpy(x_test), t.from_numpy(y_test)

    def _step(self, x, y) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def warm_up(self) -> None:
        """One training step and the inference paths, then weights and optimizer state put back."""
        import copy

        weights = copy.deepcopy(self.model.state_dict())
        state = copy.deepcopy(self.optimizer.state_dict())
        n = self.batch_size
        self.model.train()
        self._step(self.x_train[:n], self.y_train[:n])
        self.predict_all(n)
        self.call_one(0)
        self.predict_one(0)
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state)

    def train_epoch(self) -> float:
        self.model.train()
        order = self.torch.randperm(len(self.x_train), generator=self.generator)
        total, seen = 0.0, 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            total += self._step(self.x_train[idx], self.y_train[idx]) * len(idx)
            seen += len(idx)
        return total / seen

    def evaluate(self, batch_size: int) -> tuple[float, float]:
        self.model.eval()
        total, correct = 0.0, 0
        with self.torch.inference_mode():
            for start in range(0, len(self.x_test), batch_size):
                x, y = (
                    self.x_test[start : start + batch_size],
                    self.y_test[start : start + batch_size],
                )
                logits = self.model(x)
                total += float(self.loss(logits, y)) * len(y)
                correct += int((logits.argmax(1) == y).sum())
        return total / len(self.x_test), correct / len(self.x_test)

    def predict_all(self, batch_size: int) -> np.ndarray:
        self.model.eval()
        with self.torch.inference_mode():
            return np.concatenate(
                [
                    self.model(self.x_test[s : s + batch_size]).argmax(1).numpy()
                    for s in range(0, len(self.x_test), batch_size)
                ]
            )

    def call_one(self, i: int):
        """Logits of one image: the module's call on a tensor, as Keras's ``model(x)``."""
        self.model.eval()
        with self.torch.inference_mode():
            return self.model(self.x_test[i : i + 1])

    def predict_one(self, i: int):
        """A NumPy image in, its class out, as scratchcnn's ``predict``."""
        self.model.eval()
        with self.torch.inference_mode():
            x = self.torch.from_numpy(self.x_test_np[i : i + 1])
            return self.model(x).argmax(1).numpy()


def make_system(args):
    if args.system == "keras":
        return KerasSystem(args)
    if args.system == "torch":
        return TorchSystem(args)
    return ScratchSystem(args, args.system)


def median_ms(fn, calls: int, n_images: int, warmup: int = 10) -> dict:
    """Median and 90th percentile wall time of ``fn(i)`` over ``calls`` calls, in milliseconds."""
    for i in range(warmup):
        fn(i % n_images)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i % n_images)
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "median_ms": 1e3 * statistics.median(times),
        "p90_ms": 1e3 * times[int(0.9 * (len(times) - 1))],
        "calls": calls,
    }


def run(args, send) -> None:
    t0 = time.perf_counter()
    try:
        system = make_system(args)
    except ImportError as err:
        send({"event": "unavailable", "reason": f"{type(err).__name__}: {err}"})
        return
    (x_train, y_train), (x_test, y_test) = mnist_data.load_mnist_float(args.data_dir)  # no download
    if args.images:
        x_train, y_train = x_train[: args.images], y_train[: args.images]
    if args.test_images:
        x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    system.load(x_train, y_train, x_test, y_test)
    n_train, n_test = len(x_train), len(x_test)
    startup = time.perf_counter() - t0
    start = time.perf_counter()
    system.warm_up()
    send(
        {
            "event": "ready",
            "system": system.name,
            "startup_s": startup,
            "warmup_s": time.perf_counter() - start,
            "train_images": n_train,
            "test_images": n_test,
            "info": system.info,
            "peak_rss_mb": peak_rss_mb(),
        }
    )
    epoch = 0
    for line in sys.stdin:
        command = line.strip()
        if command == "epoch":
            epoch += 1
            start = time.perf_counter()
            loss = system.train_epoch()
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            test_loss, test_accuracy = system.evaluate(args.eval_batch_size)
            send(
                {
                    "event": "epoch",
                    "epoch": epoch,
                    "seconds": seconds,
                    "images_per_s": n_train / seconds,
                    "train_loss": float(loss),
                    "test_loss": float(test_loss),
                    "test_accuracy": float(test_accuracy),
                    "eval_seconds": time.perf_counter() - start,
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
        elif command == "inference":
            times = []
            for _ in range(args.inference_repeats):
                start = time.perf_counter()
                predictions = system.predict_all(args.eval_batch_size)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            send(
                {
                    "event": "inference",
                    "test_images": n_test,
                    "batch_size": args.eval_batch_size,
                    "seconds": seconds,
                    "images_per_s": n_test / seconds,
                    "accuracy": float((np.asarray(predictions) == y_test).mean()),
                    "call_latency": median_ms(system.call_one, args.latency_calls, n_test),
                    "predict_latency": median_ms(
                        system.predict_one, args.predict_calls, n_test, warmup=3
                    ),
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
        elif command == "finish":
            send({"event": "finish", "peak_rss_mb": peak_rss_mb()})
            return
        else:
            send({"event": "error", "reason": f"unknown command {command!r}"})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", required=True, choices=("numpy", "numba", "keras", "torch"))
    p.add_argument("--arch", default="keras-example")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=0, help="training subset (0: all)")
    p.add_argument("--test-images", type=int, default=0, help="test subset (0: all)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--inference-repeats", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=500)
    p.add_argument("--predict-calls", type=int, default=100)
    p.add_argument(
        "--threads", type=int, default=0, help="TensorFlow's or scratchcnn's (0: all cores)"
    )
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Keep the original stdout for the protocol; send every stray print (ours, TF's) to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        run(args, send)
    except Exception as err:  # report, then fail: the parent keeps going with the other systems
        send({"event": "error", "reason": f"{type(err).__name__}: {err}"})
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
