"""Tests of jaxnin.data.vision against the real MNIST / Fashion-MNIST files.

The one tfds build (fashion_mnist, ~20 s) is shared through a module fixture;
everything else uses the fast IDX path, tfds' mock, or fails before any build.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import chex
import numpy as np
import pytest

from jaxnin.data import DATASETS, ImageDataset, load_dataset, vision
from jaxnin.errors import JaxninError

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data"
ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")
FAST_FAILURE_S = 10.0

needs_real_data = pytest.mark.skipif(
    not all((REAL_DATA / name).is_dir() for name in DATASETS),
    reason=f"real MNIST files not found in {REAL_DATA}",
)


# ---------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(autouse=True)
def _no_jaxnin_env(monkeypatch):
    # The developer's own settings must not leak into what is being tested.
    monkeypatch.delenv("JAXNIN_DATA_DIR", raising=False)
    monkeypatch.delenv("JAXNIN_CACHE_DIR", raising=False)


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Makes `import tensorflow` / `import tensorflow_datasets` raise ImportError."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)


@pytest.fixture(scope="module")
def tfds():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def fashion_via_tfds(tfds, tmp_path_factory):
    """Fashion-MNIST built by tfds from the real files, and the cache dir it wrote."""
    if not (REAL_DATA / "fashion_mnist").is_dir():
        pytest.skip(f"real Fashion-MNIST files not found in {REAL_DATA}")
    cache_dir = tmp_path_factory.mktemp("fashion_cache")
    return load_dataset("fashion_mnist", data_dir=REAL_DATA, cache_dir=cache_dir), cache_dir


@pytest.fixture
def unreachable_download_hosts(monkeypatch):
    """Points the network probe at a closed local port, as on an offline machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in DATASETS:
        monkeypatch.setitem(vision._DOWNLOAD_URLS, name, f"http://127.0.0.1:{port}/")
    for var in ("http_proxy", "https_proxy", "all_proxy"):  # a proxy would answer for the port
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def data_dir_with(tmp_path: Path, name: str, damaged: dict[str, bytes] | None = None) -> Path:
    """A data dir whose `name/` links the real files, except `damaged` ones."""
    damaged = damaged or {}
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    for file_name in vision._FILE_NAMES:
        if file_name in damaged:
            (folder / file_name).write_bytes(damaged[file_name])
        else:
            (folder / file_name).symlink_to(REAL_DATA / name / file_name)
    return folder.parent


def assert_one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def assert_valid_dataset(ds: ImageDataset, name: str) -> None:
    assert ds.name == name
    for split, size in (("train", 60000), ("test", 10000)):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        chex.assert_shape(images, (size, 28, 28, 1))
        chex.assert_shape(labels, (size,))
        chex.assert_type(images, np.uint8)
        chex.assert_type(labels, np.int32)
        assert labels.min() == 0 and labels.max() == 9
    assert ds.class_names == vision._CLASS_NAMES[name]


def assert_same_arrays(a: ImageDataset, b: ImageDataset) -> None:
    for field in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.class_names == b.class_names


# ---------------------------------------------------------------------------
# Real data through tfds, the cache and the IDX parser.


def test_fashion_mnist_from_data_dir_via_tfds(fashion_via_tfds):
    ds, cache_dir = fashion_via_tfds
    assert ds.source == "tfds"
    assert_valid_dataset(ds, "fashion_mnist")
    assert len(ds.class_names) == 10 and ds.class_names[0] == "T-shirt/top"
    # Upstream's counts and first labels: the files' order survived tfds' shuffling.
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert ds.train_labels[:6].tolist() == [9, 0, 0, 3, 0, 2]
    assert (cache_dir / "fashion_mnist.npz").is_file()


def test_second_load_hits_cache(fashion_via_tfds):
    built, cache_dir = fashion_via_tfds
    start = time.monotonic()
    cached = load_dataset("fashion_mnist", data_dir=REAL_DATA, cache_dir=cache_dir)
    assert cached.source == "cache"
    assert time.monotonic() - start < FAST_FAILURE_S
    assert_valid_dataset(cached, "fashion_mnist")
    assert_same_arrays(built, cached)


