"""The training loop: exact resumption from checkpoints, schedules, validation of settings,
hand-edited checkpoints, divergence."""

import json

import numpy as np
import pytest

from scratchcnn.nn.serialization import ModelFileError
from scratchcnn.training.trainer import (
    CheckpointError,
    EpochResult,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    at_chance,
)


@pytest.fixture
def data(rng):
    x = rng.random((200, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=200)
    return x[:160], y[:160], x[160:], y[160:]


def config(**kw):
    base = {"arch": "keras-example", "epochs": 2, "batch_size": 32, "lr": 0.02, "seed": 11}
    return TrainConfig(**{**base, **kw})


def train_to_end(trainer):
    while not trainer.finished:
        trainer.run_epoch()
    return [p.data.copy() for p in trainer.model.parameters()]


@pytest.mark.parametrize("stop_after", [1, 3, 5, 7])
def test_interrupted_and_resumed_run_ends_with_identical_weights(data, tmp_path, stop_after):
    expected = train_to_end(Trainer(config(), *data))

    trainer = Trainer(config(), *data)
    batches = 0

    def stop():
        nonlocal batches
        batches += 1
        return batches >= stop_after

    while not trainer.finished:
        if trainer.run_epoch(should_stop=stop) is None:
            break
    assert not trainer.finished
    trainer.save_checkpoint(tmp_path / "run.ckpt.npz")
    del trainer

    resumed = Trainer.from_checkpoint(tmp_path / "run.ckpt.npz", *data)
    got = train_to_end(resumed)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(resumed.history) == 2


def test_history_and_validation(data):
    trainer = Trainer(config(epochs=3, schedule="step", step_epochs=1), *data)
    results = [trainer.run_epoch() for _ in range(3)]
    assert [r.epoch for r in results] == [1, 2, 3]
    assert all(r.train_loss > 0 for r in results)
    # the validation accuracy is the model's own on the validation set, after its epoch
    assert results[-1].val_accuracy == trainer.model.evaluate(*data[2:])[1]
    assert results[1].lr == pytest.approx(0.002) and results[2].lr == pytest.approx(0.0002)
    assert trainer.finished


def test_best_model_tracking(data):
    trainer = Trainer(config(), *data)
    r = trainer.run_epoch()
    assert trainer.is_best(r)
    assert not trainer.is_best(r)  # not better than itself


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "--epochs"),
        ({"lr": 0.0}, "--lr"),
        ({"batch_size": 0}, "--batch-size"),
        ({"momentum": 1.5}, "--momentum"),
        ({"schedule": "exp"}, "--schedule"),
        ({"momentum": 0.0, "nesterov": True}, "--nesterov"),
    ],
)
def test_meaningless_settings(data, change, message):
    with pytest.raises(ValueError, match=message):
        Trainer(config(**change), *data)


def test_corrupt_checkpoint(data, tmp_path):
    path = tmp_path / "run.ckpt.npz"
    Trainer(config(), *data).save_checkpoint(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        Trainer.from_checkpoint(path, *data)
    with pytest.raises(ModelFileError, match="no such file"):
        Trainer.from_checkpoint(tmp_path / "missing.npz", *data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": float("inf")}, "--lr must be a finite number"),
        ({"max_shift": float("nan")}, "--max-shift must be a finite number"),
        ({"nesterov": "yes"}, "--nesterov must be true or false"),
        ({"epochs": 2.5}, "--epochs must be a whole number"),
        ({"seed": -1}, "--seed must be in"),
        ({"arch": 3}, "--arch must be a string"),
    ],
)
def test_settings_of_the_wrong_kind(data, change, message):
    with pytest.raises(ValueError, match=message):
        Trainer(config(**change), *data)


# -- hand-edited checkpoints ------------------------------------------------------------------
def stopped_checkpoint(data, path, batches=2):
    trainer = Trainer(config(), *data)
    calls = iter(range(100))
    trainer.run_epoch(should_stop=lambda: next(calls) >= batches - 1)
    trainer.save_checkpoint(path)
    return path


def edit(path, meta_change=None, **arrays_change):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta_change:
        meta_change(meta)
    arrays.update(arrays_change)
    np.savez(path, **arrays, __meta__=np.array(json.dumps(meta)))


