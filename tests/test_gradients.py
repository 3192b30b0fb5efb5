"""Every layer's backward pass against central differences in float64 (max relative error 1e-6),
with each kernel backend."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchcnn as sc
from scratchcnn.nn.gradcheck import check_layer, check_model, numerical_gradient, relative_error

TOL = 1e-6

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


@pytest.fixture(
    scope="module",
    autouse=True,
    params=[
        "numpy",
        pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="no numba")),
    ],
)
def backend(request):
    """Run every check in this module once per kernel backend."""
    previous = sc.backend_name()
    sc.set_backend(request.param)
    yield request.param
    sc.set_backend(previous)


@pytest.fixture(autouse=True)
def one_image_blocks(monkeypatch):
    """Convolutions in blocks of one image: the per-block partial gradients are summed too."""
    from scratchcnn.nn.kernels import conv

    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)


def distinct_values(rng, shape, spacing=1e-2):
    """Random values with no two closer than ``spacing``: no max-pool tie within the finite step."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * spacing - n * spacing / 2).reshape(shape)


def away_from_zero(rng, shape, margin=1e-3):
    """Standard-normal values, none within ``margin`` of ReLU's kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * (margin + np.abs(x)), x)


def assert_close(errors):
    assert errors, "nothing was checked"
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e} > {TOL}"


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_conv2d(kernel, stride, padding, rng):
    layer = sc.Conv2D(4, kernel, stride=stride, padding=padding)
    errors = check_layer(layer, (3, 9, 11), batch=2, rng=rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_close(errors)


def test_conv2d_rectangular_kernel_no_bias_asymmetric_stride(rng):
    layer = sc.Conv2D(2, (2, 3), stride=(2, 1), padding=(1, 0), use_bias=False)
    errors = check_layer(layer, (2, 7, 6), batch=3, rng=rng)
    assert set(errors) == {"input", "weight"}
    assert_close(errors)


@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 3),
    filters=st.integers(1, 4),
    height=st.integers(5, 10),
    width=st.integers(5, 10),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"])),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_conv2d_any_shape(batch, channels, filters, height, width, kernel, stride, padding, seed):
    layer = sc.Conv2D(filters, kernel, stride=stride, padding=padding)
    errors = check_layer(
        layer, (channels, height, width), batch=batch, rng=np.random.default_rng(seed)
    )
    assert_close(errors)


@pytest.mark.parametrize(
    ("pool", "stride", "size"),
    [
        (2, 2, (8, 8)),
        (2, 2, (7, 9)),
        (3, 2, (9, 11)),
        (3, 2, (8, 10)),
        (3, 1, (6, 5)),
        (2, 3, (8, 7)),
    ],
)
def test_maxpool2d(pool, stride, size, rng):
    x = distinct_values(rng, (2, 3, *size))
    errors = check_layer(sc.MaxPool2D(pool, stride), (3, *size), rng=rng, x=x)
    assert_close(errors)


@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 3),
    height=st.integers(3, 12),
    width=st.integers(3, 12),
    pool=st.integers(1, 3),
    stride=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_maxpool2d_any_shape(batch, channels, height, width, pool, stride, seed):
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, (batch, channels, height, width))
    assert_close(check_layer(sc.MaxPool2D(pool, stride), (channels, height, width), rng=rng, x=x))


def test_maxpool2d_ties_send_gradient_to_exactly_one_input():
    layer = sc.MaxPool2D(2, 2)
    layer.build((1, 4, 4), np.random.default_rng(0))
    x = np.ones((1, 1, 4, 4), dtype=np.float32)  # every window is one big tie
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 1, 2, 2), dtype=np.float32))
    assert dx.sum() == 4
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[::2, ::2] = 1  # the first maximum in row-major order of each window
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool2d_overlapping_windows_accumulate():
    layer = sc.MaxPool2D(3, 1)
    layer.build((1, 4, 4), np.random.default_rng(0))
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 5.0  # the maximum of all four overlapping windows
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    assert dx[0, 0, 1, 1] == 4 and dx.sum() == 4


def test_dense(rng):
    assert_close(check_layer(sc.Dense(7), (13,), batch=4, rng=rng))


def test_relu(rng):
    x = away_from_zero(rng, (3, 2, 5, 4))
    assert_close(check_layer(sc.ReLU(), (2, 5, 4), rng=rng, x=x))


def test_flatten(rng):
    assert_close(check_layer(sc.Flatten(), (2, 3, 5), batch=3, rng=rng))


def test_dropout_in_training_mode(rng):
    layer = sc.Dropout(0.4)
    errors = check_layer(layer, (50,), batch=4, rng=rng, training=True)
    assert_close(errors)


def test_softmax_cross_entropy_gradient(rng):
    logits = rng.standard_normal((5, 7)) * 3
    labels = rng.integers(0, 7, size=5)
    loss = sc.SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    analytic = loss.backward()
    numerical = numerical_gradient(lambda: loss.forward(logits, labels), logits)
    assert relative_error(analytic, numerical) <= TOL


def small_network(seed=0, dropout=0.3):
    layers = [
        sc.Conv2D(3, 3, padding="same"), sc.ReLU(), sc.MaxPool2D(2),
        sc.Conv2D(4, 3, stride=2, padding=1), sc.ReLU(), sc.MaxPool2D(3, 1),
        sc.Flatten(), sc.Dropout(dropout), sc.Dense(6), sc.ReLU(), sc.Dense(5),
    ]  # fmt: skip
    return sc.Sequential(layers, input_shape=(2, 13, 11), seed=seed, dtype=np.float64)


def test_full_network_loss_every_parameter(rng):
    model = small_network()
    x = rng.standard_normal((3, 2, 13, 11))
    y = rng.integers(0, 5, size=3)
    errors = check_model(model, x, y)
    assert len(errors) == 8  # weight and bias of 2 convolutions and 2 dense layers
    assert_close(errors)


def test_gradcheck_catches_a_wrong_backward(rng):
    """The checker itself must fail a layer whose backward is off."""

    class BrokenDense(sc.Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.params["weight"].grad *= 1.01
            return dx

    errors = check_layer(BrokenDense(3), (4,), rng=rng)
    assert errors["weight"] > 1e-3 and errors["input"] <= TOL
