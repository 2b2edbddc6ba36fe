"""MNIST and Fashion-MNIST as NumPy arrays, in the files' own order.

Three sources, tried in this order:
  * "cache": `<cache_dir>/<name>.npz`, written after the first load; reading it
    needs no TensorFlow, so training hosts without TF can use it.
  * "tfds": tensorflow-datasets builds the dataset, offline from the four gz
    files in `<data_dir>/<name>/` when a data dir is given, else by downloading.
  * "idx": where TF cannot be imported, the gz IDX files are parsed directly.

Every source returns the examples in the order of the upstream IDX files, so a
cache built by one source is valid for all of them.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import os
import ssl
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from jaxnin.errors import JaxninError

log = logging.getLogger(__name__)

DATASETS = ("mnist", "fashion_mnist")


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class ImageDataset:
    """One dataset's train and test splits; images are NHWC uint8, labels int32."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Loads `name` from the cache, else builds it and writes the cache.

    `data_dir` (default: env JAXNIN_DATA_DIR) holds `<name>/` with the four gz
    files; `cache_dir` defaults to env JAXNIN_CACHE_DIR, else ~/.cache/jaxnin.
    A valid cache wins: then `data_dir` is not looked at.
    Raises JaxninError with a one-line message for anything the user can fix.
    """
    if name not in DATASETS:
        raise JaxninError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    cache_path = _resolve_cache_dir(cache_dir) / f"{name}.npz"
    cached = _read_cache(name, cache_path)
    if cached is not None:
        return cached
    dataset = _build(name, _resolve_data_dir(data_dir), cache_path.parent)
    _write_cache(dataset, cache_path)
    return dataset


# ---------------------------------------------------------------------------
# Known facts about the upstream files.

_FILES = {  # split -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_FILE_NAMES = tuple(f for pair in _FILES.values() for f in pair)
_SPLIT_SIZES = {"train": 60000, "test": 10000}
_IMAGE_SHAPE = (28, 28, 1)

# Copied from tensorflow_datasets/url_checksums/{mnist,fashion_mnist}.txt so that
# the files can be verified where tfds is not installed; a test keeps them equal.
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

# The tfds class names, for the path that has no tfds; a test keeps them equal.
_CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

# Where tfds downloads from (its builders' URL); probed before a download only.
_DOWNLOAD_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
_PROBE_TIMEOUT_S = 3.0

# tfds orders examples by a hash of their key; the hash is fixed per major version.
_TFDS_VERSION = "3.*.*"
_READ_BATCH = 10_000

_CACHE_FORMAT = 1  # bump when the .npz layout changes, so old caches get rebuilt
_ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")


# ---------------------------------------------------------------------------
# Settings.


def _resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    chosen = cache_dir or os.environ.get("JAXNIN_CACHE_DIR") or "~/.cache/jaxnin"
    return Path(chosen).expanduser()


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir or os.environ.get("JAXNIN_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


_REPLACE_IT = "replace it with the original upstream file"


def _how_to_supply_files(name: str) -> str:
    return (
        f"put the four files ({', '.join(_FILE_NAMES)}) into DIR/{name}/ "
        "and pass --data-dir DIR (or set JAXNIN_DATA_DIR=DIR)"
    )


# ---------------------------------------------------------------------------
# Cache.


def _read_cache(name: str, path: Path) -> ImageDataset | None:
    """Returns the cached dataset, or None where it is absent or unusable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {key: npz[key] for key in (*_ARRAY_FIELDS, "class_names", "cache_format")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log.warning("ignoring unreadable cache %s (%s); rebuilding it", path, err)
        return None
    problem = _cache_problem(fields)
    if problem:
        log.warning("ignoring cache %s: %s; rebuilding it", path, problem)
        return None
    log.info("loaded %s from cache %s", name, path)
    return ImageDataset(
        name=name,
        **{key: fields[key] for key in _ARRAY_FIELDS},
        class_names=tuple(str(c) for c in fields["class_names"]),
        source="cache",
    )


def _cache_problem(fields: dict[str, np.ndarray]) -> str | None:
    """Says what is wrong with a cache's arrays, or None when they are usable."""
    if fields["cache_format"].shape != () or int(fields["cache_format"]) != _CACHE_FORMAT:
        return f"cache format {fields['cache_format']} is not {_CACHE_FORMAT}"
    num_classes = len(fields["class_names"])
    if fields["class_names"].ndim != 1 or num_classes < 2:
        return f"class_names has shape {fields['class_names'].shape}"
    for split, size in _SPLIT_SIZES.items():
        images, labels = fields[f"{split}_images"], fields[f"{split}_labels"]
        if images.shape != (size, *_IMAGE_SHAPE) or images.dtype != np.uint8:
            return f"{split}_images is {images.dtype}{images.shape}"
        if labels.shape != (size,) or labels.dtype != np.int32:
            return f"{split}_labels is {labels.dtype}{labels.shape}"
        if labels.min() < 0 or labels.max() >= num_classes:
            return f"{split}_labels fall outside 0..{num_classes - 1}"
    return None


def _write_cache(dataset: ImageDataset, path: Path) -> None:
    """A failed write only costs a rebuild next time, so it is logged, not raised."""
    arrays = {key: getattr(dataset, key) for key in _ARRAY_FIELDS}
    try:
        _save_npz_atomically(
            path,
            **arrays,
            class_names=np.array(dataset.class_names),
            cache_format=np.int32(_CACHE_FORMAT),
        )
    except OSError as err:
        log.warning("could not write cache %s (%s); the next load rebuilds it", path, err)
        return
    log.info("wrote cache %s", path)


def _save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    # Readers, perhaps in another process, never see a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            np.savez(tmp, **arrays)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# Building from tfds or the IDX files.


def _build(name: str, data_dir: Path | None, cache_dir: Path) -> ImageDataset:
    folder = data_dir / name if data_dir else None
    if folder:
        _verify_files(name, folder)
    tfds = _import_tfds()
    if tfds is not None:
        try:
            return _build_with_tfds(tfds, name, folder, cache_dir / "tfds")
        except ImportError as err:
            # tfds imports some dependencies late, and 4.9.10 does not declare
            # importlib_resources; the files, where given, still do the job.
            if not folder:
                raise JaxninError(
                    f"{name}: tensorflow-datasets is installed but cannot run ({err}); "
                    f"install what it lacks, or {_how_to_supply_files(name)}"
                ) from err
            log.warning("tensorflow-datasets cannot run (%s); parsing the IDX files", err)
    if folder:
        return _build_from_idx(name, folder)
    raise JaxninError(
        f"{name}: no cache in {cache_dir}, tensorflow-datasets cannot be imported and no "
        f"data dir was given; {_how_to_supply_files(name)}, or install tensorflow-datasets"
    )


def _import_tfds() -> Any | None:
    """Returns tensorflow_datasets with TF kept off the GPUs, or None without TF."""
    # TF's C++ start-up notes (oneDNN, CUDA probing) would go to stderr, which belongs to
    # jaxnin's one-line errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as err:
        log.info("tensorflow cannot be imported (%s)", err)
        return None
    try:
        # The GPUs belong to JAX; TF would otherwise reserve their memory.
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError) as err:  # TF already initialised its devices
        log.debug("could not hide GPUs from TensorFlow: %s", err)
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        log.info("tensorflow_datasets cannot be imported (%s)", err)
        return None
    tfds.disable_progress_bar()  # a dozen redrawn bars per build flood logs and CI output
    return tfds


