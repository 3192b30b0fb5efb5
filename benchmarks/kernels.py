"""Time every kernel of one training step, per backend, against this machine's matrix-product rate.

For the layer shapes of a network (default: keras-example at batch 128) it times, with each kernel
backend (numpy, and numba when importable): convolution forward and backward, max pooling forward
and backward, ReLU forward and backward, and the Dense layer; then NumPy's float32 matrix product
on a 1024^3 problem and on the very GEMM shapes the convolutions hand to BLAS.

    python benchmarks/kernels.py                 # table on stdout
    python benchmarks/kernels.py --json out.json # also the numbers as JSON ("-" for stdout)

Operation counts: convolution 2*N*OH*OW*F*C*KH*KW per product (forward; backward has one for the
weights and one for the input unless it is the first layer), Dense 2*N*D*U per product; pooling
counts one comparison per window element after the first (forward) and one per window (backward),
ReLU one per element. For those memory-bound kernels GB/s — the bytes that must at least be read
and written — says more than GFLOP/s. Times are medians; other processes on the machine add noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scratchcnn as sc  # noqa: E402
from scratchcnn.nn.fusion import execution_order  # noqa: E402
from scratchcnn.nn.kernels import BACKENDS, conv, pool, set_backend  # noqa: E402

F32 = 4  # bytes


TIMING = {"min_seconds": 0.5, "min_repeats": 7, "max_repeats": 100}  # --quick: 0.02, 2, 5


def timeit(fn, min_seconds=None, min_repeats=None, max_repeats=None) -> dict:
    """Median and minimum seconds of ``fn()`` after two warm-up calls (Numba compiles in these):
    at least ``min_repeats`` calls and ``min_seconds`` in all, at most ``max_repeats`` calls."""
    min_seconds = TIMING["min_seconds"] if min_seconds is None else min_seconds
    min_repeats = TIMING["min_repeats"] if min_repeats is None else min_repeats
    max_repeats = TIMING["max_repeats"] if max_repeats is None else max_repeats
    fn()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    repeats = int(min(max_repeats, max(min_repeats, math.ceil(min_seconds / max(first, 1e-9)))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def matmul_case(m: int, k: int, n: int, name: str, transpose_b: bool = False, rng=None) -> dict:
    """float32 ``(m, k) @ (k, n)``; ``transpose_b`` passes B as the transpose of a (n, k) array."""
    rng = rng or np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = (
        rng.random((n, k), dtype=np.float32).T
        if transpose_b
        else rng.random((k, n), dtype=np.float32)
    )
    timing = timeit(lambda: a @ b)
    flops = 2.0 * m * k * n
    return {"name": name, "shape": f"({m}x{k}) @ ({k}x{n})", "flops": flops, **timing}


def layer_shapes(arch: str, batch: int) -> list[tuple[int, sc.Layer, tuple]]:
    """(index, layer, batch input shape) for every layer of ``arch`` on a batch of ``batch``, in
    the order the model runs them (a ReLU before a MaxPool2D may run after it, on less data)."""
    model = sc.build_model(arch, seed=0)
    plan = execution_order(model.layers)
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    rows, shape = [], model.input_shape
    for layer in plan:
        rows.append((index[id(layer)], layer, (batch, *shape)))
        if layer.output_shape != layer.input_shape:  # elementwise layers keep the running shape
            shape = layer.output_shape
    return rows


def kernel_cases(arch: str, batch: int, rng) -> list[dict]:
    """Kernel calls of the active backend (closures over ready inputs), with operation and byte
    counts; backward passes get what the same backend's forward pass produced."""
    cases = []
    for i, layer, shape in layer_shapes(arch, batch):
        tag = f"{i}:{type(layer).__name__}"
        if isinstance(layer, sc.Conv2D):
            x = rng.random(shape, dtype=np.float32)
            w, b = layer.params["weight"].data, layer.params["bias"].data
            f, c, kh, kw = w.shape
            out_shape = (batch, *layer.output_shape)
            macs = batch * out_shape[2] * out_shape[3] * f * c * kh * kw
            dout = rng.standard_normal(out_shape, dtype=np.float32)
            io_bytes = F32 * (x.size + dout.size + w.size)
            need_dx = i > 0

            def forward(x=x, w=w, b=b, layer=layer):
                return conv.conv2d_forward(x, w, b, layer.stride, layer.pads, True)

            cols = forward()[1]  # what the backward pass gets from the forward

            def backward(dout=dout, cols=cols, x=x, w=w, layer=layer, need_dx=need_dx):
                return conv.conv2d_backward(
                    dout, cols, x.shape, w, layer.stride, layer.pads, need_dx
                )

            cases.append(dict(layer=tag, kernel="conv2d_forward", shape=f"{shape} * {w.shape}",
                              flops=2.0 * macs, bytes=io_bytes, fn=forward))  # fmt: skip
            cases.append(dict(layer=tag, kernel="conv2d_backward" + ("" if need_dx else " (no dx)"),
                              shape=f"{out_shape}", flops=2.0 * macs * (2 if need_dx else 1),
                              bytes=io_bytes + F32 * (x.size if need_dx else 0), fn=backward))  # fmt: skip
        elif isinstance(layer, sc.MaxPool2D):
            x = rng.standard_normal(shape, dtype=np.float32)
            out_shape = (batch, *layer.output_shape)
            n_out = math.prod(out_shape)
            window = layer.pool_size[0] * layer.pool_size[1]
            dout = rng.standard_normal(out_shape, dtype=np.float32)

            def pool_forward(x=x, layer=layer):
                return pool.maxpool2d_forward(x, layer.pool_size, layer.stride, training=True)

            argmax = pool_forward()[1]

            def pool_backward(dout=dout, argmax=argmax, x=x, layer=layer):
                return pool.maxpool2d_backward(dout, argmax, x.shape, layer.pool_size, layer.stride)

            cases.append(dict(layer=tag, kernel="maxpool2d_forward", shape=str(shape),
                              flops=n_out * (window - 1), bytes=F32 * (x.size + n_out) + n_out,
                              fn=pool_forward))  # fmt: skip
            cases.append(dict(layer=tag, kernel="maxpool2d_backward", shape=str(out_shape),
                              flops=n_out, bytes=F32 * (n_out + x.size) + n_out,
                              fn=pool_backward))  # fmt: skip
        elif isinstance(layer, sc.ReLU):
            x = rng.standard_normal(shape, dtype=np.float32)
            out = np.maximum(x, 0)
            dout = rng.standard_normal(shape, dtype=np.float32)
            cases.append(dict(layer=tag, kernel="relu_forward", shape=str(shape), flops=x.size,
                              bytes=2 * F32 * x.size,
                              fn=lambda x=x: pool.relu_forward(x)))  # fmt: skip
            cases.append(dict(layer=tag, kernel="relu_backward", shape=str(shape), flops=x.size,
                              bytes=3 * F32 * x.size,
                              fn=lambda d=dout, o=out: pool.relu_backward(d, o)))  # fmt: skip
        elif isinstance(layer, sc.Dense):
            x = rng.random(shape, dtype=np.float32)
            d, u = layer.params["weight"].data.shape
            layer.forward(x, training=True)
            dout = rng.standard_normal((batch, u), dtype=np.float32)

            def dense_backward(layer=layer, x=x, dout=dout):
                layer.forward(x, training=True)  # the layer keeps x for one backward
                return layer.backward(dout)

            cases.append(dict(layer=tag, kernel="dense_forward (numpy @)", shape=f"{shape} @ ({d}, {u})",
                              flops=2.0 * batch * d * u, bytes=F32 * (x.size + d * u + batch * u),
                              fn=lambda layer=layer, x=x: layer.forward(x)))  # fmt: skip
            cases.append(dict(layer=tag, kernel="dense_fwd+backward (numpy @)", shape=f"({batch}, {u})",
                              flops=2.0 * batch * d * u * (3 if layer.needs_input_grad else 2),
                              bytes=2 * F32 * (x.size + d * u + batch * u), fn=dense_backward))  # fmt: skip
    return cases


