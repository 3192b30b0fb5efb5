"""The train, evaluate and synthetic command lines against careless and hostile use (issue #13,
items 1, 5, 6, 7, 8, 10, 11; issue #16, items 1, 3, 9): one clear line and exit code 2 for a
mistake, 130 for Ctrl-C, never a traceback, nothing lost, and a resume that remembers its run.

Most cases run ``main(argv)`` in-process (the same code as the command, much faster); signals,
the printed continue command and stderr's cleanliness are checked on real subprocesses."""

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

import scratchcnn as sc
from scratchcnn.data import write_idx
from scratchcnn.training import evaluate as evaluate_cli
from scratchcnn.training import train as train_cli


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("SCRATCHCNN_BACKEND", "numpy")


def small_run(mnist_dir, out, *extra):
    return [
        "--data-dir", str(mnist_dir), "--no-download", "--no-progress",
        "--train-size", "400", "--val-size", "100", "--epochs", "1", "--batch-size", "50",
        "--arch", "lenet5", "--warmup-epochs", "0", "--output", str(out / "m.npz"), *extra,
    ]  # fmt: skip


def train(argv, capsys):
    code = train_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- flags: every numeric one refused up front, in the flag's own words --------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "inf"], "--lr must be a finite number, got inf"),
        (["--lr", "nan"], "--lr must be a finite number, got nan"),
        (["--lr", "-0.1"], "--lr must be > 0"),
        (["--lr", "1e6"], "--lr must be > 0 and <= 100"),
        (["--epochs", "0"], "--epochs must be in 1..100000"),
        (["--epochs", "-1"], "--epochs must be in 1..100000"),
        (["--epochs", "10000000"], "--epochs must be in 1..100000"),
        (["--batch-size", "0"], "--batch-size must be in 1..65536"),
        (["--batch-size", "100000000"], "--batch-size must be in 1..65536"),
        (["--momentum", "1"], "--momentum must be in [0, 1)"),
        (["--momentum", "nan"], "--momentum must be a finite number"),
        (["--weight-decay", "inf"], "--weight-decay must be a finite number"),
        (["--weight-decay", "-1"], "--weight-decay must be in [0, 1)"),
        (["--warmup-epochs", "nan"], "--warmup-epochs must be a finite number"),
        (["--warmup-epochs", "20"], "--warmup-epochs must be in [0, epochs=15)"),
        (["--step-epochs", "0"], "--step-epochs must be in 1..100000"),
        (["--max-shift", "inf"], "--max-shift must be a finite number, got inf"),
        (["--max-shift", "100"], "--max-shift must be in [0, 14] pixels"),
        (["--max-rotation", "nan"], "--max-rotation must be a finite number"),
        (["--max-rotation", "1000"], "--max-rotation must be in [0, 180] degrees"),
        (["--max-scale", "1"], "--max-scale must be in [0, 1)"),
        (["--seed", "-1"], "--seed must be in 0..4294967295"),
        (["--seed", str(2**40)], "--seed must be in 0..4294967295"),
        (["--val-size", "nan"], "--val-size must be a count >= 0 or a fraction in (0, 1)"),
        (["--val-size", "-3"], "--val-size must be a count >= 0"),
        (["--val-size", "2.5"], "--val-size must be a count >= 0"),
        (["--train-size", "5"], "--train-size must be at least 10"),
        (["--nesterov", "--momentum", "0"], "--nesterov needs a --momentum above 0"),
    ],
)
def test_meaningless_flags_are_refused_before_loading_data(tmp_path, capsys, flags, message):
    code, _, err = train(
        ["--data-dir", tmp_path / "no-data-here", "--output", tmp_path / "m.npz", *flags], capsys
    )
    assert code == 2
    assert message in one_line(err)
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--val-size", "5"], "--val-size 5 gives 5 validation images, fewer than the 10 classes"),
        (["--val-size", "60000"], "--val-size 60000 leaves 0 of the 60000 training images"),
        (["--train-size", "60000"], "--train-size 60000 and --val-size 5000 need 65000 images"),
        (["--train-size", "56000", "--val-size", "0.1"], "--train-size 56000 and --val-size 6000"),
    ],
)
def test_sizes_are_checked_against_the_data(mnist_dir, tmp_path, capsys, flags, message):
    code, _, err = train(["--data-dir", mnist_dir, "--output", tmp_path / "m.npz", *flags], capsys)
    assert code == 2
    assert message in one_line(err) and "test_size" not in err


