"""The Numba kernels against their NumPy twins: the same numbers (max relative difference 1e-5,
gradients included) on random float32 inputs of odd shapes, a whole training step alike, and the
fall-back to NumPy when numba cannot be imported."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO_ROOT

import scratchcnn as sc
from scratchcnn.gradcheck import relative_error
from scratchcnn.kernels import blas, conv, team
from scratchcnn.kernels import numpy_kernels as ref

fast = pytest.importorskip("scratchcnn.kernels.numba_kernels", reason="numba is not installed")

TOL = 1e-5


@pytest.fixture(params=["serial", "parallel"])
def build(request, monkeypatch):
    """Run each test on the calling thread alone, then with every loop and matrix product cut in
    chunks (convolutions: blocks of one image) shared by two threads (whatever the size, whatever
    the machine)."""
    parallel = request.param == "parallel"
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1 if parallel else 1 << 62)
    monkeypatch.setattr(fast, "_PARALLEL_MIN", 0 if parallel else 1 << 62)
    monkeypatch.setattr(blas, "SMALL", 0 if parallel else 1 << 62)
    monkeypatch.setattr(team, "_threads", 2 if parallel else 1)
    return request.param


def assert_same(a, b, what):
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    err = relative_error(a, b)
    assert err <= TOL, f"{what}: relative difference {err:.2e} > {TOL}"


def as_channel_major(x):
    """The same values stored (C, N, H, W), as a convolution hands them on."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


# batch, channels, height, width, filters, kernel, stride, pads (top, bottom, left, right)
CONV_CASES = [
    (1, 1, 5, 5, 2, 3, (1, 1), (0, 0, 0, 0)),
    (7, 3, 9, 13, 4, 3, (1, 1), (1, 1, 1, 1)),
    (7, 1, 31, 28, 5, 5, (2, 2), (2, 2, 2, 2)),
    (1, 3, 17, 11, 3, 2, (2, 1), (0, 1, 2, 0)),
    (7, 3, 6, 29, 2, 4, (1, 2), (2, 1, 0, 2)),
    (1, 1, 28, 28, 8, 3, (1, 1), (1, 1, 1, 1)),
    (7, 3, 12, 7, 6, 1, (2, 2), (0, 0, 1, 1)),
    (1, 3, 23, 19, 4, 5, (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.usefixtures("build")
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:4])))
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
def test_convolution_kernels_match(case, layout):
    n, c, h, w, f, k, stride, pads = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    if layout == "channel-major":
        x = as_channel_major(x)
    weight = rng.standard_normal((f, c, k, k), dtype=np.float32)
    bias = rng.standard_normal(f, dtype=np.float32)

    cols_ref, cols = ref.im2col(x, k, k, stride, pads), fast.im2col(x, k, k, stride, pads)
    assert_same(cols_ref, cols, "im2col")
    assert_same(ref.col2im(cols_ref, x.shape, k, k, stride, pads),
                fast.col2im(cols_ref, x.shape, k, k, stride, pads), "col2im")  # fmt: skip

    out_ref, saved_ref = ref.conv2d_forward(x, weight, bias, stride, pads)
    out, saved = fast.conv2d_forward(x, weight, bias, stride, pads)
    assert_same(out_ref, out, "conv2d_forward")
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    grads_ref = ref.conv2d_backward(dout, saved_ref, x.shape, weight, stride, pads)
    grads = fast.conv2d_backward(dout, saved, x.shape, weight, stride, pads)
    for name, a, b in zip(("dx", "dweight", "dbias"), grads_ref, grads, strict=True):
        assert_same(a, b, name)
    no_dx, _, _ = fast.conv2d_backward(dout, saved, x.shape, weight, stride, pads, need_dx=False)
    assert no_dx is None
    out_inference, nothing = fast.conv2d_forward(x, weight, None, stride, pads, training=False)
    assert nothing is None
    assert_same(out_ref - bias[:, None, None], out_inference, "conv2d_forward without bias")


