"""``python -m scratchcnn.train``: train a CNN on MNIST, keep the best model, never lose a run.

Ctrl-C (SIGINT) or SIGTERM stops at the next batch boundary and saves a checkpoint (a second one
does not abandon it); ``--resume CHECKPOINT`` alone continues that run — the checkpoint holds the
run's whole configuration — and ends with exactly the weights an uninterrupted run would have.
A flag that contradicts the checkpoint is an error, except a larger ``--epochs``, which extends
the run. The checkpoint of a completed run is removed unless ``--keep-checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from scratchcnn.cli import EXIT_INTERRUPTED, CLIError, run_cli
from scratchcnn.data import DATASETS, load_mnist, to_float_images
from scratchcnn.files import atomic_write_text, write_target
from scratchcnn.nn.architectures import ARCHITECTURES
from scratchcnn.nn.kernels import CHOICES, set_backend
from scratchcnn.nn.serialization import save_model
from scratchcnn.training.options import add_data_arguments, data_kwargs
from scratchcnn.training.report import format_report, save_plots, test_report
from scratchcnn.training.trainer import (
    ADDED_SINCE,
    SCHEDULES,
    TOUCHING_PAIRS,
    CheckpointError,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    at_chance,
    default_touching_pairs,
)

PROG = "python -m scratchcnn.train"
DEFAULT_OUTPUT = Path("models/scratchcnn.npz")
# Flags that change how this session runs, not what the run computes or where it writes: free to
# differ on --resume. Every other flag is part of the run's configuration, saved in its checkpoint.
SESSION_FLAGS = ("resume", "no_progress", "backend", "no_download", "keep_checkpoint")
PATH_FLAGS = ("data_dir", "output", "checkpoint", "metrics_json", "report_dir")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("``", ""))
    add_data_arguments(p, d.dataset)
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
        "--max-shear",
        type=float,
        default=d.max_shear,
        help=f"slant, as a slope (default {d.max_shear})",
    )
    p.add_argument(
        "--elastic",
        type=float,
        default=d.elastic,
        help=f"pixels of smooth random distortion (default {d.elastic})",
    )
    p.add_argument(
        "--stroke-width",
        type=float,
        default=d.stroke_width,
        help=f"share of images with thicker or thinner strokes (default {d.stroke_width})",
    )
    p.add_argument(
        "--touching-pairs",
        type=int,
        default=None,
        metavar="N",
        help="images of two touching digits added to each batch, trained as no digit: the "
        f"reader then doubts a box holding two (default {TOUCHING_PAIRS} for mnist, else 0)",
    )
    p.add_argument(
        "--val-size",
        type=float,
        default=5000,
        help="images held out for validation (stratified): a count, or a fraction of the "
        "training data if < 1 (default 5000; 0: none)",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="train on a stratified subset of this many images, besides the validation set "
        "(default: all the others)",
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
        help="continue the run saved in CHECKPOINT (default: --checkpoint's file) with its "
        "own configuration; other flags must agree with it, except a larger --epochs",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the checkpoint after the run completes (to extend it later with --epochs)",
    )
    p.add_argument("--metrics-json", type=Path, help="write metrics as JSON here")
    p.add_argument("--report-dir", type=Path, help="write PNG plots here (needs matplotlib)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (summary lines only)"
    )
    return p  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    """The flags, with ``given``: the names of those the command line set explicitly."""
    args = build_parser().parse_args(argv)
    if args.touching_pairs is None:  # as TrainConfig resolves it, so the saved run says it
        args.touching_pairs = default_touching_pairs(args.dataset)
    explicit = build_parser()
    for action in explicit._actions:  # parse again with no defaults: what remains was given
        action.default = argparse.SUPPRESS
    args.given = set(vars(explicit.parse_args(argv)))
    return args


def training_record(config: TrainConfig, args) -> dict:
    """What a saved model records of the run that made it: every setting that shapes its weights
    (the training configuration and the data split), as JSON-able values."""
    return {**asdict(config), "val_size": args.val_size, "train_size": args.train_size}


def config_from_args(args) -> TrainConfig:
    names = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: getattr(args, k) for k in names})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- the run's configuration, saved in its checkpoint ---------------------------------------------
def _saved_value(name: str, value):
    """A flag's value as the checkpoint keeps it: JSON, paths absolute (a resume from another
    folder writes where the run wrote)."""
    if name in PATH_FLAGS and value is not None:
        return os.path.abspath(os.path.expanduser(str(value)))
    return value


def run_config(args) -> dict:
    """Every flag that defines the run (all but :data:`SESSION_FLAGS`), JSON-able."""
    return {
        name: _saved_value(name, value)
        for name, value in vars(args).items()
        if name not in SESSION_FLAGS and name != "given"
    }


def resume_args(args, checkpoint: Path, meta: dict) -> argparse.Namespace:
    """The run saved in ``checkpoint``, with this session's flags. A flag given on the command
    line must agree with the run, except a larger ``--epochs`` (extends the run) and
    ``--data-dir`` (the same verified data, found elsewhere)."""
    defaults = vars(build_parser().parse_args([]))
    defaults.update(ADDED_SINCE)  # a run saved before a setting existed ran without it
    saved = (meta.get("extra") or {}).get("run")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{checkpoint}: corrupt checkpoint (no training configuration)")
    if not isinstance(saved, dict):  # a checkpoint from before runs were saved: its TrainConfig
        saved = {**run_config(args), **config}
    for name, value in config.items():
        if name in saved and saved[name] != value:
            raise CheckpointError(
                f"{checkpoint}: the saved run says {flag(name)} {saved[name]}, its training "
                f"state {value}: the file was edited or is corrupt"
            )
    run = {name: saved.get(name, defaults[name]) for name in defaults if name not in SESSION_FLAGS}
    for name in sorted(args.given - set(SESSION_FLAGS)):
        mine, theirs = _saved_value(name, getattr(args, name)), run[name]
        if name == "epochs" and isinstance(theirs, int) and mine > theirs:
            print(f"extending the run in {checkpoint} from {theirs} to {mine} epochs")
            run[name] = mine
        elif name == "data_dir" or (
            name == "checkpoint" and mine == _saved_value(name, checkpoint)
        ):
            run[name] = mine
        elif mine != theirs:
            shown = "not set" if theirs is None else theirs
            raise CLIError(
                f"{flag(name)} {getattr(args, name)} contradicts the run in {checkpoint} "
                f"({flag(name)} {shown}): drop it to continue that run, or start a new run "
                "without --resume" + (" (--epochs may only grow)" if name == "epochs" else "")
            )
    resumed = argparse.Namespace(**run, **{k: getattr(args, k) for k in SESSION_FLAGS})
    resumed.given = args.given
    for name in PATH_FLAGS:
        value = getattr(resumed, name)
        setattr(resumed, name, None if value is None else Path(value))
    resumed.checkpoint = checkpoint
    return resumed


# -- checks before any training ------------------------------------------------------------------
def check_number_flags(args) -> None:
    """Every numeric flag the run uses, before data are loaded: finite and in range."""
    config_from_args(args).validate()  # refuses meaningless flags, naming them
    val = args.val_size
    if not math.isfinite(val) or val < 0 or (val >= 1 and val != int(val)):
        raise CLIError(f"--val-size must be a count >= 0 or a fraction in (0, 1), got {val}")
    if args.train_size is not None and args.train_size < 10:
        raise CLIError(
            f"--train-size must be at least 10 (one image per class), got {args.train_size}"
        )


def check_writable(path: Path, name: str) -> None:
    """Fail before training, not after, when ``path`` cannot be written (or is a folder, a
    device, anything but a regular file or a new path)."""
    try:
        target = write_target(path)  # refuses folders, devices, pipes, ...
    except OSError as err:
        raise CLIError(f"{name} {err}") from err
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".probe-"):
            pass
    except OSError as err:
        raise CLIError(f"{name}: cannot write {path}: {err.strerror or err}") from err


def check_outputs(args, checkpoint: Path) -> None:
    """The files the run writes: each writable, a regular file or new, and no two the same."""
    outputs = [("--output", args.output), ("--checkpoint", checkpoint)]
    if args.metrics_json:
        outputs.append(("--metrics-json", args.metrics_json))
    seen: dict[str, tuple[str, Path]] = {}
    for name, path in outputs:
        key = os.path.realpath(path)
        if key in seen:
            other, other_path = seen[key]
            raise CLIError(
                f"{name} {path} is the same file as {other} {other_path}: the run would overwrite "
                "one with the other; give them different paths"
            )
        seen[key] = (name, path)
    for name, path in outputs:
        check_writable(path, name)
    if args.report_dir and args.report_dir.exists() and not args.report_dir.is_dir():
        raise CLIError(f"--report-dir {args.report_dir}: exists and is not a folder")
    if args.report_dir and os.path.realpath(args.report_dir) in seen:
        raise CLIError(f"--report-dir {args.report_dir} is one of the run's output files")


def split_data(args, x, y):
    """The validation set (``--val-size``, stratified) held out first, then the training set:
    ``--train-size`` images (stratified) of the rest, or all of it. Sizes are checked against the
    data with messages naming the flags."""
    n, classes = len(x), len(np.unique(y))
    val = args.val_size
    count = int(val) if val >= 1 else math.ceil(val * n)
    if count and count < classes:
        raise CLIError(
            f"--val-size {val:g} gives {count} validation images, fewer than the {classes} "
            "classes: use 0 (no validation) or at least one image per class"
        )
    if count > n - classes:
        raise CLIError(
            f"--val-size {val:g} leaves {n - count} of the {n} training images to train on: "
            f"use at most {n - classes}"
        )
    wanted = args.train_size if args.train_size is not None else n - count
    if wanted > n - count:
        raise CLIError(
            f"--train-size {wanted} and --val-size {count} need {wanted + count} images, the "
            f"training data hold {n}: use --train-size {n - count} or less, or a smaller --val-size"
        )
    everything = np.arange(n)
    try:
        if count:
            rest, val_idx = train_test_split(
                everything, test_size=count, stratify=y, random_state=args.seed
            )
        else:
            rest, val_idx = everything, None
        if wanted < len(rest):
            if len(rest) - wanted >= classes:
                rest, _ = train_test_split(
                    rest, train_size=wanted, stratify=y[rest], random_state=args.seed
                )
            else:  # fewer left out than classes: stratifying is impossible and pointless
                rest = np.random.default_rng(args.seed).permutation(rest)[:wanted]
    except ValueError as err:  # e.g. a class with a single image
        raise CLIError(f"cannot split the data with --val-size {val:g}: {err}") from err
    train_idx = np.sort(rest)
    if val_idx is None:
        return x[train_idx], y[train_idx], None, None
    val_idx = np.sort(val_idx)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def check_shapes(x_train, x_test, image_shape=(28, 28)) -> None:
    """Images the networks cannot read (uint8 (N, 28, 28)) are found before training, not after."""
    for name, images in (("training", x_train), ("test", x_test)):
        if tuple(images.shape[1:]) != tuple(image_shape):
            raise CLIError(
                f"the {name} images are {'x'.join(map(str, images.shape[1:]))}, the networks "
                f"read {'x'.join(map(str, image_shape))}: does the data folder hold another dataset?"
            )


class StopFlag:
    """Set by SIGINT/SIGTERM; training checks it after every batch. The first signal says at once
    that the run is stopping; later ones do not interrupt the checkpoint being written."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal is None:
            self.signal = signum
            _say(f"{name}: stopping at the end of this batch and saving a checkpoint")
        else:
            _say(f"{name}: already stopping; the checkpoint is being saved, one moment")

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.signal is not None


