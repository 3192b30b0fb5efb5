"""``python -m scratchcnn.predict IMAGE...``: read the handwritten digits in still images.

The same pipeline as the webcam example (:class:`scratchcnn.reader.DigitReader`), and the same
JSON: one line per image, ``{"file": ..., "detections": [...], "text": ...}``, detections in
reading order, each ``{"digit", "confidence", "box", "unsure", "second"}``. An image that cannot
be read (missing, not an image, larger than ``--max-pixels``) gives a one-line error on stderr;
the others are still read, and the exit code is 2. ``--annotate DIR`` writes a copy of every
image with its boxes drawn. Ctrl-C stops with one line and exit code 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scratchcnn.cli import EXIT_INTERRUPTED, EXIT_USAGE, CLIError, run_cli
from scratchcnn.reader.options import add_reader_arguments, make_reader, result_json
from scratchcnn.reader.sources import SourceError, read_image

PROG = "python -m scratchcnn.predict"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read the handwritten digits in images: one JSON line per image.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="PNG, JPEG, ... files")
    add_reader_arguments(p)
    p.add_argument(
        "--annotate",
        type=Path,
        metavar="DIR",
        help="write a copy of each image with its boxes and digits drawn into DIR (as PNG)",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="with --annotate: draw the debug view (ink mask, every candidate, the crops)",
    )
    return p.parse_args(argv)


def annotated_path(folder: Path, image: Path, used: set) -> Path:
    """``folder/<image's name>.png``, numbered when two images share a name."""
    stem, n = image.stem or "image", 1
    path = folder / f"{stem}.png"
    while path in used:
        n += 1
        path = folder / f"{stem}-{n}.png"
    used.add(path)
    return path


def predict(args) -> int:
    import cv2

    from scratchcnn.reader.annotate import debug_view, draw_detections

    if args.annotate is not None:
        try:
            args.annotate.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CLIError(
                f"--annotate {args.annotate}: cannot create it ({err.strerror})"
            ) from err
    reader = make_reader(args)
    failed, used = 0, set()
    for path in args.images:
        try:
            image = read_image(path, args.max_pixels)
        except SourceError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
            failed += 1
            continue
        result = reader.read(image)
        print(json.dumps({"file": str(path), **result_json(result)}), flush=True)
        if args.annotate is not None:
            if args.debug:
                drawn = debug_view(image, result)
            else:
                drawn = draw_detections(image, result.all_detections, text=result.text)
            out = annotated_path(args.annotate, path, used)
            if not cv2.imwrite(str(out), drawn):
                print(f"{PROG}: error: {out}: cannot write the annotated image", file=sys.stderr)
                failed += 1
    return EXIT_USAGE if failed else 0


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        return run_cli(PROG, lambda: predict(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
