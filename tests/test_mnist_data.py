"""Loading MNIST: the real files, where files are looked for, and downloads from a real HTTP server
on 127.0.0.1 (good mirror, 404 then good, corrupted file, connection dropped mid-file)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.data import ChecksumError, MissingDataError, load_mnist, to_float_images
from scratchcnn.data.mnist import DATASETS, ROLES, cache_dir, data_location

NAMES = [DATASETS["mnist"].files[role][0] for role in ROLES]


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


def test_uncompressed_copies_are_found(tmp_path, mnist_dir):
    import gzip

    for name in NAMES:
        (tmp_path / name.removesuffix(".gz")).write_bytes(
            gzip.decompress((mnist_dir / name).read_bytes())
        )
    (_, y_train), _ = load_mnist(tmp_path, download=False)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]


def test_where_files_are_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHCNN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_location(tmp_path / "arg") == tmp_path / "arg"
    assert data_location() == tmp_path / "env"
    monkeypatch.delenv("SCRATCHCNN_DATA")
    assert data_location(dataset="kmnist") == tmp_path / "cache" / "scratchcnn" / "kmnist"
    assert cache_dir() == tmp_path / "cache" / "scratchcnn"


def test_missing_files_without_download_say_what_and_where(tmp_path):
    with pytest.raises(MissingDataError) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert all(name in message for name in NAMES) and str(tmp_path) in message


def test_a_corrupt_local_copy_is_refused_unless_asked(tmp_path, mnist_dir):
    for name in NAMES:
        (tmp_path / name).write_bytes((mnist_dir / name).read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    import gzip

    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # a different, still valid label
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz: SHA256 is"):
        load_mnist(tmp_path, download=False)
    _, (_, y_test) = load_mnist(tmp_path, download=False, verify=False)  # the user's own files
    assert y_test[0] == raw[8]


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist, fashion-mnist, kmnist"):
        load_mnist(tmp_path, dataset="cifar")


# ---- downloads from a real HTTP server on loopback -------------------------------------------


class Mirror(BaseHTTPRequestHandler):
    """Serves /<mode>/<file>: mode "good", "missing" (404), "corrupt" (one byte changed) or
    "drop" (announces the full length, sends half, closes the connection)."""

    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        _, mode, name = self.path.split("/", 2)
        body = self.files.get(name)
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
def server(mnist_dir):
    Mirror.files = {name: (mnist_dir / name).read_bytes() for name in NAMES}
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
