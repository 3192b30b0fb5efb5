"""The training loop: exact resumption from checkpoints, schedules, validation of settings."""

import numpy as np
import pytest

from scratchcnn.nn.serialization import ModelFileError
from scratchcnn.training.trainer import TrainConfig, Trainer


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
