"""MNIST and datasets shipped like it: find the four IDX files, verify them, download what is missing.

Where a dataset's files are, in order: the ``data_dir`` argument (the folder holding them), the
dataset's subfolder of ``$SCRATCHCNN_DATA`` (``$SCRATCHCNN_DATA/mnist``,
``$SCRATCHCNN_DATA/fashion-mnist``), then the same subfolder of a per-user cache
(``$XDG_CACHE_HOME/scratchcnn/<dataset>``, by default ``~/.cache/scratchcnn/<dataset>``). The
folder holds the files under their original names, gzip-compressed (``train-images-idx3-ubyte.gz``)
or not (``train-images-idx3-ubyte``). A command that reads only the test split needs only its two.

A file on disk is accepted when its digest is the published one, or when its decompressed bytes
have the SHA-256 kept in the dataset table (a recompressed or uncompressed copy of the same data).
A missing file is downloaded from the dataset's mirrors, tried in turn; each download is checked
while it streams into a temporary file, and renamed into place only once verified, so an
interrupted or corrupt download leaves nothing behind that would be trusted.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scratchcnn.data.idx import IDXFormatError, read_idx

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
_CHUNK = 1 << 16


class DataFile(NamedTuple):
    """One of a dataset's four files: its published name and digest, and the SHA-256 of its
    decompressed bytes (None where it could not be computed from the publisher's own files)."""

    name: str
    algorithm: str  # of the published digest: "sha256", "md5"
    digest: str  # of the file as published (gzip-compressed)
    raw_sha256: str | None = None  # of the decompressed IDX bytes


@dataclass(frozen=True)
class Dataset:
    """A dataset shipped as four IDX files: their names and digests, mirrors and class names."""

    name: str
    files: dict[str, DataFile]  # by role: "train_images", "train_labels", ...
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...] = tuple(str(k) for k in range(10))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# The raw (decompressed) SHA-256 digests were computed from files whose published digest matched,
# so a recompressed copy of the same data (another gzip level or header) verifies through them.
# MNIST's: from the four published .gz files. Fashion-MNIST's: from Debian's package
# dataset-fashion-mnist, whose .gz files are the publisher's deflate streams under a header without
# the file name; put back (name, mtime 2017-08-31 10:50:06/27 UTC), each gives the published MD5
# (tests/test_datasets.py rebuilds them). KMNIST's are unknown: its .gz files are checked by MD5
# alone, and uncompressed KMNIST files by the IDX reader's structure checks only.
DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        "mnist",
        {
            "train_images": DataFile("train-images-idx3-ubyte.gz", "sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            "train_labels": DataFile("train-labels-idx1-ubyte.gz", "sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            "test_images": DataFile("t10k-images-idx3-ubyte.gz", "sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    # Fashion-MNIST and Kuzushiji-MNIST publish MD5 digests of their .gz files; those are checked.
    "fashion-mnist": Dataset(
        "fashion-mnist",
        {
            "train_images": DataFile("train-images-idx3-ubyte.gz", "md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            "train_labels": DataFile("train-labels-idx1-ubyte.gz", "md5", "25c81989df183df01b3e8a0aad5dffbe", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            "test_images": DataFile("t10k-images-idx3-ubyte.gz", "md5", "bef4ecab320f06d8554ea6380940ec79", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "md5", "bb300cfdad3c16e7a12a480ee83cd310", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        },
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "kmnist": Dataset(
        "kmnist",
        {
            "train_images": DataFile("train-images-idx3-ubyte.gz", "md5", "bdb82020997e1d708af4cf47b453dcf7"),
            "train_labels": DataFile("train-labels-idx1-ubyte.gz", "md5", "e144d726b3acfaa3e44228e80efcd344"),
            "test_images": DataFile("t10k-images-idx3-ubyte.gz", "md5", "5c965bf0a639b31b8f53240b1b52f4d7"),
            "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "md5", "7320c461ea6c1c855c0b718fb2a4b134"),
        },
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        # the ten hiragana (o, ki, su, tsu, na, ha, ma, ya, re, wo), romanized so every font has them
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
}  # fmt: skip


class DatasetError(ValueError):
    """The files exist but are not the dataset they claim to be; the message names the file."""


class ChecksumError(DatasetError):
    """A file's digest differs from the published one (and from its decompressed data's)."""


class MissingDataError(FileNotFoundError):
    """Files are missing and could not be downloaded; the message says which and where to put them."""


SPLITS = {"train": ("train_images", "train_labels"), "test": ("test_images", "test_labels")}


def cache_dir() -> Path:
    """The per-user folder where downloaded datasets live (``$XDG_CACHE_HOME/scratchcnn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scratchcnn"


def data_location(data_dir: str | os.PathLike | None = None, dataset: str = "mnist") -> Path:
    """The folder holding a dataset's files: ``data_dir`` itself, else the dataset's subfolder of
    ``$SCRATCHCNN_DATA`` (``$SCRATCHCNN_DATA/mnist``), else of the cache (``cache_dir()/mnist``)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("SCRATCHCNN_DATA"):
        return Path(os.environ["SCRATCHCNN_DATA"]).expanduser() / dataset
    return cache_dir() / dataset


def file_digest(path: Path, algorithm: str, decompress: bool = False) -> str:
    """Hex digest of a file (of its gzip-decompressed bytes with ``decompress``), read in chunks."""
    digest = hashlib.new(algorithm)
    with (gzip.open if decompress else open)(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _existing(folder: Path, gz_name: str) -> Path | None:
    for candidate in (folder / gz_name, folder / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _raw_sha256(path: Path, compressed: bool | None = None) -> str | None:
    """SHA-256 of the file's IDX bytes, decompressed if it is gzip (``compressed``, by default
    judged from the name); None for a broken gzip file."""
    try:
        compressed = path.suffix == ".gz" if compressed is None else compressed
        return file_digest(path, "sha256", decompress=compressed)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return None


def identify(path: Path) -> str | None:
    """Which known dataset file ``path`` is (e.g. "mnist's train-images-idx3-ubyte.gz"), judged
    by the digests in :data:`DATASETS`; None when it is none of them."""
    digests = {}
    for info in DATASETS.values():
        for entry in info.files.values():
            label = f"{info.name}'s {entry.name}"
            digests[(entry.algorithm, entry.digest)] = label
            if entry.raw_sha256:
                digests[("raw", entry.raw_sha256)] = label
    if path.suffix == ".gz":
        for algorithm in {a for a, _ in digests if a != "raw"}:
            label = digests.get((algorithm, file_digest(path, algorithm)))
            if label:
                return label
    return digests.get(("raw", _raw_sha256(path)))


def verify_file(path: Path, entry: DataFile, dataset: Dataset) -> None:
    """Check ``path`` against ``entry``: the published digest of the .gz file, or, for a copy
    compressed differently or not at all, the SHA-256 of its decompressed bytes. Raises
    :class:`ChecksumError` naming the file, what it is if it is another known dataset file, and
    what to do (never to delete it). An uncompressed file of a dataset whose decompressed digests
    are unknown is left to the IDX reader's structure checks."""
    path = Path(path)
    if path.suffix == ".gz" and file_digest(path, entry.algorithm) == entry.digest:
        return
    if entry.raw_sha256 is None:
        if path.suffix != ".gz":
            return
        found = f"its {entry.algorithm.upper()} is {file_digest(path, entry.algorithm)}, expected {entry.digest}"
    else:
        raw = _raw_sha256(path)
        if raw == entry.raw_sha256:
            return
        found = (
            f"its decompressed SHA-256 is {raw}, expected {entry.raw_sha256}"
            if raw is not None
            else "it is not a readable gzip file"
        )
        if path.suffix == ".gz":
            found = f"its {entry.algorithm.upper()} is {file_digest(path, entry.algorithm)}, expected {entry.digest}; {found}"
    other = identify(path)
    if other and other != f"{dataset.name}'s {entry.name}":
        what = (
            f"it is {other}; point --data-dir (data_dir, SCRATCHCNN_DATA) at {dataset.name}'s files"
        )
    else:
        mirror = dataset.mirrors[0] if dataset.mirrors else "its publisher"
        what = (
            f"it is damaged or not {dataset.name}'s; replace it with the publisher's file (from "
            f"{mirror}), or move it aside and it is downloaded again"
        )
    raise ChecksumError(
        f"{path}: not {dataset.name}'s {entry.name}: {found}; {what}; or, for files of your own, "
        "skip the check with --no-verify (verify=False)"
    )


def download(
    urls: list[str],
    dest: Path,
    entry: DataFile | str,
    expected: str | None = None,
    progress: bool = True,
) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that serves it with the expected digest.

    ``entry`` is the file's :class:`DataFile` (or, as before, the digest's algorithm followed by
    ``expected``). Each attempt streams into a hidden temporary file beside ``dest`` while hashing;
    only a complete file with the published digest (or, failing that, the digest of the
    decompressed data) is renamed to ``dest``. Raises :class:`MissingDataError` listing every
    mirror's failure when none succeeds.
    """
    if isinstance(entry, str):
        entry = DataFile(dest.name, entry, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch(url, dest, entry, progress)
            return dest
        except (OSError, http.client.HTTPException, ChecksumError) as err:
            failures.append(f"{url}: {err or type(err).__name__}")
    raise MissingDataError(f"could not download {dest.name} ({'; '.join(failures)})")


def _fetch(url: str, dest: Path, entry: DataFile, progress: bool) -> None:
    from tqdm import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(entry.algorithm)
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
        if digest.hexdigest() != entry.digest and (
            entry.raw_sha256 is None
            or _raw_sha256(tmp, compressed=dest.suffix == ".gz") != entry.raw_sha256
        ):
            raise ChecksumError(
                f"{entry.algorithm.upper()} of the download is {digest.hexdigest()}, "
                f"expected {entry.digest}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _missing_message(dataset: Dataset, folder: Path, missing: list[str], why: str) -> str:
    names = ", ".join(missing)
    mirror = dataset.mirrors[0] if dataset.mirrors else "the dataset's publisher"
    return (
        f"{dataset.name}: missing {names} in {folder} ({why}); put the files there "
        f"(from {mirror}), or point data_dir / --data-dir / SCRATCHCNN_DATA at the folder that "
        f"holds them (SCRATCHCNN_DATA: the folder above {dataset.name}/)"
    )


def locate(
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = True,
    verify: bool = True,
    mirrors: list[str] | None = None,
    progress: bool = True,
    splits: tuple[str, ...] = ("train", "test"),
) -> dict[str, Path]:
    """Paths of the dataset's files by role, downloading the missing ones if allowed.

    Only the files of ``splits`` ("train", "test") are looked for. ``verify`` checks each file
    with :func:`verify_file`; ``mirrors`` overrides the dataset's mirror list.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be among {', '.join(SPLITS)}, got {splits!r}")
    info = DATASETS[dataset]
    roles = [role for role in ROLES if any(role in SPLITS[s] for s in splits)]
    folder = data_location(data_dir, dataset)
    for path in (folder,) if data_dir is not None else (folder, folder.parent):  # + the root
        if path.exists() and not path.is_dir():
            source = (
                "data_dir / --data-dir" if data_dir is not None
                else "$SCRATCHCNN_DATA" if os.environ.get("SCRATCHCNN_DATA") else "the cache"
            )  # fmt: skip
            raise DatasetError(f"{path} (from {source}) is a file, not the folder of the data")
    mirrors = list(info.mirrors if mirrors is None else mirrors)
    found = {role: _existing(folder, info.files[role].name) for role in roles}
    missing = [info.files[role].name for role in roles if found[role] is None]
    if missing and not download_missing:
        raise MissingDataError(
            _missing_message(
                info, folder, missing, "downloads are off: --no-download or download=False"
            )
        )
    paths = {}
    for role in roles:
        entry = info.files[role]
        path = found[role]
        if path is None:
            urls = [m.rstrip("/") + "/" + entry.name for m in mirrors]
            try:
                path = download(urls, folder / entry.name, entry, progress=progress)
            except MissingDataError as err:
                raise MissingDataError(
                    f"{_missing_message(info, folder, missing, 'download failed')}: {err}"
                ) from None
        elif verify:
            verify_file(path, entry, info)
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
    they are verified; :func:`to_float_images` turns images into the models' input.
    """
    paths = locate(dataset, data_dir, download, verify, mirrors, progress)
    num_classes = DATASETS[dataset].num_classes
    train = read_split(paths["train_images"], paths["train_labels"], num_classes)
    test = read_split(paths["test_images"], paths["test_labels"], num_classes)
    return train, test


def load_split(
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    dataset: str = "mnist",
    verify: bool = True,
    mirrors: list[str] | None = None,
    progress: bool = True,
):
    """One split of a dataset as ``(images, labels)`` (uint8 (N, 28, 28), uint8 (N,)), needing
    only that split's two files: what evaluating or rendering test digits uses."""
    paths = locate(dataset, data_dir, download, verify, mirrors, progress, splits=(split,))
    images_role, labels_role = SPLITS[split]
    return read_split(paths[images_role], paths[labels_role], DATASETS[dataset].num_classes)


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
    "SPLITS",
    "ChecksumError",
    "DataFile",
    "Dataset",
    "DatasetError",
    "IDXFormatError",
    "MissingDataError",
    "cache_dir",
    "data_location",
    "identify",
    "load_mnist",
    "load_split",
    "locate",
    "read_split",
    "to_float_images",
    "verify_file",
]