def test_train_size_counts_training_images_and_the_checkpoint_goes(mnist_dir, tmp_path, capsys):
    code, out, err = train(small_run(mnist_dir, tmp_path), capsys)
    assert code == 0, err
    assert "on 400 images, 100 validation, 10000 test" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # checkpoint removed
    code, out, _ = train([*small_run(mnist_dir, tmp_path), "--keep-checkpoint"], capsys)
    assert code == 0 and (tmp_path / "m.ckpt.npz").exists()
    assert "checkpoint kept in" in out


# -- outputs: distinct, regular files or new paths -------------------------------------------------
def test_output_paths_that_coincide_are_refused(mnist_dir, tmp_path, capsys):
    model = tmp_path / "x.npz"
    model.write_bytes(b"a good model")
    alias = tmp_path / "alias.json"
    alias.symlink_to(model)
    for flags, message in [
        (["--metrics-json", model], "--metrics-json"),
        (["--checkpoint", model], "--checkpoint"),
        (["--metrics-json", alias], "--metrics-json"),
    ]:
        code, _, err = train(["--data-dir", mnist_dir, "--output", model, *flags], capsys)
        assert code == 2
        assert f"{message} " in one_line(err) and "is the same file as --output" in err
    assert model.read_bytes() == b"a good model"