def _say(text: str) -> None:
    """A line on stderr from a signal handler: os.write is safe where print may re-enter."""
    try:
        os.write(sys.stderr.fileno(), f"\n{text}\n".encode())
    except (OSError, ValueError):
        pass


def resolve_run(args) -> tuple[argparse.Namespace, Path]:
    """The run's flags and checkpoint path, every flag checked before anything is loaded. With
    ``--resume``, the checkpoint's configuration is authoritative (:func:`resume_args`)."""
    checkpoint = args.checkpoint or args.output.with_name(
        args.output.name.removesuffix(".npz") + ".ckpt.npz"
    )
    if isinstance(args.resume, str):
        if "checkpoint" in args.given and os.path.abspath(args.checkpoint) != os.path.abspath(
            args.resume
        ):
            raise CLIError(f"--checkpoint {args.checkpoint} contradicts --resume {args.resume}")
        checkpoint = Path(args.resume)
    if args.resume:
        meta = Trainer.read_checkpoint_meta(checkpoint)
        args = resume_args(args, checkpoint, meta)
    check_number_flags(args)
    check_outputs(args, checkpoint)
    if args.report_dir:
        import importlib

        try:
            importlib.import_module("matplotlib")
        except ImportError as err:
            raise CLIError(
                '--report-dir needs matplotlib: pip install "scratchcnn[plots]"'
            ) from err
    return args, checkpoint


