"""Tests of jaxnin.data.vision (and jaxnin.data.dataset) against the real MNIST files.

The real builds go through the session fixtures `fashion` and `mnist` (conftest.py, about
2 s each); downloads are served by a local HTTP server from the same files, through tfds'
real DownloadManager; everything else fails before any build.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import chex
import numpy as np
import pytest

from conftest import require_shared_data
from jaxnin.data import DATASETS, ImageDataset, load_dataset, vision
from jaxnin.data.dataset import resolve_cache_dir, scratch_beside
from jaxnin.errors import JaxninError

REPO_ROOT = Path(__file__).resolve().parents[1]
ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")
FAST_FAILURE_S = 10.0


# ---------------------------------------------------------------------------
# Fixtures and helpers.


@pytest.fixture(autouse=True)
def _no_jaxnin_env(monkeypatch):
    # The developer's own settings must not leak into what is being tested.
    monkeypatch.delenv("JAXNIN_DATA_DIR", raising=False)
    monkeypatch.delenv("JAXNIN_CACHE_DIR", raising=False)


@pytest.fixture
def no_tfds(monkeypatch):
    """Makes `import tensorflow_datasets` (and `import tensorflow`) raise ImportError."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):  # a proxy would answer
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def register_urls_at(monkeypatch, tfds, name: str, base_url: str) -> None:
    """tfds' registry for `name` with its real sha256s, but its files served from base_url."""
    real = tfds.builder_cls(name).url_infos
    infos = {base_url + info.filename: info for info in real.values()}
    builder_cls = tfds.builder_cls
    monkeypatch.setattr(tfds, "builder_cls", lambda n: type("Registered", (), {
        "url_infos": infos}) if n == name else builder_cls(n))


