"""A user's own layer: the four methods of the protocol are enough to check its gradients, train
it in a model, predict one image at a time, save it and load it back (``custom_layers``)."""

import json

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn.gradcheck import check_layer, check_model
from scratchcnn.nn.serialization import layer_types, model_from_config


class Scale(sc.Layer):
    """y = x * gamma, one learned factor per channel; only build/forward/backward/get_config
    (build returns the shape and sets nothing else: Sequential keeps the shapes)."""

    def __init__(self, initial=1.0):
        super().__init__()
        self.initial = float(initial)

    def build(self, input_shape, rng, dtype=np.float32):
        self.params["gamma"] = sc.Parameter(np.full(input_shape[0], self.initial, dtype))
        return input_shape

    def _gamma(self, ndim):
        return self.params["gamma"].data.reshape(-1, *[1] * (ndim - 2))

    def forward(self, x, training=False):
        self._x = x if training else None
        return x * self._gamma(x.ndim)

    def backward(self, dout):
        x = self._x
        self.params["gamma"].grad = (dout * x).sum(axis=(0, *range(2, x.ndim)))
        return dout * self._gamma(x.ndim)

    def get_config(self):
        return {"initial": self.initial}


def model_with_scale(dtype=np.float32):
    return sc.Sequential(
        [sc.Conv2D(3, 3), Scale(0.5), sc.ReLU(), sc.MaxPool2D(2), sc.Flatten(), sc.Dense(10)],
        input_shape=(1, 10, 10),
        seed=0,
        dtype=dtype,
    )


@pytest.mark.parametrize("shape", [(3, 5, 4), (7,)])
def test_gradients_of_a_users_layer(shape):
    errors = check_layer(Scale(0.7), input_shape=shape)
    assert set(errors) == {"input", "gamma"} and max(errors.values()) < 1e-6


def test_a_users_layer_inside_a_whole_models_gradient_check(rng):
    model = model_with_scale(np.float64)
    x, y = rng.standard_normal((3, 1, 10, 10)), rng.integers(0, 10, 3)
    errors = check_model(model, x, y)
    assert "layers.1.gamma" in errors and max(errors.values()) < 1e-6


def test_a_users_layer_trains_predicts_and_summarizes(rng):
    model = model_with_scale()
    assert model.layers[1].output_shape == (3, 8, 8)  # set by Sequential, not by the layer
    assert "1: Scale       (None, 3, 8, 8)" in model.summary(print_fn=None)
    x, y = rng.random((32, 1, 10, 10), dtype=np.float32), rng.integers(0, 10, 32)
    model.fit(x, y, sc.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=8, verbose=0)
    assert not np.all(model.layers[1].params["gamma"].data == 0.5)  # it learned
    one_by_one = np.concatenate([model.predict_proba(x[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(one_by_one, model.predict_proba(x[:4]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("custom", [[Scale], (Scale,), Scale, {"Scale": Scale}])
def test_save_and_load_a_model_with_a_users_layer(tmp_path, rng, custom):
    model = model_with_scale()
    model.layers[1].params["gamma"].data[:] = [0.25, 2.0, -1.0]
    path = sc.save_model(model, tmp_path / "scaled.npz")
    loaded = sc.load_model(path, custom_layers=custom)
    assert isinstance(loaded.layers[1], Scale) and loaded.layers[1].initial == 0.5
    np.testing.assert_array_equal(loaded.layers[1].params["gamma"].data, [0.25, 2.0, -1.0])
    x = rng.random((5, 1, 10, 10), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_loading_without_the_class_says_how_to_pass_it(tmp_path):
    path = sc.save_model(model_with_scale(), tmp_path / "scaled.npz")
    with pytest.raises(sc.ModelFileError) as err:
        sc.load_model(path)
    message = str(err.value)
    assert "scaled.npz" in message and "unknown type 'Scale'" in message
    assert "custom_layers=[Scale]" in message


def test_a_saved_name_maps_to_a_renamed_class(tmp_path):
    path = sc.save_model(model_with_scale(), tmp_path / "scaled.npz")
    with np.load(path) as archive:
        meta = json.loads(archive["__meta__"].item())
    assert meta["architecture"]["layers"][1]["class"] == "Scale"

    class ScaleV2(Scale):
        pass

    loaded = sc.load_model(path, custom_layers={"Scale": ScaleV2})
    assert type(loaded.layers[1]) is ScaleV2


@pytest.mark.parametrize("bad", [[object], [len], ["Scale"], {"Scale": 3}])
def test_custom_layers_must_be_layer_classes(bad):
    with pytest.raises(TypeError, match="derived from scratchcnn.Layer"):
        layer_types(bad)


def test_the_built_in_table_is_left_alone():
    before = layer_types()
    config = model_with_scale().get_config()
    model_from_config(config, custom_layers=[Scale])
    assert layer_types() == before and "Scale" not in before
