"""Careless arguments to the library's entry points (issue #13, item 9): each is refused with a
message that names the argument and what to do, instead of a wrong result or a cryptic error."""

import warnings

import numpy as np
import pytest

import scratchcnn as sc


def small_model(**kwargs):
    return sc.Sequential([sc.Flatten(), sc.Dense(10)], input_shape=(1, 28, 28), seed=0, **kwargs)


@pytest.fixture
def data(rng):
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, size=64)


def fit(model, x, y, **kwargs):
    return model.fit(x, y, sc.SGD(model.parameters(), lr=0.01), verbose=0, **kwargs)


# -- predict ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [0, -1, -256])
def test_predict_refuses_a_batch_size_below_one(data, batch_size):
    with pytest.raises(ValueError, match=rf"batch_size must be an int >= 1, got {batch_size}"):
        small_model().predict(data[0], batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [2.5, "8", True, None])
def test_predict_refuses_a_batch_size_that_is_not_an_int(data, batch_size):
    with pytest.raises(TypeError, match="batch_size must be an int"):
        small_model().predict_proba(data[0], batch_size=batch_size)


def test_predict_accepts_numpy_integers_as_batch_size(data):
    model = small_model()
    np.testing.assert_array_equal(
        model.predict(data[0], batch_size=np.int64(10)), model.predict(data[0])
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n", [1, 64])  # the one-image fast path and the batched one
def test_predict_refuses_non_finite_inputs(data, bad, n):
    x = data[0][:n].copy()
    x[n - 1, 0, 5, 7] = bad
    with pytest.raises(ValueError, match=r"x holds NaN or infinite values.*image \d+"):
        small_model().predict(x)


def test_predict_on_load_mnist_images_names_the_conversion():
    pixels = np.zeros((5, 28, 28), np.uint8)  # what load_mnist returns
    with pytest.raises(ValueError, match=r"expected \(N, 1, 28, 28\).*sc\.to_float_images"):
        small_model().predict(pixels)


def test_predict_on_0_255_pixels_warns(data):
    with pytest.warns(UserWarning, match="to_float_images"):
        small_model().predict(data[0] * 255)


# -- fit -------------------------------------------------------------------------------------------
def test_fit_refuses_more_labels_than_images(data):
    x, y = data
    with pytest.raises(ValueError, match="x has 10 images but y has 64 labels"):
        fit(small_model(), x[:10], y)


def test_fit_refuses_fewer_labels_than_images(data):
    x, y = data
    with pytest.raises(ValueError, match="x has 64 images but y has 10 labels"):
        fit(small_model(), x, y[:10])


def test_fit_refuses_an_empty_training_set(data):
    x, y = data
    with pytest.raises(ValueError, match="no images to train on"):
        fit(small_model(), x[:0], y[:0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_refuses_non_finite_inputs_before_any_step(data, bad):
    x, y = data
    x = x.copy()
    x[40, 0, 1, 2] = bad
    model = small_model()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"x holds NaN or infinite values.*image 40"):
        fit(model, x, y)
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)  # refused before the first step


def test_fit_on_0_255_floats_warns_and_names_to_float_images(data):
    x, y = data
    with pytest.warns(UserWarning, match=r"0-255.*sc\.to_float_images"):
        fit(small_model(), x * 255, y)


def test_fit_on_scaled_or_standardized_inputs_does_not_warn(data):
    x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(small_model(), x, y)
        fit(small_model(), (x - 0.13) / 0.31, y)  # standardized: negative values, max ~2.8


def test_fit_on_load_mnist_arrays_names_the_conversion():
    pixels, labels = np.zeros((8, 28, 28), np.uint8), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match=r"sc\.to_float_images"):
        fit(small_model(), pixels, labels)


@pytest.mark.parametrize(
    "labels, message",
    [
        (lambda y: np.eye(10)[y], r"one-hot\? use y\.argmax\(axis=1\)"),
        (lambda y: y + 0.5, "integers"),
        (lambda y: y + 10, r"labels must lie in \[0, 9\]"),
    ],
)
def test_fit_refuses_bad_labels_before_any_step(data, labels, message):
    x, y = data
    with pytest.raises(ValueError, match=message):
        fit(small_model(), x, labels(y))


