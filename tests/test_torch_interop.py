"""scratchcnn against PyTorch: the interop layer's arrays (always), and, where torch is installed
(the optional ``torch`` extra; CI does without), the same logits and the same SGD steps."""

import sys
from pathlib import Path

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn.interop import from_torch_weights, to_torch_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

ARCHS = ["keras-example", "lenet5", "scratchnet"]
TOL = 1e-5


def odd_model(seed=3):
    """Strides, uneven "same" pads, integer pads, no bias: every translation path."""
    return sc.Sequential(
        [
            sc.Conv2D(5, (3, 4), stride=(2, 1), padding=(1, 2), use_bias=False), sc.ReLU(),
            sc.MaxPool2D(3, stride=2),
            sc.Conv2D(7, 3, padding="same", stride=2), sc.ReLU(), sc.MaxPool2D((2, 1)),
            sc.Flatten(), sc.Dropout(0.3), sc.Dense(13, use_bias=False), sc.ReLU(), sc.Dense(10),
        ],
        input_shape=(1, 28, 28),
        seed=seed,
    )  # fmt: skip


@pytest.mark.parametrize("name", ARCHS)
def test_torch_weight_arrays_round_trip(name):
    model = sc.build_model(name, seed=0)
    weights = to_torch_weights(model)
    dense = [layer for layer in model.layers if isinstance(layer, sc.Dense)]
    assert weights[-2].shape == dense[-1].params["weight"].data.shape[::-1]  # (units, D)
    other = sc.build_model(name, seed=1)
    from_torch_weights(other, weights)
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert np.array_equal(a.data, b.data)


def test_torch_weights_of_the_wrong_shape_leave_the_model_unchanged():
    model = sc.build_model("lenet5", seed=0)
    before = [p.data.copy() for p in model.parameters()]
    weights = to_torch_weights(model)
    weights[-2] = weights[-2].T  # a Dense weight in our layout, not PyTorch's
    with pytest.raises(ValueError, match=r"PyTorch weight 8 does not fit layer 11 \(Dense\)"):
        from_torch_weights(model, weights)
    with pytest.raises(ValueError, match="expected 10 arrays, got 9"):
        from_torch_weights(model, weights[:-1])
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters(), strict=True))


@pytest.fixture(scope="module")
def torch_reference():
    pytest.importorskip("torch", reason="PyTorch not installed (optional extra 'torch')")
    import torch_reference

    return torch_reference


def rel_diff(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("name", [*ARCHS, "odd"])
def test_same_weights_give_the_same_logits(torch_reference, name, rng):
    import torch

    model = odd_model() if name == "odd" else sc.build_model(name, seed=0)
    tmodel = torch_reference.torch_model_like(model).eval()
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    with torch.inference_mode():
        theirs = tmodel(torch.from_numpy(x)).numpy()
    assert rel_diff(model.forward(x), theirs) <= TOL
    back = torch_reference.scratchcnn_from_torch(tmodel, "lenet5") if name == "lenet5" else None
    if back is not None:
        assert np.array_equal(back.forward(x), model.forward(x))


def test_two_sgd_momentum_steps_give_the_same_weights(torch_reference, rng):
    """PyTorch's SGD (v = m*v + g; w -= lr*v) and ours (v = m*v - lr*g; w += v) are the same
    updates at a constant rate; float64 on both sides, so only rounding differs."""
    import torch

    model = sc.build_model("keras-example", seed=0, dropout=0.0, dtype=np.float64)
    tmodel = torch_reference.torch_model_like(model)
    opt = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()
    for _ in range(2):
        x = rng.random((32, 1, 28, 28))
        y = rng.integers(0, 10, 32)
        model.train_step(x, y, opt)
        topt.zero_grad()
        loss(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    theirs = [p.detach().numpy() for p in tmodel.parameters()]
    for ours, other in zip(to_torch_weights(model), theirs, strict=True):
        assert np.abs(ours - other).max() <= 1e-10
