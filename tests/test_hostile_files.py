"""Hostile and careless files: model files, checkpoints and IDX files that lie about their sizes,
break the format or hold nonsense, and the atomic writer's promises (issue #13, items 3, 4, 8, 10).

Every malformed file must raise its own error type (ModelFileError, CheckpointError,
IDXFormatError) naming the file, without allocating what the file merely promises."""

import gzip
import io
import json
import os
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.data import IDXFormatError, read_idx, write_idx
from scratchcnn.files import atomic_write, remove_stale_temporaries
from scratchcnn.nn.serialization import ModelFileError, model_from_config

MB = 1 << 20


def small_model():
    model = sc.Sequential(
        [sc.Conv2D(4, 3), sc.ReLU(), sc.MaxPool2D(2), sc.Flatten(), sc.Dense(10)],
        input_shape=(1, 12, 12),
        seed=3,
    )
    return model


def members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(path, entries, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def meta_of(path):
    return json.loads(str(np.load(path)["__meta__"]))


def with_meta(path, meta):
    entries = members(path)
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(meta)))
    entries["__meta__.npy"] = buffer.getvalue()
    write_members(path, entries)


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape, dtype="<f4", version=1):
    """A .npy header alone: what the file claims, with no data behind it."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    writer = (
        np.lib.format.write_array_header_1_0
        if version == 1
        else np.lib.format.write_array_header_2_0
    )
    writer(buffer, header)
    return buffer.getvalue()


def peak_mb(call, *args):
    """Run ``call``; return (its exception or None, peak traced allocation in MiB). NumPy and
    Python buffers are traced, so a promised allocation shows here."""
    tracemalloc.start()
    try:
        call(*args)
        error = None
    except Exception as err:  # noqa: BLE001 - returned for the caller to check
        error = err
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak / MB


@pytest.fixture
def model_file(tmp_path):
    return sc.save_model(small_model(), tmp_path / "m.npz")


# -- model bombs: nothing large is allocated before the file is found out -----------------------
def deflate_bomb(path, entries, name, megabytes):
    """``entries`` plus member ``name``: a valid .npy header of ``megabytes`` MiB of float32
    zeros, deflated to about a thousandth of that."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for other, data in entries.items():
            if other != name:
                zf.writestr(other, data)
        with zf.open(name, "w", force_zip64=True) as out:
            out.write(npy_header((megabytes * MB // 4,)))
            for _ in range(megabytes):
                out.write(bytes(MB))


@pytest.mark.parametrize("name", ["layers.0.weight.npy", "__meta__.npy", "layers.7.extra.npy"])
def test_deflate_bomb_is_refused_before_inflating(model_file, tmp_path, name):
    bomb = tmp_path / "bomb.npz"
    deflate_bomb(bomb, members(model_file), name, 256)
    assert bomb.stat().st_size < 2 * MB
    error, peak = peak_mb(sc.load_model, bomb)
    assert isinstance(error, ModelFileError), error
    assert "bomb.npz: " in str(error) and "compression bomb" in str(error)
    assert peak < 20, f"{peak:.0f} MiB allocated for a refused file"


def test_member_of_the_wrong_shape_is_refused_before_reading(model_file):
    entries = members(model_file)
    entries["layers.0.weight.npy"] = npy_bytes(np.zeros((8, 1, 3, 3), np.float32))
    write_members(model_file, entries)
    with pytest.raises(ModelFileError, match=r"'layers.0.weight' has shape \(8, 1, 3, 3\), the"):
        sc.load_model(model_file)


def test_header_promising_more_than_the_entry_holds(model_file, tmp_path):
    entries = members(model_file)
    entries["layers.0.weight.npy"] = npy_header((1 << 28,)) + bytes(64)
    write_members(model_file, entries)
    error, peak = peak_mb(sc.load_model, model_file)
    assert isinstance(error, ModelFileError)
    assert "'layers.0.weight' declares shape (268435456,)" in str(error)
    assert peak < 10


def test_huge_declared_filters_are_refused_before_building(model_file):
    meta = meta_of(model_file)
    meta["architecture"]["layers"][0]["config"]["filters"] = 1e9
    with_meta(model_file, meta)
    error, peak = peak_mb(sc.load_model, model_file)
    assert isinstance(error, ModelFileError)
    assert "layer 0 (Conv2D): 'filters' is 1e+09, beyond the sanity limit" in str(error)
    assert peak < 10


def test_architecture_larger_than_the_file_is_refused_before_its_weights(model_file):
    meta = meta_of(model_file)
    meta["architecture"]["layers"][4]["config"]["units"] = 1_000_000  # 100 x 1e6 weights
    with_meta(model_file, meta)
    error, peak = peak_mb(sc.load_model, model_file)
    assert isinstance(error, ModelFileError)
    assert "declares more parameters than the file holds" in str(error)
    assert peak < 30  # the biases (zeros, 4 MB) exist; the 400 MB of weights never do


def test_model_from_config_has_a_parameter_limit():
    config = small_model().get_config()
    config["layers"][4]["config"]["units"] = 10
    with pytest.raises(ModelFileError, match="more parameters than the file holds"):
        model_from_config(config, "cfg", max_parameters=100)
    assert model_from_config(config).count_params() == small_model().count_params()


# -- malformed architectures and members: one error type, the real problem named ---------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(layers=None), "'layers' must be a list"),
        (lambda a: a.update(layers=[1, 2]), "layer 0 is not an object with a 'class' name"),
        (lambda a: a["layers"][0].update({"class": ["Conv2D"]}), "layer 0 is not an object"),
        (lambda a: a.update(dtype="object"), "'dtype' must be one of float32, float64"),
        (lambda a: a.update(dtype="int32"), "'dtype' must be one of float32, float64"),
        (lambda a: a.update(input_shape=[1, 1e9, 28]), "'input_shape' must be a list"),
        (lambda a: a.update(input_shape=[1, 60000, 60000]), "over the limit"),
        (lambda a: a.update(input_shape="1x28x28"), "'input_shape' must be a list"),
        (lambda a: a["layers"][0].update(config=[4, 3]), "config that is not an object"),
        (lambda a: a["layers"][0]["config"].update(filters=float("nan")), "'filters' is nan"),
        (lambda a: a["layers"][0]["config"].update(kernel_size={"a": 1}), "'kernel_size' is not"),
        (lambda a: a["layers"][0]["config"].update(filters="4" * 300), "a string of 300"),
        (lambda a: a["layers"][0]["config"].update(bogus=1), "layer 0 (Conv2D) has a bad config"),
        (lambda a: a["layers"][0].update({"class": "Swish"}), "unknown type 'Swish'"),
        (lambda a: a.pop("layers"), "architecture lacks 'layers'"),
    ],
)
def test_malformed_architecture(model_file, change, message):
    meta = meta_of(model_file)
    change(meta["architecture"])
    with_meta(model_file, meta)
    with pytest.raises(ModelFileError, match="m.npz: ") as info:
        sc.load_model(model_file)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ([1, 2], "format is None"),
        (
            {"format": "scratchcnn-model", "format_version": 1, "architecture": None},
            "not a JSON object",
        ),
        ({"format": "scratchcnn-model", "format_version": 1}, "not a JSON object"),
    ],
)
def test_malformed_metadata(model_file, meta, message):
    with_meta(model_file, meta)
    with pytest.raises(ModelFileError, match=message):
        sc.load_model(model_file)


