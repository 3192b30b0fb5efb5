"""Shared fixtures: where the real MNIST files are, and seeded generators."""

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four original MNIST IDX .gz files, or skip saying where it was looked for."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST} (put the four IDX .gz files there)")
    return SHARED_MNIST


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