@pytest.mark.parametrize("name", ["epochs", "batch_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_fit_refuses_counts_below_one(data, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be an int >= 1, got {value}"):
        fit(small_model(), *data, **{name: value})


def test_fit_checks_the_validation_data_too(data):
    x, y = data
    x_val = x[:8].copy()
    x_val[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="validation_data"):
        fit(small_model(), x, y, validation_data=(x_val, y[:8]))
    with pytest.raises(ValueError, match="validation_data: x has 8 images but y has 9 labels"):
        fit(small_model(), x, y, validation_data=(x[:8], y[:9]))
    with pytest.raises(ValueError, match=r"validation_data must be a pair \(x_val, y_val\)"):
        fit(small_model(), x, y, validation_data=x[:8])


# -- to_float_images -------------------------------------------------------------------------------
def test_to_float_images_converts_uint8_pixels():
    pixels = np.array([[[0, 255], [51, 102]]], np.uint8)
    out = sc.to_float_images(pixels)
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0], np.float32([[0, 1], [0.2, 0.4]]))
    np.testing.assert_array_equal(sc.to_float_images(pixels[:, None]), out)  # (N, 1, H, W) too


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint16])
def test_to_float_images_refuses_images_that_are_not_uint8(dtype):
    images = np.zeros((3, 28, 28), dtype)
    with pytest.raises(TypeError, match=rf"uint8.*got {np.dtype(dtype).name}"):
        sc.to_float_images(images)


@pytest.mark.parametrize("shape", [(28, 28), (2, 3, 28, 28), (2, 1, 1, 28, 28)])
def test_to_float_images_refuses_other_shapes(shape):
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        sc.to_float_images(np.zeros(shape, np.uint8))


# -- constructors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float16, object, "complex64"])
def test_sequential_refuses_dtypes_other_than_float32_and_float64(dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        small_model(dtype=dtype)


@pytest.mark.parametrize("shape", [(1, 28, 28.5), (1, 0, 28), (1, -28, 28), ("1", 28, 28), ()])
def test_sequential_refuses_input_shapes_that_are_not_positive_ints(shape):
    with pytest.raises((TypeError, ValueError), match="input_shape"):
        sc.Sequential([sc.Flatten(), sc.Dense(10)], input_shape=shape)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: sc.Dense(2.5), "units must be an int"),
        (lambda: sc.Dense("10"), "units must be an int"),
        (lambda: sc.Dense(True), "units must be an int"),
        (lambda: sc.Dense(10, use_bias="no"), "use_bias must be True or False"),
        (lambda: sc.Conv2D(3.7, 3), "filters must be an int"),
        (lambda: sc.Conv2D(8, 2.5), "kernel_size must be an int or a pair of ints"),
        (lambda: sc.Conv2D(8, (3, 3.5)), "kernel_size must be an int or a pair of ints"),
        (lambda: sc.Conv2D(8, 3, stride=1.5), "stride must be an int or a pair of ints"),
        (lambda: sc.Conv2D(8, 3, padding=1.5), "padding must be an int, a pair"),
        (lambda: sc.Conv2D(8, 3, use_bias=None), "use_bias must be True or False"),
        (lambda: sc.MaxPool2D(2.5), "pool_size must be an int or a pair of ints"),
        (lambda: sc.MaxPool2D("2"), "pool_size must be an int or a pair of ints"),
        (lambda: sc.MaxPool2D(2, stride=(1, True)), "stride must be an int or a pair of ints"),
        (lambda: sc.Dropout("0.5"), "rate must be a number"),
        (lambda: sc.Dropout(True), "rate must be a number"),
    ],
)
def test_layer_constructors_check_argument_types(make, message):
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: sc.Dense(0), "units must be an int >= 1"),
        (lambda: sc.Conv2D(0, 3), "filters must be an int >= 1"),
        (lambda: sc.Conv2D(8, 0), "kernel_size must be >= 1"),
        (lambda: sc.Dropout(float("nan")), r"rate must be in \[0, 1\)"),
        (lambda: sc.Dropout(1.0), r"rate must be in \[0, 1\)"),
    ],
)
def test_layer_constructors_check_argument_values(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layer_constructors_accept_numpy_scalars_and_pairs():
    assert sc.Dense(np.int64(10)).units == 10
    conv = sc.Conv2D(np.int32(4), (3, np.int64(5)), stride=[1, 2], padding=(0, 1))
    assert conv.kernel_size == (3, 5) and conv.stride == (1, 2) and conv.padding == (0, 1)
    assert sc.Dropout(np.float32(0.25)).rate == 0.25 and sc.Dropout(0).rate == 0.0
