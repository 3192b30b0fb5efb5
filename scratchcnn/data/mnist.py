"""MNIST and datasets shipped like it: find the four IDX files, verify them, download what is missing.

Where the files are, in order: the ``data_dir`` argument, the ``SCRATCHCNN_DATA`` environment
variable, then a per-user cache folder (``$XDG_CACHE_HOME/scratchcnn/<dataset>``, by default
``~/.cache/scratchcnn/<dataset>``). The folder holds the four files under their original names,
gzip-compressed (``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``).

A missing file is downloaded from the dataset's mirrors, tried in turn; each download is checked
against the published digest while it streams into a temporary file, and renamed into place only
once verified, so an interrupted or corrupt download leaves nothing behind that would be trusted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scratchcnn.data.idx import IDXFormatError, read_idx

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """A dataset shipped as four IDX files: their names, published digests, and mirrors."""

    name: str
    files: dict[str, tuple[str, str, str]]  # role -> (file name, digest algorithm, hex digest)
    mirrors: tuple[str, ...]
    num_classes: int = 10


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        "mnist",
        {
            "train_images": ("train-images-idx3-ubyte.gz", "sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    # Fashion-MNIST and Kuzushiji-MNIST publish MD5 digests; those are what we check.
    "fashion-mnist": Dataset(
        "fashion-mnist",
        {
            "train_images": ("train-images-idx3-ubyte.gz", "md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "md5", "bef4ecab320f06d8554ea6380940ec79"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
    "kmnist": Dataset(
        "kmnist",
        {
            "train_images": ("train-images-idx3-ubyte.gz", "md5", "bdb82020997e1d708af4cf47b453dcf7"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "md5", "e144d726b3acfaa3e44228e80efcd344"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "md5", "5c965bf0a639b31b8f53240b1b52f4d7"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "md5", "7320c461ea6c1c855c0b718fb2a4b134"),
        },
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    ),
}  # fmt: skip


class DatasetError(ValueError):
    """The files exist but are not the dataset they claim to be; the message names the file."""


class ChecksumError(DatasetError):
    """A file's digest differs from the published one."""


class MissingDataError(FileNotFoundError):
    """Files are missing and could not be downloaded; the message says which and where to put them."""


def cache_dir() -> Path:
    """The per-user folder where downloaded datasets live (``$XDG_CACHE_HOME/scratchcnn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scratchcnn"


def data_location(data_dir: str | os.PathLike | None = None, dataset: str = "mnist") -> Path:
    """The folder holding a dataset's files: ``data_dir``, else ``$SCRATCHCNN_DATA``, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("SCRATCHCNN_DATA"):
        return Path(os.environ["SCRATCHCNN_DATA"]).expanduser()
    return cache_dir() / dataset


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _existing(folder: Path, gz_name: str) -> Path | None:
    for candidate in (folder / gz_name, folder / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _verify(path: Path, algorithm: str, expected: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path}: {algorithm.upper()} is {actual}, expected {expected}: the file is corrupt or "
            "belongs to another dataset; delete it to download it again (or skip the check with "
            "verify=False for files of your own)"
        )


def download(
    urls: list[str], dest: Path, algorithm: str, expected: str, progress: bool = True
) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that serves it with the expected digest.

    Each attempt streams into a hidden temporary file beside ``dest`` while hashing; only a complete
    file with the right digest is renamed to ``dest``. Raises :class:`MissingDataError` listing
    every mirror's failure when none succeeds.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch(url, dest, algorithm, expected, progress)
            return dest
        except (OSError, http.client.HTTPException, ChecksumError) as err:
            failures.append(f"{url}: {err or type(err).__name__}")
    raise MissingDataError(f"could not download {dest.name} ({'; '.join(failures)})")


