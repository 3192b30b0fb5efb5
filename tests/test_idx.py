"""The IDX reader and writer: round trips of every element type, and clear errors on bad files."""

import gzip

import numpy as np
import pytest
from conftest import gz_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchcnn.data import IDXFormatError, read_idx, write_idx
from scratchcnn.data.mnist import DatasetError, read_split

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    compressed=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_round_trip_every_type_and_rank(tmp_path_factory, dtype, shape, compressed, seed):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    else:
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compressed else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == tuple(shape)
    np.testing.assert_array_equal(back, array)


def test_bytes_on_disk_follow_the_specification(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.array([[1, 2, 3], [4, 5, 258]], dtype=np.int16))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:] == bytes([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 1, 2])  # big-endian
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_writer_refuses_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x.idx", np.uint8(3))


def header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


def write(tmp_path, name, data, compressed=False):
    path = tmp_path / (name + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(data) if compressed else data)
    return path


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x03" + header()[2:] + bytes(6), "does not start with two zero bytes"),
        (header(code=0x0A) + bytes(6), "unknown IDX type code 0x0A"),
        (header(dims=()), "zero dimensions"),
        (header(dims=(2, 3))[:7], "truncated header"),
        (b"\x00\x00", "only 2 bytes, no header"),
        (header(dims=(2, 3)) + bytes(5), "truncated: the header promises 6 bytes"),
        (header(code=0x0C, dims=(2, 3)) + bytes(23), "truncated: the header promises 24 bytes"),
        (header(dims=(2, 3)) + bytes(7), "more bytes follow|1 extra bytes"),
    ],
    ids=["magic", "type-code", "zero-dims", "short-header", "tiny", "truncated", "truncated-int32",
         "trailing"],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_fault(tmp_path, data, message, compressed):
    path = write(tmp_path, "bad.idx", data, compressed)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_cut_in_half(tmp_path, mnist_files):
    data = gz_bytes(mnist_files["test_labels"])
    path = write(tmp_path, "t10k-labels-idx1-ubyte.gz", data[: len(data) // 2])
    with pytest.raises(IDXFormatError, match="damaged gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_not_gzip_at_all(tmp_path):
    path = write(tmp_path, "labels.gz", header() + bytes(6))  # named .gz but plain
    with pytest.raises(IDXFormatError, match="damaged gzip stream"):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


def test_count_mismatch_and_bad_labels(tmp_path):
    images = tmp_path / "images.idx"
    labels = tmp_path / "labels.idx"
    write_idx(images, np.zeros((3, 28, 28), np.uint8))
    write_idx(labels, np.array([1, 2], np.uint8))
    with pytest.raises(DatasetError, match="holds 3 images but .*labels.idx holds 2 labels"):
        read_split(images, labels)
    write_idx(labels, np.array([1, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match="label 10 at index 1 is outside 0-9"):
        read_split(images, labels)
    write_idx(labels, np.array([1, 2, 3], np.int32))
    with pytest.raises(DatasetError, match="expected uint8 labels"):
        read_split(images, labels)
    write_idx(labels, np.array([1, 2, 3], np.uint8))
    x, y = read_split(images, labels)
    assert x.shape == (3, 28, 28) and list(y) == [1, 2, 3]