def test_deeply_nested_json_is_a_model_file_error(model_file):
    entries = members(model_file)
    entries["__meta__.npy"] = npy_bytes(np.array("[" * 100_000 + "]" * 100_000))
    write_members(model_file, entries)
    with pytest.raises(ModelFileError, match="corrupt metadata"):
        sc.load_model(model_file)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.txt", b"hello", "member 'notes.txt' is not a .npy array"),
        ("layers.0.weight.npy", b"\x93NUMPY", "is not a valid .npy array"),
        ("layers.0.weight.npy", b"garbage, not an array", "is not a valid .npy array"),
        ("layers.0.weight.npy", npy_header((4, 1, 3, 3))[:-20], "is not a valid .npy array"),
        ("layers.0.weight.npy", npy_header((4, 1, 3, 3)) + bytes(10), "entry holds 10 bytes"),
        ("layers.0.weight.npy", npy_bytes(np.zeros((4, 1, 3, 3), np.int64)), "not floating point"),
        ("layers.0.weight.npy", npy_bytes(np.zeros((4, 1, 3, 3), complex)), "unsupported type"),
        ("layers.0.weight.npy", npy_bytes(np.zeros((4, 1, 3, 3), "V4")), "unsupported type"),
        ("layers.0.weight.npy", npy_bytes(np.array(["a"] * 36).reshape(4, 1, 3, 3)), "holds text"),
        (
            "layers.0.weight.npy",
            npy_bytes(np.full((4, 1, 3, 3), np.nan, np.float32)),
            "NaN or infinite",
        ),
        (
            "layers.0.weight.npy",
            npy_bytes(np.zeros((4, 1, 3, 3), np.float32, order="F").T.T.copy(order="F")),
            "Fortran order",
        ),
        ("layers.0.weight.npy", npy_bytes(np.array([{"evil": 1}], dtype=object)), "pickled object"),
        ("layers.9.weight.npy", npy_bytes(np.zeros(3, np.float32)), "no place for"),
        ("__meta__.npy", npy_bytes(np.zeros(3)), "__meta__ is not a JSON text"),
    ],
)
def test_malformed_members(model_file, name, data, message):
    entries = members(model_file)
    entries[name] = data
    write_members(model_file, entries)
    with pytest.raises(ModelFileError, match="m.npz: ") as info:
        sc.load_model(model_file)
    assert message in str(info.value)