def load_data(args):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``: the training images stay uint8
    (N, 28, 28), a quarter of float32's memory (the Trainer converts each batch); validation and
    test images become float32 (N, 1, 28, 28) in [0, 1]. ``x_val``/``y_val`` are None with
    ``--val-size 0``."""
    (x_all, y_all), (x_test, y_test) = load_mnist(**data_kwargs(args))
    x_train, y_train, x_val, y_val = split_data(args, x_all, y_all)
    del x_all, y_all  # split_data copied what it kept
    check_shapes(x_train, x_test)
    x_val = to_float_images(x_val) if x_val is not None else None
    return x_train, y_train, x_val, y_val, to_float_images(x_test), y_test


def make_trainer(args, checkpoint: Path, x_train, y_train, x_val, y_val) -> Trainer:
    """A new run from the flags, or the run in ``checkpoint`` where it stopped."""
    if not args.resume:
        return Trainer(config_from_args(args), x_train, y_train, x_val, y_val)
    trainer = Trainer.from_checkpoint(
        checkpoint, x_train, y_train, x_val, y_val, epochs=args.epochs
    )
    if trainer.finished:
        print(
            f"the run in {checkpoint} already finished its {trainer.config.epochs} epochs "
            "(add --epochs N to train longer); reporting on its best model"
        )
    else:
        print(f"resuming {checkpoint}: epoch {trainer.epoch + 1}, batch {trainer.position}")
    return trainer


def progress_bar(trainer: Trainer, disable: bool):
    """A tqdm bar over the current epoch's batches and the ``on_batch`` callback that moves it."""
    bar = tqdm(
        total=trainer.steps_per_epoch,
        initial=trainer.position,
        desc=f"epoch {trainer.epoch + 1}/{trainer.config.epochs}",
        unit="batch",
        leave=False,
        disable=disable,
        dynamic_ncols=True,
    )

    def on_batch(stats):
        bar.update(1)
        bar.set_postfix(
            loss=f"{stats.loss:.4f}",
            acc=f"{stats.accuracy:.2%}",
            img_s=f"{stats.batch_images / max(stats.batch_seconds, 1e-9):.0f}",
            refresh=False,
        )

    return bar, on_batch


