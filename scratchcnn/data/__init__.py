"""Datasets stored as IDX files (MNIST and its relatives): a strict reader and a verified loader.

``python -m scratchcnn.data download [--dataset NAME]`` fills the cache (or ``$SCRATCHCNN_DATA``).
"""

from scratchcnn.data.idx import IDXFormatError, read_idx, write_idx
from scratchcnn.data.mnist import (
    DATASETS,
    ChecksumError,
    DatasetError,
    MissingDataError,
    cache_dir,
    data_location,
    load_mnist,
    load_split,
    locate,
    to_float_images,
)

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DatasetError",
    "IDXFormatError",
    "MissingDataError",
    "cache_dir",
    "data_location",
    "load_mnist",
    "load_split",
    "locate",
    "read_idx",
    "to_float_images",
    "write_idx",
]