def test_only_regular_files_are_written(mnist_dir, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    cases = [
        (["--output", fifo], "--output"),
        (["--output", tmp_path / "folder"], "it is a directory"),
        (["--output", tmp_path / "m.npz", "--metrics-json", fifo], "--metrics-json"),
        (["--output", tmp_path / "m.npz", "--report-dir", tmp_path / "file"], "is not a folder"),
    ]
    for flags, message in cases:
        code, _, err = train(["--data-dir", mnist_dir, *flags], capsys)
        assert code == 2 and message in one_line(err), err
    assert fifo.is_fifo()


# -- data ----------------------------------------------------------------------------------------
def test_wrong_shaped_test_set_is_found_before_training(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    labels = np.arange(300, dtype=np.uint8) % 10
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 255, (300, 28, 28), np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", labels)
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 255, (50, 32, 32), np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte", labels[:50])
    out = tmp_path / "out"
    code, stdout, err = train(
        ["--data-dir", data, "--no-verify", "--val-size", "0", "--output", out / "m.npz"], capsys
    )  # --no-verify: files of one's own (MNIST's digests would refuse them first)
    assert code == 2
    assert "the test images are 32x32, the networks read 28x28" in one_line(err)
    assert "epoch" not in stdout and not (out / "m.npz").exists()


def test_scratchcnn_data_naming_a_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "data").write_text("not a folder")
    monkeypatch.setenv("SCRATCHCNN_DATA", str(tmp_path / "data"))
    code, _, err = train(["--output", tmp_path / "m.npz", "--no-download"], capsys)
    assert code == 2
    assert "(from $SCRATCHCNN_DATA) is a file, not the folder of the data" in one_line(err)


# -- Ctrl-C anywhere: one line, exit code 130 --------------------------------------------------------
def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_while_loading_data(tmp_path, capsys, monkeypatch, mnist_dir):
    monkeypatch.setattr(train_cli, "load_mnist", interrupt)
    code, _, err = train(["--output", tmp_path / "m.npz"], capsys)
    assert code == 130 and one_line(err) == "python -m scratchcnn.train: interrupted"

    model = sc.save_model(sc.build_model("lenet5"), tmp_path / "e.npz")
    monkeypatch.setattr(evaluate_cli, "load_split", interrupt)  # evaluate reads the test split
    assert evaluate_cli.main([str(model)]) == 130
    assert one_line(capsys.readouterr().err) == "python -m scratchcnn.evaluate: interrupted"

    from scratchcnn.reader import synthetic

    monkeypatch.setattr(synthetic, "mnist_test_digits", interrupt)
    assert synthetic.main([str(tmp_path / "v.avi")]) == 130
    assert one_line(capsys.readouterr().err) == "python -m scratchcnn.synthetic: interrupted"


# -- evaluate ----------------------------------------------------------------------------------
def test_evaluate_refuses_a_folder_and_writing_over_its_model(tmp_path, capsys):
    assert evaluate_cli.main([str(tmp_path)]) == 2
    assert "is a directory, not a scratchcnn-model file" in one_line(capsys.readouterr().err)
    model = sc.save_model(sc.build_model("lenet5"), tmp_path / "e.npz")
    assert evaluate_cli.main([str(model), "--metrics-json", str(model)]) == 2
    assert "is the model file itself" in one_line(capsys.readouterr().err)
    assert sc.load_model(model)


# -- divergence and chance -------------------------------------------------------------------------
def test_divergence_stops_with_a_checkpoint_of_the_last_finite_state(mnist_dir, tmp_path):
    result = run_python(
        ["-m", "scratchcnn.train", *small_run(mnist_dir, tmp_path), "--epochs", "2",
         "--lr", "30", "--schedule", "constant", "--weight-decay", "0.5", "--no-nesterov"],
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)  # no RuntimeWarning from the overflow either
    assert "training diverged in epoch 1 at batch" in line and "likely too high" in line
    assert "checkpoint of the last finite state" in line
    assert not (tmp_path / "m.npz").exists()  # a NaN model is never saved as the best
    with np.load(tmp_path / "m.ckpt.npz") as archive:
        meta = json.loads(str(archive["__meta__"]))
        batch = int(re.search(r"at batch (\d+)", line).group(1))
        assert meta["position"] == batch - 1
        assert all(np.isfinite(archive[k]).all() for k in archive.files if k != "__meta__")


def test_a_loss_at_chance_earns_a_warning(mnist_dir, tmp_path, capsys):
    # (At --lr 50 the touching pairs' term, the mean of every class's log-probability, overflows
    # to NaN: that run diverges, test_divergence_stops_with_a_checkpoint_of_the_last_finite_state.)
    code, _, err = train([*small_run(mnist_dir, tmp_path), "--lr", "20"], capsys)
    assert code == 0
    assert "warning: epoch 1 learned nothing" in err and "--lr 20 is likely too high" in err
    assert "not scaled to [0, 1]" in err


# -- resume: the checkpoint holds the run -------------------------------------------------------
@pytest.fixture
def finished_run(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    argv = [*small_run(mnist_dir, run), "--keep-checkpoint", "--metrics-json", run / "m.json"]
    code, _, err = train(argv, capsys)
    assert code == 0, err
    return run


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "0.1"], "--lr 0.1 contradicts the run in"),
        (["--arch", "scratchnet"], "--arch scratchnet contradicts the run in"),
        (["--train-size", "300"], "--train-size 300 contradicts the run"),
        (["--val-size", "200"], "--val-size 200.0 contradicts the run"),
        (["--epochs", "0"], "(--epochs may only grow)"),
        (["--no-augment"], "--augment False contradicts the run"),
        (["--seed", "1"], "--seed 1 contradicts the run"),
        (["--metrics-json", "elsewhere.json"], "--metrics-json elsewhere.json contradicts"),
        (["--output", "other.npz"], "--output other.npz contradicts the run"),
    ],
)
def test_a_flag_contradicting_the_checkpoint_is_an_error(finished_run, capsys, flags, message):
    before = (finished_run / "m.npz").read_bytes()
    code, _, err = train(["--resume", finished_run / "m.ckpt.npz", *flags], capsys)
    assert code == 2
    assert message in one_line(err) and "drop it to continue that run" in err
    assert (finished_run / "m.npz").read_bytes() == before


