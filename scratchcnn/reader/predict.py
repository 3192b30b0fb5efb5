"""``python -m scratchcnn.predict IMAGE...``: read the handwritten digits in still images.

The same pipeline as the webcam example (:class:`scratchcnn.reader.DigitReader`), and the same
JSON: one line per image, ``{"file": ..., "detections": [{"digit", "confidence", "box"}]}``,
detections in reading order. An image that cannot be read gives a one-line error on stderr; the
others are still read, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scratchcnn.cli import EXIT_USAGE, run_cli
from scratchcnn.reader.options import add_reader_arguments, detections_json, make_reader
from scratchcnn.reader.sources import SourceError, read_image

PROG = "python -m scratchcnn.predict"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read the handwritten digits in images: one JSON line per image.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="PNG, JPEG, ... files")
    add_reader_arguments(p)
    return p.parse_args(argv)


def predict(args) -> int:
    reader = make_reader(args)
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
