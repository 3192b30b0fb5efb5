"""How fast scratchcnn trains and predicts with each kernel backend, beside Keras when installed.

Measures, on the keras-example network (batch 128, SGD with momentum 0.9):

* a per-layer profile: median milliseconds of each layer's forward and backward pass per batch,
  in the order the model runs them;
* the time of one training epoch (60,000 images unless ``--images``), per backend, and Keras's
  with ``--keras`` (TensorFlow, same network, in a subprocess);
* single-image prediction latency: the median of ``--latency-calls`` calls of
  ``model.predict_proba`` on one image;
* peak memory (VmHWM) of a training run, in a fresh subprocess per configuration: the train CLI
  (one epoch, the whole set loaded) and ``model.fit`` with the images held as float32 or uint8;
* Numba's first-call JIT compile time (fresh cache) and the start-up time of a second process that
  loads the on-disk cache;
* the machine's float32 matrix-product rate and the fraction of it the convolutions reach.

Prints a table and writes everything as JSON with ``--json PATH``. Other processes on the machine
change every number: the load average is recorded at the start and at the end.

    python benchmarks/epoch_time.py --images 12800 --keras --json results.json

It measures the scratchcnn of the checkout it lives in, or the one in the folder named by the
environment variable ``SCRATCHCNN_SRC`` (to measure an older version with the same script).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("SCRATCHCNN_SRC", str(REPO_ROOT)))
sys.path.insert(1, str(REPO_ROOT / "benchmarks"))  # our helpers

from process_memory import peak_rss_mb  # noqa: E402

BATCH = 128


# -- data and machine ---------------------------------------------------------------------------
def load_train(images: int, as_uint8: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``images`` MNIST training images as float32 (N, 1, 28, 28) in [0, 1] (or the raw
    uint8 (N, 28, 28) pixels), int64 labels, and where they came from (random pixels when the IDX
    files are absent: speed is the same)."""
    from scratchcnn.data import MissingDataError, data_location, load_mnist, to_float_images

    try:
        (pixels, labels), _ = load_mnist(download=False, progress=False)
        pixels, labels = pixels[:images], labels[:images]
        source = str(data_location())
    except MissingDataError:
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (images, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, images).astype(np.uint8)
        source = "random pixels (MNIST not found)"
    if as_uint8:
        return pixels.copy(), labels.astype(np.int64), source
    return to_float_images(pixels), labels.astype(np.int64), source


def machine() -> dict:
    """CPU model, core count, library versions and the current load average."""
    cpu = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": os.getloadavg(),
        "threads_env": {
            v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
        },
    }
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    return info


def matmul_gflops(n: int = 1024, repeats: int = 15) -> dict[str, float]:
    """The machine's float32 matrix-product rate: median GFLOP/s of an n x n by n x n product with
    BLAS on 1 thread and on every core (keyed "1" and "all"), measured one after the other."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    rates = {}
    for key, limit in (("1", 1), ("all", None)):
        with threadpool_limits(limit, user_api="blas"):
            a @ b
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
        rates[key] = 2 * n**3 / float(np.median(times)) / 1e9
    return rates


def conv_flops(model, batch: int) -> float:
    """Floating-point operations of every Conv2D's forward and backward passes for one batch."""
    import scratchcnn as sc

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, sc.Conv2D):
            f, c, kh, kw = layer.params["weight"].data.shape
            _, oh, ow = layer.output_shape
            one = 2.0 * f * c * kh * kw * oh * ow * batch  # one matrix product's worth
            total += one * (3 if layer.needs_input_grad else 2)  # forward, dweight, dinput
    return total


# -- measurements in this process ---------------------------------------------------------------
def use(config: str) -> str:
    """Select a configuration "backend/threads" (e.g. "numba/2"); return the backend's name."""
    import scratchcnn as sc

    backend, threads = config.split("/")
    sc.set_backend(backend)
    if hasattr(sc, "set_threads"):
        sc.set_threads(int(threads))
    else:  # an older scratchcnn (SCRATCHCNN_SRC): its only threads were BLAS's
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads), user_api="blas")
    return backend


def new_model(config: str):
    import scratchcnn as sc

    use(config)
    model = sc.build_model("keras-example", seed=0)
    return model, sc.SGD(model.parameters(), lr=0.01, momentum=0.9)


