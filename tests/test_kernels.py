"""The fast kernels against the plain math they stand for (scratchcnn.nn.functional), with NumPy's
loops and with Numba's: the same numbers on random inputs of odd shapes, gradients included,
computed on one thread or cut into blocks and chunks shared by two; the plain math itself against
the definition of a convolution; and the backends against each other on whole training steps."""

import inspect
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO_ROOT

import scratchcnn as sc
from scratchcnn.nn import functional as F
from scratchcnn.nn.gradcheck import relative_error
from scratchcnn.nn.kernels import blas, conv, numpy_loops, pool

BACKENDS = ["numpy", "numba"]


@pytest.fixture(params=["serial", "parallel"])
def split(request, monkeypatch):
    """Run on the calling thread alone, then with every convolution cut into blocks of one image,
    every loop and product into chunks, shared by two threads (whatever the machine)."""
    parallel = request.param == "parallel"
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1 if parallel else 1 << 62)
    monkeypatch.setattr(blas, "SMALL", 0 if parallel else 1 << 62)
    if parallel and sc.backend_name() == "numba":
        from scratchcnn.nn.kernels import numba_loops

        monkeypatch.setattr(numba_loops, "_PARALLEL_MIN", 0)
    sc.set_threads(2 if parallel else 1)
    yield request.param
    sc.set_threads(None)


def assert_close(expected, got, what, tol):
    assert expected.shape == got.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert expected.dtype == got.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    err = relative_error(got, expected)
    assert err <= tol, f"{what}: relative difference {err:.2e} > {tol}"


