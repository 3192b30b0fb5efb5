"""``python -m scratchcnn.train``: train a CNN on MNIST, keep the best model, never lose a run.

Ctrl-C (SIGINT) or SIGTERM stops at the next batch boundary and saves a checkpoint; ``--resume``
continues from it and ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from scratchcnn.cli import EXIT_INTERRUPTED, CLIError, run_cli
from scratchcnn.data import load_mnist, to_float_images
from scratchcnn.nn.architectures import ARCHITECTURES
from scratchcnn.nn.kernels import CHOICES, set_backend
from scratchcnn.nn.serialization import save_model
from scratchcnn.training.report import format_report, save_plots, test_report
from scratchcnn.training.trainer import SCHEDULES, TrainConfig, Trainer

PROG = "python -m scratchcnn.train"
DEFAULT_OUTPUT = Path("models/scratchcnn.npz")


def parse_args(argv=None) -> argparse.Namespace:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument(
        "--data-dir",
        help="folder with the MNIST IDX files (default: $SCRATCHCNN_DATA, then the cache)",
    )
    p.add_argument("--no-download", action="store_true", help="never download missing data")
    p.add_argument(
        "--arch", default=d.arch, choices=sorted(ARCHITECTURES), help=f"network (default {d.arch})"
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--momentum", type=float, default=d.momentum, help=f"default {d.momentum}")
    p.add_argument(
        "--nesterov",
        action=argparse.BooleanOptionalAction,
        default=d.nesterov,
        help="Nesterov momentum (default on)",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help=f"L2 penalty (default {d.weight_decay})",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help=f"learning-rate schedule (default {d.schedule})",
    )
    p.add_argument(
        "--warmup-epochs",
        type=float,
        default=d.warmup_epochs,
        help=f"linear warm-up for cosine (default {d.warmup_epochs})",
    )
    p.add_argument(
        "--step-epochs",
        type=int,
        default=d.step_epochs,
        help=f"step schedule: divide by 10 every N epochs (default {d.step_epochs})",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=d.augment,
        help="random shifts, rotations and scaling (default on)",
    )
    p.add_argument(
        "--max-shift", type=float, default=d.max_shift, help=f"pixels (default {d.max_shift})"
    )
    p.add_argument(
        "--max-rotation",
        type=float,
        default=d.max_rotation,
        help=f"degrees (default {d.max_rotation})",
    )
    p.add_argument(
        "--max-scale", type=float, default=d.max_scale, help=f"relative (default {d.max_scale})"
    )
    p.add_argument(
        "--val-size",
        type=float,
        default=5000,
        help="stratified validation split: a count, or a fraction if < 1 (default 5000; 0: none)",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="train on a stratified subset of this many images",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seeds weights, shuffling, augmentation, dropout (default {d.seed})",
    )
    p.add_argument(
        "--backend",
        choices=CHOICES,
        default=None,
        help="kernels (default: $SCRATCHCNN_BACKEND or auto)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"best model file (default {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file (default: OUTPUT with .ckpt.npz)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="continue an interrupted run (from --checkpoint or the given file)",
    )
    p.add_argument("--metrics-json", type=Path, help="write metrics as JSON here")
    p.add_argument("--report-dir", type=Path, help="write PNG plots here (needs matplotlib)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (summary lines only)"
    )
    return p.parse_args(argv)  # fmt: skip


def config_from_args(args) -> TrainConfig:
    names = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: getattr(args, k) for k in names})


def check_writable(path: Path) -> None:
    """Fail before training, not after, when ``path`` cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".probe-"):
            pass
    except OSError as err:
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from err
    if path.is_dir():
        raise CLIError(f"cannot write {path}: it is a directory")


def split_data(args, x, y):
    """Stratified subset (``--train-size``) and validation split (``--val-size``)."""
    if args.train_size is not None:
        if not 10 <= args.train_size <= len(x):
            raise CLIError(f"--train-size must be between 10 and {len(x)}")
        if args.train_size < len(x):
            keep, _ = train_test_split(
                np.arange(len(x)), train_size=args.train_size, stratify=y, random_state=args.seed
            )
            x, y = x[np.sort(keep)], y[np.sort(keep)]
    val = args.val_size
    if val < 0 or (val >= 1 and val != int(val)):
        raise CLIError("--val-size must be a count >= 0 or a fraction in (0, 1)")
    if val == 0:
        return x, y, None, None
    val = int(val) if val >= 1 else val
    train_idx, val_idx = train_test_split(
        np.arange(len(x)), test_size=val, stratify=y, random_state=args.seed
    )
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