class _Clock:
    """Collects wall and CPU (process) seconds of named sections; CPU time is what the section
    would take on an otherwise idle machine when it runs on one thread."""

    def __init__(self):
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, name: str, func, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func(*args)
        self.wall.setdefault(name, []).append(time.perf_counter() - wall)
        self.cpu.setdefault(name, []).append(time.process_time() - cpu)
        return result

    def medians_ms(self, skip: int) -> dict[str, dict[str, float]]:
        def ms(values):
            return 1000 * float(np.median(values[skip:]))

        return {k: {"wall": ms(self.wall[k]), "cpu": ms(self.cpu[k])} for k in self.wall}


def profile(config: str, x: np.ndarray, y: np.ndarray, batches: int) -> dict:
    """Median ms per batch (wall and CPU) of each layer's forward and backward pass, in the order
    the model runs them, and of the loss, the SGD step and the whole step."""
    from scratchcnn.nn.fusion import fused_plan
    from scratchcnn.nn.losses import SoftmaxCrossEntropy

    model, optimizer = new_model(config)
    loss = SoftmaxCrossEntropy()
    plan = fused_plan(model.layers)  # the steps the model runs
    names = [
        "+".join(f"{model.layers.index(part)}:{type(part).__name__}" for part in parts)
        for parts in (getattr(step, "layers", (step,)) for step in plan)
    ]
    clock, warmup = _Clock(), 3

    def step(xb, yb):
        out = model._check_input(xb)
        for name, layer in zip(names, plan, strict=True):
            out = clock(f"{name} forward", layer.forward, out, True)
        clock("loss", loss.forward, out, yb)
        dout = clock("loss backward", loss.backward)
        for name, layer in zip(reversed(names), reversed(plan), strict=True):
            dout = clock(f"{name} backward", layer.backward, dout)
        clock("sgd", optimizer.step)

    for b in range(batches + warmup):
        lo = (b * BATCH) % (len(x) - BATCH + 1)
        clock("step", step, x[lo : lo + BATCH], y[lo : lo + BATCH])
    sections = clock.medians_ms(warmup)
    layers = {n: {d: sections[f"{n} {d}"] for d in ("forward", "backward")} for n in names}
    conv_ms = sum(
        v[d]["wall"] for n, v in layers.items() if "Conv2D" in n for d in ("forward", "backward")
    )
    return {
        "layers": layers,
        "loss": {k: sections["loss"][k] + sections["loss backward"][k] for k in ("wall", "cpu")},
        "sgd": sections["sgd"],
        "step": sections["step"],
        "conv_ms": conv_ms,
        "conv_gflops": conv_flops(model, BATCH) / conv_ms / 1e6,
    }


def epoch_seconds(config: str, x: np.ndarray, y: np.ndarray) -> float:
    """Wall time of ``model.fit`` for one epoch over ``x`` (after a one-batch warm-up)."""
    model, optimizer = new_model(config)
    model.fit(x[:BATCH], y[:BATCH], optimizer, epochs=1, batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, optimizer, epochs=1, batch_size=BATCH, verbose=0)
    return time.perf_counter() - start


def latency_ms(configs: list[str], x: np.ndarray, calls: int, block: int = 50) -> dict:
    """Median ms of ``model.predict_proba`` on one image, ``calls`` calls per configuration, in
    blocks of ``block`` calls taking turns, so that other processes' load hits all alike."""
    models = {c: new_model(c)[0] for c in configs}
    times: dict[str, list[float]] = {c: [] for c in configs}
    for c in configs:  # warm-up: compile, fill the buffer pool
        use(c)
        for _ in range(20):
            models[c].predict_proba(x[:1])
    for start in range(0, calls, block):
        for c in configs:
            use(c)
            for i in range(start, min(start + block, calls)):
                image = x[i % len(x)][None]
                t = time.perf_counter()
                models[c].predict_proba(image)
                times[c].append(time.perf_counter() - t)
    return {c: 1000 * float(np.median(t)) for c, t in times.items()}


