"""The data options the train and evaluate commands share: which dataset, where its files are,
whether to download them, whether to verify them."""

from __future__ import annotations

import argparse

from scratchcnn.data import DATASETS


def add_data_arguments(p: argparse.ArgumentParser, default_dataset: str | None = "mnist") -> None:
    """Add ``--dataset``, ``--data-dir``, ``--no-download`` and ``--no-verify`` to ``p``."""
    p.add_argument(
        "--dataset",
        default=default_dataset,
        choices=sorted(DATASETS),
        help=f"which IDX dataset (default {default_dataset or 'the one the model was trained on'})",
    )
    p.add_argument(
        "--data-dir",
        help="folder holding the dataset's IDX files (default: $SCRATCHCNN_DATA/DATASET, else "
        "the user cache); your own four files with --no-verify",
    )
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="accept files whose digests are not the dataset's (your own IDX files)",
    )


def data_kwargs(args: argparse.Namespace, dataset: str | None = None) -> dict:
    """Keyword arguments for :func:`scratchcnn.data.load_mnist` / ``load_split`` from the options."""
    return {
        "data_dir": args.data_dir,
        "download": not args.no_download,
        "dataset": dataset or args.dataset,
        "verify": not args.no_verify,
    }
