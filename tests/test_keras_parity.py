"""scratchcnn computes what Keras computes: same logits, loss and SGD updates from the same weights,
and trained weights carried across in either direction give the same test predictions.

Runs whenever Keras (with TensorFlow) is installed: ``pip install -e ".[reference]"``.
"Relative difference" is ``max|ours - keras| / max|keras|`` over a whole array.

Max pooling's gradient goes to the largest input of each window, so two inputs equal to within
float32 rounding (a near-tie) may legitimately route it to different places in the two systems —
changing a few weight gradients by far more than 1e-5, with no error in either. Seed 0 meets no
such tie on the batches used here (seeds 4 for scratchnet and 3 for lenet5 do); should one ever
appear, the training-step test's failure message counts the windows routed differently.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="Keras reference not installed (extra 'reference')")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import keras_reference as kr  # noqa: E402
import mnist_data  # noqa: E402

import scratchcnn as sc  # noqa: E402
from scratchcnn.interop import from_keras_weights, to_keras_weights  # noqa: E402

ARCHS = ["keras-example", "lenet5", "scratchnet"]
TOL = 1e-5


def rel_diff(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return mnist_data.load_mnist_float(mnist_dir)


def twin_models(name, seed=0, **build_kwargs):
    """A scratchcnn model and a Keras model of the same architecture holding the same weights."""
    model = sc.build_model(name, seed=seed, **build_kwargs)
    return model, kr.keras_model_like(model, copy_weights=True)


@pytest.mark.parametrize("name", ARCHS)
def test_same_logits_and_loss_from_the_same_weights(mnist, name):
    _, (x_test, y_test) = mnist
    x, y = x_test[:256], y_test[:256]
    model, kmodel = twin_models(name, dropout=0.0)
    ours = model.forward(x)
    theirs = np.asarray(kmodel(kr.to_nhwc(x), training=False))
    assert ours.dtype == theirs.dtype == np.float32
    assert rel_diff(ours, theirs) <= TOL
    loss = sc.SoftmaxCrossEntropy()(ours, y)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, theirs)
    assert abs(loss - float(keras_loss)) <= TOL * abs(float(keras_loss))


def pooling_disagreements(model, kmodel, x) -> int:
    """Pooling windows whose largest input differs between the systems, both seeing a strict order.

    Exact ties (common: background pixels give equal activations) are left out, since where the
    inputs are equal their patches usually are too and the routing does not change a gradient.
    """
    pools = [
        i for i, layer in enumerate(kmodel.layers) if isinstance(layer, keras.layers.MaxPooling2D)
    ]
    probe = keras.Model(kmodel.inputs[0], [kmodel.layers[i].input for i in pools])
    theirs = [np.asarray(t).transpose(0, 3, 1, 2) for t in probe(kr.to_nhwc(x))]
    ours, out = [], x
    for layer in model.layers:
        if isinstance(layer, sc.MaxPool2D):
            assert layer.pool_size == layer.stride == (2, 2)
            ours.append(out)
        out = layer.forward(out)

    def windows(a):
        n, c, h, w = a.shape
        a = a[:, :, : h - h % 2, : w - w % 2].reshape(n, c, h // 2, 2, w // 2, 2)
        return a.transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)

    count = 0
    for a, b in zip(ours, theirs, strict=True):
        a, b = windows(a), windows(b)
        rows = np.arange(len(a))
        ia, ib = a.argmax(axis=1), b.argmax(axis=1)
        strict = (a[rows, ia] > a[rows, ib]) & (b[rows, ib] > b[rows, ia])
        count += int(strict.sum())
    return count


@pytest.mark.parametrize(
    "name,nesterov,weight_decay",
    [(name, False, 0.0) for name in ARCHS] + [("keras-example", True, 5e-4)],
)
def test_same_weights_after_two_sgd_momentum_steps(mnist, name, nesterov, weight_decay):
    """Two steps, so the second one uses the velocity the first left behind."""
    (x_train, y_train), _ = mnist
    model = sc.build_model(name, seed=0, dropout=0.0)
    kmodel = kr.keras_model_like(model, copy_weights=True, weight_decay=weight_decay)
    kr.compile_like(kmodel, lr=0.05, momentum=0.9, nesterov=nesterov)
    optimizer = sc.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay
    )
    start, flips = to_keras_weights(model), 0
    for step in range(2):
        x, y = x_train[128 * step : 128 * (step + 1)], y_train[128 * step : 128 * (step + 1)]
        flips += pooling_disagreements(model, kmodel, x)
        loss, _ = model.train_step(x, y, optimizer)
        keras_loss = kmodel.train_on_batch(kr.to_nhwc(x), y, return_dict=True)["loss"]
        if not weight_decay:  # Keras's loss then includes the L2 penalty, ours does not
            assert abs(loss - keras_loss) <= TOL * keras_loss
    for k, (ours, theirs, w0) in enumerate(
        zip(to_keras_weights(model), kmodel.get_weights(), start, strict=True)
    ):
        assert rel_diff(ours, theirs) <= TOL, (
            f"weight {k}; pooling windows routed differently because of float32 near-ties: "
            f"{flips} (if > 0, the mismatch comes from a tie, not from the arithmetic)"
        )
        assert rel_diff(ours - w0, theirs - w0) <= 1e-3, f"update of weight {k}"


@pytest.fixture(scope="module")
def train_subset(mnist):
    (x_train, y_train), _ = mnist
    return x_train[:6000], y_train[:6000]


def assert_same_predictions(model, kmodel, x_test, y_test):
    ours = model.predict(x_test, batch_size=500)
    theirs = kmodel.predict(kr.to_nhwc(x_test), batch_size=500, verbose=0).argmax(axis=1)
    differ = np.flatnonzero(ours != theirs)
    assert differ.size == 0, f"{differ.size} of {len(x_test)} test images differ: {differ[:10]}"
    accuracy = float((ours == y_test).mean())
    assert accuracy > 0.9  # really trained
    return accuracy


@pytest.mark.slow
@pytest.mark.parametrize("name", ["keras-example", "lenet5"])
def test_keras_trained_model_imported_predicts_the_same(mnist, train_subset, name):
    _, (x_test, y_test) = mnist
    kmodel = kr.build_keras_model(name, seed=0)
    kr.compile_like(kmodel, lr=0.05, momentum=0.9)
    keras.utils.set_random_seed(0)
    x, y = train_subset
    kmodel.fit(kr.to_nhwc(x), y, batch_size=128, epochs=1, verbose=0)
    model = from_keras_weights(sc.build_model(name, seed=1), kmodel.get_weights())
    assert_same_predictions(model, kmodel, x_test, y_test)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["keras-example"])
def test_scratchcnn_trained_model_exported_predicts_the_same(mnist, train_subset, name):
    _, (x_test, y_test) = mnist
    model = sc.build_model(name, seed=0)
    x, y = train_subset
    model.fit(x, y, sc.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=1, batch_size=128)
    kmodel = kr.build_keras_model(name, seed=1)
    kmodel.set_weights(to_keras_weights(model))
    assert_same_predictions(model, kmodel, x_test, y_test)