# -- measurements in fresh processes -----------------------------------------------------------
def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run this script as a child with ``args``; return the JSON it prints on its last line."""
    result = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_memory(config: str, images: int, data: str) -> dict:
    """Hold the whole training set, train ``images`` of it for one epoch, predict 1,000; report
    the peak resident set size and what the process held before training, in MB.

    ``data`` "float32": the set as one float32 array given to ``model.fit`` (what the train CLI
    does); "uint8": the raw pixels, each shuffled batch converted when it is used.
    """

    import scratchcnn  # noqa: F401

    model, optimizer = new_model(config)
    before_data = peak_rss_mb()
    x, y, _ = load_train(60000, as_uint8=data == "uint8")
    before_training = peak_rss_mb()
    if data == "uint8":
        order = np.random.default_rng(0).permutation(images)
        for start in range(0, images, BATCH):
            idx = order[start : start + BATCH]
            batch = x[idx][:, None].astype(np.float32) / np.float32(255.0)
            model.train_step(batch, y[idx], optimizer)
        model.predict_proba(x[:1000][:, None].astype(np.float32) / np.float32(255.0))
    else:
        model.fit(x[:images], y[:images], optimizer, epochs=1, batch_size=BATCH, verbose=0)
        model.predict_proba(x[:1000])
    return {
        "peak_mb": peak_rss_mb(),
        "before_data_mb": before_data,
        "before_training_mb": before_training,
    }


def child_cli(config: str, images: int) -> dict:
    """Run the train CLI for one epoch on ``images`` training images (the whole set is loaded, as
    always, augmentation and validation on) in this process; report its peak memory in MB."""
    from scratchcnn.training.train import main as train

    backend, threads = config.split("/")
    os.environ["SCRATCHCNN_THREADS"] = threads
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--arch", "keras-example", "--epochs", "1", "--warmup-epochs", "0",
            "--train-size", str(images), "--val-size", "0.1", "--backend", backend, "--no-progress",
            "--output", str(Path(tmp) / "model.npz"), "--checkpoint", str(Path(tmp) / "ckpt.npz"),
        ]  # fmt: skip
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                code = train(argv)
            finally:
                sys.stdout = stdout
    if code != 0:
        raise RuntimeError(f"the train CLI failed with exit code {code}")
    return {"peak_mb": peak_rss_mb()}


def child_startup(config: str) -> dict:
    """Seconds to import scratchcnn, then for the first training step and prediction (compiling
    whatever is not cached), then for a second step (compiled)."""
    start = time.perf_counter()
    import scratchcnn as sc

    imported = time.perf_counter()
    use(config)
    model = sc.build_model("keras-example", seed=0)
    optimizer = sc.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    t0 = time.perf_counter()
    model.train_step(x, y, optimizer)
    model.predict_proba(x[:1])
    t1 = time.perf_counter()
    model.train_step(x, y, optimizer)
    model.predict_proba(x[:1])
    t2 = time.perf_counter()
    return {
        "import_s": imported - start,
        "first_step_s": t1 - t0,
        "second_step_s": t2 - t1,
        "compile_s": (t1 - t0) - (t2 - t1),
    }


def jit_times(config: str) -> dict:
    """Numba start-up with an empty cache directory (compiles everything), then again (cached)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = run_child(["--child", "startup", config], env)
        warm = run_child(["--child", "startup", config], env)
    return {"cold": cold, "cached": warm}