@pytest.mark.parametrize("data_dir", [None, "missing"])
def test_cache_load_needs_no_tensorflow(fashion_via_tfds, no_tensorflow, tmp_path, data_dir):
    built, cache_dir = fashion_via_tfds
    given = tmp_path / data_dir if data_dir else None  # a cache makes the data dir irrelevant
    cached = load_dataset("fashion_mnist", data_dir=given, cache_dir=cache_dir)
    assert cached.source == "cache"
    assert_same_arrays(built, cached)


def test_idx_fallback_matches_tfds(fashion_via_tfds, no_tensorflow, tmp_path):
    built, _ = fashion_via_tfds
    parsed = load_dataset("fashion_mnist", data_dir=REAL_DATA, cache_dir=tmp_path)
    assert parsed.source == "idx"
    assert_valid_dataset(parsed, "fashion_mnist")
    assert_same_arrays(built, parsed)
    assert (tmp_path / "fashion_mnist.npz").is_file()


@needs_real_data
def test_mnist_idx_fallback_matches_upstream(no_tensorflow, tmp_path):
    ds = load_dataset("mnist", data_dir=REAL_DATA, cache_dir=tmp_path)
    assert ds.source == "idx"
    assert_valid_dataset(ds, "mnist")
    assert np.bincount(ds.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]
    assert ds.train_labels[:6].tolist() == [5, 0, 4, 1, 9, 2]
    assert ds.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert load_dataset("mnist", cache_dir=tmp_path).source == "cache"


@needs_real_data
def test_environment_variables_set_the_defaults(no_tensorflow, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXNIN_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "env_cache"))
    assert load_dataset("mnist").source == "idx"
    assert (tmp_path / "env_cache" / "mnist.npz").is_file()


def _write_wrong_shape_cache(path: Path) -> None:
    fields = {
        "train_images": np.zeros((3, 28, 28, 1), np.uint8),  # 3 examples, not 60000
        "train_labels": np.zeros(3, np.int32),
        "test_images": np.zeros((10000, 28, 28, 1), np.uint8),
        "test_labels": np.zeros(10000, np.int32),
        "class_names": np.array(vision._CLASS_NAMES["mnist"]),
        "cache_format": np.int32(vision._CACHE_FORMAT),
    }
    with open(path, "wb") as handle:  # a file object stops np.savez adding ".npz"
        np.savez(handle, **fields)
    assert vision._cache_problem(dict(np.load(path))) == "train_images is uint8(3, 28, 28, 1)"


@needs_real_data
@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: path.write_bytes(b"not a zip file"),
        lambda path: path.write_bytes(b""),
        _write_wrong_shape_cache,
    ],
    ids=["garbage", "empty", "wrong-shape"],
)
def test_bad_cache_is_rebuilt(no_tensorflow, tmp_path, spoil):
    spoil(tmp_path / "mnist.npz")
    assert load_dataset("mnist", data_dir=REAL_DATA, cache_dir=tmp_path).source == "idx"
    assert load_dataset("mnist", data_dir=REAL_DATA, cache_dir=tmp_path).source == "cache"


# ---------------------------------------------------------------------------
# tfds without a data dir: the mocked download, and offline.


def test_mock_data_goes_through_tfds_without_probing(tfds, tmp_path, unreachable_download_hosts):
    import tensorflow_datasets.testing  # noqa: F401  (registers tfds.testing)

    with tfds.testing.mock_data(num_examples=7):
        ds = load_dataset("fashion_mnist", cache_dir=tmp_path)
    assert ds.source == "tfds"
    for split in ("train", "test"):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        chex.assert_shape(images, (7, 28, 28, 1))
        chex.assert_shape(labels, (7,))
        chex.assert_type(images, np.uint8)
        chex.assert_type(labels, np.int32)
    assert ds.class_names == vision._CLASS_NAMES["fashion_mnist"]


def test_offline_without_data_dir_fails_fast(tfds, tmp_path, unreachable_download_hosts):
    start = time.monotonic()
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path)
    assert time.monotonic() - start < FAST_FAILURE_S
    message = assert_one_line(err)
    for hint in ("cannot be reached", "--data-dir", "JAXNIN_DATA_DIR"):
        assert hint in message