def _fetch(url: str, dest: Path, algorithm: str, expected: str, progress: bool) -> None:
    from tqdm import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(algorithm)
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=60) as response,  # noqa: S310 (http/https mirrors)
        ):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, leave=False,
                disable=not progress,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)
        if digest.hexdigest() != expected:
            raise ChecksumError(
                f"{algorithm.upper()} of the download is {digest.hexdigest()}, expected {expected}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _missing_message(dataset: Dataset, folder: Path, missing: list[str], why: str) -> str:
    names = ", ".join(missing)
    mirror = dataset.mirrors[0] if dataset.mirrors else "the dataset's publisher"
    return (
        f"{dataset.name}: missing {names} in {folder} ({why}); put the four files there "
        f"(from {mirror}), or point data_dir / --data-dir / SCRATCHCNN_DATA at the folder that "
        "holds them"
    )


def locate(
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = True,
    verify: bool = True,
    mirrors: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Paths of the dataset's four files by role, downloading the missing ones if allowed.

    ``verify`` checks every gzip file against the published digest (uncompressed files are checked
    by the IDX reader's structure checks only). ``mirrors`` overrides the dataset's mirror list.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    info = DATASETS[dataset]
    folder = data_location(data_dir, dataset)
    if folder.exists() and not folder.is_dir():
        source = (
            "data_dir / --data-dir" if data_dir is not None
            else "$SCRATCHCNN_DATA" if os.environ.get("SCRATCHCNN_DATA") else "the cache"
        )  # fmt: skip
        raise DatasetError(f"{folder} (from {source}) is a file, not the folder of the data")
    mirrors = list(info.mirrors if mirrors is None else mirrors)
    found = {role: _existing(folder, info.files[role][0]) for role in ROLES}
    missing = [info.files[role][0] for role in ROLES if found[role] is None]
    if missing and not download_missing:
        raise MissingDataError(_missing_message(info, folder, missing, "downloading is off"))
    paths = {}
    for role in ROLES:
        name, algorithm, expected = info.files[role]
        path = found[role]
        if path is None:
            urls = [m.rstrip("/") + "/" + name for m in mirrors]
            try:
                path = download(urls, folder / name, algorithm, expected, progress)
            except MissingDataError as err:
                raise MissingDataError(
                    f"{_missing_message(info, folder, missing, 'download failed')}: {err}"
                ) from None
        elif verify and path.suffix == ".gz":
            _verify(path, algorithm, expected)
        paths[role] = path
    return paths


def read_split(images_path: Path, labels_path: Path, num_classes: int = 10):
    """Read one split's images (N, H, W) and labels (N,), checking they belong together."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(
            f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DatasetError(
            f"{labels_path}: label {labels[bad]} at index {bad} is outside 0-{num_classes - 1}"
        )
    return images, labels


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    dataset: str = "mnist",
    verify: bool = True,
    mirrors: list[str] | None = None,
    progress: bool = True,
):
    """Load MNIST (or "fashion-mnist", "kmnist") as ``((x_train, y_train), (x_test, y_test))``.

    Images are uint8 of shape (N, 28, 28), labels uint8 of shape (N,) in 0-9 — the arrays Keras's
    ``mnist.load_data()`` returns. See the module docstring for where files are looked for and how
    downloads are verified; :func:`to_float_images` turns images into the models' input.
    """
    paths = locate(dataset, data_dir, download, verify, mirrors, progress)
    num_classes = DATASETS[dataset].num_classes
    train = read_split(paths["train_images"], paths["train_labels"], num_classes)
    test = read_split(paths["test_images"], paths["test_labels"], num_classes)
    return train, test


def to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) or (N, 1, H, W) -> float32 (N, 1, H, W) in [0, 1], the models' input.

    Anything but uint8 is refused (TypeError): the scale of a float or wider integer array cannot
    be known from it (already in [0, 1]? 0-255? 0-65535?), and guessing from its values would
    divide a converted set by 255 a second time, or a dark 0-255 image not at all.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(
            f"to_float_images converts uint8 pixels (0-255), got {images.dtype.name}: "
            "already converted? use the array as it is; other scales: divide by their maximum"
        )
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(
            f"to_float_images takes images (N, H, W) or (N, 1, H, W), got shape {images.shape}"
            + ("; one image: images[None]" if images.ndim == 2 else "")
        )
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


__all__ = [
    "DATASETS",
    "ChecksumError",
    "Dataset",
    "DatasetError",
    "IDXFormatError",
    "MissingDataError",
    "cache_dir",
    "data_location",
    "load_mnist",
    "locate",
    "read_split",
    "to_float_images",
]
