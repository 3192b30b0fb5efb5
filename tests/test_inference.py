"""The fast path for a few images (scratchcnn.nn.inference): a plan must give the layers' numbers
bit for bit, read its input and weights anew at every call, never hand out memory it writes
again, run a user's layer through its forward, and keep one plan per thread."""

import threading

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn import inference
from scratchcnn.nn.fusion import fused_plan
from scratchcnn.nn.kernels import conv as conv_kernels


def through_layers(model, x):
    """The model's inference output computed step by step through the layers' own forward."""
    out = x.astype(model.dtype)
    for step in fused_plan(model.layers):
        out = step.forward(out, False)
    return out


def odd_model(dtype=np.float32):
    """Strides, padding, overlapping pools, a plain ReLU, Dense layers without bias."""
    layers = [
        sc.Conv2D(5, 3, stride=2, padding="same"), sc.ReLU(), sc.MaxPool2D(3, 1),
        sc.Conv2D(4, (2, 3), padding=(1, 2), use_bias=False), sc.MaxPool2D(2), sc.ReLU(),
        sc.Flatten(), sc.Dense(6, use_bias=False), sc.ReLU(), sc.Dropout(0.3), sc.Dense(3),
    ]  # fmt: skip
    return sc.Sequential(layers, input_shape=(3, 17, 15), seed=3, dtype=dtype)


MODELS = {
    "keras-example": lambda: sc.build_model("keras-example", seed=0),
    "lenet5": lambda: sc.build_model("lenet5", seed=0),
    "scratchnet": lambda: sc.build_model("scratchnet", seed=0),
    "odd": odd_model,
    "odd-float64": lambda: odd_model(np.float64),
}


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("n", [1, 3, inference.MAX_BATCH])
def test_plan_gives_the_layers_numbers_bit_for_bit(name, n, rng):
    model = MODELS[name]()
    x = rng.standard_normal((n, *model.input_shape)).astype(np.float32)
    expected = through_layers(model, x)
    got = model.forward(x)
    assert got.dtype == model.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.predict_proba(x), sc.softmax(expected))
    # a convolution block of one image: a plan of several blocks, each computed in turn
    if n > 1:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conv_kernels, "BLOCK_BYTES", 1)
            fresh = MODELS[name]()  # plans are made on first use: under the patch
            np.testing.assert_array_equal(fresh.forward(x), through_layers(fresh, x))


@pytest.mark.usefixtures("backend")
def test_plan_reads_the_current_input_and_weights_and_keeps_no_result(rng):
    model = sc.build_model("keras-example", seed=0)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    first = model.forward(x[:1])
    kept = first.copy()
    second = model.forward(x[1:])
    np.testing.assert_array_equal(first, kept)  # the next call wrote elsewhere
    np.testing.assert_array_equal(second, through_layers(model, x[1:]))
    assert not np.array_equal(first, second)

    # weights changed in place (an optimizer step) and replaced (a new array)
    opt = sc.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train_step(rng.random((4, 1, 28, 28), dtype=np.float32), np.arange(4), opt)
    np.testing.assert_array_equal(model.forward(x[:1]), through_layers(model, x[:1]))
    conv = model.layers[0]
    conv.params["bias"].data = conv.params["bias"].data + 0.5
    conv.params["weight"] = sc.Parameter(-conv.params["weight"].data)
    after = model.forward(x[:1])
    np.testing.assert_array_equal(after, through_layers(model, x[:1]))
    assert not np.array_equal(after, first)


@pytest.mark.usefixtures("backend")
def test_a_users_layer_is_run_through_its_forward(rng):
    """Its output (NCHW, not channel-major) is read by the kernels after it anew at every call."""

    class Doubler(sc.Layer):
        def forward(self, x, training=False):
            return 2 * x

        def backward(self, dout):
            return 2 * dout

    model = sc.Sequential(
        [
            sc.Conv2D(2, 3),
            Doubler(),
            sc.Conv2D(3, 2),
            Doubler(),
            sc.MaxPool2D(2),
            sc.Flatten(),
            sc.Dense(3),
        ],
        input_shape=(1, 9, 9),
        seed=0,
    )
    for _ in range(2):
        x = rng.standard_normal((3, 1, 9, 9)).astype(np.float32)
        np.testing.assert_array_equal(model.forward(x), through_layers(model, x))


@pytest.mark.usefixtures("backend")
def test_plans_follow_the_layers_and_stay_few(rng):
    model = sc.build_model("lenet5", seed=0)
    x = rng.standard_normal((1, 1, 28, 28)).astype(np.float32)
    before = model.forward(x)
    relu = sc.ReLU()  # an edited model: plans of the old steps are not used
    relu.build(model.output_shape, np.random.default_rng(0))
    model.layers.append(relu)
    out = model.forward(x)
    assert out.min() >= 0 and before.min() < 0
    np.testing.assert_array_equal(out, through_layers(model, x))

    plans = inference.Plans()
    steps = fused_plan(model.layers)
    for n in range(1, inference.MAX_BATCH + 1):
        got = plans.forward(steps, rng.random((n, 1, 28, 28), dtype=np.float32))
        assert got.shape == (n, 10)
    assert len(plans) == inference.MAX_PLANS
    plans.forward(steps, x)
    assert len(plans) == inference.MAX_PLANS  # the oldest went


@pytest.mark.usefixtures("backend")
def test_each_thread_runs_its_own_plan(rng):
    model = sc.build_model("keras-example", seed=0)
    images = rng.random((4, 200, 1, 1, 28, 28), dtype=np.float32)  # per thread, 200 single images
    expected = [[through_layers(model, x) for x in mine] for mine in images]
    wrong = []

    def predict(i):
        for x, want in zip(images[i], expected[i], strict=True):
            if not np.array_equal(model.forward(x), want):
                wrong.append(i)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_training_and_large_batches_go_through_the_layers(monkeypatch, rng):
    model = sc.build_model("lenet5", seed=0)
    monkeypatch.setattr(inference, "Plan", None)  # any use of a plan would fail
    x = rng.random((inference.MAX_BATCH + 1, 1, 28, 28), dtype=np.float32)
    assert model.forward(x).shape == (len(x), 10)
    assert model.forward(x[:1], training=True).shape == (1, 10)
