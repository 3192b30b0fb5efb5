"""Download a dataset's four IDX files into your cache, verified, with a progress bar.

``python -m scratchcnn.data download [--dataset NAME]`` fetches them into the user cache (or
``$SCRATCHCNN_DATA/NAME``, or ``--data-dir``).

Files already there are verified and kept. Afterwards every command and the test suite find them
without being told where: ``python -m scratchcnn.data download`` is what makes the whole test
suite run on a fresh clone.
"""

from __future__ import annotations

import argparse
import sys

from scratchcnn.cli import run_cli
from scratchcnn.data.mnist import DATASETS, ROLES, data_location, locate

PROG = "python -m scratchcnn.data"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = commands.add_parser("download", help="download and verify a dataset's files")
    d.add_argument(
        "--dataset",
        default="mnist",
        choices=[*sorted(DATASETS), "all"],
        help="which dataset (default mnist; all: every one)",
    )
    d.add_argument(
        "--data-dir",
        help="put the files here (default: $SCRATCHCNN_DATA/DATASET, else the user cache)",
    )
    d.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="download from this base URL instead of the dataset's mirrors (repeatable)",
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def download(args) -> int:
    names = sorted(DATASETS) if args.dataset == "all" else [args.dataset]
    if args.data_dir is not None and len(names) > 1:
        raise ValueError("--data-dir holds one dataset's files: use it with one --dataset")
    for name in names:
        folder = data_location(args.data_dir, name)
        files = [DATASETS[name].files[role].name for role in ROLES]
        had = sum(
            (folder / f).is_file() or (folder / f.removesuffix(".gz")).is_file() for f in files
        )
        paths = locate(name, args.data_dir, mirrors=args.mirror, progress=not args.no_progress)
        fetched = len(paths) - had
        print(
            f"{name}: {len(paths)} files verified in {folder} "
            f"({fetched} downloaded, {had} already there)"
        )
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: download(args))


if __name__ == "__main__":
    sys.exit(main())
