"""The convolution computed in blocks of images (scratchcnn.kernels.conv): the same results as a
plain loop over every output pixel, whatever the block size, with each backend."""

import importlib.util

import numpy as np
import pytest

from scratchcnn.kernels import conv, numpy_kernels

BACKENDS = [numpy_kernels]
if importlib.util.find_spec("numba") is not None:
    from scratchcnn.kernels import numba_kernels

    BACKENDS.append(numba_kernels)


def loop_convolution(x, weight, bias, stride, pads):
    """out[n, f, y, x] = bias[f] + sum over c, i, j of weight[f, c, i, j] * padded x[n, c, ...]."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
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
CASES = [
    (5, 3, 9, 11, 4, 3, (1, 1), (0, 0, 0, 0)),
    (7, 2, 12, 7, 3, 2, (2, 1), (1, 0, 2, 1)),
    (3, 1, 28, 28, 6, 5, (1, 1), (2, 2, 2, 2)),
]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.NAME)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])))
@pytest.mark.parametrize("block_bytes", [1, 20_000, 1 << 30], ids=["1-image", "some", "all"])
def test_blocks_compute_the_convolution(backend, case, block_bytes, monkeypatch):
    monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
    n, c, h, w, f, k, stride, pads = case
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((f, c, k, k))
    bias = rng.standard_normal(f)
    expected = loop_convolution(x, weight, bias, stride, pads)

    out, saved = backend.conv2d_forward(x, weight, bias, stride, pads, training=True)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    inference, nothing = backend.conv2d_forward(x, weight, bias, stride, pads, training=False)
    np.testing.assert_array_equal(inference, out)
    assert nothing is None

    # The backward pass against the adjoint identities, on the same blocks:
    # <dout, conv(x)> is linear in weight, bias and x, so its gradients are exact.
    dout = rng.standard_normal(out.shape)
    dx, dweight, dbias = backend.conv2d_backward(dout, saved, x.shape, weight, stride, pads)
    zero_bias = np.zeros(f)
    unit = np.eye(weight.size).reshape(weight.size, *weight.shape)
    expected_dweight = [
        np.sum(dout * loop_convolution(x, e, zero_bias, stride, pads)) for e in unit
    ]
    np.testing.assert_allclose(dweight.ravel(), expected_dweight, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dbias, dout.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    probe = rng.standard_normal(x.shape)
    through_dx = np.sum(dx * probe)
    through_conv = np.sum(dout * loop_convolution(probe, weight, zero_bias, stride, pads))
    np.testing.assert_allclose(through_dx, through_conv, rtol=1e-10)


def test_block_size_follows_the_layer_not_the_machine():
    # The Keras example's second convolution: 288 column rows, 64 filters, 11 x 11 outputs.
    assert conv.images_per_block(288, 64, 121, 4) == conv.BLOCK_BYTES // ((288 + 64) * 121 * 4)
    assert conv.images_per_block(10**6, 64, 10**4, 8) == 1  # huge images: one per block
