"""What the digit-reading programs share (``python -m scratchcnn.predict`` and
``examples/webcam.py``): the model to read with, the reader's options, and the JSON they print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scratchcnn.cli import CLIError
from scratchcnn.nn.serialization import load_model
from scratchcnn.pretrained import bundled_model_path
from scratchcnn.reader.vision import MAX_PIXELS, ROTATIONS, DigitReader

DEFAULT_MODEL = Path("models/scratchcnn.npz")  # where `python -m scratchcnn.train` saves
TRAIN_HINT = "train one first with `python -m scratchcnn.train` (or pass --model PATH)"


def load_reader_model(path):
    """The trained model at ``path``: a :class:`scratchcnn.Sequential` from a ``.npz`` model
    file, or an exported ``.onnx`` file run by OpenCV's DNN module
    (:class:`~scratchcnn.reader.onnx_model.OpenCVOnnxModel`). A missing file is a
    :class:`CLIError` with the hint to train first, a bad one an error naming it."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"{path}: no such model file; {TRAIN_HINT}")
    if path.suffix.lower() == ".onnx":
        from scratchcnn.reader.onnx_model import OpenCVOnnxModel

        model = OpenCVOnnxModel(path)
    else:
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
        default=None,
        help=f"trained model, .npz or an exported .onnx (default: {DEFAULT_MODEL}, where the "
        "train command saves, else the model bundled with scratchcnn)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="detections whose probability is lower are reported as unsure (default 0.5)",
    )
    parser.add_argument(
        "--deskew", action="store_true", help="straighten slanted digits before reading them"
    )
    parser.add_argument(
        "--rotate",
        default="0",
        metavar="DEG",
        help="turn the image clockwise by 0, 90, 180 or 270 degrees before reading, or 'auto': "
        "read it under all four and keep the most convincing reading (a photo taken sideways)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"refuse images larger than this many pixels (default {MAX_PIXELS:,}), checked "
        "from the file's header before decoding",
    )


def parse_rotate(value: str) -> int | str:
    """``--rotate``'s value: "auto" or one of 0, 90, 180, 270; a :class:`CLIError` otherwise."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text.lstrip("-").isdigit() and int(text) % 360 in ROTATIONS:
        return int(text) % 360
    raise CLIError(f"--rotate must be 0, 90, 180, 270 or auto, got {value!r}")


def make_reader(args: argparse.Namespace) -> DigitReader:
    """A :class:`DigitReader` from parsed :func:`add_reader_arguments` options."""
    if not 0.0 <= args.min_confidence <= 1.0:
        raise CLIError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if args.max_pixels < 1:
        raise CLIError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    rotate = parse_rotate(args.rotate)
    model = load_reader_model(choose_model(args.model))
    return DigitReader(
        model,
        min_confidence=args.min_confidence,
        deskew=args.deskew,
        rotate=rotate,
        max_pixels=args.max_pixels,
    )


def choose_model(path: Path | None, announce=sys.stderr) -> Path:
    """The model file to read with: ``path`` (``--model``) when given, else
    ``models/scratchcnn.npz`` when it exists, else the bundled model; without ``--model`` the
    choice is said in one line on ``announce``."""
    if path is not None:
        return Path(path)
    if DEFAULT_MODEL.exists():
        print(f"reading with {DEFAULT_MODEL} (--model PATH for another)", file=announce)
        return DEFAULT_MODEL
    bundled = bundled_model_path()
    print(
        f"reading with the bundled model {bundled.name} (scratchnet trained on MNIST by the "
        "default `python -m scratchcnn.train`; train your own, or pass --model PATH)",
        file=announce,
    )
    return bundled


def detections_json(detections) -> list[dict]:
    """The detections of one frame or image as the JSON list the programs print."""
    return [d.to_dict() for d in detections]


def result_json(result) -> dict:
    """What the programs print for one frame or image (beside its "frame" or "file"): every
    detection in reading order (unsure ones flagged), the text read, and the rotation used."""
    line = {"detections": detections_json(result.all_detections), "text": result.text}
    if result.rotation:
        line["rotation"] = result.rotation
    return line
