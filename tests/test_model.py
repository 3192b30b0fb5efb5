import numpy as np
import pytest

import scratchcnn as sc
import scratchcnn.nn.model
from scratchcnn.nn.fusion import execution_order, fused_plan


def test_shape_inference_and_summary(capsys):
    model = sc.build_model("keras-example")
    assert model.output_shape == (10,)
    assert [layer.output_shape for layer in model.layers][:3] == [(32, 26, 26)] * 2 + [(32, 13, 13)]
    text = model.summary()
    out = capsys.readouterr().out
    assert text in out
    assert "(None, 64, 11, 11)" in text and "Total params: 34,826" in text
    assert model.count_params() == 34826  # the Keras example reports the same


def test_same_padding_keeps_size_and_stride_two_rounds_up():
    model = sc.Sequential(
        [sc.Conv2D(4, 3, padding="same"), sc.Conv2D(2, 3, stride=2, padding="same")],
        input_shape=(1, 7, 7),
    )
    assert model.layers[0].output_shape == (4, 7, 7)
    assert model.layers[1].output_shape == (2, 4, 4)


def test_same_seed_same_weights_bit_for_bit():
    a = sc.build_model("scratchnet", seed=7)
    b = sc.build_model("scratchnet", seed=7)
    c = sc.build_model("scratchnet", seed=8)
    for (na, pa), (_, pb), (_, pc) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert pa.data.dtype == np.float32
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=na)
        if "weight" in na:
            assert not np.array_equal(pa.data, pc.data)


def test_he_init_before_relu_glorot_otherwise():
    model = sc.Sequential([sc.Dense(400), sc.ReLU(), sc.Dense(400)], input_shape=(800,), seed=0)
    first, last = model.layers[0].params["weight"].data, model.layers[2].params["weight"].data
    assert first.std() == pytest.approx(np.sqrt(2 / 800), rel=0.02)  # He normal
    assert np.abs(last).max() <= np.sqrt(6 / 800) and last.std() == pytest.approx(
        np.sqrt(6 / 800) / np.sqrt(3), rel=0.02
    )  # Glorot uniform


def test_same_seed_same_training_run(rng):
    x = rng.random((40, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=40)
    weights = []
    for _ in range(2):
        model = sc.build_model("keras-example", seed=3)
        opt = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.fit(x, y, opt, epochs=2, batch_size=16)
        weights.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dropout_only_in_training_mode(rng):
    model = sc.Sequential([sc.Flatten(), sc.Dropout(0.5)], input_shape=(1, 4, 4), seed=0)
    x = rng.random((3, 1, 4, 4), dtype=np.float32) + 0.5
    np.testing.assert_array_equal(model.forward(x), x.reshape(3, -1))
    out = model.forward(x, training=True)
    dropped = out == 0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(out[~dropped], 2 * x.reshape(3, -1)[~dropped], rtol=1e-6)


def test_predict_in_batches_matches_one_batch(rng):
    model = sc.build_model("lenet5", seed=1)
    x = rng.random((37, 1, 28, 28), dtype=np.float32)
    full = model.predict_proba(x, batch_size=64)
    chunked = model.predict_proba(x, batch_size=5)
    assert full.shape == (37, 10) and full.dtype == np.float32
    np.testing.assert_allclose(full, chunked, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x, batch_size=5), full.argmax(axis=1))


def test_inference_keeps_nothing_for_backward(rng):
    model = sc.build_model("keras-example")
    model.forward(rng.random((2, 1, 28, 28), dtype=np.float32))
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        model.layers[-1].backward(np.ones((2, 10), dtype=np.float32))


def test_wrong_input_shape_is_a_clear_error(rng):
    model = sc.build_model("keras-example")
    with pytest.raises(ValueError, match=r"expected \(N, 1, 28, 28\)"):
        model.predict(rng.random((2, 28, 28)))


def test_bad_architectures_are_clear_errors():
    with pytest.raises(ValueError, match="layer 1 .Dense.*Flatten"):
        sc.Sequential([sc.Conv2D(2, 3), sc.Dense(3)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="does not fit"):
        sc.Sequential([sc.Conv2D(2, 9)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="unknown architecture"):
        sc.build_model("resnet")
    with pytest.raises(ValueError, match="padding"):
        sc.Conv2D(2, 3, padding="full")


def test_train_step_lowers_the_loss(rng):
    model = sc.build_model("keras-example", seed=0, dropout=0.0)
    opt = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = rng.random((32, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=32)
    first, _ = model.train_step(x, y, opt)
    for _ in range(60):
        last, correct = model.train_step(x, y, opt)
    assert last < first / 2
    assert correct == 32  # 32 images learnt by heart: every one right before the last update


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_relu_before_pool_runs_after_it_with_identical_numbers(backend):
    """Sequential runs ReLU after a following MaxPool2D; values and gradients must not change,
    ties and all-negative windows included."""
    if backend == "numba":
        pytest.importorskip("numba")
    previous = sc.backend_name()
    sc.set_backend(backend)
    try:
        model = sc.Sequential(
            [sc.Conv2D(3, 3), sc.ReLU(), sc.MaxPool2D(2), sc.ReLU(), sc.MaxPool2D(3, 1),
             sc.Flatten(), sc.Dense(4)],
            input_shape=(2, 12, 12), seed=0,
        )  # fmt: skip
        assert [type(layer).__name__ for layer in execution_order(model.layers)] == [
            "Conv2D", "MaxPool2D", "ReLU", "MaxPool2D", "ReLU", "Flatten", "Dense",
        ]  # fmt: skip
        # ... and each of those ReLUs runs inside the pooling before it, as one step
        assert [type(step).__name__ for step in fused_plan(model.layers)] == [
            "Conv2D", "MaxPoolReLU", "MaxPoolReLU", "Flatten", "Dense",
        ]  # fmt: skip
        x = np.round(np.random.default_rng(0).standard_normal((5, 2, 12, 12))).astype(np.float32)
        dout = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
        results = []
        for run_in_order in (False, True):
            if run_in_order:
                out = x
                for layer in model.layers:
                    out = layer.forward(out, training=True)
                d = dout
                for layer in reversed(model.layers):
                    d = layer.backward(d)
            else:
                out = model.forward(x, training=True)
                model.backward(dout)
            results.append([out] + [p.grad.copy() for p in model.parameters()])
        for a, b in zip(*results, strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        sc.set_backend(previous)


def test_an_architecture_without_dropout_refuses_a_rate():
    assert sc.build_model("lenet5", dropout=0.0).count_params() == 61_706
    with pytest.raises(ValueError, match="lenet5 has no dropout"):
        sc.build_model("lenet5", dropout=0.5)
