"""The training loop behind ``python -m scratchcnn.train``: epochs of shuffled, augmented batches,
validation, and checkpoints from which an interrupted run resumes to exactly the same weights.

Exact resumption works because every random draw (initial weights, shuffling, augmentation,
dropout) comes from one ``numpy.random.Generator`` whose state is saved with the weights, the
optimizer's velocities, the epoch's batch order and the position within it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from scratchcnn.data import DATASETS, to_float_images
from scratchcnn.nn.architectures import DEFAULT_ARCHITECTURE, build_model
from scratchcnn.nn.losses import OUTLIER, OutlierExposureLoss, SoftmaxCrossEntropy
from scratchcnn.nn.model import EpochStats, train_epoch
from scratchcnn.nn.optim import SGD, ConstantSchedule, CosineSchedule, StepSchedule
from scratchcnn.nn.serialization import (
    ArrayHeader,
    ModelFileError,
    check_state_headers,
    load_arrays,
    load_model_state,
    model_state,
    read_meta,
    save_arrays,
)
from scratchcnn.training.augment import random_affine, vary_strokes
from scratchcnn.training.touching import touching_pairs

CHECKPOINT_FORMAT = "scratchcnn-checkpoint"
SCHEDULES = ("cosine", "step", "constant")
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 16
MAX_LR = 100.0
MAX_SEED = 2**32 - 1  # what scikit-learn's random_state accepts
TOUCHING_PAIRS = 16  # per batch of 128 digits, by default (MNIST): +12% of the images
# Settings newer than some checkpoints, with the value the runs that saved them had.
ADDED_SINCE = {"touching_pairs": 0}


def default_touching_pairs(dataset: str) -> int:
    """``TOUCHING_PAIRS`` for MNIST's digits, 0 for other datasets (two touching shirts are no
    outlier the reader meets)."""
    return TOUCHING_PAIRS if dataset == "mnist" else 0


class CheckpointError(ModelFileError):
    """A checkpoint that cannot be resumed: unreadable, or holding values out of range (a batch
    order that is not a permutation, a position past the epoch, ...); the message names the file."""


class TrainingDiverged(ArithmeticError):
    """The loss or the weights became NaN or infinite. The trainer is left at the last finite
    state (before the batch that diverged), so :meth:`Trainer.save_checkpoint` keeps it."""

    def __init__(self, message: str, epoch: int, batch: int, loss: float):
        super().__init__(message)
        self.epoch, self.batch, self.loss = epoch, batch, loss


def _check_type(value, annotation: str, name: str) -> None:
    """``value`` is what a dataclass field annotated ``annotation`` (int, float, bool, str,
    float | None) may hold, numbers finite; else ValueError naming ``name``."""
    if annotation.endswith(" | None") and value is None:
        return
    annotation = annotation.removesuffix(" | None")
    if annotation in ("int", "float"):
        _number(value, name, integer=annotation == "int")
    elif annotation == "bool" and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    elif annotation == "str" and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")


def _record(cls, value, what: str):
    """A dataclass ``cls`` from a checkpoint's JSON ``value``: the same fields, each of its type."""
    names = [f.name for f in fields(cls)]
    if not isinstance(value, dict) or sorted(value) != sorted(names):
        raise ValueError(f"{what} must hold exactly {', '.join(names)}")
    for f in fields(cls):
        _check_type(value[f.name], f.type, f"{what} {f.name!r}")
    return cls(**value)


