"""The training loop behind ``python -m scratchcnn.train``: epochs of shuffled, augmented batches,
validation, and checkpoints from which an interrupted run resumes to exactly the same weights.

Exact resumption works because every random draw (initial weights, shuffling, augmentation,
dropout) comes from one ``numpy.random.Generator`` whose state is saved with the weights, the
optimizer's velocities, the epoch's batch order and the position within it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np

from scratchcnn.data import to_float_images
from scratchcnn.nn.architectures import DEFAULT_ARCHITECTURE, build_model
from scratchcnn.nn.losses import SoftmaxCrossEntropy
from scratchcnn.nn.model import EpochStats, train_epoch
from scratchcnn.nn.optim import SGD, ConstantSchedule, CosineSchedule, StepSchedule
from scratchcnn.nn.serialization import (
    ModelFileError,
    load_arrays,
    load_model_state,
    model_from_config,
    model_state,
    save_arrays,
)
from scratchcnn.training.augment import random_affine

CHECKPOINT_FORMAT = "scratchcnn-checkpoint"
SCHEDULES = ("cosine", "step", "constant")


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
    seed: int = 0

    def validate(self) -> None:
        """Refuse meaningless settings with a message naming the option."""
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (not self.nesterov or self.momentum > 0, "--nesterov needs a --momentum above 0"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup_epochs < self.epochs, "--warmup-epochs must be in [0, epochs)"),
            (self.step_epochs >= 1, "--step-epochs must be >= 1"),
            (self.max_shift >= 0 and self.max_rotation >= 0, "augmentation ranges must be >= 0"),
            (0 <= self.max_scale < 1, "--max-scale must be in [0, 1)"),
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
        self.loss = SoftmaxCrossEntropy()
        self.epoch = 0  # completed epochs
        self.position = 0  # completed batches in the current epoch
        self.order: np.ndarray | None = None
        self.history: list[EpochResult] = []
        self.best_val_accuracy = -1.0
        self._running = EpochStats()

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
        pixels converted), augmented when the config says so, and their labels."""
        bs = self.config.batch_size
        for position in range(self.position, self.steps_per_epoch):
            indices = self.order[position * bs : (position + 1) * bs]
            x = self.x_train[indices]
            if x.dtype == np.uint8:
                x = to_float_images(x)
            if self.config.augment:
                c = self.config
                x = random_affine(
                    x, self.rng, c.max_shift, c.max_rotation, (1 - c.max_scale, 1 + c.max_scale)
                )
            yield x, self.y_train[indices]

    def run_epoch(
        self,
        on_batch: Callable[[EpochStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> EpochResult | None:
        """Train until the end of the epoch (returns its result) or until ``should_stop()`` is
        true after a batch (returns None; the trainer is then at a clean batch boundary).
        ``on_batch`` gets the epoch's running :class:`~scratchcnn.nn.model.EpochStats`."""
        if self.order is None:
            self.order = self.rng.permutation(len(self.x_train))
        stats = train_epoch(
            self.model,
            self.optimizer,
            self._batches(),
            self.loss,
            self.schedule,
            self.step,
            self._running,
            on_batch,
            should_stop,
        )
        self.position += stats.batches
        if self.position < self.steps_per_epoch:
            return None
        return self._end_epoch()

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
        if score > self.best_val_accuracy:
            self.best_val_accuracy = score
            return True
        return False

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path) -> None:
        """Write everything needed to resume (atomically): weights, velocities, RNG, position."""
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
        }
        save_arrays(path, arrays, meta)

    @classmethod
    def from_checkpoint(cls, path, x_train, y_train, x_val=None, y_val=None) -> Trainer:
        """Rebuild a trainer from :meth:`save_checkpoint`'s file, ready to continue."""
        arrays, meta = load_arrays(path, CHECKPOINT_FORMAT)
        try:
            known = {f.name for f in fields(TrainConfig)}
            config = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
            trainer = cls(config, x_train, y_train, x_val, y_val)
            if trainer.model.get_config() != model_from_config(meta["architecture"]).get_config():
                raise ModelFileError(f"{path}: architecture does not match its config")
            params = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
            load_model_state(trainer.model, params, source=str(path))
            velocities = [
                arrays[f"optimizer/{i}"] for i in range(len(trainer.optimizer.velocities))
            ]
            trainer.optimizer.load_state_dict({**meta["optimizer"], "velocities": velocities})
            trainer.rng.bit_generator.state = meta["rng_state"]
            trainer.epoch, trainer.position = int(meta["epoch"]), int(meta["position"])
            trainer.order = arrays.get("order")
            if trainer.position and (trainer.order is None or len(trainer.order) != len(x_train)):
                raise ModelFileError(f"{path}: batch order does not match the training set")
            trainer._running = EpochStats(**meta["running"])
            trainer.history = [EpochResult(**r) for r in meta["history"]]
            trainer.best_val_accuracy = float(meta["best_val_accuracy"])
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(
                f"{path}: corrupt checkpoint ({type(err).__name__}: {err})"
            ) from err
        return trainer