def as_channel_major(x):
    """The same values stored (C, N, H, W), as a kernel hands them on."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


# -- the plain math against the definition -------------------------------------------------------
def loop_convolution(x, weight, bias, stride, pads):
    """out[n, f, y, x] = bias[f] + sum over c, i, j of weight[f, c, i, j] * padded x[n, c, ...]."""
    xp = F.pad(x, pads)
    f, _, kh, kw = weight.shape
    oh = (xp.shape[2] - kh) // stride[0] + 1
    ow = (xp.shape[3] - kw) // stride[1] + 1
    out = np.empty((x.shape[0], f, oh, ow))
    for y in range(oh):
        for z in range(ow):
            window = xp[
                :, :, y * stride[0] : y * stride[0] + kh, z * stride[1] : z * stride[1] + kw
            ]
            out[:, :, y, z] = np.einsum("ncij,fcij->nf", window, weight) + bias
    return out


# batch, channels, height, width, filters, kernel, stride, pads (top, bottom, left, right)
CONV_CASES = [
    (1, 1, 5, 5, 2, 3, (1, 1), (0, 0, 0, 0)),
    (7, 3, 9, 13, 4, 3, (1, 1), (1, 1, 1, 1)),
    (7, 1, 31, 28, 5, 5, (2, 2), (2, 2, 2, 2)),
    (1, 3, 17, 11, 3, 2, (2, 1), (0, 1, 2, 0)),
    (7, 3, 6, 29, 2, 4, (1, 2), (2, 1, 0, 2)),
    (7, 2, 12, 7, 6, 1, (2, 2), (0, 0, 1, 1)),
    (3, 3, 23, 19, 4, 5, (1, 1), (0, 0, 0, 0)),
]
CASE_IDS = ["x".join(map(str, c[:4])) + f"-k{c[5]}s{c[6][0]}{c[6][1]}" for c in CONV_CASES]


@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
def test_plain_convolution_is_the_definition(case):
    n, c, h, w, f, k, stride, pads = case
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((f, c, k, k))
    bias = rng.standard_normal(f)
    out, cols = F.conv2d_forward(x, weight, bias, stride, pads)
    expected = loop_convolution(x, weight, bias, stride, pads)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)

    # The backward pass against the adjoint identities: <dout, conv(x)> is linear in weight,
    # bias and x, so its gradients are exact.
    dout = rng.standard_normal(out.shape)
    dx, dweight, dbias = F.conv2d_backward(dout, cols, x.shape, weight, stride, pads)
    zero_bias = np.zeros(f)
    unit = np.eye(weight.size).reshape(weight.size, *weight.shape)
    expected_dweight = [
        np.sum(dout * loop_convolution(x, e, zero_bias, stride, pads)) for e in unit
    ]
    np.testing.assert_allclose(dweight.ravel(), expected_dweight, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dbias, dout.sum(axis=(0, 2, 3)), rtol=1e-12)
    probe = rng.standard_normal(x.shape)
    through_dx = np.sum(dx * probe)
    through_conv = np.sum(dout * loop_convolution(probe, weight, zero_bias, stride, pads))
    np.testing.assert_allclose(through_dx, through_conv, rtol=1e-10)


def test_plain_pooling_routes_each_window_to_its_first_maximum():
    x = np.array([[[[1, 3, 3, 0], [3, 2, 0, 0], [5, 5, 1, 2], [5, 4, 2, 1]]]], np.float32)
    out, argmax = F.maxpool2d_forward(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(out[0, 0], [[3, 3], [5, 2]])
    np.testing.assert_array_equal(
        argmax[0, 0], [[1, 0], [0, 1]]
    )  # ties: the first in reading order
    dx = F.maxpool2d_backward(np.ones_like(out), argmax, x.shape, (2, 2), (2, 2))
    np.testing.assert_array_equal(
        dx[0, 0], [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]]
    )


# -- the fast kernels against the plain math -----------------------------------------------------
@pytest.mark.usefixtures("backend", "split")
@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolution_kernels_compute_the_plain_convolution(case, layout, dtype):
    n, c, h, w, f, k, stride, pads = case
    rng = np.random.default_rng(sum(case[:6]))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    if layout == "channel-major":
        x = as_channel_major(x)
    weight = rng.standard_normal((f, c, k, k)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)

    cols = F.im2col(x, k, k, stride, pads)
    np.testing.assert_array_equal(conv.im2col(x, k, k, stride, pads), cols)  # a copy: exact
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    assert_close(F.col2im(dcols, x.shape, k, k, stride, pads),
                 conv.col2im(dcols, x.shape, k, k, stride, pads), "col2im", tol)  # fmt: skip

    expected, plain_cols = F.conv2d_forward(x, weight, bias, stride, pads)
    out, saved = conv.conv2d_forward(x, weight, bias, stride, pads, training=True)
    assert_close(expected, out, "conv2d_forward", tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = conv.conv2d_backward(dout, saved, x.shape, weight, stride, pads)
    plain = F.conv2d_backward(dout, plain_cols, x.shape, weight, stride, pads)
    for name, a, b in zip(("dx", "dweight", "dbias"), plain, grads, strict=True):
        assert_close(a, b, name, tol)
    no_dx, dweight, _ = conv.conv2d_backward(dout, saved, x.shape, weight, stride, pads, False)
    assert no_dx is None
    np.testing.assert_array_equal(dweight, grads[1])

    at_inference, nothing = conv.conv2d_forward(x, weight, None, stride, pads, training=False)
    assert nothing is None
    assert_close(F.conv2d_forward(x, weight, None, stride, pads)[0], at_inference, "no bias", tol)


POOLS = [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (3, 1))]
POOL_SHAPES = [(1, 1, 5, 5), (7, 3, 28, 28), (7, 1, 31, 17), (1, 3, 11, 26), (7, 3, 6, 9)]


@pytest.mark.usefixtures("backend", "split")
@pytest.mark.parametrize(("size", "stride"), POOLS, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_kernels_compute_the_plain_pooling(size, stride, shape, layout, ties):
    rng = np.random.default_rng(abs(hash((size, stride, shape))) % 2**32)
    x = rng.standard_normal(shape, dtype=np.float32)
    if ties:  # few distinct values: windows full of equal maxima, all-negative windows
        x = np.round(x).astype(np.float32)
    if layout == "channel-major":
        x = as_channel_major(x)
    expected, expected_argmax = F.maxpool2d_forward(x, size, stride)
    out, argmax = pool.maxpool2d_forward(x, size, stride, training=True)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)  # the same first maximum everywhere
    maxima, nothing = pool.maxpool2d_forward(x, size, stride, training=False)
    np.testing.assert_array_equal(maxima, expected)
    assert nothing is None
    for training in (True, False):  # with the ReLU that follows a pooling run inside it
        with_relu, _ = pool.maxpool2d_forward(x, size, stride, relu=True, training=training)
        np.testing.assert_array_equal(with_relu, F.relu_forward(expected))
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    assert_close(F.maxpool2d_backward(dout, expected_argmax, x.shape, size, stride),
                 pool.maxpool2d_backward(dout, argmax, x.shape, size, stride),
                 "maxpool2d_backward", 1e-6)  # fmt: skip


@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (7, 3, 13, 31), (3, 17)])
@pytest.mark.parametrize("layout", ["nchw", "channel-major", "strided"])
def test_relu_kernels_compute_the_plain_relu(shape, layout):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape, dtype=np.float32)
    x[..., 0] = 0.0  # the kink itself: no gradient passes
    if len(shape) == 4 and layout == "channel-major":
        x = as_channel_major(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    dout = rng.standard_normal(x.shape, dtype=np.float32)
    out = pool.relu_forward(x)
    np.testing.assert_array_equal(out, F.relu_forward(x))
    np.testing.assert_array_equal(pool.relu_backward(dout, out), F.relu_backward(dout, out))


def test_the_two_loop_modules_are_twins():
    """The kernels call the active loop module blindly: both must define every loop the kernels
    call, with the same parameters."""
    numba_loops = pytest.importorskip("scratchcnn.nn.kernels.numba_loops")
    called = {"im2col_block", "col2im_block", "maxpool_forward", "maxpool_backward"}
    for name in sorted(called):
        twins = [getattr(module, name, None) for module in (numpy_loops, numba_loops)]
        assert all(callable(f) for f in twins), f"a loop module lacks {name}"
        numpy_params, numba_params = (inspect.signature(f).parameters for f in twins)
        assert list(numpy_params) == list(numba_params), name
    assert (numpy_loops.NAME, numba_loops.NAME) == ("numpy", "numba")


# -- whole models, backends, threads ---------------------------------------------------------------
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


@pytest.mark.usefixtures("restore_backend")
@pytest.mark.parametrize("make", [network, lambda: sc.build_model("keras-example", seed=1)])
def test_training_steps_match_across_backends(make):
    pytest.importorskip("numba")
    models = {}
    for backend in BACKENDS:
        sc.set_backend(backend)
        model = make()
        rng = np.random.default_rng(5)
        x = rng.random((7, *model.input_shape), dtype=np.float32)
        y = rng.integers(0, 10, size=7)
        optimizer = sc.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        losses = [model.train_step(x, y, optimizer)[0] for _ in range(3)]
        models[backend] = (model, losses, model.predict_proba(x))
    (a, losses_a, proba_a), (b, losses_b, proba_b) = models["numpy"], models["numba"]
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-5)
    assert_close(proba_a, proba_b, "predict_proba", 1e-5)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert_close(pa.data, pb.data, name, 1e-5)
        assert_close(pa.grad, pb.grad, f"{name}.grad", 1e-5)


def test_float64_stays_float64(backend):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    out, _ = conv.conv2d_forward(x, np.ones((2, 3, 3, 3)), np.zeros(2), (1, 1), (1, 1, 1, 1))
    pooled, _ = pool.maxpool2d_forward(x, (2, 2), (2, 2), training=True)
    assert out.dtype == pooled.dtype == pool.relu_forward(x).dtype == np.float64


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


def test_environment_variables_choose_the_backend_and_the_threads():
    for name, threads in (("numpy", "3"), ("numba", "1")):
        env = {**os.environ, "SCRATCHCNN_BACKEND": name, "SCRATCHCNN_THREADS": threads}
        out = subprocess.run(
            [sys.executable, "-c", "import scratchcnn as sc; print(sc.backend_name(), sc.set_threads())"],
            capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=True,
        ).stdout  # fmt: skip
        assert out.split() == [name, threads]
    with pytest.raises(ValueError, match="threads"):
        sc.set_threads(0)


def test_limit_threads_holds_this_thread_alone(monkeypatch):
    """A limit of one runs every block and chunk of this thread's kernels on this thread, while
    another thread's setting is untouched."""
    ran_on = []
    real_matmul = np.matmul

    def recording_matmul(*args, **kwargs):
        ran_on.append(threading.current_thread().name)
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", recording_matmul)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)  # one image per block: many blocks
    sc.set_threads(2)
    try:
        model = sc.build_model("keras-example", seed=0)
        x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
        with sc.limit_threads(1):
            limited = model.predict_proba(x)
        assert ran_on and set(ran_on) == {threading.current_thread().name}
        np.testing.assert_array_equal(limited, model.predict_proba(x))  # on two threads
    finally:
        sc.set_threads(None)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_the_number_of_threads_does_not_change_a_single_bit(
    backend_name, restore_backend, monkeypatch
):
    """Work is cut into chunks whose sums never depend on how many threads share them."""
    if backend_name == "numba":
        numba_loops = pytest.importorskip("scratchcnn.nn.kernels.numba_loops")
        monkeypatch.setattr(numba_loops, "_PARALLEL_MIN", 1 << 10)
    monkeypatch.setattr(blas, "SMALL", 1 << 16)  # cut even this small network's products
    monkeypatch.setattr(blas, "SUM_CHUNK", 100)
    monkeypatch.setattr(blas, "COLUMN_CHUNK", 100)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 50_000)  # a few images per block
    sc.set_backend(backend_name)
    weights = []
    try:
        for threads in (1, 2, 3):
            sc.set_threads(threads)
            model = sc.build_model("keras-example", seed=2)
            rng = np.random.default_rng(3)
            x = rng.random((16, 1, 28, 28), dtype=np.float32)
            y = rng.integers(0, 10, size=16)
            optimizer = sc.SGD(model.parameters(), lr=0.05, momentum=0.9)
            for _ in range(2):
                model.train_step(x, y, optimizer)
            weights.append([p.data.copy() for p in model.parameters()])
    finally:
        sc.set_threads(None)
    for other in weights[1:]:
        for a, b in zip(weights[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_blas_stays_on_one_thread_until_the_last_thread_leaves():
    """BLAS's thread count is shared by all threads: one leaving ``one_thread`` while another is
    still inside must not let BLAS split the other's products (they may round differently)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if not [lib for lib in threadpool_info() if lib["user_api"] == "blas"]:
        pytest.skip("threadpoolctl finds no BLAS to set")

    def blas_threads():
        return next(lib for lib in threadpool_info() if lib["user_api"] == "blas")["num_threads"]

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
            seen.append(blas_threads())

    with threadpool_limits(limits=2, user_api="blas"):
        threads = [threading.Thread(target=f) for f in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [1]
        assert blas_threads() == 2  # restored when the last one left