def _build_with_tfds(tfds: Any, name: str, manual_dir: Path | None, tfds_dir: Path) -> ImageDataset:
    builder = tfds.builder(f"{name}:{_TFDS_VERSION}", data_dir=os.fspath(tfds_dir))
    if manual_dir is None:
        _probe_before_generating(builder, name)
    with tempfile.TemporaryDirectory(prefix="jaxnin-extract-") as extract_dir:
        # The extracted IDX files are only needed while tfds writes its records.
        config = tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir) if manual_dir else None,
            extract_dir=extract_dir,
            try_download_gcs=False,
        )
        try:
            builder.download_and_prepare(download_config=config)
        except (OSError, tfds.download.DownloadError) as err:
            first_line = (str(err).splitlines() or [type(err).__name__])[0]
            raise JaxninError(
                f"{name}: tensorflow-datasets failed to download or prepare it in {tfds_dir} "
                f"({first_line}); {_how_to_supply_files(name)}"
            ) from err
    splits = {split: _read_tfds_split(tfds, builder, split) for split in _FILES}
    log.info("built %s with tensorflow-datasets in %s", name, tfds_dir)
    return _from_splits(name, splits, tuple(builder.info.features["label"].names), "tfds")


def _probe_before_generating(builder: Any, name: str) -> None:
    """Fails fast when offline, but only once tfds really has to download.

    tfds' downloader retries a dead connection for minutes. Checking inside the
    builder's generation step (rather than before download_and_prepare) leaves
    prepared datasets and tfds.testing.mock_data, which skip generation, alone.
    """
    generate = builder._download_and_prepare  # pylint: disable=protected-access

    def generate_if_online(*args: Any, **kwargs: Any) -> Any:
        url = _DOWNLOAD_URLS[name]
        if not _can_reach(url):
            raise JaxninError(
                f"{name}: not prepared yet and {url} cannot be reached (offline?); "
                f"{_how_to_supply_files(name)}"
            )
        return generate(*args, **kwargs)

    builder._download_and_prepare = generate_if_online  # pylint: disable=protected-access