class StopFlag:
    """Set by SIGINT/SIGTERM; training checks it after every batch."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.signal is not None


def train(args) -> int:
    backend = set_backend(args.backend)
    checkpoint = args.checkpoint or args.output.with_name(
        args.output.name.removesuffix(".npz") + ".ckpt.npz"
    )
    if isinstance(args.resume, str):
        checkpoint = Path(args.resume)
    if not args.resume:
        config_from_args(args).validate()  # refuse meaningless flags before loading anything
    check_writable(args.output)
    check_writable(checkpoint)
    if args.metrics_json:
        check_writable(args.metrics_json)
    if args.report_dir:
        import importlib

        try:
            importlib.import_module("matplotlib")
        except ImportError as err:
            raise CLIError(
                '--report-dir needs matplotlib: pip install "scratchcnn[plots]"'
            ) from err

    # The training set stays uint8 (a quarter of float32's memory); the Trainer converts each batch.
    (x_all, y_all), (x_test, y_test) = load_mnist(args.data_dir, download=not args.no_download)
    x_train, y_train, x_val, y_val = split_data(args, x_all, y_all)
    del x_all, y_all  # split_data copied what it kept
    x_test = to_float_images(x_test)
    if x_val is not None:
        x_val = to_float_images(x_val)

    if args.resume:
        trainer = Trainer.from_checkpoint(checkpoint, x_train, y_train, x_val, y_val)
        print(f"resuming {checkpoint}: epoch {trainer.epoch + 1}, batch {trainer.position}")
    else:
        trainer = Trainer(config_from_args(args), x_train, y_train, x_val, y_val)
    config = trainer.config
    val_text = f"{len(x_val)} validation" if x_val is not None else "no validation"
    print(
        f"training {config.arch} ({trainer.model.count_params():,} parameters) on {len(x_train)} "
        f"images, {val_text}, {len(x_test)} test; backend {backend}; {config.epochs} epochs of "
        f"{trainer.steps_per_epoch} batches"
    )

    started = time.perf_counter()
    with StopFlag() as stop:
        while not trainer.finished:
            epoch_no = trainer.epoch + 1
            bar = tqdm(
                total=trainer.steps_per_epoch,
                initial=trainer.position,
                desc=f"epoch {epoch_no}/{config.epochs}",
                unit="batch",
                leave=False,
                disable=args.no_progress,
                dynamic_ncols=True,
            )

            def on_batch(stats, bar=bar):
                bar.update(1)
                bar.set_postfix(
                    loss=f"{stats.loss:.4f}",
                    acc=f"{stats.accuracy:.2%}",
                    img_s=f"{stats.batch_images / max(stats.batch_seconds, 1e-9):.0f}",
                    refresh=False,
                )

            result = trainer.run_epoch(on_batch, stop)
            bar.close()
            if result is None:
                trainer.save_checkpoint(checkpoint)
                name = signal.Signals(stop.signal).name
                print(
                    f"{name}: stopped in epoch {epoch_no} after batch {trainer.position}; "
                    f"checkpoint saved to {checkpoint}; continue with: {PROG} --resume {checkpoint}",
                    file=sys.stderr,
                )
                return EXIT_INTERRUPTED
            best = trainer.is_best(result)
            if best:
                save_model(trainer.model, args.output, extra={"epoch": result.epoch})
            trainer.save_checkpoint(checkpoint)
            val = f"{result.val_accuracy:.2%}" if result.val_accuracy is not None else "n/a"
            print(
                f"epoch {result.epoch}/{config.epochs}  train loss {result.train_loss:.4f}  "
                f"train acc {result.train_accuracy:.2%}  val acc {val}  lr {result.lr:.4g}  "
                f"{result.seconds:.1f} s" + (f"  -> saved {args.output}" if best else ""),
                flush=True,
            )
            if stop():  # a signal during validation or saving: everything is already saved
                return EXIT_INTERRUPTED

    from scratchcnn.nn.serialization import load_model

    best_model = load_model(args.output)
    y_pred = best_model.predict(x_test)
    print(format_report(y_test, y_pred))
    print(f"training time {sum(r.seconds for r in trainer.history):.1f} s "
          f"(wall {time.perf_counter() - started:.1f} s this session); model saved to {args.output}")  # fmt: skip
    metrics = {
        **test_report(y_test, y_pred),
        "epochs": [asdict(r) for r in trainer.history],
        "train_seconds": sum(r.seconds for r in trainer.history),
        "backend": backend,
        "config": asdict(config),
        "model": str(args.output),
    }
    if args.metrics_json:
        args.metrics_json.write_text(json.dumps(metrics, indent=2))
    if args.report_dir:
        for path in save_plots(args.report_dir, metrics["epochs"], x_test, y_test, y_pred):
            print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: train(args))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
