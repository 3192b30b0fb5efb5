"""ONNX export: the exported file gives scratchcnn's logits in onnxruntime and in OpenCV's DNN
module (1,000 real MNIST test images, every named architecture, an odd model and the bundled
trained one), keeps a free batch size, uses only standard operators, and refuses what it cannot
write in one clear line."""

import numpy as np
import pytest
from conftest import run_python

import scratchcnn as sc
from scratchcnn.data import load_split, to_float_images
from scratchcnn.nn.export import ExportError, to_onnx
from scratchcnn.pretrained import load_bundled_model

onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX parity needs the 'export' extra")
cv2 = pytest.importorskip("cv2")

TOL = 1e-5  # max |difference|, and max |difference| / max |logit|, over 1,000 images x 10 logits


def odd_model(seed=3):
    """Strides, non-square kernels, integer and uneven "same" pads, no bias, a ReLU before and
    one after a MaxPool2D (the first pair fused by scratchcnn), Dropout, two Dense layers."""
    return sc.Sequential(
        [
            sc.Conv2D(5, (3, 4), stride=(2, 1), padding=(1, 2), use_bias=False), sc.ReLU(),
            sc.MaxPool2D(3, stride=2),
            sc.Conv2D(7, 3, padding="same", stride=2), sc.MaxPool2D((2, 1)), sc.ReLU(),
            sc.Flatten(), sc.Dropout(0.3), sc.Dense(13, use_bias=False), sc.ReLU(), sc.Dense(10),
        ],
        input_shape=(1, 28, 28),
        seed=seed,
    )  # fmt: skip


MODELS = {
    "keras-example": lambda: sc.build_model("keras-example", seed=0),
    "lenet5": lambda: sc.build_model("lenet5", seed=0),
    "scratchnet": lambda: sc.build_model("scratchnet", seed=0),
    "odd": odd_model,
    "bundled (trained scratchnet)": load_bundled_model,
}


@pytest.fixture(scope="module")
def images(mnist_dir):
    pixels, _ = load_split("test", mnist_dir, download=False)
    return to_float_images(pixels[:1000])


def logits_of(model, x):
    return np.concatenate([model.forward(x[i : i + 200]) for i in range(0, len(x), 200)])


def worst_difference(ours, theirs) -> float:
    """The largest of max |difference| and max |difference| / max |logit|."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    largest = float(np.abs(ours - theirs).max())
    return max(largest, largest / np.abs(ours).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_and_opencv_give_scratchcnns_logits(name, images, tmp_path):
    model = MODELS[name]()
    path = sc.export_onnx(model, tmp_path / "model.onnx")
    ours = logits_of(model, images)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (from_ort,) = session.run(None, {"input": images})
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(images)
    from_cv2 = net.forward()
    for runtime, theirs in (("onnxruntime", from_ort), ("OpenCV DNN", from_cv2)):
        assert theirs.shape == (1000, 10), runtime
        assert worst_difference(ours, theirs) <= TOL, (runtime, worst_difference(ours, theirs))
        assert np.array_equal(theirs.argmax(1), ours.argmax(1)), runtime
    for batch in (1, 7):  # the batch size is free
        (small,) = session.run(None, {"input": images[:batch]})
        net.setInput(images[:batch])
        assert worst_difference(ours[:batch], small) <= TOL
        assert worst_difference(ours[:batch], net.forward()) <= TOL


def test_graph_is_standard_operators_with_a_free_batch():
    proto = to_onnx(sc.build_model("keras-example", seed=0))
    onnx.checker.check_model(proto, full_check=True)
    assert [op.domain for op in proto.opset_import] == [""] and proto.opset_import[0].version == 13
    # ReLU then MaxPool2D runs fused in scratchcnn; the file has the two standard ops, in order,
    # and no Dropout (the identity at inference)
    assert [n.op_type for n in proto.graph.node] == [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm",
    ]  # fmt: skip
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        "batch", 1, 28, 28,
    ]  # fmt: skip
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 10]
    conv = proto.graph.node[0]
    assert {a.name for a in conv.attribute} >= {"kernel_shape", "strides", "pads"}


def test_uneven_same_padding_is_written_out():
    model = sc.Sequential([sc.Conv2D(2, 4, padding="same"), sc.Flatten()], input_shape=(1, 5, 5))
    (conv, _) = to_onnx(model).graph.node
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [1, 1, 2, 2]  # top, left, bottom, right: TensorFlow's "same"


class Scale(sc.Layer):
    """A user's layer: no ONNX translation."""

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


def test_a_layer_without_translation_is_named(tmp_path):
    model = sc.Sequential([sc.Flatten(), Scale(), sc.Dense(3)], input_shape=(1, 4, 4))
    with pytest.raises(ExportError, match=r"layer 1 \(Scale\) has no ONNX translation: "):
        sc.export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_command(tmp_path):
    model = sc.build_model("lenet5", seed=0)
    sc.save_model(model, tmp_path / "m.npz")
    done = run_python(["-m", "scratchcnn.export", tmp_path / "m.npz", tmp_path / "m.onnx"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'm.onnx'}: Sequential of 12 layers")
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert worst_difference(model.forward(x), session.run(None, {"input": x})[0]) <= TOL


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a model", "not a scratchcnn-model file (not an .npz archive)"),
        (None, "no such file"),
    ],
)
def test_export_command_bad_input_is_one_line(tmp_path, content, message):
    source = tmp_path / "in.npz"
    if content is not None:
        source.write_bytes(content)
    done = run_python(["-m", "scratchcnn.export", source, tmp_path / "out.onnx"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"python -m scratchcnn.export: error: {source}: {message}"
    ]
    assert not (tmp_path / "out.onnx").exists()


def test_export_command_unknown_layer_type_is_one_line(tmp_path):
    """A model file naming a layer this scratchcnn does not know (a user's own)."""
    import json

    model = sc.build_model("lenet5", seed=0)
    path = sc.save_model(model, tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["architecture"]["layers"][1]["class"] = "Scale"
    np.savez(path, **arrays, __meta__=np.array(json.dumps(meta)))
    done = run_python(["-m", "scratchcnn.export", path, tmp_path / "out.onnx"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "layer 1 has unknown type 'Scale'" in line
