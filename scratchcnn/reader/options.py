"""What the digit-reading programs share (``python -m scratchcnn.predict`` and
``examples/webcam.py``): the model to read with, the reader's options, and the JSON they print."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchcnn.cli import CLIError
from scratchcnn.nn.serialization import load_model
from scratchcnn.reader.vision import DigitReader

DEFAULT_MODEL = Path("models/scratchcnn.npz")  # where `python -m scratchcnn.train` saves
TRAIN_HINT = "train one first with `python -m scratchcnn.train` (or pass --model PATH)"


def load_reader_model(path):
    """The trained model at ``path`` (a :class:`scratchcnn.Sequential`); a missing file is a
    :class:`CLIError` with the hint to train first, a bad one a ``ModelFileError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"{path}: no such model file; {TRAIN_HINT}")
    model = load_model(path)
    if tuple(model.input_shape) != (1, 28, 28) or tuple(model.output_shape) != (10,):
        raise CLIError(
            f"{path}: this model takes {model.input_shape} and gives {model.output_shape}; "
            "reading digits needs (1, 28, 28) -> (10,)"
        )
    return model


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """The options the webcam example and the predict command share."""
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"trained model (default {DEFAULT_MODEL}, where the train command saves)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="drop detections whose probability is lower (default 0.5)",
    )
    parser.add_argument(
        "--deskew", action="store_true", help="straighten slanted digits before reading them"
    )


def make_reader(args: argparse.Namespace) -> DigitReader:
    """A :class:`DigitReader` from parsed :func:`add_reader_arguments` options."""
    if not 0.0 <= args.min_confidence <= 1.0:
        raise CLIError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    model = load_reader_model(args.model)
    return DigitReader(model, min_confidence=args.min_confidence, deskew=args.deskew)


def detections_json(detections) -> list[dict]:
    """The detections of one frame or image as the JSON list the programs print."""
    return [d.to_dict() for d in detections]
