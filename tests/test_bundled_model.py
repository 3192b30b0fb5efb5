"""The model bundled with the package: its accuracy, that it is what the default training command
makes (the test fails when the defaults change: retrain it, README "A model that works right
after install"), and that the readers use it when there is no model of the user's."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import REPO_ROOT

import scratchcnn as sc
from scratchcnn.data import load_split, to_float_images
from scratchcnn.pretrained import bundled_model_path, load_bundled_model
from scratchcnn.training.train import config_from_args, parse_args, training_record

RETRAIN = (
    "retrain it: python -m scratchcnn.train --output scratchcnn/pretrained/scratchnet-mnist.npz "
    "(README: A model that works right after install)"
)


def default_record() -> dict:
    """What `python -m scratchcnn.train` with no flag would record in the model it saves."""
    args = parse_args([])
    return training_record(config_from_args(args), args)


def test_bundled_model_reads_mnist_test_at_99_4_percent(mnist_dir):
    model = load_bundled_model()
    pixels, labels = load_split("test", mnist_dir, download=False)
    accuracy = float(np.mean(model.predict(to_float_images(pixels)) == labels))
    assert accuracy >= 0.994, accuracy


def test_bundled_model_was_made_by_the_default_training_command():
    recorded = load_bundled_model().metadata["training"]
    expected = default_record()
    changed = {
        key: (recorded.get(key, "(absent)"), expected.get(key, "(absent)"))
        for key in sorted(set(recorded) | set(expected))
        if recorded.get(key, "(absent)") != expected.get(key, "(absent)")
    }
    assert not changed, f"bundled model's settings vs the CLI's defaults {changed}: {RETRAIN}"


def test_a_change_of_default_training_would_be_caught():
    """The comparison above can fail: any setting that shapes the weights is in the record."""
    recorded = load_bundled_model().metadata["training"]
    for flags in (["--max-rotation", "12"], ["--epochs", "14"], ["--val-size", "4000"],
                  ["--dataset", "fashion-mnist"], ["--no-augment"], ["--seed", "1"]):  # fmt: skip
        args = parse_args(flags)
        assert training_record(config_from_args(args), args) != recorded, flags


def test_bundled_model_is_small_and_package_data():
    path = bundled_model_path()
    assert path.parent.name == "pretrained" and path.parent.parent.name == "scratchcnn"
    assert path.stat().st_size < 2_000_000  # scratchnet's 421,642 float32 parameters
    assert load_bundled_model().count_params() == 421_642
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"scratchcnn.pretrained" = ["*.npz"]' in pyproject


@pytest.mark.slow
def test_a_built_wheel_carries_the_bundled_model(tmp_path):
    """Package data, as `pip install` would install it: build a wheel of this checkout's files."""
    import shutil

    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "scratchcnn",
        source / "scratchcnn",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("scratchcnn-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "scratchcnn/pretrained/scratchnet-mnist.npz" in archive.namelist()


def run_in(folder, args):
    """``python *args`` with this checkout's scratchcnn, from ``folder`` (no models/ there)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SCRATCHCNN_BACKEND": "numpy"}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300,
        cwd=folder, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sheet(tmp_path_factory, mnist_test_set):
    """A rendered sheet of MNIST test digits and what is on it."""
    import cv2

    from scratchcnn.reader.synthetic import FrameRenderer

    frame, truth = FrameRenderer(*mnist_test_set).render(np.random.default_rng(5), n_digits=5)
    path = tmp_path_factory.mktemp("sheet") / "sheet.png"
    cv2.imwrite(str(path), frame)
    return path, sorted(t.digit for t in truth)


def read_with_the_library(image, model) -> list[dict]:
    """What DigitReader with its defaults reads in ``image`` with ``model``, as the CLI prints."""
    import cv2

    from scratchcnn.reader import DigitReader

    detections = DigitReader(model).read(cv2.imread(str(image))).detections
    return [d.to_dict() for d in detections]


def mostly(found: list[dict], digits: list[int]) -> bool:
    """All digits on the sheet but at most one were read, and read right (the reader's own
    detection rate is tests/test_vision_pipeline.py's business)."""
    read = sorted(d["digit"] for d in found)
    return len(read) >= len(digits) - 1 and all(read.count(k) <= digits.count(k) for k in read)


def test_readers_fall_back_to_the_bundled_model_and_say_so(tmp_path, sheet):
    image, digits = sheet
    done = run_in(tmp_path, ["-m", "scratchcnn.predict", image])
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("reading with the bundled model scratchnet-mnist.npz")
    found = json.loads(done.stdout)["detections"]
    assert found == read_with_the_library(image, load_bundled_model())  # the bundled model's
    assert mostly(found, digits), (found, digits)
    webcam = REPO_ROOT / "examples" / "webcam.py"
    done = run_in(tmp_path, [webcam, "--image", image, "--headless", "--max-frames", "1"])
    assert done.returncode == 0, done.stderr
    assert "reading with the bundled model" in done.stderr
    assert json.loads(done.stdout.splitlines()[0])["detections"] == found


def test_a_model_of_the_users_comes_first(tmp_path, sheet):
    image, _ = sheet
    (tmp_path / "models").mkdir()
    sc.save_model(sc.build_model("lenet5", seed=0), tmp_path / "models" / "scratchcnn.npz")
    done = run_in(tmp_path, ["-m", "scratchcnn.predict", image])
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "reading with models/scratchcnn.npz (--model PATH for another)"
    given = run_in(tmp_path, ["-m", "scratchcnn.predict", image, "--model", bundled_model_path()])
    assert given.returncode == 0 and given.stderr == ""  # --model: nothing to announce


def test_readers_run_an_exported_onnx_model_through_opencv(tmp_path, sheet):
    pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra")
    image, digits = sheet
    onnx_path = sc.export_onnx(load_bundled_model(), tmp_path / "model.onnx")
    from_npz = run_in(
        tmp_path, ["-m", "scratchcnn.predict", image, "--model", bundled_model_path()]
    )
    from_onnx = run_in(tmp_path, ["-m", "scratchcnn.predict", image, "--model", onnx_path])
    assert from_onnx.returncode == 0, from_onnx.stderr
    ours, theirs = (json.loads(r.stdout)["detections"] for r in (from_npz, from_onnx))
    assert [(d["digit"], d["box"]) for d in theirs] == [(d["digit"], d["box"]) for d in ours]
    assert all(
        abs(a["confidence"] - b["confidence"]) <= 1e-3 for a, b in zip(ours, theirs, strict=True)
    )
    assert mostly(theirs, digits), (theirs, digits)
    webcam = REPO_ROOT / "examples" / "webcam.py"
    live = run_in(tmp_path, [webcam, "--image", image, "--headless", "--max-frames", "1",
                             "--model", onnx_path])  # fmt: skip
    assert live.returncode == 0, live.stderr
    assert json.loads(live.stdout.splitlines()[0])["detections"] == theirs


def test_a_bad_onnx_file_is_one_line(tmp_path, sheet):
    image, _ = sheet
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network")
    done = run_in(tmp_path, ["-m", "scratchcnn.predict", image, "--model", bad])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"python -m scratchcnn.predict: error: {bad}: OpenCV cannot read it as an ONNX model"
    ]
