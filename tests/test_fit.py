"""Sequential.fit talks as Keras's does: a line per epoch, validation data, and a History."""

import re

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn import model as model_module


def small_model(seed=0):
    return sc.Sequential(
        [sc.Conv2D(4, 3), sc.ReLU(), sc.MaxPool2D(2), sc.Flatten(), sc.Dense(10)],
        input_shape=(1, 12, 12),
        seed=seed,
    )


@pytest.fixture
def data(rng):
    x = rng.random((96, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 10, size=96)
    return x, y


def test_fit_prints_one_line_per_epoch_and_returns_the_history(data, capsys):
    x, y = data
    model = small_model()
    history = model.fit(
        x[:64], y[:64], sc.SGD(model.parameters(), lr=0.05), epochs=3, batch_size=16,
        validation_data=(x[64:], y[64:]), verbose=2,
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    pattern = (
        r"epoch (\d)/3  loss (\d+\.\d{4})  accuracy (\d+\.\d\d)%  val_loss (\d+\.\d{4})  "
        r"val_accuracy (\d+\.\d\d)%  \d+\.\d s"
    )
    assert len(lines) == 3 and all(re.fullmatch(pattern, line) for line in lines), lines
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in history.history.values())
    for line, loss, val_accuracy in zip(
        lines, history.history["loss"], history.history["val_accuracy"], strict=True
    ):
        printed = re.fullmatch(pattern, line)
        assert float(printed[2]) == pytest.approx(loss, abs=5e-5)
        assert float(printed[5]) == pytest.approx(100 * val_accuracy, abs=0.0051)
    # the validation figures are the model's own evaluate after the last epoch
    last = history.history["val_loss"][-1], history.history["val_accuracy"][-1]
    assert last == pytest.approx(model.evaluate(x[64:], y[64:]))


def test_history_matches_the_epoch_loop_without_validation(data, capsys):
    """The figures come from train_epoch, the loop the train command uses; same seed, same run."""
    x, y = data
    runs = []
    for verbose in (0, 1):
        model = small_model(seed=5)
        history = model.fit(x, y, sc.SGD(model.parameters(), lr=0.05), epochs=2, verbose=verbose)
        runs.append(history.history)
    assert runs[0] == runs[1] and set(runs[0]) == {"loss", "accuracy"}
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in out] == ["epoch 1/2", "epoch 2/2"]  # verbose=1 only


def test_verbose_zero_is_silent(data, capsys):
    model = small_model()
    model.fit(*data, sc.SGD(model.parameters(), lr=0.05), verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("verbose", [3, -1, "yes", True])
def test_verbose_must_be_0_1_or_2(data, verbose):
    model = small_model()
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        model.fit(*data, sc.SGD(model.parameters(), lr=0.05), verbose=verbose)


def test_fit_builds_on_the_one_epoch_loop(data, monkeypatch):
    """fit has no loop of its own over batches: every epoch is one call of train_epoch."""
    calls = []
    real = model_module.train_epoch

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_module, "train_epoch", spy)
    model = small_model()
    model.fit(*data, sc.SGD(model.parameters(), lr=0.05), epochs=3, verbose=0)
    assert len(calls) == 3


def test_on_batch_still_sees_every_step(data):
    x, y = data
    seen = []
    model = small_model()
    model.fit(
        x, y, sc.SGD(model.parameters(), lr=0.05), epochs=2, batch_size=32, verbose=0,
        on_batch=lambda epoch, step, loss, correct: seen.append((epoch, step)),
    )  # fmt: skip
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
