"""``python -m scratchcnn.predict IMAGE...``: read the handwritten digits in still images.

The same pipeline as the webcam example (:class:`scratchcnn.vision.DigitReader`), and the same
JSON: one line per image, ``{"file": ..., "detections": [{"digit", "confidence", "box"}]}``,
detections in reading order. An image that cannot be read gives a one-line error on stderr; the
others are still read, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scratchcnn.cli import EXIT_USAGE, CLIError, run_cli

PROG = "python -m scratchcnn.predict"
DEFAULT_MODEL = Path("models/scratchcnn.npz")  # where `python -m scratchcnn.train` saves
TRAIN_HINT = "train one first with `python -m scratchcnn.train` (or pass --model PATH)"


def load_reader_model(path):
    """The trained model at ``path`` (a :class:`scratchcnn.Sequential`); a missing file is a
    :class:`CLIError` with the hint to train first, a bad one a ``ModelFileError`` naming it."""
    from scratchcnn.io import load_model

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
    """The options the webcam example and this command share."""
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


def make_reader(args):
    """A :class:`DigitReader` from parsed :func:`add_reader_arguments` options."""
    from scratchcnn.vision import DigitReader

    if not 0.0 <= args.min_confidence <= 1.0:
        raise CLIError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    model = load_reader_model(args.model)
    return DigitReader(model, min_confidence=args.min_confidence, deskew=args.deskew)


def detections_json(detections) -> list[dict]:
    return [d.to_dict() for d in detections]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read the handwritten digits in images: one JSON line per image.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="PNG, JPEG, ... files")
    add_reader_arguments(p)
    return p.parse_args(argv)


def predict(args) -> int:
    from scratchcnn.sources import SourceError, read_image
    from scratchcnn.vision import limit_blas_threads

    reader = make_reader(args)
    limit_blas_threads(1)
    failed = 0
    for path in args.images:
        try:
            image = read_image(path)
        except SourceError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
            failed += 1
            continue
        result = reader.read(image)
        line = {"file": str(path), "detections": detections_json(result.detections)}
        print(json.dumps(line), flush=True)
    return EXIT_USAGE if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: predict(args))


if __name__ == "__main__":
    sys.exit(main())