@pytest.fixture
def closed_port_url(no_proxy) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def serve(no_proxy):
    """serve(folder) -> base URL of a local HTTP server of folder's files, for this test."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def data_dir_with(tmp_path: Path, shared: Path, name: str,
                  replaced: dict[str, bytes] | None = None) -> Path:
    """A data dir whose `name/` links the real files, except `replaced` ones."""
    replaced = replaced or {}
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    for file_name in vision._FILE_NAMES:
        if file_name in replaced:
            (folder / file_name).write_bytes(replaced[file_name])
        else:
            (folder / file_name).symlink_to(shared / name / file_name)
    return folder.parent


def copy_cache(data_cache: Path, name: str, into: Path, as_name: str | None = None) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / f"{as_name or name}.npz"
    shutil.copyfile(data_cache / f"{name}.npz", target)
    return target


def edit_cache(path: Path, **changes) -> None:
    """Rewrites the .npz at `path` with some fields changed and the others as they were."""
    with np.load(path) as npz:
        fields = {key: npz[key] for key in npz.files}
    fields.update(changes)
    with open(path, "wb") as handle:  # a file object stops np.savez adding ".npz"
        np.savez(handle, **fields)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_valid_dataset(ds: ImageDataset, name: str) -> None:
    assert ds.name == name
    for split, size in (("train", 60000), ("test", 10000)):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        chex.assert_shape(images, (size, 28, 28, 1))
        chex.assert_shape(labels, (size,))
        chex.assert_type(images, np.uint8)
        chex.assert_type(labels, np.int32)
    assert ds.class_names == vision.CLASS_NAMES[name]


def assert_same_arrays(a: ImageDataset, b: ImageDataset) -> None:
    for field in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.class_names == b.class_names


def with_gzip_header(content: bytes, name: bytes | None, mtime: int) -> bytes:
    """`content`'s deflate stream and trailer under another gzip header, as Debian ships them.

    Debian's dataset-fashion-mnist dropped the stored file name and set mtime to its build
    time; `name` adds one instead. Nothing is recompressed, so this is instant.
    """
    assert content[:3] == b"\x1f\x8b\x08" and content[3] & ~0x08 == 0  # at most FNAME set
    start = content.index(b"\0", 10) + 1 if content[3] & 0x08 else 10
    flags = 0x08 if name else 0
    header = content[:3] + bytes([flags]) + mtime.to_bytes(4, "little") + content[8:10]
    return header + (name + b"\0" if name else b"") + content[start:]


# ---------------------------------------------------------------------------
# The real files: the order promised, and the tables of upstream facts.


def test_fashion_mnist_in_the_files_order(fashion):
    assert_valid_dataset(fashion, "fashion_mnist")
    assert fashion.class_names[0] == "T-shirt/top"
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10
    assert fashion.train_labels[:6].tolist() == [9, 0, 0, 3, 0, 2]  # upstream's first labels


def test_mnist_in_the_files_order(mnist):
    assert_valid_dataset(mnist, "mnist")
    assert np.bincount(mnist.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]
    assert mnist.train_labels[:6].tolist() == [5, 0, 4, 1, 9, 2]
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.parametrize("name", DATASETS)
def test_real_files_match_both_sha256_tables(shared_data, name):
    for file_name in vision._FILE_NAMES:
        content = (shared_data / name / file_name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == vision._GZ_SHA256[name][file_name]
        decompressed = hashlib.sha256(gzip.decompress(content)).hexdigest()
        assert decompressed == vision._IDX_SHA256[name][file_name]


@pytest.mark.parametrize("name", DATASETS)
def test_gz_table_equals_tfds_registry(tfds, name):
    registered = {info.filename: info.checksum
                  for info in tfds.builder_cls(name).url_infos.values()}
    assert vision._GZ_SHA256[name] == registered


@pytest.mark.parametrize("name", DATASETS)
def test_class_names_equal_tfds(tfds, tmp_path, name):
    builder = tfds.builder(name, data_dir=tmp_path)
    assert vision.CLASS_NAMES[name] == tuple(builder.info.features["label"].names)


# ---------------------------------------------------------------------------
# The cache: what it stores, and that it is used only for upstream's data.


def test_cache_stores_what_it_stands_for(fashion, data_cache):
    with np.load(data_cache / "fashion_mnist.npz") as npz:
        assert str(npz["dataset"]) == "fashion_mnist"
        files = [vision._array_files()[f] for f in ARRAY_FIELDS]
        assert npz["source_sha256"].tolist() == [vision._IDX_SHA256["fashion_mnist"][f]
                                                for f in files]
        assert npz["content_sha256"].tolist() == npz["source_sha256"].tolist()
        assert '"train_images": [60000, 28, 28, 1]' in str(npz["shapes"])


@pytest.mark.parametrize("data_dir", [True, False], ids=["with-data-dir", "without"])
def test_cache_hit_needs_no_tfds(fashion, shared_data, data_cache, no_tfds, tmp_path, data_dir):
    # As on a GPU host the .npz was copied to: no gz files, no tensorflow-datasets.
    cache = copy_cache(data_cache, "fashion_mnist", tmp_path).parent
    start = time.monotonic()
    cached = load_dataset("fashion_mnist", shared_data if data_dir else None, cache_dir=cache)
    assert cached.source == "cache" and time.monotonic() - start < FAST_FAILURE_S
    assert_same_arrays(fashion, cached)


def test_environment_variables_set_the_defaults(mnist, shared_data, no_tfds, tmp_path,
                                                monkeypatch):
    monkeypatch.setenv("JAXNIN_DATA_DIR", str(shared_data))
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "env_cache"))
    assert load_dataset("mnist").source == "idx"
    assert (tmp_path / "env_cache" / "mnist.npz").is_file()
    assert load_dataset("mnist").source == "cache"


def _mnist_over_fashion(data_cache, fashion_npz):
    shutil.copyfile(data_cache / "mnist.npz", fashion_npz)


def _permuted_labels(data_cache, fashion_npz):
    with np.load(fashion_npz) as npz:
        labels = npz["train_labels"]
    edit_cache(fashion_npz, train_labels=np.random.default_rng(0).permutation(labels))


def _permuted_labels_consistent(data_cache, fashion_npz):
    # Even with a content digest that matches its arrays, it is not upstream's content.
    _permuted_labels(data_cache, fashion_npz)
    with np.load(fashion_npz) as npz:
        digests = [vision._idx_sha256(npz[f]) for f in ARRAY_FIELDS]
    edit_cache(fashion_npz, content_sha256=np.array(digests))


def _mnist_renamed(data_cache, fashion_npz):
    _mnist_over_fashion(data_cache, fashion_npz)
    edit_cache(fashion_npz, dataset=np.array("fashion_mnist"),
               class_names=np.array(vision.CLASS_NAMES["fashion_mnist"]))


def _wrong_shape(data_cache, fashion_npz):
    edit_cache(fashion_npz, train_images=np.zeros((3, 28, 28, 1), np.uint8),
               train_labels=np.zeros(3, np.int32))


@pytest.mark.parametrize(("spoil", "reason"), [
    (_mnist_over_fashion, "it holds mnist, not fashion_mnist"),
    (_permuted_labels, "train_labels changed since the cache was written"),
    (_permuted_labels_consistent, "train_labels is not upstream fashion_mnist's"),
    (_mnist_renamed, "train_images is not upstream fashion_mnist's"),
    (_wrong_shape, "train_images is uint8(3, 28, 28, 1), not uint8(60000, 28, 28, 1)"),
    (lambda data_cache, path: path.write_bytes(b"not a zip file"), "unreadable cache"),
    (lambda data_cache, path: edit_cache(path, cache_format=np.int32(1)), "cache format 2"),
], ids=["mnist-copied-over", "permuted-labels", "permuted-consistent", "mnist-renamed",
        "wrong-shape", "garbage", "old-format"])
def test_wrong_cache_is_never_trained_on(fashion, mnist, shared_data, data_cache, tmp_path,
                                         no_tfds, caplog, spoil, reason):
    cache = tmp_path / "cache"
    fashion_npz = copy_cache(data_cache, "fashion_mnist", cache)
    spoil(data_cache, fashion_npz)
    # Without files to rebuild from, it is refused in one line instead of trained on ...
    with caplog.at_level(logging.WARNING):
        with pytest.raises(JaxninError) as err:
            load_dataset("fashion_mnist", cache_dir=cache)
    assert "no usable cache" in one_line(err) and "`data_dir`" in str(err.value)
    warned = [m for m in warnings_of(caplog) if str(fashion_npz) in m]
    assert len(warned) == 1 and reason in warned[0] and "\n" not in warned[0]
    # ... and with them, it is rebuilt.
    rebuilt = load_dataset("fashion_mnist", shared_data, cache_dir=cache)
    assert rebuilt.source == "idx"
    assert_same_arrays(fashion, rebuilt)
    assert load_dataset("fashion_mnist", cache_dir=cache).source == "cache"


# ---------------------------------------------------------------------------
# A data dir you name is what trains: checked even when a cache exists.


@pytest.mark.parametrize("how", ["argument", "environment"])
@pytest.mark.parametrize(("make", "complaint"), [
    (lambda tmp, shared: tmp / "nowhere", "does not exist"),
    (lambda tmp, shared: (tmp / "empty" / "fashion_mnist").mkdir(parents=True) or tmp / "empty",
     "lacks train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"),
    (lambda tmp, shared: data_dir_with(tmp, shared, "fashion_mnist", {
        "train-labels-idx1-ubyte.gz":
            (shared / "fashion_mnist" / "train-labels-idx1-ubyte.gz").read_bytes()[:5000]}),
     "train-labels-idx1-ubyte.gz is truncated or not valid gzip"),
], ids=["missing", "empty", "truncated"])
def test_named_data_dir_is_checked_although_a_cache_exists(
        fashion, shared_data, data_cache, tmp_path, monkeypatch, make, complaint, how):
    cache = copy_cache(data_cache, "fashion_mnist", tmp_path / "cache").parent
    data_dir = make(tmp_path, shared_data)
    if how == "environment":
        monkeypatch.setenv("JAXNIN_DATA_DIR", str(data_dir))
    start = time.monotonic()
    with pytest.raises(JaxninError) as err:
        load_dataset("fashion_mnist", data_dir if how == "argument" else None, cache_dir=cache)
    assert time.monotonic() - start < FAST_FAILURE_S
    assert complaint in one_line(err) and str(data_dir / "fashion_mnist") in str(err.value)


# ---------------------------------------------------------------------------
# The user's files: accepted by content, refused with the check that failed.


def test_files_gzipped_again_are_accepted(fashion, shared_data, tmp_path, caplog):
    # Debian's dataset-fashion-mnist: the same decompressed bytes, another gzip header. One
    # build covers both header changes: the images get another mtime, the labels a file name.
    originals = {f: (shared_data / "fashion_mnist" / f).read_bytes() for f in vision._FILE_NAMES}
    debian = {f: with_gzip_header(content, b"renamed" if "labels" in f else None, 1590000000)
              for f, content in originals.items()}
    assert all(debian[f] != originals[f] for f in vision._FILE_NAMES)
    data_dir = data_dir_with(tmp_path, shared_data, "fashion_mnist", debian)
    with caplog.at_level(logging.INFO):
        loaded = load_dataset("fashion_mnist", data_dir, cache_dir=tmp_path / "cache")
    assert loaded.source == "idx"
    assert_same_arrays(fashion, loaded)
    assert sum("gzipped again" in r.getMessage() for r in caplog.records) == 4


def _one_label_changed(content: bytes) -> bytes:
    raw = bytearray(gzip.decompress(content))
    raw[-1] = (raw[-1] + 1) % 10  # a valid gzip of a valid IDX file, with one wrong label
    return gzip.compress(bytes(raw))


@pytest.mark.parametrize(("damage", "complaint"), [
    (lambda content: b"", "is empty"),
    (lambda content: content[: len(content) // 2], "is truncated or not valid gzip"),
    (lambda content: b"\x1f\x8b" + os.urandom(64), "is truncated or not valid gzip"),
    (_one_label_changed, "differs from upstream in content: its gz sha256 "),
], ids=["empty", "truncated", "not-gzip", "content-changed"])
def test_refused_file_names_the_check_that_failed(shared_data, tmp_path, damage, complaint):
    victim = "t10k-labels-idx1-ubyte.gz"
    content = (shared_data / "fashion_mnist" / victim).read_bytes()
    data_dir = data_dir_with(tmp_path, shared_data, "fashion_mnist", {victim: damage(content)})
    with pytest.raises(JaxninError) as err:
        load_dataset("fashion_mnist", data_dir, cache_dir=tmp_path / "cache")
    message = one_line(err)
    assert f"{data_dir / 'fashion_mnist' / victim} {complaint}" in message
    if damage is _one_label_changed:  # both sha256 checks, each with upstream's value
        assert vision._GZ_SHA256["fashion_mnist"][victim] in message
        assert vision._IDX_SHA256["fashion_mnist"][victim] in message
    assert not (tmp_path / "cache" / "fashion_mnist.npz").exists()


def test_missing_file_is_named(shared_data, tmp_path):
    data_dir = data_dir_with(tmp_path, shared_data, "mnist")
    (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", data_dir, cache_dir=tmp_path / "cache")
    message = one_line(err)
    assert "lacks t10k-labels-idx1-ubyte.gz" in message and str(data_dir / "mnist") in message


IDX_DIMS_2x28x28 = b"".join(d.to_bytes(4, "big") for d in (2, 28, 28))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + bytes(10), "not a 3-d uint8 IDX file"),
        (b"\x00\x00\x0d\x03" + bytes(12), "not a 3-d uint8 IDX file"),  # 0x0d: float32
        (b"\x00\x00\x08\x03" + IDX_DIMS_2x28x28 + bytes(99), "holds (2, 28, 28)"),
    ],
    ids=["labels-as-images", "float-data", "short-data"],
)
def test_idx_parser_checks_magic_and_dims(tmp_path, content, complaint):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(JaxninError) as err:
        vision._read_idx("mnist", path, (2, 28, 28))
    assert f"{path} " in one_line(err) and complaint in str(err.value)


def test_idx_sha256_is_the_files_sha256(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    idx = b"\x00\x00\x08\x03" + IDX_DIMS_2x28x28 + images.tobytes()
    assert vision._idx_sha256(images[..., None]) == hashlib.sha256(idx).hexdigest()
    labels = np.array([3, 1, 4], np.int32)
    idx = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([3, 1, 4])
    assert vision._idx_sha256(labels) == hashlib.sha256(idx).hexdigest()


def test_unknown_name_lists_choices(tmp_path):
    with pytest.raises(JaxninError) as err:
        load_dataset("cifar10", cache_dir=tmp_path)
    assert "mnist, fashion_mnist" in one_line(err)


# ---------------------------------------------------------------------------
# The cache folder.


@pytest.mark.parametrize("below", ["", "sub/dir"], ids=["is-a-file", "under-a-file"])
def test_cache_dir_at_or_under_a_file_says_so(shared_data, tmp_path, monkeypatch, below):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "a_file" / below))
    start = time.monotonic()
    with pytest.raises(JaxninError) as err:
        load_dataset("fashion_mnist", shared_data)
    assert time.monotonic() - start < FAST_FAILURE_S
    message = one_line(err)
    assert f"{tmp_path / 'a_file'} is a file" in message and "JAXNIN_CACHE_DIR" in message
    assert "download" not in message


def test_cache_dir_under_a_dangling_link_says_so(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(JaxninError, match="is not a folder"):
        resolve_cache_dir(tmp_path / "link" / "cache")
    assert resolve_cache_dir(tmp_path / "new" / "cache") == tmp_path / "new" / "cache"


# ---------------------------------------------------------------------------
# Without a data dir: tfds downloads the files (from a local server here), or says why not.


def test_download_through_tfds_then_offline_reuse(fashion, shared_data, tfds, tmp_path,
                                                   monkeypatch, serve, closed_port_url):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # downloading needs no TensorFlow
    register_urls_at(monkeypatch, tfds, "fashion_mnist", serve(shared_data / "fashion_mnist"))
    cache = tmp_path / "cache"
    downloaded = load_dataset("fashion_mnist", cache_dir=cache)
    assert downloaded.source == "download"
    assert_same_arrays(fashion, downloaded)
    files = sorted(p.name for p in (cache / "downloads" / "fashion_mnist").iterdir())
    assert files == sorted(vision._FILE_NAMES)
    assert not [p for p in (cache / "downloads").iterdir() if p.name.startswith(".")]
    # Offline now, and the cache gone: the downloaded files are used without a probe.
    (cache / "fashion_mnist.npz").unlink()
    register_urls_at(monkeypatch, tfds, "fashion_mnist", closed_port_url)
    assert load_dataset("fashion_mnist", cache_dir=cache).source == "download"
    # They are a data dir like any other.
    assert load_dataset("fashion_mnist", cache / "downloads", cache_dir=cache).source == "cache"


def test_offline_without_files_fails_within_seconds(tfds, tmp_path, monkeypatch,
                                                    closed_port_url):
    register_urls_at(monkeypatch, tfds, "mnist", closed_port_url)
    start = time.monotonic()
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path)
    assert time.monotonic() - start < FAST_FAILURE_S
    message = one_line(err)
    for hint in ("cannot be reached", "DIR/mnist/", "`data_dir`", "JAXNIN_DATA_DIR"):
        assert hint in message
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_is_one_line(tfds, tmp_path, monkeypatch, serve):
    register_urls_at(monkeypatch, tfds, "mnist", serve(tmp_path / "empty_server"))
    (tmp_path / "empty_server").mkdir()  # every file answers 404
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path / "cache")
    assert "could not download it into" in one_line(err) and "`data_dir`" in str(err.value)
    assert not list((tmp_path / "cache" / "downloads").iterdir())


def test_without_tfds_files_or_cache_says_what_to_do(no_tfds, tmp_path):
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path)
    message = one_line(err)
    assert "tensorflow-datasets (which downloads it) cannot be imported" in message
    assert "`data_dir`" in message


# ---------------------------------------------------------------------------
# Ctrl-C mid-build leaves no temporary files.


def leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*")
            if p.name.startswith(".") or p.name.startswith("jaxnin-")]


@pytest.fixture
def own_tempdir(tmp_path, monkeypatch) -> Path:
    """The system temp folder, made this test's own, so that its leftovers can be seen."""
    folder = tmp_path / "system_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_interrupt_while_writing_the_cache_leaves_nothing(shared_data, tmp_path, monkeypatch,
                                                          own_tempdir):
    real_savez = np.savez

    def interrupted_savez(handle, **arrays):
        real_savez(handle, **{k: arrays[k] for k in list(arrays)[:1]})  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", shared_data, cache_dir=cache)
    assert leftovers(cache, own_tempdir) == [] and not (cache / "mnist.npz").exists()


