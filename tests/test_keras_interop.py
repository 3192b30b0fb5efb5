"""Weight conversion to and from Keras's channels-last layout, checked without Keras installed."""

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn.interop import from_keras_weights, keras_weight_shapes, to_keras_weights

ARCHS = ["keras-example", "lenet5", "scratchnet"]


def correlate_nhwc(x, kernel, bias):
    """Valid cross-correlation of NHWC ``x`` with a Keras kernel (KH, KW, C, F), written out."""
    kh, kw, _, f = kernel.shape
    n, h, w, _ = x.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, f), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum(
                "nhwc,cf->nhwf", x[:, i : i + h - kh + 1, j : j + w - kw + 1], kernel[i, j]
            )
    return out + bias


@pytest.mark.parametrize("name", ARCHS)
def test_round_trip_restores_every_parameter(name):
    source = sc.build_model(name, seed=1)
    target = sc.build_model(name, seed=2)
    weights = to_keras_weights(source)
    assert [w.shape for w in weights] == keras_weight_shapes(source)
    from_keras_weights(target, weights)
    for (key, a), (_, b) in zip(source.named_parameters(), target.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data, err_msg=key)
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(source.forward(x), target.forward(x))


def test_keras_shapes_of_the_keras_example():
    model = sc.build_model("keras-example")
    assert keras_weight_shapes(model) == [
        (3, 3, 1, 32),
        (32,),
        (3, 3, 32, 64),
        (64,),
        (1600, 10),
        (10,),
    ]


def test_conv_kernel_matches_an_nhwc_correlation(rng):
    model = sc.Sequential([sc.Conv2D(5, (3, 2))], input_shape=(4, 7, 6), seed=0, dtype=np.float64)
    model.layers[0].params["bias"].data[:] = rng.standard_normal(5)
    kernel, bias = to_keras_weights(model)
    assert kernel.shape == (3, 2, 4, 5)
    x = rng.standard_normal((2, 4, 7, 6))
    expected = correlate_nhwc(x.transpose(0, 2, 3, 1), kernel, bias)
    np.testing.assert_allclose(model.forward(x).transpose(0, 2, 3, 1), expected, rtol=1e-12)


def test_dense_after_flatten_takes_nhwc_flattened_features(rng):
    """Keras's Dense sees the (H, W, C)-flattened map: its kernel must give our NCHW model's output."""
    model = sc.Sequential(
        [sc.Conv2D(3, 3), sc.ReLU(), sc.Flatten(), sc.Dropout(0.5), sc.Dense(7)],
        input_shape=(2, 6, 5),
        seed=0,
        dtype=np.float64,
    )
    x = rng.standard_normal((4, 2, 6, 5))
    conv_kernel, conv_bias, dense_kernel, dense_bias = to_keras_weights(model)
    features = np.maximum(correlate_nhwc(x.transpose(0, 2, 3, 1), conv_kernel, conv_bias), 0)
    keras_logits = features.reshape(len(x), -1) @ dense_kernel + dense_bias  # NHWC flatten
    np.testing.assert_allclose(model.forward(x), keras_logits, rtol=1e-12)
    assert not np.allclose(dense_kernel, model.layers[4].params["weight"].data)  # really re-ordered


def test_dense_after_dense_is_not_reordered():
    model = sc.build_model("lenet5")
    weights = to_keras_weights(model)
    np.testing.assert_array_equal(weights[6], model.layers[9].params["weight"].data)  # Dense(84)


def test_wrong_count_names_expected_shapes_and_changes_nothing():
    model = sc.build_model("keras-example")
    before = [p.data.copy() for p in model.parameters()]
    weights = to_keras_weights(sc.build_model("keras-example", seed=5))
    with pytest.raises(ValueError, match=r"expected 6 arrays \[\(3, 3, 1, 32\)"):
        from_keras_weights(model, weights[:-1])
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)


def test_wrong_shape_names_the_layer():
    model = sc.build_model("keras-example")
    weights = to_keras_weights(model)
    weights[2] = weights[2].transpose(3, 2, 0, 1)  # an NCHW kernel handed over by mistake
    with pytest.raises(
        ValueError, match=r"layer 3 \(Conv2D\) weight: expected shape \(3, 3, 32, 64\)"
    ):
        from_keras_weights(model, weights)


def test_other_architecture_is_refused():
    with pytest.raises(ValueError, match="do not match this model"):
        from_keras_weights(
            sc.build_model("keras-example"), to_keras_weights(sc.build_model("lenet5"))
        )
    with pytest.raises(ValueError, match="does not fit layer"):
        from_keras_weights(
            sc.build_model("keras-example"),
            to_keras_weights(sc.build_model("keras-example", num_classes=5)),
        )


def test_loading_keeps_parameter_arrays_so_an_optimizer_still_updates_them():
    model = sc.build_model("keras-example", seed=0)
    arrays = [p.data for p in model.parameters()]
    from_keras_weights(model, to_keras_weights(sc.build_model("keras-example", seed=1)))
    assert all(p.data is a for p, a in zip(model.parameters(), arrays, strict=True))