def child_keras(images: int, calls: int) -> dict:
    """Keras/TensorFlow on the same network: one epoch (after a compiling warm-up) and the median
    latency of ``model(image)``."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    x, y, _ = load_train(images)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # channels last, Keras's layout
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[: 4 * BATCH], y[: 4 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
    epoch = time.perf_counter() - start
    times = []
    for i in range(calls // 5 + 20):
        image = x[i % len(x)][None]
        t = time.perf_counter()
        model(image, training=False)
        times.append(time.perf_counter() - t)
    return {
        "epoch_s": epoch,
        "latency_ms": 1000 * float(np.median(times[20:])),
        "peak_mb": peak_rss_mb(),
        "version": keras.__version__,
    }


# -- report ----------------------------------------------------------------------------------------
def print_report(r: dict) -> None:
    m = r["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores; numpy {m['numpy']}, numba {m['numba']}")
    print(f"load average at start {m['load_average']}, at end {r['load_average_end']}")
    rates = r["matmul_gflops"]
    print(
        f"float32 matmul (1024^3, median): {rates['1']:.0f} GFLOP/s on one thread, "
        f"{rates['all']:.0f} on all cores; fractions below are of the larger"
    )
    configs = list(r["configs"])
    print("\nPer batch of 128, median ms: wall (cpu); layers in the order the model runs them")
    names = list(r["configs"][configs[0]]["profile"]["layers"])
    print(f"{'':<14}" + "".join(f"{c + ' fwd':>19}{c + ' bwd':>19}" for c in configs))

    def cell(t):
        return f"{t['wall']:>8.2f} ({t['cpu']:>6.2f})  "

    for name in names:
        cells = "".join(
            cell(r["configs"][c]["profile"]["layers"][name][d])
            for c in configs
            for d in ("forward", "backward")
        )
        print(f"{name:<14}{cells}")
    for key in ("loss", "sgd", "step"):
        cells = "".join(cell(r["configs"][c]["profile"][key]) + " " * 19 for c in configs)
        print(f"{key:<14}{cells}")
    print()
    scale = 60000 / r["images"]
    keras = r.get("keras")
    for c in configs:
        res = r["configs"][c]
        line = f"{c:>8}: "
        if "epoch_s" in res:
            line += f"epoch {res['epoch_s']:.1f} s for {r['images']} images "
            line += f"(= {res['epoch_s'] * scale:.1f} s per 60,000"
            if keras:
                line += f", {res['epoch_s'] / keras['epoch_s']:.2f}x Keras"
            line += "); "
        if "latency_ms" in res:
            line += f"latency {res['latency_ms']:.3f} ms; "
        if "memory" in res:
            f32, u8 = res["memory"]["float32"], res["memory"]["uint8"]
            line += (
                f"peak memory: train CLI {res['memory']['train_cli']['peak_mb']:.0f} MB, fit on "
                f"float32 data {f32['peak_mb']:.0f} MB, on uint8 {u8['peak_mb']:.0f} MB "
                f"({f32['before_data_mb']:.0f} MB before loading data); "
            )
        prof = res["profile"]
        frac = prof["conv_gflops"] / max(r["matmul_gflops"].values())
        line += f"convolutions {prof['conv_gflops']:.0f} GFLOP/s = {frac:.0%} of matmul"
        print(line)
    if keras:
        print(
            f"   keras: epoch {keras['epoch_s']:.1f} s (= {keras['epoch_s'] * scale:.1f} s per "
            f"60,000), latency {keras['latency_ms']:.2f} ms, peak {keras['peak_mb']:.0f} MB "
            f"(Keras {keras['version']}, its default threads)"
        )
    if "jit" in r:
        cold, warm = r["jit"]["cold"], r["jit"]["cached"]
        print(
            f"numba JIT: first training step + prediction {cold['first_step_s']:.1f} s with an "
            f"empty cache (compiling ~{cold['compile_s']:.1f} s), {warm['first_step_s']:.2f} s "
            f"in a second process (cache); a compiled step takes {warm['second_step_s']:.2f} s"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=60000, help="training images per epoch")
    p.add_argument("--backends", default="numpy,numba", help="comma-separated backends")
    p.add_argument(
        "--threads", default=str(os.cpu_count() or 1), help="comma-separated thread counts"
    )
    p.add_argument("--profile-batches", type=int, default=30)
    p.add_argument("--latency-calls", type=int, default=1000)
    p.add_argument(
        "--memory-images", type=int, default=12800, help="images trained in the memory run"
    )
    p.add_argument("--keras", action="store_true", help="also time Keras/TensorFlow")
    p.add_argument("--skip", default="", help="comma-separated: epoch,latency,memory,jit")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:  # a measurement that needs a fresh process
        kind, *rest = args.child
        if kind == "memory":
            result = child_memory(rest[0], int(rest[1]), rest[2])
        elif kind == "startup":
            result = child_startup(rest[0])
        elif kind == "cli":
            result = child_cli(rest[0], int(rest[1]))
        else:
            result = child_keras(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return 0

    skip = set(filter(None, args.skip.split(",")))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    configs = [f"{b}/{t}" for t in threads for b in backends]
    x, y, source = load_train(args.images)
    report = {
        "machine": machine(),
        "images": len(x),
        "data": source,
        "batch_size": BATCH,
        "matmul_gflops": matmul_gflops(),
        "configs": {c: {} for c in configs},
    }
    for c in configs:
        print(f"profiling {c} ...", file=sys.stderr)
        report["configs"][c]["profile"] = profile(c, x, y, args.profile_batches)
    if "epoch" not in skip:  # one configuration after the other, then Keras
        for c in configs:
            print(f"epoch {c} ...", file=sys.stderr)
            report["configs"][c]["epoch_s"] = epoch_seconds(c, x, y)
    if args.keras:
        print("keras ...", file=sys.stderr)
        report["keras"] = run_child(["--child", "keras", str(len(x)), str(args.latency_calls)])
    if "latency" not in skip:
        for c, ms in latency_ms(configs, x, args.latency_calls).items():
            report["configs"][c]["latency_ms"] = ms
    if "memory" not in skip:
        for c in configs:
            print(f"memory {c} ...", file=sys.stderr)
            images = str(args.memory_images)
            report["configs"][c]["memory"] = {
                data: run_child(["--child", "memory", c, images, data])
                for data in ("float32", "uint8")
            }
            report["configs"][c]["memory"]["train_cli"] = run_child(["--child", "cli", c, images])
    numba_configs = [c for c in configs if c.startswith("numba/")]
    if "jit" not in skip and numba_configs:
        print("numba compile times ...", file=sys.stderr)
        report["jit"] = jit_times(numba_configs[-1])
    report["load_average_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