def train_epochs(trainer: Trainer, args, checkpoint: Path, extra: dict) -> bool:
    """Train until the run is finished, saving the best model (``--output``) and the checkpoint
    after every epoch. Returns False when SIGINT/SIGTERM stopped it (checkpoint saved, said on
    stderr); a diverging run is saved too and raised as a CLIError."""
    config = trainer.config
    continue_with = f"{PROG} --resume {shlex.quote(os.path.abspath(checkpoint))}"
    # A diverging run overflows before the trainer stops it: say so once, in its own words.
    warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered", RuntimeWarning)
    with StopFlag() as stop:
        while not trainer.finished:
            epoch_no = trainer.epoch + 1
            bar, on_batch = progress_bar(trainer, args.no_progress)
            try:
                result = trainer.run_epoch(on_batch, stop)
            except TrainingDiverged as err:
                trainer.save_checkpoint(checkpoint, extra)
                kept = f"; the best model so far stays in {args.output}" if trainer.history else ""
                raise CLIError(
                    f"{err}; a checkpoint of the last finite state is in {checkpoint}{kept} "
                    "(resuming repeats the run: start a new one with a lower --lr)"
                ) from err
            finally:
                bar.close()
            if result is None:
                trainer.save_checkpoint(checkpoint, extra)
                name = signal.Signals(stop.signal).name
                print(
                    f"{name}: stopped in epoch {epoch_no} after batch {trainer.position}; "
                    f"checkpoint saved to {checkpoint}; continue with: {continue_with}",
                    file=sys.stderr,
                )
                return False
            best = trainer.is_best(result)
            if best:
                record = {"epoch": result.epoch, "training": training_record(config, args)}
                save_model(trainer.model, args.output, extra=record)
            trainer.save_checkpoint(checkpoint, extra)
            report_epoch(result, config, args.output if best else None)
            if stop():  # a signal during validation or saving: everything is already saved
                print(
                    f"{signal.Signals(stop.signal).name}: stopped after epoch {result.epoch}; "
                    f"checkpoint saved to {checkpoint}; continue with: {continue_with}",
                    file=sys.stderr,
                )
                return False
    return True