@needs_real_data
@pytest.mark.parametrize("data_dir", [REAL_DATA, None], ids=["with-files", "without-files"])
def test_tfds_missing_a_late_dependency(tfds, tmp_path, monkeypatch, data_dir):
    def broken_build(*args):
        raise ModuleNotFoundError("No module named 'importlib_resources'")

    monkeypatch.setattr(vision, "_build_with_tfds", broken_build)
    if data_dir:
        assert load_dataset("mnist", data_dir=data_dir, cache_dir=tmp_path).source == "idx"
        return
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path)
    assert "importlib_resources" in assert_one_line(err)


def test_without_tensorflow_files_or_cache_says_what_to_do(no_tensorflow, tmp_path):
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", cache_dir=tmp_path)
    message = assert_one_line(err)
    assert "tensorflow-datasets cannot be imported" in message and "--data-dir" in message


# ---------------------------------------------------------------------------
# The user's files: missing, damaged.


def test_missing_data_folder_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(JaxninError) as err:
        load_dataset("fashion_mnist", data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    assert time.monotonic() - start < FAST_FAILURE_S
    message = assert_one_line(err)
    assert str(tmp_path / "nowhere" / "fashion_mnist") in message and "does not exist" in message


@needs_real_data
def test_missing_file_is_named(tmp_path):
    data_dir = data_dir_with(tmp_path, "mnist")
    (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(JaxninError) as err:
        load_dataset("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    message = assert_one_line(err)
    assert "lacks t10k-labels-idx1-ubyte.gz" in message and str(data_dir / "mnist") in message


def _recompressed(content: bytes) -> bytes:
    # Same pixels in a valid gzip, but other bytes than upstream's.
    return gzip.compress(gzip.decompress(content), compresslevel=1, mtime=0)


@needs_real_data
@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        (lambda content: b"", "is empty"),
        (lambda content: content[: len(content) // 2], "is truncated or not valid gzip"),
        (_recompressed, "has sha256"),
    ],
    ids=["empty", "truncated", "checksum-mismatch"],
)
def test_damaged_file_is_named(tmp_path, damage, complaint):
    victim = "t10k-images-idx3-ubyte.gz"
    content = (REAL_DATA / "fashion_mnist" / victim).read_bytes()
    data_dir = data_dir_with(tmp_path, "fashion_mnist", {victim: damage(content)})
    with pytest.raises(JaxninError) as err:
        load_dataset("fashion_mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    message = assert_one_line(err)
    assert f"{data_dir / 'fashion_mnist' / victim} {complaint}" in message
    assert not (tmp_path / "cache" / "fashion_mnist.npz").exists()


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
    assert f"{path} " in assert_one_line(err) and complaint in str(err.value)


def test_unknown_name_lists_choices(tmp_path):
    with pytest.raises(JaxninError) as err:
        load_dataset("cifar10", cache_dir=tmp_path)
    assert "mnist, fashion_mnist" in assert_one_line(err)


# ---------------------------------------------------------------------------
# Hard-coded facts agree with tfds; TF stays optional and off the GPUs.


@needs_real_data
@pytest.mark.parametrize("name", DATASETS)
def test_real_files_match_checksum_table(name):
    for file_name, expected in vision._SHA256[name].items():
        assert hashlib.sha256((REAL_DATA / name / file_name).read_bytes()).hexdigest() == expected


@pytest.mark.parametrize("name", DATASETS)
def test_checksum_table_equals_tfds_registry(tfds, name):
    url_infos = tfds.builder_cls(name).url_infos.values()
    registered = {info.filename: info.checksum for info in url_infos}
    assert vision._SHA256[name] == registered


@pytest.mark.parametrize("name", DATASETS)
def test_class_names_equal_tfds(tfds, tmp_path, name):
    builder = tfds.builder(name, data_dir=tmp_path)
    assert vision._CLASS_NAMES[name] == tuple(builder.info.features["label"].names)


def test_tensorflow_sees_no_gpu(tfds, monkeypatch):
    import tensorflow as tf

    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda *args: calls.append(args))
    assert vision._import_tfds() is tfds
    assert calls == [([], "GPU")]


def test_import_does_not_load_tensorflow():
    code = "import sys, jaxnin.data; assert 'tensorflow' not in sys.modules, 'TF was imported'"
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
