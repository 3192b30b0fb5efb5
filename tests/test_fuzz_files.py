"""Fuzzing real files (issue #13, item 4): a saved model, a checkpoint and IDX files, mutated by
hypothesis — truncated, bytes flipped, JSON fields rewritten, .npy headers rewritten, members
inflated — must load (and then hold finite weights) or raise their own error type naming the file,
in bounded time and memory. Nothing else may come out: no IndexError, no MemoryError, no Numba
typing error at predict time."""

import gzip
import io
import json
import os
import re
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scratchcnn as sc
from scratchcnn.data import IDXFormatError, read_idx, write_idx
from scratchcnn.nn.serialization import ModelFileError
from scratchcnn.training.trainer import CheckpointError, TrainConfig, Trainer

MB = 1 << 20
# SCRATCHCNN_FUZZ_EXAMPLES=5000 SCRATCHCNN_FUZZ_RANDOM=1: a longer, fresh campaign by hand.
FUZZ = settings(
    max_examples=int(os.environ.get("SCRATCHCNN_FUZZ_EXAMPLES", "120")),
    deadline=10_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _model_bytes() -> bytes:
    model = sc.Sequential(
        [sc.Conv2D(3, 3), sc.ReLU(), sc.MaxPool2D(2), sc.Flatten(), sc.Dropout(0.2), sc.Dense(10)],
        input_shape=(1, 10, 10),
        seed=1,
    )
    with tempfile.TemporaryDirectory() as folder:
        return sc.save_model(model, Path(folder) / "m.npz", extra={"epoch": 1}).read_bytes()


MODEL = _model_bytes()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
DESCRS = [
    "<f4",
    ">f8",
    "<f2",
    "|u1",
    "<i8",
    "|b1",
    "<c8",
    "|O",
    "<U3",
    "|V4",
    "<M8[s]",
    "f4,f4",
    "x",
]


def read_members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(entries: dict[str, bytes], deflate: str | None = None, mb: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            if name == deflate:
                with zf.open(zipfile.ZipInfo(name), "w", force_zip64=True) as out:
                    out.write(data)
                    for _ in range(mb):
                        out.write(bytes(MB))
            else:
                zf.writestr(name, data)
    return buffer.getvalue()


def paths_in(value, prefix=()):
    """Every place in a JSON document, as a tuple of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths_in(item, (*prefix, i))


def replaced(document, path, value):
    if not path:
        return value
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def npy_header(shape, descr, fortran) -> bytes:
    header = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {tuple(shape)!r}, }}"
    header = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def strip_header(data: bytes) -> bytes:
    length = int.from_bytes(data[8:10], "little")
    return data[10 + length :]


class Mutated(bytes):
    """A mutated file that shows as the mutation, not as its bytes, in a failure report."""

    def __new__(cls, blob: bytes, how: str):
        self = super().__new__(cls, blob)
        self.how = how
        return self

    def __repr__(self) -> str:
        return f"<{len(self)} bytes: {self.how}>"


@st.composite
def mutated_archive(draw, original: bytes):
    kind = draw(
        st.sampled_from(["truncate", "flip", "zip_record", "json", "npy_header", "inflate"])
    )
    return Mutated(draw(_mutation(original, kind)), kind)


@st.composite
def _mutation(draw, original: bytes, kind: str):
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "flip":
        blob = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
        return bytes(blob)
    if kind == "zip_record":
        return _zip_record_mutation(draw, original)
    entries = read_members(original)
    if kind == "json":
        meta = json.loads(str(np.load(io.BytesIO(entries["__meta__.npy"]))))
        path = draw(st.sampled_from(list(paths_in(meta))))
        meta = replaced(meta, path, draw(JSON))
        buffer = io.BytesIO()
        np.save(buffer, np.array(json.dumps(meta)))
        entries["__meta__.npy"] = buffer.getvalue()
        return write_members(entries)
    name = draw(st.sampled_from(sorted(entries)))
    if kind == "npy_header":
        shape = draw(st.lists(st.integers(0, 2**40), max_size=4))
        header = npy_header(shape, draw(st.sampled_from(DESCRS)), draw(st.booleans()))
        entries[name] = header + strip_header(entries[name])
        return write_members(entries)
    mb = draw(st.integers(1, 64))
    shape = draw(st.sampled_from([(mb * MB // 4,), (3, 1, 3, 3), (10,)]))
    entries[name] = npy_header(shape, "<f4", False)
    return write_members(entries, deflate=name, mb=mb)


# The fixed part of each zip record (signature, length): the fields a zip reader trusts.
ZIP_RECORDS = {b"PK\x03\x04": 30, b"PK\x01\x02": 46, b"PK\x05\x06": 22, b"PK\x06\x06": 56}


def _zip_record_mutation(draw, original: bytes) -> bytes:
    """Rewrite one to three fields of the archive's own records: versions, flags, compression
    methods, sizes, offsets, counts. Random flips rarely land there."""
    starts = [
        (found.start(), length)
        for signature, length in ZIP_RECORDS.items()
        for found in re.finditer(re.escape(signature), original)
    ]
    blob = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        start, length = draw(st.sampled_from(starts))
        at = start + draw(st.integers(4, length - 2))
        width = draw(st.sampled_from([1, 2, 4]))
        value = draw(st.integers(0, 256**width - 1) | st.sampled_from([0, 1, 0x20, 0x40, 2**31]))
        blob[at : at + width] = (value % 256**width).to_bytes(width, "little")[: len(blob) - at]
    return bytes(blob)


def traced(call):
    tracemalloc.start()
    try:
        return call(), None, tracemalloc.get_traced_memory()[1] / MB
    except Exception as err:  # noqa: BLE001 - the test checks its type
        return None, err, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


@FUZZ
@given(blob=mutated_archive(MODEL))
def test_mutated_model_file_loads_or_raises_model_file_error(tmp_path, blob):
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(blob)
    model, error, peak = traced(lambda: sc.load_model(path))
    assert peak < 64, f"{peak:.0f} MiB"
    if error is not None:
        assert isinstance(error, ModelFileError), repr(error)
        assert str(path) in str(error)
        return
    x = np.random.default_rng(0).random((3, *model.input_shape), dtype=np.float32)
    assert np.isfinite(model.predict_proba(x)).all()


# -- checkpoints ---------------------------------------------------------------------------------
DATA = (
    np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32),
    np.random.default_rng(1).integers(0, 10, 64),
)
CONFIG = TrainConfig(arch="lenet5", epochs=2, batch_size=16, warmup_epochs=0, seed=2)


def _checkpoint_bytes(tmp) -> bytes:
    trainer = Trainer(CONFIG, *DATA)
    calls = iter(range(100))
    trainer.run_epoch(should_stop=lambda: next(calls) >= 1)  # two batches into epoch 1
    trainer.save_checkpoint(tmp)
    return tmp.read_bytes()


@FUZZ
@given(data=st.data())
def test_mutated_checkpoint_resumes_or_raises_checkpoint_error(tmp_path, data):
    original = tmp_path / "original.ckpt.npz"
    if not original.exists():
        _checkpoint_bytes(original)
    entries = read_members(original.read_bytes())
    meta = json.loads(str(np.load(io.BytesIO(entries["__meta__.npy"]))))
    kind = data.draw(st.sampled_from(["field", "order", "archive"]))
    if kind == "field":
        key = data.draw(st.sampled_from(sorted(meta)))
        value = data.draw(st.one_of(JSON, st.integers(-5, 10)))
        path = data.draw(st.sampled_from(list(paths_in(meta[key], (key,)))))
        meta = replaced(meta, path, value)
        buffer = io.BytesIO()
        np.save(buffer, np.array(json.dumps(meta)))
        entries["__meta__.npy"] = buffer.getvalue()
        blob = write_members(entries)
    elif kind == "order":
        size = data.draw(st.integers(0, 70))
        order = data.draw(st.sampled_from(["perm", "random", "float"]))
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        values = {
            "perm": rng.permutation(size),
            "random": rng.integers(-(2**40), 2**40, size),
            "float": rng.random(size),
        }[order]
        buffer = io.BytesIO()
        np.save(buffer, values)
        entries["order.npy"] = buffer.getvalue()
        blob = write_members(entries)
    else:
        blob = data.draw(mutated_archive(original.read_bytes()))
    path = tmp_path / "fuzzed.ckpt.npz"
    path.write_bytes(blob)
    trainer, error, peak = traced(lambda: Trainer.from_checkpoint(path, *DATA))
    assert peak < 64, f"{peak:.0f} MiB"
    if error is not None:
        assert isinstance(error, CheckpointError), repr(error)
        assert str(path) in str(error)
        return
    while not trainer.finished:  # whatever was accepted must train on without an error
        trainer.run_epoch()


# -- IDX -----------------------------------------------------------------------------------------
@FUZZ
@given(
    compressed=st.booleans(),
    kind=st.sampled_from(["truncate", "flip", "dims"]),
    data=st.data(),
)
def test_mutated_idx_reads_or_raises_idx_format_error(tmp_path, compressed, kind, data):
    path = tmp_path / ("x.idx.gz" if compressed else "x.idx")
    write_idx(path, np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4))
    raw = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    if kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        raw = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        raw = bytes(raw)
    else:
        ndim = data.draw(st.integers(0, 6))
        dims = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=ndim, max_size=ndim))
        code = data.draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]))
        raw = bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + raw[16:]
    blob = gzip.compress(raw) if compressed else raw
    if compressed and data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]  # a damaged gzip stream too
    path.write_bytes(blob)
    _, error, peak = traced(lambda: read_idx(path))
    assert peak < 64, f"{peak:.0f} MiB"
    assert error is None or isinstance(error, IDXFormatError), repr(error)
