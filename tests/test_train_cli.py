"""The train and evaluate command lines, run as a user runs them: in subprocesses."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import REPO_ROOT, run_python


def run(args, timeout=600, **kw):
    """``python -m *args`` on the NumPy kernels (a CLI run is then the same on every machine)."""
    return run_python(["-m", *args], backend="numpy", timeout=timeout, **kw)


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """One epoch on the real training set (less 1,000 images held out for validation)."""
    out = tmp_path_factory.mktemp("train")
    result = run(
        [
            "scratchcnn.train", "--data-dir", str(mnist_dir), "--no-download",
            "--val-size", "1000", "--epochs", "1",
            "--arch", "keras-example", "--no-augment", "--warmup-epochs", "0",
            "--output", str(out / "model.npz"), "--metrics-json", str(out / "metrics.json"),
            "--no-progress",
        ]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_one_epoch_learns_mnist(trained):
    out, result = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97, metrics["test_accuracy"]
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    epoch = metrics["epochs"][0]
    assert epoch["seconds"] > 0 and epoch["train_loss"] > 0 and 0.9 < epoch["val_accuracy"] <= 1
    assert len(metrics["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 10000
    assert re.search(r"epoch 1/1  train loss \d\.\d{4}  .* val acc \d+\.\d\d%", result.stdout)
    assert "confusion matrix" in result.stdout and "precision" in result.stdout
    assert (out / "model.npz").exists()
    assert not (out / "model.ckpt.npz").exists()  # a completed run's checkpoint is removed


@pytest.mark.slow
def test_evaluate_prints_the_same_accuracy(trained, mnist_dir, tmp_path):
    out, _ = trained
    result = run(
        ["scratchcnn.evaluate", str(out / "model.npz"), "--data-dir", str(mnist_dir),
         "--metrics-json", str(tmp_path / "eval.json")]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    train_metrics = json.loads((out / "metrics.json").read_text())
    eval_metrics = json.loads((tmp_path / "eval.json").read_text())
    assert eval_metrics["test_accuracy"] == train_metrics["test_accuracy"]
    assert f"test accuracy: {100 * eval_metrics['test_accuracy']:.2f}%" in result.stdout


def train_args(mnist_dir, out):
    return [
        "scratchcnn.train", "--data-dir", str(mnist_dir), "--no-download",
        "--train-size", "3000", "--val-size", "300", "--epochs", "2", "--batch-size", "50",
        "--arch", "lenet5", "--seed", "5", "--output", str(out / "model.npz"),
    ]  # fmt: skip


def checkpoint_weights(path):
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


@pytest.mark.slow
def test_sigint_then_resume_gives_the_uninterrupted_weights(mnist_dir, tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert run([*train_args(mnist_dir, straight), "--keep-checkpoint"]).returncode == 0

    env = {**os.environ, "SCRATCHCNN_BACKEND": "numpy", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", *train_args(mnist_dir, broken)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    seen = []
    progress = threading.Event()

    def watch():
        for chunk in iter(lambda: proc.stderr.read(64), ""):
            seen.append(chunk)
            if re.search(r"epoch 1/2:.*\| *[1-9]\d*/\d+ ", "".join(seen)):
                progress.set()

    watcher = threading.Thread(target=watch, daemon=True)  # the only reader of stderr
    watcher.start()
    assert progress.wait(300), "".join(seen)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    watcher.join(timeout=60)
    proc.stdout.close()
    stderr = "".join(seen)
    assert proc.returncode == 130, stderr
    assert "SIGINT: stopped in epoch" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr

    # The command printed, as printed (the checkpoint holds the run), keeping its checkpoint.
    printed = shlex.split(re.search(r"continue with: (.*)", stderr).group(1))
    assert printed[:4] == ["python", "-m", "scratchcnn.train", "--resume"] and len(printed) == 5
    resumed = run([*printed[2:], "--keep-checkpoint"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    expected = checkpoint_weights(straight / "model.ckpt.npz")
    got = checkpoint_weights(broken / "model.ckpt.npz")
    assert expected.keys() == got.keys() and len(expected) > 0
    for name in expected:
        np.testing.assert_array_equal(expected[name], got[name], err_msg=name)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "-1"], "--epochs must be in 1..100000"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--batch-size", "0"], "--batch-size must be in 1..65536"),
    ],
)
def test_meaningless_flags_are_one_line_errors(mnist_dir, tmp_path, flags, message):
    result = run(
        ["scratchcnn.train", "--data-dir", str(mnist_dir), "--output", str(tmp_path / "m.npz"),
         "--no-progress", *flags]
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unwritable_output_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run(["scratchcnn.train", "--output", str(blocker / "m.npz")])
    assert result.returncode == 2
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_missing_data_without_download(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = run(
        ["scratchcnn.train", "--data-dir", str(empty), "--no-download",
         "--output", str(tmp_path / "m.npz")]
    )  # fmt: skip
    assert result.returncode == 2
    assert "train-images-idx3-ubyte" in result.stderr and str(empty) in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_checkpoint_on_resume(tmp_path, mnist_dir):
    ckpt = tmp_path / "m.ckpt.npz"
    ckpt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    result = run(
        ["scratchcnn.train", "--data-dir", str(mnist_dir), "--output", str(tmp_path / "m.npz"),
         "--resume", str(ckpt)]
    )  # fmt: skip
    assert result.returncode == 2
    assert "m.ckpt.npz: truncated or corrupt" in result.stderr


def test_evaluate_missing_model(tmp_path):
    result = run(["scratchcnn.evaluate", str(tmp_path / "none.npz")])
    assert result.returncode == 2 and "none.npz: no such file" in result.stderr
