"""Proof that the pieces learn together: a small network memorizes 64 real MNIST images."""

import gzip

import numpy as np

import scratchcnn as sc


def read_first(path, count, header, shape):
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        f.read(header)
        data = f.read(count * int(np.prod(shape)))
    return np.frombuffer(data, dtype=np.uint8).reshape(count, *shape)


def test_overfits_64_real_mnist_images(mnist_files):
    x = read_first(mnist_files["train_images"], 64, 16, (1, 28, 28))
    y = read_first(mnist_files["train_labels"], 64, 8, ()).astype(np.int64)
    x = x.astype(np.float32) / 255.0
    model = sc.build_model("keras-example", seed=0, dropout=0.0)
    opt = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = model.fit(x, y, opt, epochs=30, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0] / 10
    assert (model.predict(x) == y).mean() == 1.0
