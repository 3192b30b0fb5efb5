"""Frames per second of the whole digit-reading pipeline on 640x480 frames with 1 and with 10 digits.

Each timed call is ``DigitReader.read(frame)``: grayscale, paper normalization, threshold,
contours, merging and filtering, MNIST normalization of every crop and ONE batched
``predict_proba`` — everything but grabbing the frame and drawing. Frames are rendered beforehand
(MNIST test digits on unevenly lit paper, see ``scratchcnn.reader.synthetic``), one distinct frame per
timed call; the cases are interleaved (1-digit frame, 10-digit frame, ...) so a change in the
machine's load hits both alike. Reported: the median (and 90th percentile) per frame, the frames
per second of the median, and each stage's median.

    python benchmarks/vision_fps.py                          # untrained scratchnet (same speed)
    python benchmarks/vision_fps.py --model models/scratchcnn.npz --frames 300 --json fps.json

Goals on two cores: >= 60 fps with 1 digit, >= 30 fps with 10. Other processes on the machine
change every number: the load average is recorded at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

GOALS = {1: 60.0, 10: 30.0}  # frames per second


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="trained model (default: an untrained --arch)")
    p.add_argument("--arch", default="scratchnet", help="network when no --model (scratchnet)")
    p.add_argument("--frames", type=int, default=240, help="timed frames per case (default 240)")
    p.add_argument("--digits", type=int, nargs="+", default=[1, 10], help="cases (default 1 10)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder of the MNIST test files (default $SCRATCHCNN_DATA/mnist, else the cache)",
    )
    p.add_argument("--backend", default="auto", help="kernels: numpy, numba or auto (default)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/Numba threads for the batched prediction (default 1; 0: the libraries' own)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here as JSON")
    return p.parse_args(argv)


def run(args) -> dict:
    import scratchcnn as sc
    from scratchcnn.cli import CLIError
    from scratchcnn.reader.synthetic import FrameRenderer, mnist_test_digits
    from scratchcnn.reader.vision import DigitReader

    if args.frames < 200:
        raise CLIError("--frames must be at least 200 (medians over fewer frames are noise)")
    backend = sc.set_backend(args.backend)
    if args.model is not None:
        from scratchcnn.reader.options import load_reader_model

        model, model_name = load_reader_model(args.model), str(args.model)
    else:
        model, model_name = sc.build_model(args.arch, seed=0), f"untrained {args.arch}"
    reader = DigitReader(model, predict_threads=args.threads or None)
    renderer = FrameRenderer(*mnist_test_digits(args.data_dir))
    rng = np.random.default_rng(args.seed)
    frames = {n: [renderer.render(rng, n)[0] for _ in range(args.frames)] for n in args.digits}
    load_before = os.getloadavg()

    for n in args.digits:  # warm up: first calls allocate, JIT backends compile
        for frame in frames[n][:5]:
            reader.read(frame)
    times = {n: [] for n in args.digits}
    stages = {n: {"candidates": [], "crops": [], "predict": [], "split": []} for n in args.digits}
    found = {n: [] for n in args.digits}
    for i in range(args.frames):
        for n in args.digits:  # interleaved
            start = time.perf_counter()
            result = reader.read(frames[n][i])
            times[n].append(1e3 * (time.perf_counter() - start))
            for stage, ms in result.timings.items():
                stages[n].setdefault(stage, []).append(ms)
            found[n].append(len(result.boxes))

    cases = []
    for n in args.digits:
        median = float(np.median(times[n]))
        cases.append(
            {
                "digits": n,
                "frames": args.frames,
                "median_ms": round(median, 3),
                "p90_ms": round(float(np.percentile(times[n], 90)), 3),
                "fps": round(1e3 / median, 1),
                "goal_fps": GOALS.get(n),
                "mean_candidates": round(float(np.mean(found[n])), 2),
                "stages_median_ms": {
                    k: round(float(np.median(v)), 3) for k, v in stages[n].items() if v
                },
            }
        )
    return {
        "benchmark": "vision_fps",
        "frame_size": [640, 480],
        "model": model_name,
        "backend": backend,
        "predict_threads": args.threads or "library default",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": __import__("cv2").__version__,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cases": cases,
    }


def table(results: dict) -> str:
    head = (
        f"{'digits':>6} {'median ms':>10} {'p90 ms':>8} {'fps':>7} {'goal':>6}  "
        f"{'candidates':>10} {'crops':>7} {'predict':>8}  (stage medians, ms)"
    )
    lines = [
        f"vision pipeline on 640x480 frames: {results['model']}, {results['backend']} kernels, "
        f"threads {results['predict_threads']}, {results['cpu_count']} CPUs, load "
        f"{results['load_average_before'][0]:.2f} -> {results['load_average_after'][0]:.2f}",
        head,
        "-" * len(head),
    ]
    for c in results["cases"]:
        s = c["stages_median_ms"]
        goal = f"{c['goal_fps']:.0f}" if c["goal_fps"] else "-"
        mark = "" if not c["goal_fps"] else (" ok" if c["fps"] >= c["goal_fps"] else " MISSED")
        lines.append(
            f"{c['digits']:>6} {c['median_ms']:>10.2f} {c['p90_ms']:>8.2f} {c['fps']:>7.1f} "
            f"{goal:>6}  {s.get('candidates', 0):>10.2f} {s.get('crops', 0):>7.2f} "
            f"{s.get('predict', 0):>8.2f}{mark}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    from scratchcnn.cli import run_cli

    args = parse_args(argv)

    def go() -> int:
        results = run(args)
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            print(f"wrote {args.json}")
        return 0

    return run_cli("vision_fps.py", go)


if __name__ == "__main__":
    sys.exit(main())