POOLS = [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (3, 1))]
POOL_SHAPES = [(1, 1, 5, 5), (7, 3, 28, 28), (7, 1, 31, 17), (1, 3, 11, 26), (7, 3, 6, 9)]


@pytest.mark.usefixtures("build")
@pytest.mark.parametrize(("pool", "stride"), POOLS, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_kernels_match(pool, stride, shape, layout, ties):
    rng = np.random.default_rng(abs(hash((pool, stride, shape))) % 2**32)
    x = rng.standard_normal(shape, dtype=np.float32)
    if ties:  # few distinct values: windows full of equal maxima
        x = np.round(x).astype(np.float32)
    if layout == "channel-major":
        x = as_channel_major(x)
    out_ref, arg_ref = ref.maxpool2d_forward(x, pool, stride)
    out, arg = fast.maxpool2d_forward(x, pool, stride)
    np.testing.assert_array_equal(out_ref, out)
    np.testing.assert_array_equal(arg_ref, arg)  # the same first maximum in every window
    for kernels in (ref, fast):  # with the ReLU that follows a pooling run as part of it
        out_relu, arg_relu = kernels.maxpool2d_forward(x, pool, stride, relu=True)
        np.testing.assert_array_equal(out_relu, np.maximum(out_ref, 0))
        np.testing.assert_array_equal(arg_relu, arg_ref)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    assert_same(
        ref.maxpool2d_backward(dout, arg_ref, x.shape, pool, stride),
        fast.maxpool2d_backward(dout, arg, x.shape, pool, stride),
        "maxpool2d_backward",
    )


@pytest.mark.usefixtures("build")
@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (7, 3, 13, 31), (3, 17)])
@pytest.mark.parametrize("layout", ["nchw", "channel-major", "strided"])
def test_relu_kernels_match(shape, layout):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape, dtype=np.float32)
    x[..., 0] = 0.0  # the kink itself: no gradient passes
    if len(shape) == 4 and layout == "channel-major":
        x = as_channel_major(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    dout = rng.standard_normal(x.shape, dtype=np.float32)
    out_ref, out = ref.relu_forward(x), fast.relu_forward(x)
    np.testing.assert_array_equal(out_ref, out)
    np.testing.assert_array_equal(ref.relu_backward(dout, out_ref), fast.relu_backward(dout, out))


@pytest.mark.usefixtures("build")
def test_float64_stays_float64():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    weight = np.ones((2, 3, 3, 3))
    out, _ = fast.conv2d_forward(x, weight, np.zeros(2), (1, 1), (1, 1, 1, 1))
    pooled, _ = fast.maxpool2d_forward(x, (2, 2), (2, 2))
    assert out.dtype == pooled.dtype == fast.relu_forward(x).dtype == np.float64


def network(seed=0):
    """Every kind of layer, "same" and integer padding, strides, overlapping and uneven pools."""
    layers = [
        sc.Conv2D(4, 3, padding="same"), sc.ReLU(), sc.MaxPool2D(2),
        sc.Conv2D(6, 3, stride=2, padding=1), sc.ReLU(), sc.MaxPool2D(3, 1),
        sc.Flatten(), sc.Dropout(0.3), sc.Dense(12), sc.ReLU(), sc.Dense(10),
    ]  # fmt: skip
    return sc.Sequential(layers, input_shape=(3, 17, 15), seed=seed)


@pytest.fixture
def restore_backend():
    previous = sc.backend_name()
    yield
    sc.set_backend(previous)


@pytest.mark.usefixtures("build")
@pytest.mark.parametrize("make", [network, lambda: sc.build_model("keras-example", seed=1)])
def test_training_steps_match(make, restore_backend):
    models = {}
    for backend in ("numpy", "numba"):
        sc.set_backend(backend)
        model = make()
        rng = np.random.default_rng(5)
        x = rng.random((7, *model.input_shape), dtype=np.float32)
        y = rng.integers(0, 10, size=7)
        optimizer = sc.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        losses = [model.train_step(x, y, optimizer)[0] for _ in range(3)]
        models[backend] = (model, losses, model.predict_proba(x))
    (a, losses_a, proba_a), (b, losses_b, proba_b) = models["numpy"], models["numba"]
    np.testing.assert_allclose(losses_a, losses_b, rtol=TOL)
    assert_same(proba_a, proba_b, "predict_proba")
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert_same(pa.data, pb.data, name)
        assert_same(pa.grad, pb.grad, f"{name}.grad")


def test_auto_falls_back_to_numpy_with_one_line():
    code = (
        "import sys; sys.modules['numba'] = None\n"  # import numba now raises ImportError
        "import scratchcnn as sc\n"
        "print(sc.set_backend('auto'))\n"
        "x = sc.build_model('keras-example').predict(__import__('numpy').zeros((2, 1, 28, 28)))\n"
        "try:\n"
        "    sc.set_backend('numba')\n"
        "except ImportError:\n"
        "    print('numba refused')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SCRATCHCNN_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "numba", "refused"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "numba" in lines[0] and "NumPy" in lines[0], result.stderr


def test_environment_variable_chooses_the_backend():
    for name in ("numpy", "numba"):
        env = {**os.environ, "SCRATCHCNN_BACKEND": name}
        out = subprocess.run(
            [sys.executable, "-c", "import scratchcnn as sc; print(sc.backend_name())"],
            capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=True,
        ).stdout  # fmt: skip
        assert out.strip() == name


def test_every_kernel_has_a_twin():
    names = {n for n in dir(ref) if not n.startswith("_") and callable(getattr(ref, n))}
    names -= {"as_strided", "channel_major", "nchw_of"}
    for name in sorted(names):
        assert callable(getattr(fast, name, None)), f"numba_kernels lacks {name}"
    assert (ref.NAME, fast.NAME) == ("numpy", "numba")


def test_threads_setting():
    code = "import scratchcnn as sc\nfrom scratchcnn.kernels import team\nsc.backend_name()\nprint(team.threads())\n"
    env = {**os.environ, "SCRATCHCNN_THREADS": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
        check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "3"
    with pytest.raises(ValueError, match="threads"):
        sc.set_threads(0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_number_of_threads_does_not_change_a_single_bit(backend, restore_backend, monkeypatch):
    """Work is cut into chunks whose sums never depend on how many threads share them."""
    monkeypatch.setattr(blas, "SMALL", 1 << 16)  # cut even this small network's products
    monkeypatch.setattr(blas, "SUM_CHUNK", 100)
    monkeypatch.setattr(blas, "COLUMN_CHUNK", 100)
    monkeypatch.setattr(fast, "_PARALLEL_MIN", 1 << 10)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 50_000)  # a few images per block
    sc.set_backend(backend)
    weights = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(team, "_threads", threads)
        model = sc.build_model("keras-example", seed=2)
        rng = np.random.default_rng(3)
        x = rng.random((16, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, size=16)
        optimizer = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(2):
            model.train_step(x, y, optimizer)
        weights.append([p.data.copy() for p in model.parameters()])
    for other in weights[1:]:
        for a, b in zip(weights[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_blas_stays_on_one_thread_until_the_last_thread_leaves():
    """BLAS's thread count is shared by all threads: one leaving ``one_thread`` while another is
    still inside must not let BLAS split the other's products (they may round differently)."""
    controls = blas._thread_controls()
    if not controls:
        pytest.skip("threadpoolctl cannot set this BLAS's threads")
    get, set_ = controls[0]
    before = get()
    set_(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with blas.one_thread():
            first_in.set()
            second_in.wait()
        first_out.set()

    def second():
        first_in.wait()
        with blas.one_thread():
            second_in.set()
            first_out.wait()
            seen.append(get())

    try:
        threads = [threading.Thread(target=f) for f in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [1]
        assert get() == 2  # restored when the last one left
    finally:
        set_(before)
