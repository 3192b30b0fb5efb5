"""Shared fixtures: where the real MNIST files are, seeded generators, and a runner of this
checkout's command-line programs."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run, so the suite cannot turn red by luck.
# SCRATCHCNN_FUZZ_RANDOM=1 draws fresh ones (with SCRATCHCNN_FUZZ_EXAMPLES=5000 in
# test_fuzz_files.py: a longer campaign by hand); hypothesis prints how to reproduce a failure.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("fresh", derandomize=False)
settings.load_profile("fresh" if os.environ.get("SCRATCHCNN_FUZZ_RANDOM") else "repeatable")


@pytest.fixture(scope="session")
def mnist_files() -> dict:
    """The four real MNIST files by role ("train_images", ...), found and verified as
    ``load_mnist`` finds them — ``$SCRATCHCNN_DATA/mnist``, else the user cache — never
    downloaded here; skip, saying where they were looked for and how to get them, when absent."""
    from scratchcnn.data import MissingDataError, data_location, locate

    try:
        return locate("mnist", download_missing=False, progress=False)
    except MissingDataError:
        pytest.skip(
            f"real MNIST not found in {data_location(None, 'mnist')}: run "
            "`python -m scratchcnn.data download` once (or set SCRATCHCNN_DATA to a folder whose "
            "mnist/ subfolder holds the four IDX files)"
        )


@pytest.fixture(scope="session")
def mnist_dir(mnist_files) -> Path:
    """The folder holding the four real MNIST files (see :func:`mnist_files`)."""
    return mnist_files["train_images"].parent


def gz_bytes(path: Path) -> bytes:
    """A data file's bytes gzip-compressed: as stored when it is a .gz, else compressed now."""
    data = Path(path).read_bytes()
    return data if Path(path).suffix == ".gz" else gzip.compress(data)


def run_python(args, backend: str = "numpy", timeout: float = 300, env=None, **kwargs):
    """Run ``python *args`` from the repository root on this checkout's code, with the given
    kernel backend, unbuffered; return the CompletedProcess with text stdout and stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "SCRATCHCNN_BACKEND": backend,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
        **kwargs,
    )


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once with each kernel backend (numba's skipped when it is not installed),
    restoring the one chosen before."""
    import scratchcnn as sc

    if request.param == "numba":
        pytest.importorskip("numba")
    previous = sc.backend_name()
    sc.set_backend(request.param)
    yield request.param
    sc.set_backend(previous)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def digit_model_path(mnist_dir, tmp_path_factory) -> Path:
    """A digit reader trained in-process once per session, saved as a model file.

    LeNet-5 for one epoch over the full training set with augmentation and touching pairs shown
    as no digit, as the train command trains by default (98.3% on the MNIST test set; 30 s on two
    idle cores). On one thread: on a busy two-core machine a second one
    waits for a core more than it helps.
    """
    import scratchcnn as sc
    from scratchcnn.data import load_mnist, to_float_images
    from scratchcnn.training.trainer import TrainConfig, Trainer

    (x, y), _ = load_mnist(mnist_dir, download=False)
    x, y = to_float_images(x), y.astype(np.int64)
    previous = sc.backend_name()  # what the tests would run with: restored after
    sc.set_backend("numpy")
    try:
        with sc.limit_threads(1):
            config = TrainConfig(arch="lenet5", epochs=1, warmup_epochs=0.1, seed=0)
            trainer = Trainer(config, x, y)
            trainer.run_epoch()
    finally:
        sc.set_backend(previous)
    path = tmp_path_factory.mktemp("vision-model") / "lenet5.npz"
    sc.save_model(trainer.model, path)
    return path


@pytest.fixture(scope="session")
def digit_model(digit_model_path):
    import scratchcnn as sc

    return sc.load_model(digit_model_path)


@pytest.fixture(scope="session")
def mnist_test_set(mnist_dir):
    """MNIST test images uint8 (10000, 28, 28) and labels: the only digits the frames show."""
    from scratchcnn.reader.synthetic import mnist_test_digits

    return mnist_test_digits(mnist_dir, download=False)
