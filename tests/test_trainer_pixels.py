"""The Trainer takes raw uint8 pixels too, converting each batch: the same run, less memory."""

import numpy as np
import pytest

from scratchcnn.data import to_float_images
from scratchcnn.training.trainer import TrainConfig, Trainer


@pytest.mark.parametrize("augment", [False, True])
def test_uint8_pixels_train_exactly_like_float_images(rng, augment):
    pixels = rng.integers(0, 256, size=(96, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=96)
    weights = []
    for x in (to_float_images(pixels), pixels):
        config = TrainConfig(
            arch="keras-example", epochs=1, batch_size=32, lr=0.02, seed=3, augment=augment
        )
        trainer = Trainer(config, x, labels)
        while not trainer.finished:
            trainer.run_epoch()
        weights.append([p.data.copy() for p in trainer.model.parameters()])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