def patch_zip_records(path, signature, offset, value):
    """Overwrite a 2-byte little-endian field at ``offset`` in every zip record that starts with
    ``signature`` (b"PK\\x01\\x02" central directory, b"PK\\x03\\x04" local header)."""
    data = bytearray(path.read_bytes())
    start = data.find(signature)
    assert start >= 0
    while start >= 0:
        data[start + offset : start + offset + 2] = struct.pack("<H", value)
        start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


CENTRAL, LOCAL = b"PK\x01\x02", b"PK\x03\x04"


@pytest.mark.parametrize(
    ("signature", "offset", "value", "message"),
    [
        (CENTRAL, 6, 109, "zip file version 10.9"),  # needs a newer zip reader: NotImplementedError
        (CENTRAL, 8, 0x1, "encrypted"),  # asks for a password: RuntimeError
        (CENTRAL, 8, 0x40, "encrypted"),  # strong encryption: NotImplementedError
        (CENTRAL, 8, 0x20, "patched data"),  # compressed patched data: NotImplementedError
        (LOCAL, 4, 109, None),  # the local header's version is not read: the file loads
        (CENTRAL, 10, 99, "unsupported compression"),  # AES: NotImplementedError in open
    ],
)
def test_zip_features_a_model_file_never_uses(model_file, signature, offset, value, message):
    patch_zip_records(model_file, signature, offset, value)
    if message is None:
        assert sc.load_model(model_file).count_params() == small_model().count_params()
        return
    with pytest.raises(ModelFileError, match="m.npz: ") as info:
        sc.load_model(model_file)
    assert message in str(info.value)


def test_short_payload_is_not_called_a_pickle(model_file):
    entries = members(model_file)
    entries["layers.0.weight.npy"] = entries["layers.0.weight.npy"][:-8]
    write_members(model_file, entries)
    with pytest.raises(ModelFileError) as info:
        sc.load_model(model_file)
    assert "pickle" not in str(info.value) and "entry holds" in str(info.value)