@pytest.mark.parametrize(
    ("meta_change", "arrays", "message"),
    [
        (None, {"order": np.arange(160) + 1000}, "not a permutation of the 160 training images"),
        (None, {"order": np.zeros(160, np.int64)}, "not a permutation"),
        (None, {"order": np.arange(100)}, "batch order does not match the training set"),
        (None, {"order": np.arange(160.0)}, "batch order does not match"),
        (lambda m: m.update(position=999), {}, "position 999 is outside 0..4"),
        (lambda m: m.update(position=-1), {}, "position -1 is outside"),
        (lambda m: m.update(position=1.5), {}, "position is 1.5, not a whole number"),
        (lambda m: m.update(epoch=7), {}, "epoch 7 is outside 0..2"),
        (lambda m: m.update(epoch=-1), {}, "epoch -1 is outside"),
        (lambda m: m.update(epoch=2), {}, "position 2 is outside 0..0"),
        (lambda m: m.update(epoch=1), {}, "the history does not list 1 epochs"),
        (lambda m: m["running"].update(seen=None), {}, "the running totals 'seen' must be"),
        (lambda m: m["config"].update(lr="fast"), {}, "the saved configuration is invalid"),
        (lambda m: m.update(rng_state={"bit_generator": "MT19937"}), {}, "corrupt checkpoint"),
        (lambda m: m.update(best_val_accuracy=float("nan")), {}, "best_val_accuracy must be"),
        (None, {"optimizer/0": np.full((32, 1, 3, 3), np.nan, np.float32)}, "NaN or infinite"),
        (None, {"model/layers.0.weight": np.zeros((3, 3), np.float32)}, "has shape (3, 3)"),
        (None, {"extra": np.zeros(3)}, "unexpected arrays 'extra'"),
    ],
)
def test_hand_edited_checkpoint_is_a_checkpoint_error(data, tmp_path, meta_change, arrays, message):
    path = stopped_checkpoint(data, tmp_path / "run.ckpt.npz")
    edit(path, meta_change, **arrays)
    with pytest.raises(CheckpointError) as info:
        Trainer.from_checkpoint(path, *data)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_checkpoint_from_before_touching_pairs_resumes_without_them(data, tmp_path):
    """A checkpoint saved before ``touching_pairs`` existed has no such setting: that run had
    none, and resumes without them (the default would add them) to the weights it would have
    reached."""
    expected = train_to_end(Trainer(config(touching_pairs=0), *data))
    trainer = Trainer(config(touching_pairs=0), *data)
    calls = iter(range(100))
    trainer.run_epoch(should_stop=lambda: next(calls) >= 1)
    trainer.save_checkpoint(tmp_path / "old.ckpt.npz")
    edit(tmp_path / "old.ckpt.npz", lambda meta: meta["config"].pop("touching_pairs"))
    resumed = Trainer.from_checkpoint(tmp_path / "old.ckpt.npz", *data)
    assert resumed.config.touching_pairs == 0
    for a, b in zip(expected, train_to_end(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


# -- divergence ---------------------------------------------------------------------------------
def test_divergence_undoes_the_batch_and_says_so(data, tmp_path):
    trainer = Trainer(config(), *data)
    trainer.run_epoch()
    after_epoch_1 = [p.data.copy() for p in trainer.model.parameters()]
    state = trainer.rng.bit_generator.state
    trainer.x_train = np.full_like(trainer.x_train, np.nan)  # the next batch is NaN
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2 at batch 1: the loss is nan"):
        trainer.run_epoch()
    assert trainer.epoch == 1 and trainer.position == 0 and trainer.weights_finite()
    for before, now in zip(after_epoch_1, trainer.model.parameters(), strict=True):
        np.testing.assert_array_equal(before, now.data)
    assert trainer.rng.bit_generator.state != state  # the epoch's order was drawn, and kept
    trainer.save_checkpoint(tmp_path / "run.ckpt.npz")
    resumed = Trainer.from_checkpoint(tmp_path / "run.ckpt.npz", *data)
    assert resumed.epoch == 1 and resumed.order is not None


def test_a_non_finite_model_is_never_the_best(data):
    trainer = Trainer(config(), *data)
    result = trainer.run_epoch()
    trainer.model.parameters()[0].data[0] = np.nan
    assert not trainer.is_best(result)


def test_at_chance():
    base = {"epoch": 1, "seconds": 1.0, "val_accuracy": None, "lr": 0.1}
    assert at_chance(EpochResult(train_loss=2.3, train_accuracy=0.1, **base))
    assert not at_chance(EpochResult(train_loss=0.5, train_accuracy=0.8, **base))


def test_extend_recomputes_the_schedule(data, tmp_path):
    trainer = Trainer(config(epochs=1, schedule="cosine", warmup_epochs=0), *data)
    trainer.run_epoch()
    trainer.save_checkpoint(tmp_path / "run.ckpt.npz")
    resumed = Trainer.from_checkpoint(tmp_path / "run.ckpt.npz", *data, epochs=3)
    assert resumed.config.epochs == 3 and not resumed.finished
    assert resumed.schedule(resumed.step) > 0.001  # mid-cosine again, not the end of the old one
    resumed.run_epoch()
    resumed.run_epoch()
    assert resumed.finished and [r.epoch for r in resumed.history] == [1, 2, 3]
    with pytest.raises(ValueError, match="cannot shorten"):
        resumed.extend(2)