def conv_gemm_cases(arch: str, batch: int) -> list[dict]:
    """The matrix products the im2col convolutions of ``arch`` perform, timed on plain arrays."""
    cases = []
    for i, layer, _ in layer_shapes(arch, batch):
        if not isinstance(layer, sc.Conv2D):
            continue
        f, c, kh, kw = layer.params["weight"].data.shape
        ckk, pixels = c * kh * kw, batch * layer.output_shape[1] * layer.output_shape[2]
        cases.append(matmul_case(f, ckk, pixels, f"{i}:Conv2D forward  W @ cols"))
        cases.append(matmul_case(f, pixels, ckk, f"{i}:Conv2D dweight  dout @ cols.T", True))
        if i > 0:
            cases.append(matmul_case(ckk, f, pixels, f"{i}:Conv2D dcols  W.T @ dout"))
    return cases


def available_backends(requested: list[str]) -> tuple[list[str], dict]:
    usable, notes = [], {}
    for name in requested:
        try:
            set_backend(name)
            usable.append(name)
        except ImportError as err:
            notes[name] = f"skipped: {type(err).__name__}: {err}"
    return usable, notes


def run(args) -> dict:
    rng = np.random.default_rng(0)
    peak = matmul_case(1024, 1024, 1024, "float32 matmul 1024^3", rng=rng)
    gemms = conv_gemm_cases(args.arch, args.batch_size)
    backends, notes = available_backends(args.backends)
    kernels = []
    for backend in backends:
        set_backend(backend)
        for case in kernel_cases(args.arch, args.batch_size, np.random.default_rng(1)):
            fn = case.pop("fn")
            start = time.perf_counter()
            fn()  # first call: Numba compiles (or loads its cache) here
            first_call = time.perf_counter() - start
            kernels.append({"backend": backend, **case, "first_call_s": first_call, **timeit(fn)})
    for row in [peak, *gemms, *kernels]:
        row["gflops"] = row["flops"] / row["median_s"] / 1e9
        row["fraction_of_matmul"] = row["gflops"] / (peak["flops"] / peak["median_s"] / 1e9)
        if "bytes" in row:
            row["gb_per_s"] = row["bytes"] / row["median_s"] / 1e9
    batches = math.ceil(args.epoch_images / args.batch_size)
    per_backend = {}
    for backend in backends:
        step = sum(  # the Dense fwd+backward row already holds its forward
            k["median_s"]
            for k in kernels
            if k["backend"] == backend and not k["kernel"].startswith("dense_forward")
        )
        per_backend[backend] = {"step_s": step, "epoch_s": step * batches, "batches": batches}
    return {
        "arch": args.arch,
        "batch_size": args.batch_size,
        "threads": {"cores": os.cpu_count(), "blas": _blas_threads()},
        "numpy": np.__version__,
        "matmul_1024": peak,
        "conv_gemms": gemms,
        "kernels": kernels,
        "training_step_kernel_sum": per_backend,
        "notes": notes,
    }


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [i.get("num_threads") for i in threadpool_info() if i.get("user_api") == "blas"]