def test_member_twice(model_file):
    with zipfile.ZipFile(model_file, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("layers.0.bias.npy", npy_bytes(np.zeros(4, np.float32)))
    with pytest.raises(ModelFileError, match="holds 'layers.0.bias.npy' twice"):
        sc.load_model(model_file)


def test_a_directory_given_as_the_model(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory, not a scratchcnn-model file"):
        sc.load_model(tmp_path)


def test_a_nan_weight_never_loads(model_file):
    model = sc.load_model(model_file)
    model.layers[4].params["bias"].data[3] = np.inf
    sc.save_model(model, model_file)
    with pytest.raises(ModelFileError, match="'layers.4.bias' holds NaN or infinite values"):
        sc.load_model(model_file)


# -- IDX files that promise more than they hold ------------------------------------------------
def test_gzip_idx_promising_terabytes_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31, 28, 28) + bytes(5000))
    error, peak = peak_mb(read_idx, path)
    assert isinstance(error, IDXFormatError), error
    assert "header promises 1683627180032 bytes" in str(error)
    assert "more than a gzip file of 74 bytes can hold" in str(error)
    assert peak < 40


def test_plain_idx_promising_more_is_refused_from_its_size(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 7))
    error, peak = peak_mb(read_idx, path)
    assert isinstance(error, IDXFormatError) and "truncated" in str(error)
    assert peak < 1


def test_idx_dimensions_whose_product_overflows_int64(tmp_path):
    path = tmp_path / "overflow.idx.gz"
    with gzip.open(path, "wb") as f:  # 2**32-1 to the 8th: wraps around in int64
        f.write(bytes([0, 0, 8, 8]) + struct.pack(">8I", *[2**32 - 1] * 8) + bytes(100))
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(path)


def test_gzip_idx_holding_less_than_promised_is_counted_not_stored(tmp_path):
    """A header within deflate's reach whose stream holds less: the stream is counted, in
    chunks, before anything the size of the promise is allocated."""
    path = tmp_path / "short.gz"
    payload = np.random.default_rng(0).integers(0, 255, 24 * MB, dtype=np.uint8).tobytes()
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 48 * MB) + payload)
    error, peak = peak_mb(read_idx, path)
    assert isinstance(error, IDXFormatError) and f"the file holds {24 * MB}" in str(error)
    assert peak < 8


def test_gzip_idx_growing_read_gives_the_same_array(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (3000, 28, 28), dtype=np.uint8)  # > 2 MB
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    with gzip.open(tmp_path / "a.gz", "ab") as f:
        f.write(b"x")
    with pytest.raises(IDXFormatError, match="more bytes follow"):
        read_idx(tmp_path / "a.gz")


# -- the atomic writer ---------------------------------------------------------------------------
def test_save_follows_a_symlink_to_its_target(tmp_path):
    real = tmp_path / "store" / "model.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.npz"
    link.symlink_to(real)
    sc.save_model(small_model(), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert sc.load_model(real).count_params() == small_model().count_params()
    assert sorted(p.name for p in real.parent.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664])
def test_save_keeps_the_permission_bits(tmp_path, mode):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    path.chmod(mode)
    sc.save_model(small_model(), path)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        sc.save_model(small_model(), tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == mode


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path):
    target = tmp_path / "m.npz"
    code = (
        "import os, sys\n"
        "from scratchcnn.files import atomic_write\n"
        "def write(stream):\n"
        "    stream.write(bytes(1 << 20)); stream.flush(); print('writing', flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
        f"atomic_write({str(target)!r}, write)\n"
    )
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == -9 and "writing" in result.stdout
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".m.npz.")]
    assert len(stale) == 1 and not target.exists()  # the second save removed the first's
    sc.save_model(small_model(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_live_processs_temporary_is_left_alone(tmp_path):
    target = tmp_path / "m.npz"
    mine = tmp_path / f".m.npz.{os.uname().nodename}.{os.getpid()}.abcd.tmp"
    mine.write_bytes(b"in progress")
    assert remove_stale_temporaries(target) == []
    assert mine.exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_only_regular_files_are_replaced(tmp_path, kind):
    path = tmp_path / "out"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(OSError, match="refusing to write"):
        atomic_write(path, lambda stream: stream.write(b"x"))
    assert path.is_fifo() if kind == "fifo" else path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
