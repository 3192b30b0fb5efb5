"""Loading MNIST: the real files, where files are looked for, and downloads from a real HTTP server
on 127.0.0.1 (good mirror, 404 then good, corrupted file, connection dropped mid-file)."""

import gzip
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import gz_bytes, run_python

import scratchcnn as sc
from scratchcnn.data import (
    ChecksumError,
    MissingDataError,
    load_mnist,
    load_split,
    to_float_images,
)
from scratchcnn.data.mnist import DATASETS, ROLES, cache_dir, data_location

NAMES = [DATASETS["mnist"].files[role].name for role in ROLES]


def copy_mnist(mnist_files, folder):
    """The four MNIST files copied into ``folder`` as .gz files; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in zip(ROLES, NAMES, strict=True):
        data = gz_bytes(mnist_files[role])
        (folder / name).write_bytes(data)
    return folder


def test_real_files_load_with_known_facts(mnist_dir):
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_dir, download=False)
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert (y_train == 1).sum() == 6742
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x_train.max() == 255 and x_train.min() == 0
    x = to_float_images(x_test[:3])
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert sc.load_mnist is load_mnist


def test_uncompressed_copies_are_found_and_verified(tmp_path, mnist_files):
    for role, name in zip(ROLES, NAMES, strict=True):
        raw = gzip.decompress(gz_bytes(mnist_files[role]))
        (tmp_path / name.removesuffix(".gz")).write_bytes(raw)
    (_, y_train), _ = load_mnist(tmp_path, download=False)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[8] = (raw[8] + 1) % 10  # a different, still valid label: only the digest can tell
    labels.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte: not mnist's .*decompressed"):
        load_mnist(tmp_path, download=False)


def test_a_recompressed_copy_verifies_by_its_decompressed_data(tmp_path, mnist_files):
    """Another gzip level and header (as a repackager's copy has): the .gz digest differs, the
    data inside does not, and the dataset table's digest of the decompressed data accepts it."""
    for role, name in zip(ROLES, NAMES, strict=True):
        raw = gzip.decompress(gz_bytes(mnist_files[role]))
        (tmp_path / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
        assert (tmp_path / name).read_bytes() != gz_bytes(mnist_files[role])
    (x_train, y_train), (x_test, _) = load_mnist(tmp_path, download=False)
    assert x_train.shape == (60000, 28, 28) and list(y_train[:5]) == [5, 0, 4, 1, 9]


def test_where_files_are_looked_for(tmp_path, monkeypatch):
    """One subfolder per dataset under SCRATCHCNN_DATA and the cache; --data-dir is the folder."""
    monkeypatch.setenv("SCRATCHCNN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_location(tmp_path / "arg") == tmp_path / "arg"
    assert data_location(tmp_path / "arg", "kmnist") == tmp_path / "arg"
    assert data_location() == tmp_path / "env" / "mnist"
    assert data_location(dataset="fashion-mnist") == tmp_path / "env" / "fashion-mnist"
    monkeypatch.delenv("SCRATCHCNN_DATA")
    assert data_location(dataset="kmnist") == tmp_path / "cache" / "scratchcnn" / "kmnist"
    assert data_location() == tmp_path / "cache" / "scratchcnn" / "mnist"
    assert cache_dir() == tmp_path / "cache" / "scratchcnn"


def test_scratchcnn_data_holds_a_folder_per_dataset(tmp_path, monkeypatch, mnist_files):
    copy_mnist(mnist_files, tmp_path / "mnist")
    monkeypatch.setenv("SCRATCHCNN_DATA", str(tmp_path))
    (_, y_train), _ = load_mnist(download=False)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    with pytest.raises(MissingDataError) as info:  # never MNIST's files for another dataset
        load_mnist(dataset="fashion-mnist", download=False)
    assert str(tmp_path / "fashion-mnist") in str(info.value)
    assert "--no-download" in str(info.value)


def test_missing_files_without_download_say_what_and_where(tmp_path):
    with pytest.raises(MissingDataError) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert all(name in message for name in NAMES) and str(tmp_path) in message
    assert "downloads are off: --no-download or download=False" in message


def test_the_test_split_needs_only_the_test_files(tmp_path, mnist_files):
    for role in ("test_images", "test_labels"):
        (tmp_path / DATASETS["mnist"].files[role].name).write_bytes(gz_bytes(mnist_files[role]))
    images, labels = load_split("test", tmp_path, download=False)
    assert images.shape == (10000, 28, 28) and labels[:3].tolist() == [7, 2, 1]
    with pytest.raises(MissingDataError, match="missing train-images-idx3-ubyte.gz, train-labels"):
        load_mnist(tmp_path, download=False)


def test_a_corrupt_local_copy_is_refused_unless_asked(tmp_path, mnist_files):
    copy_mnist(mnist_files, tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # a different, still valid label
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert message.startswith(f"{labels}: not mnist's t10k-labels-idx1-ubyte.gz: its SHA256 is")
    assert "decompressed SHA-256 is" in message and "--no-verify" in message
    assert "move it aside" in message and "delete" not in message
    _, (_, y_test) = load_mnist(tmp_path, download=False, verify=False)  # the user's own files
    assert y_test[0] == raw[8]


def test_another_datasets_files_are_named_and_never_to_be_deleted(tmp_path, mnist_files):
    """Fashion-MNIST asked for in a folder of MNIST's files: the error says whose they are and
    where to point instead; no advice that would remove the valid MNIST files."""
    copy_mnist(mnist_files, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ChecksumError) as info:
        load_mnist(tmp_path, dataset="fashion-mnist", download=False)
    message = str(info.value)
    assert "not fashion-mnist's train-images-idx3-ubyte.gz" in message
    assert "it is mnist's train-images-idx3-ubyte.gz" in message
    assert "point --data-dir" in message and "delete" not in message and "aside" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist, fashion-mnist, kmnist"):
        load_mnist(tmp_path, dataset="cifar")


# ---- downloads from a real HTTP server on loopback -------------------------------------------


class Mirror(BaseHTTPRequestHandler):
    """Serves /<mode>/<file>: mode "good", "missing" (404), "corrupt" (one byte changed),
    "recompressed" (the same data, gzip level 1) or "drop" (announces the full length, sends
    half, closes the connection)."""

    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        _, mode, name = self.path.split("/", 2)
        body = self.files.get(f"recompressed-{name}" if mode == "recompressed" else name)
        if body is None or mode == "missing":
            self.send_error(404)
            return
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(mnist_files):
    Mirror.files = {
        name: gz_bytes(mnist_files[role]) for role, name in zip(ROLES, NAMES, strict=True)
    }
    Mirror.files.update(
        {
            f"recompressed-{name}": gzip.compress(gzip.decompress(body), 1, mtime=0)
            for name, body in Mirror.files.items()
        }
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_from_a_good_mirror(tmp_path, server):
    (x_train, y_train), (x_test, _) = load_mnist(
        tmp_path / "d", mirrors=[f"{server}/good"], progress=False
    )
    assert x_train.shape == (60000, 28, 28) and list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert leftovers(tmp_path / "d") == sorted(NAMES)  # no temporary files
    Mirror.requests.clear()
    load_mnist(tmp_path / "d", mirrors=[f"{server}/good"])  # second time: from disk
    assert Mirror.requests == []


def test_first_mirror_404_then_a_good_one(tmp_path, server):
    Mirror.requests.clear()
    load_mnist(tmp_path, mirrors=[f"{server}/missing", f"{server}/good"], progress=False)
    assert Mirror.requests[:2] == [
        "/missing/train-images-idx3-ubyte.gz",
        "/good/train-images-idx3-ubyte.gz",
    ]
    assert leftovers(tmp_path) == sorted(NAMES)


@pytest.mark.parametrize(
    ("mode", "reason"), [("corrupt", "SHA256 of the download is"), ("drop", "IncompleteRead")]
)
def test_a_bad_download_leaves_nothing_to_trust(tmp_path, server, mode, reason):
    with pytest.raises(MissingDataError) as info:
        load_mnist(tmp_path / "d", mirrors=[f"{server}/{mode}"], progress=False)
    message = str(info.value)
    assert reason in message and "train-images-idx3-ubyte.gz" in message
    assert f"{server}/{mode}/train-images-idx3-ubyte.gz" in message
    assert leftovers(tmp_path / "d") == []


def test_downloads_of_other_datasets_are_checked_against_their_own_digests(tmp_path, server):
    # The server holds MNIST's files, so Fashion-MNIST's MD5s must reject them.
    with pytest.raises(MissingDataError, match="MD5 of the download is"):
        load_mnist(tmp_path, dataset="fashion-mnist", mirrors=[f"{server}/good"], progress=False)
    assert leftovers(tmp_path) == []


def test_no_network_names_every_mirror_and_the_target(tmp_path):
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    with pytest.raises(MissingDataError) as info:
        load_mnist(tmp_path, mirrors=[dead], progress=False)
    message = str(info.value)
    assert f"{dead}/train-images-idx3-ubyte.gz" in message and str(tmp_path) in message


def test_a_mirror_serving_a_recompressed_copy_is_accepted(tmp_path, server):
    (_, y_train), _ = load_mnist(tmp_path, mirrors=[f"{server}/recompressed"], progress=False)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert leftovers(tmp_path) == sorted(NAMES)


def test_download_command_fills_the_folder_with_a_progress_bar(tmp_path, server):
    folder = tmp_path / "cache" / "scratchcnn" / "mnist"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "SCRATCHCNN_DATA": ""}
    cmd = ["-m", "scratchcnn.data", "download", "--mirror", f"{server}/good"]
    result = run_python(cmd, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"mnist: 4 files verified in {folder} (4 downloaded, 0 already there)"
    )
    assert re.search(r"train-images-idx3-ubyte.gz: +\d+%\|.*9.91M", result.stderr)  # tqdm's bar
    assert leftovers(folder) == sorted(NAMES)
    again = run_python(cmd, env=env)
    assert again.returncode == 0 and "(0 downloaded, 4 already there)" in again.stdout
    failed = run_python([*cmd[:3], "--dataset", "kmnist", "--mirror", f"{server}/good"], env=env)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    (line,) = [x for x in failed.stderr.splitlines() if x.startswith("python -m scratchcnn.data")]
    assert "kmnist: missing" in line and "MD5 of the download is" in line
    assert leftovers(folder) == sorted(NAMES)  # MNIST's files untouched
