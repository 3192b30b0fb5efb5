"""The scratch-array pool: reuse only what nobody holds any more."""

import numpy as np

import scratchcnn as sc
from scratchcnn.nn.kernels import buffers


def test_an_array_is_reused_only_when_nothing_refers_to_it():
    buffers.clear()
    shape = (64, 1024)  # 256 KiB: pooled
    a = buffers.empty(shape, np.float32)
    address = a.__array_interface__["data"][0]
    view = a[1:]
    del a
    b = buffers.empty(shape, np.float32)  # `view` still holds the first array
    assert b.__array_interface__["data"][0] != address
    del view
    c = buffers.empty(shape, np.float32)
    assert c.__array_interface__["data"][0] == address
    assert c.flags.c_contiguous and c.dtype == np.float32 and c.shape == shape


def test_small_arrays_and_clear():
    small = buffers.empty((3, 4), np.float64)
    assert small.shape == (3, 4)
    big = buffers.zeros((300, 300), np.float64)
    assert not big.any()
    buffers.clear()  # `big` is in use and stays valid
    big[...] = 1.0
    assert big.sum() == 300 * 300


def test_empty_like_keeps_channel_major_order():
    x = np.zeros((5, 128, 12, 12), np.float32).transpose(1, 0, 2, 3)[:, :, ::2, ::2]
    y = buffers.empty_like(x)
    assert y.shape == x.shape
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous


def test_outputs_a_caller_keeps_are_never_overwritten():
    model = sc.build_model("keras-example", seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((2, 64, 1, 28, 28), dtype=np.float32)
    conv = model.layers[0]
    first = conv.forward(x1)
    kept = first.copy()
    conv.forward(x2)  # would reuse `first`'s memory if the pool ignored that we hold it
    np.testing.assert_array_equal(first, kept)


def test_a_smaller_request_reuses_a_larger_free_block():
    buffers.clear()  # no blocks left over from other tests
    a = buffers.empty((128, 1024), np.float32)  # 512 KiB
    address = a.__array_interface__["data"][0]
    del a
    c = buffers.empty((96, 1024), np.float32)  # 384 KiB: at least half the block
    assert c.__array_interface__["data"][0] == address
    assert c.shape == (96, 1024) and c.dtype == np.float32
    del c
    d = buffers.empty((32, 1024), np.float32)  # 128 KiB: less than half, a block of its own
    assert d.__array_interface__["data"][0] != address


def test_a_new_larger_size_lets_go_of_unused_smaller_blocks():
    buffers.clear()
    kept = buffers.empty((64, 1024), np.float32)  # 256 KiB, in use
    unused = buffers.empty((100, 1024), np.float32)  # 400 KiB
    del unused
    assert buffers.held_bytes() == (64 + 100) * 4096
    big = buffers.empty((512, 1024), np.float32)  # 2 MiB: nothing fits; the unused block goes
    assert buffers.held_bytes() == (64 + 512) * 4096
    assert kept.shape == (64, 1024) and big.shape == (512, 1024)