def _number(value, name: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return value


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in checkpoints so a resume repeats it."""

    arch: str = DEFAULT_ARCHITECTURE
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    step_epochs: int = 5  # for schedule="step": divide the rate by 10 this often
    augment: bool = True
    max_shift: float = 2.0
    max_rotation: float = 10.0
    max_scale: float = 0.1
    max_shear: float = 0.0  # slope; writing styles MNIST has few of (issue #14)
    elastic: float = 0.0  # pixels of smooth random distortion
    stroke_width: float = 0.0  # share of images drawn with thicker or thinner strokes
    # Images of two touching digits added to every batch, trained towards "no digit" (outlier
    # exposure, scratchcnn.training.touching): the digit reader's network then doubts a box
    # holding two digits (issue #14). None: TOUCHING_PAIRS for MNIST, 0 for other datasets.
    touching_pairs: int | None = None
    seed: int = 0
    dataset: str = "mnist"  # a name in scratchcnn.data.DATASETS

    def __post_init__(self):
        if self.touching_pairs is None:
            self.touching_pairs = default_touching_pairs(self.dataset)

    def validate(self) -> None:
        """Refuse meaningless settings (wrong types, non-finite, out of range) with a message
        naming the option as the train command spells it."""
        for f in fields(self):
            _check_type(getattr(self, f.name), f.type, f"--{f.name.replace('_', '-')}")
        checks = [
            (
                1 <= self.epochs <= MAX_EPOCHS,
                f"--epochs must be in 1..{MAX_EPOCHS}, got {self.epochs}",
            ),
            (
                1 <= self.batch_size <= MAX_BATCH_SIZE,
                f"--batch-size must be in 1..{MAX_BATCH_SIZE}, got {self.batch_size}",
            ),
            (0 < self.lr <= MAX_LR, f"--lr must be > 0 and <= {MAX_LR:g}, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (not self.nesterov or self.momentum > 0, "--nesterov needs a --momentum above 0"),
            (
                0 <= self.weight_decay < 1,
                f"--weight-decay must be in [0, 1), got {self.weight_decay}",
            ),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (
                0 <= self.warmup_epochs < self.epochs,
                f"--warmup-epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}",
            ),
            (
                1 <= self.step_epochs <= MAX_EPOCHS,
                f"--step-epochs must be in 1..{MAX_EPOCHS}, got {self.step_epochs}",
            ),
            (
                0 <= self.max_shift <= 14,
                f"--max-shift must be in [0, 14] pixels, got {self.max_shift}",
            ),
            (
                0 <= self.max_rotation <= 180,
                f"--max-rotation must be in [0, 180] degrees, got {self.max_rotation}",
            ),
            (0 <= self.max_scale < 1, f"--max-scale must be in [0, 1), got {self.max_scale}"),
            (0 <= self.max_shear <= 1, f"--max-shear must be in [0, 1], got {self.max_shear}"),
            (0 <= self.elastic <= 5, f"--elastic must be in [0, 5] pixels, got {self.elastic}"),
            (
                0 <= self.stroke_width <= 1,
                f"--stroke-width must be in [0, 1], got {self.stroke_width}",
            ),
            (
                0 <= self.touching_pairs <= MAX_BATCH_SIZE,
                f"--touching-pairs must be in 0..{MAX_BATCH_SIZE}, got {self.touching_pairs}",
            ),
            (0 <= self.seed <= MAX_SEED, f"--seed must be in 0..{MAX_SEED}, got {self.seed}"),
            (self.dataset in DATASETS, f"--dataset must be one of {', '.join(DATASETS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class EpochResult:
    epoch: int  # 1-based
    seconds: float
    train_loss: float
    train_accuracy: float
    val_accuracy: float | None
    lr: float


class Trainer:
    """Trains one model on float32 NCHW images ``x_train`` (N, 1, 28, 28) and int labels.

    ``x_train`` may also be the raw uint8 pixels (N, 28, 28): each batch is then converted as
    :func:`scratchcnn.data.to_float_images` converts a whole set (the same numbers), and the set
    takes a quarter of the memory.

    Call :meth:`run_epoch` until :attr:`finished`; :meth:`save_checkpoint` at any batch boundary
    and :meth:`from_checkpoint` continue exactly where it stopped.
    """

    def __init__(self, config: TrainConfig, x_train, y_train, x_val=None, y_val=None):
        config.validate()
        self.config = config
        self.x_train, self.y_train = x_train, y_train
        self.x_val, self.y_val = x_val, y_val
        self.rng = np.random.default_rng(config.seed)
        self.model = build_model(config.arch, rng=self.rng)
        self.optimizer = SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        self.steps_per_epoch = -(-len(x_train) // config.batch_size)
        self.schedule = self._make_schedule()
        self.loss = OutlierExposureLoss() if config.touching_pairs else SoftmaxCrossEntropy()
        self.epoch = 0  # completed epochs
        self.position = 0  # completed batches in the current epoch
        self.order: np.ndarray | None = None
        self.history: list[EpochResult] = []
        self.best_val_accuracy = -1.0
        self._running = EpochStats()
        self._good: dict | None = None  # the state before the current batch (see _remember)
        self._diverged: tuple[int, float] | None = None
        self.checkpoint_extra: dict = {}  # what save_checkpoint(extra=...) stored, once resumed

    def _make_schedule(self):
        c, total = self.config, self.config.epochs * self.steps_per_epoch
        if c.schedule == "cosine":
            return CosineSchedule(
                c.lr, total, warmup_steps=int(c.warmup_epochs * self.steps_per_epoch)
            )
        if c.schedule == "step":
            return StepSchedule(c.lr, c.step_epochs * self.steps_per_epoch, gamma=0.1)
        return ConstantSchedule(c.lr)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    @property
    def step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.position

    def _batches(self):
        """The rest of this epoch's batches, from :attr:`position` on: images as float32 (uint8
        pixels converted), augmented when the config says so, and their labels; then the
        config's ``touching_pairs`` images of two of them touching, labelled ``OUTLIER``."""
        bs = self.config.batch_size
        for position in range(self.position, self.steps_per_epoch):
            self._remember(position)
            indices = self.order[position * bs : (position + 1) * bs]
            x = self.x_train[indices]
            if x.dtype == np.uint8:
                x = to_float_images(x)
            if self.config.augment:
                c = self.config
                x = random_affine(
                    x,
                    self.rng,
                    c.max_shift,
                    c.max_rotation,
                    (1 - c.max_scale, 1 + c.max_scale),
                    c.max_shear,
                    c.elastic,
                )
                x = vary_strokes(x, self.rng, c.stroke_width)
            y = self.y_train[indices]
            if self.config.touching_pairs:
                pairs = touching_pairs(x, self.rng, self.config.touching_pairs)
                x = np.concatenate([x, pairs])
                y = np.concatenate([y.astype(np.int64), np.full(len(pairs), OUTLIER)])
            yield x, y

    def run_epoch(
        self,
        on_batch: Callable[[EpochStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> EpochResult | None:
        """Train until the end of the epoch (returns its result) or until ``should_stop()`` is
        true after a batch (returns None; the trainer is then at a clean batch boundary).
        ``on_batch`` gets the epoch's running :class:`~scratchcnn.nn.model.EpochStats`.

        Raises :class:`TrainingDiverged` when a batch's loss or the updated weights are NaN or
        infinite, after putting the trainer back to the state before that batch."""
        if self.order is None:
            self.order = self.rng.permutation(len(self.x_train))
        self._diverged = None

        def after_batch(stats: EpochStats) -> None:
            if not (math.isfinite(stats.batch_loss) and self.weights_finite()):
                self._diverged = (self.position + stats.batches, stats.batch_loss)
            if on_batch is not None:
                on_batch(stats)

        def stop() -> bool:
            return self._diverged is not None or (should_stop is not None and should_stop())

        with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below
            stats = train_epoch(
                self.model,
                self.optimizer,
                self._batches(),
                self.loss,
                self.schedule,
                self.step,
                self._running,
                after_batch,
                stop,
            )
        if self._diverged is not None:
            batch, loss = self._diverged
            self._restore()
            problem = (
                "the weights are no longer finite" if math.isfinite(loss) else f"the loss is {loss}"
            )
            raise TrainingDiverged(
                f"training diverged in epoch {self.epoch + 1} at batch {batch}: {problem}; "
                f"the learning rate ({self.config.lr:g}) is likely too high",
                self.epoch + 1,
                batch,
                loss,
            )
        self.position += stats.batches
        if self.position < self.steps_per_epoch:
            return None
        return self._end_epoch()

    def weights_finite(self) -> bool:
        """True when every weight is a finite number (one sum per parameter: cheap)."""
        return all(
            math.isfinite(float(p.data.sum(dtype=np.float64))) for p in self.model.parameters()
        )

    def _remember(self, position: int) -> None:
        """Keep the state before batch ``position`` (into reused buffers), so a diverging batch
        can be undone: weights, velocities, the generator, the epoch's running totals."""
        arrays = [p.data for p in self.model.parameters()] + list(self.optimizer.velocities)
        if self._good is None or len(self._good["arrays"]) != len(arrays):
            self._good = {"arrays": [np.empty_like(a) for a in arrays]}
        for saved, current in zip(self._good["arrays"], arrays, strict=True):
            np.copyto(saved, current)
        self._good["position"] = position
        self._good["rng"] = self.rng.bit_generator.state
        self._good["running"] = replace(self._running)

    def _restore(self) -> None:
        good = self._good
        arrays = [p.data for p in self.model.parameters()] + list(self.optimizer.velocities)
        for current, saved in zip(arrays, good["arrays"], strict=True):
            np.copyto(current, saved)
        self.position = good["position"]
        self.rng.bit_generator.state = good["rng"]
        self._running = good["running"]

    def _end_epoch(self) -> EpochResult:
        run = self._running
        val = None
        if self.x_val is not None and len(self.x_val):
            _, val = self.model.evaluate(self.x_val, self.y_val)
        result = EpochResult(
            epoch=self.epoch + 1,
            seconds=run.seconds,
            train_loss=run.loss,
            train_accuracy=run.accuracy,
            val_accuracy=val,
            lr=self.optimizer.lr,
        )
        self.history.append(result)
        self.epoch += 1
        self.position = 0
        self.order = None
        self._running = EpochStats()
        return result

    def is_best(self, result: EpochResult) -> bool:
        """True (and remembered) when ``result`` has the best validation accuracy so far; with no
        validation set every epoch counts as the best, so the latest weights are kept."""
        score = result.val_accuracy if result.val_accuracy is not None else float(result.epoch)
        if not self.weights_finite():  # never keep a NaN model as the best
            return False
        if score > self.best_val_accuracy:
            self.best_val_accuracy = score
            return True
        return False

    def extend(self, epochs: int) -> None:
        """Train for ``epochs`` in all (more than planned): the schedule is recomputed for the
        new total from the current step on (a cosine rate rises again from where it was)."""
        if epochs < self.config.epochs:
            raise ValueError(f"cannot shorten a run of {self.config.epochs} epochs to {epochs}")
        config = replace(self.config, epochs=int(epochs))
        config.validate()
        self.config = config
        self.schedule = self._make_schedule()

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path, extra: dict | None = None) -> None:
        """Write everything needed to resume (atomically): weights, velocities, RNG, position,
        and ``extra`` (JSON-able: e.g. the command line's whole run configuration)."""
        arrays = {f"model/{k}": v for k, v in model_state(self.model).items()}
        opt = self.optimizer.state_dict()
        arrays.update({f"optimizer/{i}": v for i, v in enumerate(opt.pop("velocities"))})
        if self.order is not None:
            arrays["order"] = self.order
        meta = {
            "format": CHECKPOINT_FORMAT,
            "format_version": 1,
            "config": asdict(self.config),
            "architecture": self.model.get_config(),
            "optimizer": opt,
            "epoch": self.epoch,
            "position": self.position,
            "rng_state": self.rng.bit_generator.state,
            "running": asdict(self._running),
            "history": [asdict(r) for r in self.history],
            "best_val_accuracy": self.best_val_accuracy,
            "extra": extra or {},
        }
        save_arrays(path, arrays, meta)

    @staticmethod
    def read_checkpoint_meta(path) -> dict:
        """A checkpoint's JSON metadata (its ``config``, ``extra``, epoch, ...) without loading
        any array; raises :class:`CheckpointError` naming the file when it cannot be read."""
        try:
            meta, _ = read_meta(path, CHECKPOINT_FORMAT)
        except CheckpointError:
            raise
        except ModelFileError as err:
            raise CheckpointError(str(err)) from err
        return meta

    @classmethod
    def from_checkpoint(
        cls, path, x_train, y_train, x_val=None, y_val=None, epochs: int | None = None
    ) -> Trainer:
        """Rebuild a trainer from :meth:`save_checkpoint`'s file, ready to continue; ``epochs``
        (not fewer than the run's) extends the run (see :meth:`extend`).

        Everything is checked against the run it claims to be: names, shapes and types of the
        arrays before they are read, then values (finite weights; epoch, position and batch
        order in range). Raises :class:`CheckpointError` naming the file and the problem."""
        built: list[Trainer] = []

        def check(meta: dict, headers: dict[str, ArrayHeader]) -> None:
            built.append(cls._build_for(path, meta, headers, x_train, y_train, x_val, y_val))

        try:
            arrays, meta = load_arrays(path, CHECKPOINT_FORMAT, check)
            trainer = built[0]
            trainer._restore_state(path, arrays, meta)
        except CheckpointError:
            raise
        except ModelFileError as err:
            raise CheckpointError(str(err)) from err
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
            raise CheckpointError(
                f"{path}: corrupt checkpoint ({type(err).__name__}: {err})"
            ) from err
        if epochs is not None and epochs != trainer.config.epochs:
            trainer.extend(epochs)
        return trainer

    @classmethod
    def _build_for(cls, path, meta, headers, x_train, y_train, x_val, y_val) -> Trainer:
        """A fresh trainer for the checkpoint's configuration, its arrays' headers checked."""
        saved = meta.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{path}: corrupt checkpoint (no run configuration)")
        known = {f.name for f in fields(TrainConfig)}
        try:
            kept = {k: v for k, v in saved.items() if k in known}
            config = TrainConfig(**{**ADDED_SINCE, **kept})
            trainer = cls(config, x_train, y_train, x_val, y_val)
        except ValueError as err:
            raise CheckpointError(f"{path}: the saved configuration is invalid: {err}") from err
        if trainer.model.get_config() != meta.get("architecture"):
            raise CheckpointError(f"{path}: architecture does not match its config")
        source = str(path)
        model_headers = {k: h for k, h in headers.items() if k.startswith("model/")}
        check_state_headers(trainer.model, model_headers, source, prefix="model/")
        velocities = trainer.optimizer.velocities
        for i, v in enumerate(velocities):
            header = headers.get(f"optimizer/{i}")
            if header is None or header.shape != v.shape or header.dtype.kind != "f":
                raise CheckpointError(
                    f"{path}: optimizer state {i} is missing or does not match the model"
                )
        expected = {*model_headers, *(f"optimizer/{i}" for i in range(len(velocities))), "order"}
        extra = sorted(set(headers) - expected)
        if extra:
            raise CheckpointError(f"{path}: unexpected arrays {', '.join(map(repr, extra[:3]))}")
        order = headers.get("order")
        if order is not None and (order.shape != (len(x_train),) or order.dtype.kind not in "iu"):
            raise CheckpointError(
                f"{path}: batch order does not match the training set (it orders "
                f"{order.shape} {order.dtype}; the training set has {len(x_train)} images)"
            )
        return trainer

    def _restore_state(self, path, arrays: dict, meta: dict) -> None:
        params = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
        load_model_state(self.model, params, source=str(path))
        velocities = [arrays[f"optimizer/{i}"] for i in range(len(self.optimizer.velocities))]
        if not all(np.isfinite(v).all() for v in velocities):
            raise CheckpointError(f"{path}: the optimizer state holds NaN or infinite values")
        opt = meta["optimizer"]
        if not isinstance(opt, dict):
            raise CheckpointError(f"{path}: the optimizer state is not an object")
        _number(opt.get("lr"), "the optimizer's learning rate")
        self.optimizer.load_state_dict({**opt, "velocities": velocities})
        self.rng.bit_generator.state = meta["rng_state"]
        epoch, position = meta["epoch"], meta["position"]
        for name, value in (("epoch", epoch), ("position", position)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise CheckpointError(f"{path}: {name} is {value!r}, not a whole number")
        if not 0 <= epoch <= self.config.epochs:
            raise CheckpointError(
                f"{path}: epoch {epoch} is outside 0..{self.config.epochs} (the run's epochs)"
            )
        last = 0 if epoch == self.config.epochs else self.steps_per_epoch - 1
        if not 0 <= position <= last:
            raise CheckpointError(
                f"{path}: position {position} is outside 0..{last} (batches of epoch {epoch + 1})"
            )
        order = arrays.get("order")
        if order is None and position:
            raise CheckpointError(f"{path}: position {position} in an epoch without a batch order")
        if order is not None:
            if not np.array_equal(np.sort(order), np.arange(len(self.x_train))):
                raise CheckpointError(
                    f"{path}: the batch order is not a permutation of the "
                    f"{len(self.x_train)} training images"
                )
            order = order.astype(np.int64)
        self.epoch, self.position, self.order = epoch, position, order
        self._running = _record(EpochStats, meta["running"], "the running totals")
        history = meta["history"]
        if not isinstance(history, list) or len(history) != epoch:
            raise CheckpointError(f"{path}: the history does not list {epoch} epochs")
        self.history = [
            _record(EpochResult, r, f"epoch {i + 1}'s result") for i, r in enumerate(history)
        ]
        self.best_val_accuracy = float(_number(meta["best_val_accuracy"], "best_val_accuracy"))
        self.checkpoint_extra = meta.get("extra") or {}


def at_chance(result: EpochResult, num_classes: int = 10) -> bool:
    """True when an epoch learned nothing: accuracy and loss no better than guessing."""
    return result.train_accuracy < 1.5 / num_classes and result.train_loss > 0.9 * math.log(
        num_classes
    )
