"""``python -m scratchcnn.evaluate MODEL``: the test report of a saved model (MNIST, or the dataset
it was trained on), optionally with plots."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from scratchcnn.cli import CLIError, run_cli
from scratchcnn.data import DATASETS, load_split, to_float_images
from scratchcnn.files import atomic_write_text, write_target
from scratchcnn.nn.kernels import CHOICES, set_backend
from scratchcnn.nn.serialization import load_model
from scratchcnn.training.options import add_data_arguments, data_kwargs
from scratchcnn.training.report import format_report, save_plots, test_report

PROG = "python -m scratchcnn.evaluate"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.replace("``", ""))
    p.add_argument(
        "model", type=Path, help="a model saved by scratchcnn (e.g. models/scratchcnn.npz)"
    )
    add_data_arguments(p, default_dataset=None)
    p.add_argument("--backend", choices=CHOICES, default=None)
    p.add_argument("--metrics-json", type=Path, help="also write the report as JSON here")
    p.add_argument(
        "--report-dir",
        type=Path,
        help="write the confusion matrix and the misclassified test images as PNG files here "
        "(needs matplotlib)",
    )
    return p.parse_args(argv)  # fmt: skip


def model_dataset(model) -> str:
    """The dataset a model was trained on, as the train command recorded it (else MNIST)."""
    training = model.metadata.get("training") if isinstance(model.metadata, dict) else None
    dataset = training.get("dataset") if isinstance(training, dict) else None
    return dataset if dataset in DATASETS else "mnist"


def evaluate(args) -> int:
    set_backend(args.backend)
    if args.metrics_json:
        if os.path.realpath(args.metrics_json) == os.path.realpath(args.model):
            raise CLIError(f"--metrics-json {args.metrics_json} is the model file itself")
        write_target(args.metrics_json)  # a regular file or a new path: refused before the work
    if args.report_dir:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise CLIError('--report-dir needs matplotlib: pip install "scratchcnn[plots]"')
        if args.report_dir.exists() and not args.report_dir.is_dir():
            raise CLIError(f"--report-dir {args.report_dir}: exists and is not a folder")
    model = load_model(args.model)
    dataset = args.dataset or model_dataset(model)
    class_names = DATASETS[dataset].class_names
    if tuple(model.output_shape) != (len(class_names),):
        raise CLIError(
            f"{args.model}: the model gives {model.output_shape} outputs, {dataset} has "
            f"{len(class_names)} classes"
        )
    pixels, y_test = load_split("test", **data_kwargs(args, dataset))  # the test files alone
    x_test = to_float_images(pixels)
    y_pred = model.predict(x_test)
    print(f"model {args.model}: {model.count_params():,} parameters; {dataset} test set")
    print(format_report(y_test, y_pred, class_names))
    if args.metrics_json:
        report = {"dataset": dataset, **test_report(y_test, y_pred, class_names)}
        atomic_write_text(args.metrics_json, json.dumps(report, indent=2))
    if args.report_dir:
        for path in save_plots(args.report_dir, [], x_test, y_test, y_pred, class_names):
            print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