def test_interrupt_while_downloading_leaves_nothing(tfds, tmp_path, monkeypatch, serve,
                                                    shared_data, own_tempdir):
    register_urls_at(monkeypatch, tfds, "mnist", serve(shared_data / "mnist"))
    real_download = tfds.download.DownloadManager.download

    def interrupted_download(manager, urls):
        real_download(manager, {k: urls[k] for k in list(urls)[:2]})  # two files arrived
        raise KeyboardInterrupt

    monkeypatch.setattr(tfds.download.DownloadManager, "download", interrupted_download)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", cache_dir=cache)
    assert leftovers(cache, own_tempdir) == []
    assert not (cache / "downloads" / "mnist").exists() and not (cache / "mnist.npz").exists()


# ---------------------------------------------------------------------------
# CI runs the real-data tests; TensorFlow stays out of the process.


def shared_data_outcome(path: Path, environ: dict) -> str:
    """"ok", "Failed" or "Skipped": caught here, so that a skip cannot end this test itself."""
    try:
        require_shared_data(path, environ)
    except (pytest.fail.Exception, pytest.skip.Exception) as err:
        return type(err).__name__
    return "ok"


def test_missing_shared_data_fails_in_ci_and_skips_elsewhere(tmp_path, shared_data):
    assert shared_data_outcome(shared_data, {"CI": "true"}) == "ok"
    missing = tmp_path / "no_data"
    assert shared_data_outcome(missing, {"CI": "true"}) == "Failed"
    assert shared_data_outcome(missing, {}) == "Skipped"
    assert shared_data_outcome(missing, {"CI": "false"}) == "Skipped"


def test_import_does_not_load_tensorflow():
    code = ("import sys, jaxnin.data, jaxnin.data.vision; "
            "assert 'tensorflow' not in sys.modules, 'TF was imported'")
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_an_interrupt_right_after_the_scratch_folder_is_made_leaves_nothing(tmp_path,
                                                                            monkeypatch):
    """The window tempfile.mkdtemp left open: its mkdir done, its caller's `try` not yet entered."""
    (tmp_path / "cache").mkdir()
    made = Path.mkdir

    def mkdir_then_interrupted(self, *args, **kwargs):
        made(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "mkdir", mkdir_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with scratch_beside(tmp_path / "cache" / "entry", "unused"):
            pass
    monkeypatch.undo()
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with scratch_beside(tmp_path / "entry", "unused") as scratch:
            (scratch / "half-written").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"]


def test_a_scratch_folder_that_cannot_be_made_is_one_line_with_the_hint(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(JaxninError, match=r"cannot write in .*a_file .*: set THIS"):
        with scratch_beside(tmp_path / "a_file" / "entry", "set THIS"):
            pass
