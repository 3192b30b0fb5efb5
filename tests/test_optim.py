import numpy as np
import pytest

import scratchcnn as sc


def make_param(values):
    p = sc.Parameter(np.array(values, dtype=np.float64))
    return p


def run(optimizer, param, grads):
    for g in grads:
        param.grad = np.array(g, dtype=np.float64)
        optimizer.step()
    return param.data


def test_plain_sgd():
    p = make_param([1.0, -2.0])
    run(sc.SGD([p], lr=0.1), p, [[1.0, 1.0]])
    np.testing.assert_allclose(p.data, [0.9, -2.1])


def test_momentum_matches_keras_rule():
    p = make_param([1.0])
    grads = [[1.0], [2.0], [-1.0]]
    v, w = 0.0, 1.0
    for (g,) in grads:
        v = 0.9 * v - 0.1 * g
        w = w + v
    run(sc.SGD([p], lr=0.1, momentum=0.9), p, grads)
    assert p.data[0] == pytest.approx(w, rel=1e-12)


def test_nesterov_matches_keras_rule():
    p = make_param([1.0])
    grads = [[1.0], [2.0], [-1.0]]
    v, w = 0.0, 1.0
    for (g,) in grads:
        v = 0.9 * v - 0.1 * g
        w = w + 0.9 * v - 0.1 * g
    run(sc.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, grads)
    assert p.data[0] == pytest.approx(w, rel=1e-12)


def test_weight_decay_adds_l2_gradient():
    p = make_param([2.0])
    run(sc.SGD([p], lr=0.1, weight_decay=0.5), p, [[0.0]])
    assert p.data[0] == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)


def test_state_dict_round_trip_resumes_exactly():
    grads = [[1.0, 2.0], [0.5, -1.0], [2.0, 0.0], [-1.0, 1.0]]
    p1 = make_param([0.0, 0.0])
    run(sc.SGD([p1], lr=0.1, momentum=0.9, nesterov=True), p1, grads)
    p2 = make_param([0.0, 0.0])
    opt = sc.SGD([p2], lr=0.1, momentum=0.9, nesterov=True)
    run(opt, p2, grads[:2])
    state = opt.state_dict()
    p3 = make_param(p2.data.copy())
    resumed = sc.SGD([p3], lr=0.1, momentum=0.9, nesterov=True)
    resumed.load_state_dict(state)
    run(resumed, p3, grads[2:])
    np.testing.assert_array_equal(p1.data, p3.data)


@pytest.mark.parametrize(
    "kwargs",
    [{"lr": 0}, {"lr": -1}, {"momentum": 1.0}, {"weight_decay": -1}, {"nesterov": True}],
)
def test_meaningless_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        sc.SGD([make_param([1.0])], **{"lr": 0.1, **kwargs})


def test_step_schedule():
    s = sc.StepSchedule(0.1, step_size=10, gamma=0.5)
    assert [s(0), s(9), s(10), s(25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_cosine_schedule_with_warmup():
    s = sc.CosineSchedule(1.0, total_steps=110, warmup_steps=10, min_lr=0.0)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.5)
    assert s(110) == pytest.approx(0.0, abs=1e-12) and s(500) == pytest.approx(0.0, abs=1e-12)
    lrs = [s(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
