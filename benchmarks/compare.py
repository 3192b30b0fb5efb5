"""scratchcnn (NumPy and Numba kernels) against Keras/TensorFlow and PyTorch on MNIST, one run.

Each system trains in its own process (``bench_worker.py``) so that its peak memory is its own;
the epochs are interleaved — epoch 1 of every system, then epoch 2 of every system, the order
rotating each epoch — so that a busy machine slows all of them alike. Same network, same initial
weights, same hyper-parameters (batch size, SGD learning rate and momentum); the data order and
dropout masks differ. Reported per epoch: training seconds, images/s, training loss, test
accuracy; then test-set inference images/s, single-image latency (median of ``--latency-calls``),
peak memory, and every system's ratios to Keras.

Systems: ``numpy``, ``numba`` (scratchcnn's two kernel backends), ``keras`` (Keras 3 on
TensorFlow, ``pip install -e ".[reference]"``) and ``torch`` (PyTorch on the CPU, optional: see
``torch_reference.py`` for a CPU-only install). By default all four run, and one whose library is
not installed is skipped with a note; a system named in ``--systems`` must run. A system that
fails (or is missing though named) is one line on stderr and makes the exit code 1.

MNIST is found as ``scratchcnn.data.load_mnist`` finds it (``--data-dir``, ``$SCRATCHCNN_DATA/mnist``,
the user cache) and downloaded once, before the systems start, unless ``--no-download``.

    python benchmarks/compare.py                      # the full run: 60,000 images, 3 epochs
    python benchmarks/compare.py --quick              # a smoke run: 2,000 images, 1 epoch

Writes ``results.json`` and ``results.md`` to ``--out`` (and ``accuracy_vs_time.png`` when
matplotlib is installed) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's scratchcnn, then our helpers

import compare_report  # noqa: E402

from scratchcnn.data.mnist import DatasetError, MissingDataError, locate  # noqa: E402
from scratchcnn.nn.architectures import ARCHITECTURES  # noqa: E402

SYSTEMS = ("numpy", "numba", "keras", "torch")
REFERENCE = "keras"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train scratchcnn, Keras and PyTorch side by side on MNIST."
    )
    p.add_argument(
        "--arch",
        default="keras-example",
        choices=sorted(ARCHITECTURES),
        help="network (default: keras-example)",
    )
    p.add_argument("--epochs", type=int, default=None, help="default 3 (--quick: 1)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--images", type=int, default=None, help="training images (default all 60,000)")
    p.add_argument("--test-images", type=int, default=0, help="test images (default all 10,000)")
    p.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated subset of {', '.join(SYSTEMS)}, each of which must run (default: "
        "all, skipping those not installed)",
    )
    p.add_argument("--latency-calls", type=int, default=None, help="default 500 (--quick: 100)")
    p.add_argument("--predict-calls", type=int, default=None, help="default 100 (--quick: 20)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads of every system: TensorFlow's intra- and inter-op pools, scratchcnn's "
        "set_threads (default: all cores)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the MNIST IDX files (default: $SCRATCHCNN_DATA/mnist, else the cache)",
    )
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    p.add_argument("--quick", action="store_true", help="smoke run: 2,000 images, 1 epoch")
    p.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    args = p.parse_args(argv)
    quick = args.quick
    args.epochs = args.epochs or (1 if quick else 3)
    args.images = args.images if args.images is not None else (2000 if quick else 0)
    args.latency_calls = args.latency_calls or (100 if quick else 500)
    args.predict_calls = args.predict_calls or (20 if quick else 100)
    args.inference_repeats = 1 if quick else 3
    args.required = args.systems is not None  # named systems must run; the default skips
    systems = args.systems if args.systems is not None else ",".join(SYSTEMS)
    args.systems = [s.strip() for s in systems.split(",") if s.strip()]
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown or not args.systems:
        p.error(f"--systems: unknown {', '.join(unknown) or '(none given)'}; choose from {SYSTEMS}")
    if min(args.epochs, args.batch_size, args.latency_calls, args.predict_calls) < 1:
        p.error("--epochs, --batch-size, --latency-calls and --predict-calls must be >= 1")
    args.threads = args.threads or os.cpu_count() or 1
    return args


class Worker:
    """A running ``bench_worker.py`` for one system, its stderr logged to a file."""

    def __init__(self, system: str, args: argparse.Namespace, log_dir: Path):
        cmd = [
            sys.executable,
            str(HERE / "bench_worker.py"),
            f"--system={system}",
            f"--arch={args.arch}",
            f"--batch-size={args.batch_size}",
            f"--lr={args.lr}",
            f"--momentum={args.momentum}",
            f"--seed={args.seed}",
            f"--images={args.images}",
            f"--test-images={args.test_images}",
            f"--eval-batch-size={args.eval_batch_size}",
            f"--inference-repeats={args.inference_repeats}",
            f"--latency-calls={args.latency_calls}",
            f"--predict-calls={args.predict_calls}",
            f"--threads={args.threads}",
        ]
        if args.data_dir:
            cmd.append(f"--data-dir={args.data_dir}")
        self.system = system
        self.log_path = log_dir / f"worker-{system}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.log_path.read_text().strip().splitlines()[-3:]
            return {"event": "error", "reason": f"worker exited ({self.proc.returncode}): {tail}"}
        return json.loads(line)

    def ask(self, command: str) -> dict:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def find_data(args: argparse.Namespace) -> str:
    """The folder holding MNIST, downloaded here (once, for every worker) unless --no-download."""
    paths = locate("mnist", args.data_dir, download_missing=not args.no_download)
    return str(paths["train_images"].parent)


def failures(results: dict, required: bool) -> list[str]:
    """One line per system that failed (or, when ``required``, did not run); a run in which no
    system finished an epoch fails too."""
    lines = []
    for name, entry in results["systems"].items():
        if "error" in entry:
            lines.append(f"compare: {name} failed: {entry['error']}")
        elif not entry.get("available") and required:
            lines.append(f"compare: {name} did not run: {entry.get('note', 'unavailable')}")
    if not any(e.get("epochs") for e in results["systems"].values()) and not lines:
        lines.append("compare: no system ran (all were skipped)")
    return lines


def run(args: argparse.Namespace) -> dict:
    """Start the workers one at a time, interleave their epochs, and collect every message."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"systems": {}}
    workers: list[Worker] = []
    for system in args.systems:
        log(f"compare: starting {system} ...")
        worker = Worker(system, args, out)
        ready = worker.receive()
        entry = results["systems"][system] = {"available": ready["event"] == "ready"}
        if ready["event"] == "unavailable":
            entry["note"] = ready.get("reason", "unavailable")
            log(f"compare: skipping {system}: {entry['note']}")
        elif ready["event"] != "ready":
            entry["error"] = ready.get("reason", str(ready))  # said once, at the end
        if ready["event"] != "ready":
            worker.close()
            continue
        entry.update(ready=ready, epochs=[])
        workers.append(worker)
    for epoch in range(args.epochs):
        shift = epoch % max(len(workers), 1)
        for worker in workers[shift:] + workers[:shift]:
            entry = results["systems"][worker.system]
            if "error" in entry:
                continue
            reply = worker.ask("epoch")
            if reply["event"] != "epoch":
                entry["error"] = reply.get("reason", str(reply))  # said once, at the end
                continue
            entry["epochs"].append(reply)
            log(
                f"compare: {worker.system} epoch {reply['epoch']}: {reply['seconds']:.2f} s, "
                f"loss {reply['train_loss']:.4f}, test accuracy {reply['test_accuracy']:.4f}"
            )
    for worker in workers:
        entry = results["systems"][worker.system]
        if "error" not in entry:
            reply = worker.ask("inference")
            if reply["event"] == "inference":
                entry["inference"] = reply
                entry["finish"] = worker.ask("finish")
            else:
                entry["error"] = reply.get("reason", str(reply))
        worker.close()
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        args.data_dir = find_data(args)
    except (MissingDataError, DatasetError) as err:
        log(f"compare: error: {err}")
        return 2
    results = run(args)
    results["meta"] = {
        "command": "python benchmarks/compare.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": started.isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "arch": args.arch,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": f"SGD(lr={args.lr}, momentum={args.momentum})",
        "seed": args.seed,
        "quick": args.quick,
        "threads": args.threads,
    }
    results["summary"] = compare_report.summarize(results, REFERENCE)
    out = Path(args.out)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = compare_report.markdown(results)
    (out / "results.md").write_text(markdown)
    png = compare_report.plot(results, out / "accuracy_vs_time.png")
    print(markdown)
    log(
        f"compare: wrote {out / 'results.json'}, {out / 'results.md'}" + (f", {png}" if png else "")
    )
    failed = failures(results, args.required)
    for line in failed:
        log(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