def table(result: dict) -> str:
    peak = result["matmul_1024"]
    lines = [
        f"{result['arch']} at batch {result['batch_size']}; NumPy {result['numpy']}, "
        f"BLAS threads {result['threads']['blas']}, {result['threads']['cores']} cores",
        f"float32 matmul 1024^3: {peak['median_s'] * 1e3:.2f} ms = {peak['gflops']:.1f} GFLOP/s "
        "(the 100% below; ms are medians, GFLOP/s from them)",
        "",
        f"{'GEMM of the convolutions':<36} {'shape':<28} {'ms':>8} {'min ms':>8} {'GFLOP/s':>8}"
        f" {'%peak':>6}",
    ]
    for g in result["conv_gemms"]:
        lines.append(
            f"{g['name']:<36} {g['shape']:<28} {g['median_s'] * 1e3:>8.3f} {g['min_s'] * 1e3:>8.3f}"
            f" {g['gflops']:>8.1f} {100 * g['fraction_of_matmul']:>5.0f}%"
        )
    lines += [
        "",
        f"{'backend':<7} {'layer':<12} {'kernel':<30} {'ms':>8} {'min ms':>8} {'GFLOP/s':>8}"
        f" {'%peak':>6} {'GB/s':>6} {'1st call ms':>11}",
    ]
    for k in result["kernels"]:
        lines.append(
            f"{k['backend']:<7} {k['layer']:<12} {k['kernel']:<30} {k['median_s'] * 1e3:>8.3f} "
            f"{k['min_s'] * 1e3:>8.3f} {k['gflops']:>8.2f} {100 * k['fraction_of_matmul']:>5.1f}% {k['gb_per_s']:>6.1f}"
            f" {k['first_call_s'] * 1e3:>11.1f}"
        )
    lines.append("")
    for backend, s in result["training_step_kernel_sum"].items():
        lines.append(
            f"{backend}: kernels of one training step {s['step_s'] * 1e3:.1f} ms; x {s['batches']} "
            f"batches = {s['epoch_s']:.1f} s per epoch (kernels only: no loss, optimizer or copies)"
        )
    for backend, note in result["notes"].items():
        lines.append(f"{backend}: {note}")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Kernel times and GFLOP/s against the matmul rate.")
    p.add_argument("--arch", default="keras-example")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: all)")
    p.add_argument("--epoch-images", type=int, default=60000, help="for the per-epoch projection")
    p.add_argument("--quick", action="store_true", help="few repeats: a smoke run, not numbers")
    p.add_argument("--json", nargs="?", const="-", default=None, help="write JSON to a file or '-'")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        TIMING.update(min_seconds=0.02, min_repeats=2, max_repeats=5)
    result = run(args)
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