def report_epoch(result, config: TrainConfig, saved: Path | None) -> None:
    """One line per epoch on stdout, and a warning on stderr when it learned nothing."""
    val = f"{result.val_accuracy:.2%}" if result.val_accuracy is not None else "n/a"
    print(
        f"epoch {result.epoch}/{config.epochs}  train loss {result.train_loss:.4f}  "
        f"train acc {result.train_accuracy:.2%}  val acc {val}  lr {result.lr:.4g}  "
        f"{result.seconds:.1f} s" + (f"  -> saved {saved}" if saved else ""),
        flush=True,
    )
    if at_chance(result):
        print(
            f"warning: epoch {result.epoch} learned nothing (train loss "
            f"{result.train_loss:.3f}, accuracy {result.train_accuracy:.1%}, as by "
            f"guessing): the learning rate --lr {config.lr:g} is likely too high (or far "
            "too low), or the inputs are not scaled to [0, 1]",
            file=sys.stderr,
        )


def report_test(trainer: Trainer, args, backend: str, x_test, y_test, wall_seconds: float):
    """The best model's test report on stdout, and ``--metrics-json``/``--report-dir`` files."""
    from scratchcnn.nn.serialization import load_model

    config = trainer.config
    y_pred = load_model(args.output).predict(x_test)
    class_names = DATASETS[config.dataset].class_names
    train_seconds = sum(r.seconds for r in trainer.history)
    print(format_report(y_test, y_pred, class_names))
    print(f"training time {train_seconds:.1f} s (wall {wall_seconds:.1f} s this session); "
          f"model saved to {args.output}")  # fmt: skip
    metrics = {
        **test_report(y_test, y_pred, class_names),
        "epochs": [asdict(r) for r in trainer.history],
        "train_seconds": train_seconds,
        "backend": backend,
        "config": asdict(config),
        "model": str(args.output),
    }
    if args.metrics_json:
        atomic_write_text(args.metrics_json, json.dumps(metrics, indent=2))
    if args.report_dir:
        plots = save_plots(args.report_dir, metrics["epochs"], x_test, y_test, y_pred, class_names)
        for path in plots:
            print(f"wrote {path}")


def train(args) -> int:
    """The whole command: check the flags, load the data, train (or resume) epoch by epoch,
    report on the test set. Returns the exit code."""
    backend = set_backend(args.backend)
    args, checkpoint = resolve_run(args)
    x_train, y_train, x_val, y_val, x_test, y_test = load_data(args)
    trainer = make_trainer(args, checkpoint, x_train, y_train, x_val, y_val)
    val_text = f"{len(x_val)} validation" if x_val is not None else "no validation"
    print(
        f"training {trainer.config.arch} ({trainer.model.count_params():,} parameters) on "
        f"{len(x_train)} images, {val_text}, {len(x_test)} test; backend {backend}; "
        f"{trainer.config.epochs} epochs of {trainer.steps_per_epoch} batches"
    )
    extra = {"run": run_config(args) | {"checkpoint": _saved_value("checkpoint", checkpoint)}}
    started = time.perf_counter()
    if not train_epochs(trainer, args, checkpoint, extra):
        return EXIT_INTERRUPTED
    report_test(trainer, args, backend, x_test, y_test, time.perf_counter() - started)
    if args.keep_checkpoint:
        print(f"checkpoint kept in {checkpoint} (--resume it with a larger --epochs to extend)")
    else:
        checkpoint.unlink(missing_ok=True)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: train(args))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