def test_resume_with_more_epochs_extends_the_run_where_it_wrote(finished_run, capsys, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # pytest's tmp_path: restored by monkeypatch-free chdir back below
    try:
        code, out, err = train(["--resume", finished_run / "m.ckpt.npz", "--epochs", "2"], capsys)
    finally:
        os.chdir(REPO_ROOT)
    assert code == 0, err
    assert "extending the run in" in out and "from 1 to 2 epochs" in out
    assert "epoch 2/2" in out
    metrics = json.loads((finished_run / "m.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert list(elsewhere.iterdir()) == []  # nothing written where it was resumed from
    assert not (finished_run / "m.ckpt.npz").exists()  # complete now: removed


def test_resume_of_a_finished_run_says_so(finished_run, capsys):
    code, out, _ = train(["--resume", finished_run / "m.ckpt.npz", "--keep-checkpoint"], capsys)
    assert code == 0 and "already finished its 1 epochs (add --epochs N" in out


def test_hand_edited_checkpoint_is_a_checkpoint_error(finished_run, capsys):
    ckpt = finished_run / "m.ckpt.npz"
    with np.load(ckpt) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["extra"]["run"]["lr"] = 0.5  # the saved run and its training state disagree
    np.savez(ckpt, **arrays, __meta__=np.array(json.dumps(meta)))
    code, _, err = train(["--resume", ckpt], capsys)
    assert code == 2 and "the file was edited or is corrupt" in one_line(err)


# -- signals on a real process ------------------------------------------------------------------------
def start(args, cwd):
    env = {**os.environ, "SCRATCHCNN_BACKEND": "numpy", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scratchcnn.train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    seen, progress = [], threading.Event()

    def watch():
        for chunk in iter(lambda: proc.stderr.read(64), ""):
            seen.append(chunk)
            if re.search(r"epoch 1/\d+:.*\| *[1-9]\d*/\d+ ", "".join(seen)):
                progress.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return proc, seen, progress, watcher


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_still_writes_the_checkpoint(mnist_dir, tmp_path, sig):
    out = tmp_path / "a run"  # a space: the printed command must quote it
    # Large batches (a second or more each): the second signal arrives while the first batch of
    # the stop is still being computed.
    args = [
        "--data-dir", mnist_dir, "--no-download", "--train-size", "4000", "--val-size", "300",
        "--epochs", "2", "--batch-size", "1000", "--arch", "scratchnet", "--output", out / "m.npz",
    ]  # fmt: skip
    proc, seen, progress, watcher = start(args, cwd=tmp_path)
    assert progress.wait(300), "".join(seen)
    proc.send_signal(sig)
    name = signal.Signals(sig).name
    deadline = time.time() + 60
    while f"{name}: stopping" not in "".join(seen) and time.time() < deadline:
        time.sleep(0.001)
    proc.send_signal(sig)
    proc.wait(timeout=300)
    watcher.join(timeout=60)
    proc.stdout.close()
    stderr = "".join(seen)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert f"{name}: stopping at the end of this batch" in stderr
    assert f"{name}: already stopping" in stderr
    stopped = re.search(rf"{name}: stopped in epoch 1 after batch (\d);", stderr)
    assert stopped and stopped.group(1) in "23", stderr
    assert (out / "m.ckpt.npz").exists()

    command = re.search(r"continue with: (.*)", stderr).group(1)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "scratchcnn.train"] and len(argv) == 5
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "SCRATCHCNN_BACKEND": "numpy", "PYTHONPATH": str(REPO_ROOT)}
    resumed = subprocess.run(
        [sys.executable, *argv[1:], "--no-progress"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out / 'm.ckpt.npz'}: epoch 1, batch {stopped.group(1)}" in resumed.stdout
    assert "epoch 2/2" in resumed.stdout
    assert (out / "m.npz").exists() and not (out / "m.ckpt.npz").exists()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_after_training_is_one_line(mnist_dir, tmp_path):
    """Ctrl-C while the test report is computed (after the signal handler is gone)."""
    args = [*small_run(mnist_dir, tmp_path)]
    proc, seen, _, watcher = start([a for a in args if a != "--no-progress"], cwd=tmp_path)
    deadline = time.time() + 300
    while not (tmp_path / "m.npz").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    watcher.join(timeout=60)
    stdout = proc.stdout.read()
    proc.stdout.close()
    stderr = "".join(seen)
    assert proc.returncode in (0, 130), stderr  # 0: the report was already printed
    assert "Traceback" not in stderr
    if proc.returncode == 130:
        assert "interrupted" in stderr or "stopped after epoch" in stderr, stdout