def _can_reach(url: str) -> bool:
    """Whether `url`'s server answers within a few seconds (proxies honoured)."""
    answered: list[bool] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S).close()
            answered.append(True)
        except urllib.error.HTTPError:  # any HTTP status means the network works
            answered.append(True)
        except urllib.error.URLError as err:  # a failed TLS handshake still got an answer
            answered.append(isinstance(err.reason, ssl.SSLError))
        except (OSError, ValueError):
            answered.append(False)

    # A thread bounds the wait: name resolution ignores the socket timeout.
    thread = threading.Thread(target=probe, name="jaxnin-net-probe", daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S)
    return bool(answered and answered[0])


def _read_tfds_split(tfds: Any, builder: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    # One reader at a time keeps the records in their stored order.
    read_config = tfds.ReadConfig(interleave_cycle_length=1)
    # Not batch_size=-1: without split metadata (as under tfds.testing.mock_data)
    # tfds then asks TF for a sys.maxsize batch, and TF aborts the process.
    dataset = builder.as_dataset(split=split, batch_size=_READ_BATCH, read_config=read_config)
    batches = list(tfds.as_numpy(dataset))
    images = np.concatenate([batch["image"] for batch in batches])
    labels = np.concatenate([batch["label"] for batch in batches]).astype(np.int32)
    if not builder.info.disable_shuffling:
        to_file_order = _tfds_to_file_order(split, len(labels))
        images, labels = images[to_file_order], labels[to_file_order]
    return images.astype(np.uint8, copy=False), labels


def _tfds_to_file_order(split: str, count: int) -> np.ndarray:
    """Indices that put tfds' stored examples back into the files' order.

    tfds writes examples sorted by md5(split name + str(key)), and its MNIST keys
    are positions in the IDX files; sorting positions the same way gives, for
    each stored slot, the file position it holds.
    """
    salt = hashlib.md5(split.encode())

    def stored_rank(position: int) -> bytes:
        digest = salt.copy()
        digest.update(str(position).encode())
        return digest.digest()

    file_position_of_slot = np.array(sorted(range(count), key=stored_rank), dtype=np.int64)
    return np.argsort(file_position_of_slot)


def _build_from_idx(name: str, folder: Path) -> ImageDataset:
    splits = {}
    for split, (images_file, labels_file) in _FILES.items():
        images = _read_idx(name, folder / images_file, (_SPLIT_SIZES[split], 28, 28))
        labels = _read_idx(name, folder / labels_file, (_SPLIT_SIZES[split],))
        splits[split] = (images.reshape(-1, *_IMAGE_SHAPE), labels.astype(np.int32))
    log.info("parsed %s from the IDX files in %s", name, folder)
    return _from_splits(name, splits, _CLASS_NAMES[name], "idx")


def _from_splits(name: str, splits: dict, class_names: tuple[str, ...], source: str) -> ImageDataset:
    """An ImageDataset from {"train": (images, labels), "test": (images, labels)}."""
    return ImageDataset(name=name, train_images=splits["train"][0],
                        train_labels=splits["train"][1], test_images=splits["test"][0],
                        test_labels=splits["test"][1], class_names=class_names, source=source)


def _read_idx(name: str, path: Path, expected_dims: tuple[int, ...]) -> np.ndarray:
    """Parses a gzipped IDX file of unsigned bytes with the expected dimensions."""
    raw = gzip.decompress(path.read_bytes())
    # Magic: two zero bytes, type code 0x08 (unsigned byte), number of dims.
    ndim = len(expected_dims)
    header_size = 4 + 4 * ndim
    if len(raw) < header_size or raw[:4] != bytes((0, 0, 0x08, ndim)):
        raise JaxninError(f"{name}: {path} is not a {ndim}-d uint8 IDX file; {_REPLACE_IT}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    if dims != expected_dims or len(raw) != header_size + int(np.prod(dims)):
        raise JaxninError(
            f"{name}: {path} holds {dims} in {len(raw)} bytes, expected {expected_dims}; "
            f"{_REPLACE_IT}"
        )
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(dims)


# ---------------------------------------------------------------------------
# Checking the user's files.


def _verify_files(name: str, folder: Path) -> None:
    if not folder.is_dir():
        raise JaxninError(
            f"{name}: data folder {folder} does not exist; {_how_to_supply_files(name)}"
        )
    missing = [f for f in _FILE_NAMES if not (folder / f).is_file()]
    if missing:
        raise JaxninError(
            f"{name}: {folder} lacks {', '.join(missing)}; {_how_to_supply_files(name)}"
        )
    for file_name in _FILE_NAMES:
        _verify_checksum(name, folder / file_name, _SHA256[name][file_name])


def _verify_checksum(name: str, path: Path, expected: str) -> None:
    content = path.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual == expected:
        return
    if not content:
        raise JaxninError(f"{name}: {path} is empty; {_REPLACE_IT}")
    try:
        gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as err:
        raise JaxninError(
            f"{name}: {path} is truncated or not valid gzip ({err}); {_REPLACE_IT}"
        ) from err
    raise JaxninError(f"{name}: {path} has sha256 {actual}, expected {expected}; {_REPLACE_IT}")
