"""Datasets from the command line: --dataset with class names in the reports, your own IDX files
with --no-verify, evaluate on the test files alone with plots, and Debian's copy of Fashion-MNIST,
recompressed, verified through the digests of its decompressed data."""

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import gz_bytes, run_python

import scratchcnn as sc
from scratchcnn.data import DATASETS, load_mnist, write_idx
from scratchcnn.data.mnist import ROLES

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
# Debian's .gz files carry the publisher's deflate streams under a header without the file name;
# the publisher's header held the name and these modification times (found by search: the only
# ones that give the published MD5s).
PUBLISHER_MTIMES = {
    "train_images": 1504176606, "train_labels": 1504176606,
    "test_images": 1504176627, "test_labels": 1504176627,
}  # fmt: skip


def run(args, timeout=600):
    return run_python(["-m", *args], backend="numpy", timeout=timeout)


@pytest.fixture(scope="module")
def debian_fashion():
    if not (DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip(
            f"Debian's Fashion-MNIST not at {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)"
        )
    return DEBIAN_FASHION


def test_debian_fashion_mnist_is_the_publishers_data(debian_fashion):
    """Put the file name and time back into each Debian header and the file is the publisher's,
    byte for byte (its MD5 is the published one): Debian's decompressed data is the publisher's,
    which is what the dataset table's decompressed digests were computed from."""
    info = DATASETS["fashion-mnist"]
    for role in ROLES:
        entry = info.files[role]
        debian = (debian_fashion / entry.name).read_bytes()
        assert hashlib.md5(debian).hexdigest() != entry.digest  # recompressed: refused before
        assert debian[3] == 0  # no FNAME field
        name = entry.name.removesuffix(".gz").encode()
        rebuilt = b"\x1f\x8b\x08\x08" + struct.pack("<I", PUBLISHER_MTIMES[role]) + debian[8:10]
        rebuilt += name + b"\0" + debian[10:]
        assert hashlib.md5(rebuilt).hexdigest() == entry.digest, role
        assert hashlib.sha256(gzip.decompress(debian)).hexdigest() == entry.raw_sha256


def test_debian_fashion_mnist_verifies_and_loads(debian_fashion):
    (x_train, y_train), (x_test, y_test) = load_mnist(
        debian_fashion, dataset="fashion-mnist", download=False
    )
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert DATASETS["fashion-mnist"].class_names[9] == "Ankle boot"


@pytest.mark.slow
def test_train_and_evaluate_on_fashion_mnist_with_class_names(debian_fashion, tmp_path):
    out = tmp_path / "fashion.npz"
    done = run(
        ["scratchcnn.train", "--dataset", "fashion-mnist", "--data-dir", debian_fashion,
         "--no-download", "--arch", "lenet5", "--epochs", "2", "--train-size", "3000",
         "--val-size", "200", "--batch-size", "32", "--warmup-epochs", "0", "--no-progress",
         "--output", out,
         "--metrics-json", tmp_path / "metrics.json"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "T-shirt/top" in done.stdout and "Ankle boot" in done.stdout  # per-class table
    assert "classes: 0 T-shirt/top, 1 Trouser," in done.stdout  # the confusion matrix's legend
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["class_names"] == list(DATASETS["fashion-mnist"].class_names)
    assert metrics["config"]["dataset"] == "fashion-mnist"
    assert sc.load_model(out).metadata["training"]["dataset"] == "fashion-mnist"
    assert metrics["test_accuracy"] > 0.6  # a few thousand images: well above chance (0.1)
    # evaluate takes the dataset from the model; the test files alone are enough
    test_only = tmp_path / "test-only"
    test_only.mkdir()
    for role in ("test_images", "test_labels"):
        name = DATASETS["fashion-mnist"].files[role].name
        (test_only / name).write_bytes((debian_fashion / name).read_bytes())
    pytest.importorskip("matplotlib", reason="--report-dir needs the 'plots' extra")
    evaluated = run(
        ["scratchcnn.evaluate", out, "--data-dir", test_only, "--no-download",
         "--report-dir", tmp_path / "plots", "--metrics-json", tmp_path / "eval.json"]
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert "fashion-mnist test set" in evaluated.stdout and "Pullover" in evaluated.stdout
    assert json.loads((tmp_path / "eval.json").read_text())["test_accuracy"] == pytest.approx(
        metrics["test_accuracy"]
    )
    for png in ("confusion_matrix.png", "misclassified.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 5000
        assert f"wrote {tmp_path / 'plots' / png}" in evaluated.stdout


def write_own_dataset(folder: Path, rng, n_train=300, n_test=100):
    """Four IDX files of one's own: bright squares (class 1) and dark ones (class 0)."""
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 2, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[labels == 1, 8:20, 8:20] = 250
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


@pytest.mark.slow
def test_train_on_your_own_idx_files(tmp_path, rng):
    own = write_own_dataset(tmp_path / "own", rng)
    args = ["scratchcnn.train", "--data-dir", own, "--no-download", "--arch", "lenet5",
            "--epochs", "3", "--val-size", "50", "--batch-size", "16", "--warmup-epochs", "0",
            "--no-augment", "--no-progress", "--output", tmp_path / "own.npz",
            "--metrics-json", tmp_path / "metrics.json"]  # fmt: skip
    refused = run(args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "train-images-idx3-ubyte: not mnist's" in line and "--no-verify" in line
    done = run([*args, "--no-verify"])
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"] > 0.9


def test_evaluate_needs_only_the_test_files(tmp_path, mnist_files):
    for role in ("test_images", "test_labels"):
        name = DATASETS["mnist"].files[role].name
        (tmp_path / name).write_bytes(gz_bytes(mnist_files[role]))
    sc.save_model(sc.build_model("lenet5", seed=0), tmp_path / "m.npz")
    done = run(["scratchcnn.evaluate", tmp_path / "m.npz", "--data-dir", tmp_path, "--no-download"])
    assert done.returncode == 0, done.stderr
    assert "mnist test set" in done.stdout and "in 10000 images" in done.stdout
    missing = run(["scratchcnn.evaluate", tmp_path / "m.npz", "--data-dir", tmp_path / "none",
                   "--no-download"])  # fmt: skip
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert "missing t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in" in line
    assert "train-images" not in line and "--no-download" in line


@pytest.mark.slow
def test_a_resumed_run_keeps_its_dataset_and_data(tmp_path, rng):
    """--dataset, --data-dir and --no-verify are the run's: --resume CKPT alone continues on
    the same files, read as the same dataset (its class names in the report)."""
    own = write_own_dataset(tmp_path / "own", rng)
    ckpt = tmp_path / "run.ckpt.npz"
    first = run(["scratchcnn.train", "--dataset", "fashion-mnist", "--data-dir", own,
                 "--no-verify", "--no-download", "--arch", "lenet5", "--epochs", "1",
                 "--val-size", "50", "--batch-size", "16", "--warmup-epochs", "0",
                 "--no-augment", "--no-progress", "--output", tmp_path / "own.npz",
                 "--checkpoint", ckpt, "--keep-checkpoint"])  # fmt: skip
    assert first.returncode == 0, first.stderr
    resumed = run(["scratchcnn.train", "--resume", ckpt, "--epochs", "2", "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    assert "extending the run" in resumed.stdout and "epoch 2/2" in resumed.stdout
    assert "T-shirt/top" in resumed.stdout  # read as fashion-mnist again
    record = sc.load_model(tmp_path / "own.npz").metadata["training"]
    assert record["dataset"] == "fashion-mnist"
