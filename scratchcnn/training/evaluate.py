"""``python -m scratchcnn.evaluate MODEL``: the MNIST test report of a saved model."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from scratchcnn.cli import CLIError, run_cli
from scratchcnn.data import load_mnist, to_float_images
from scratchcnn.files import atomic_write_text, write_target
from scratchcnn.nn.kernels import CHOICES, set_backend
from scratchcnn.nn.serialization import load_model
from scratchcnn.training.report import format_report, test_report

PROG = "python -m scratchcnn.evaluate"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.replace("``", ""))
    p.add_argument(
        "model", type=Path, help="a model saved by scratchcnn (e.g. models/scratchcnn.npz)"
    )
    p.add_argument("--data-dir", help="folder with the MNIST IDX files")
    p.add_argument("--no-download", action="store_true", help="never download missing data")
    p.add_argument("--backend", choices=CHOICES, default=None)
    p.add_argument("--metrics-json", type=Path, help="also write the report as JSON here")
    return p.parse_args(argv)  # fmt: skip


def evaluate(args) -> int:
    set_backend(args.backend)
    if args.metrics_json:
        if os.path.realpath(args.metrics_json) == os.path.realpath(args.model):
            raise CLIError(f"--metrics-json {args.metrics_json} is the model file itself")
        write_target(args.metrics_json)  # a regular file or a new path: refused before the work
    model = load_model(args.model)
    _, (pixels, y_test) = load_mnist(args.data_dir, download=not args.no_download)
    y_pred = model.predict(to_float_images(pixels))  # the training set stays uint8, unused
    print(f"model {args.model}: {model.count_params():,} parameters")
    print(format_report(y_test, y_pred))
    if args.metrics_json:
        atomic_write_text(args.metrics_json, json.dumps(test_report(y_test, y_pred), indent=2))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
