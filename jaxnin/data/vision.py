"""MNIST and Fashion-MNIST as NumPy arrays, in the upstream IDX files' order.

Where the arrays come from:
  * A data dir you name (`data_dir`, else env JAXNIN_DATA_DIR) holds `<name>/` with the four
    gz IDX files. It is checked on every load, also when a cache exists, so that a folder you
    name and that cannot be used (missing, empty, a damaged file) fails in one line instead
    of being ignored.
  * "cache": `<cache_dir>/<name>.npz`, written after the first build. It is used only when its
    arrays are upstream's (below), so a copied-over or edited cache is never trained on, and a
    cache copied to a host without the gz files (or without tensorflow-datasets) still loads.
  * With no data dir: the files downloaded before into `<cache_dir>/downloads/<name>/`, else
    downloaded there now by tensorflow-datasets, after a 3 s probe that the server answers.

The order this project promises: the upstream IDX files' order (the order torchvision, the
PyTorch seeds and the MNIST literature use). tfds' public API cannot give it: `as_dataset` and
`as_data_source` return examples in the order tfds stored them, which is sorted by a hash of
each example's key, and MNIST's features (image, label) hold no position in the files. So
jaxnin parses the IDX files itself and uses tfds only through its public API to obtain and
verify them: `tfds.builder_cls(name).url_infos` (the registered URLs and sha256s) and
`tfds.download.DownloadManager` with `force_checksums_validation`. TensorFlow is never imported.

How files are checked (each table below is a fact about upstream, computed once):
  1. sha256 of the gz file against tfds' registered checksum (`_GZ_SHA256`); else
  2. the file must decompress (else "truncated or not valid gzip"), and
  3. sha256 of the decompressed bytes against upstream's (`_IDX_SHA256`). This accepts files
     gzipped again with another header, such as Debian's `dataset-fashion-mnist`.
A refused file's message names the check that failed.

How the cache is checked: the .npz stores the dataset's name, the sha256s of the decompressed
files it was parsed from, the arrays' shapes and the sha256 of each array in its IDX form (the
file it came from). On load each array's IDX-form sha256 is computed again and must equal both
the stored one (else the cache changed since it was written) and upstream's decompressed
sha256 (else it holds other data); a refused cache is rebuilt, with one warning line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import ssl
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from jaxnin import files
from jaxnin.data.dataset import ImageDataset, resolve_cache_dir, scratch_beside
from jaxnin.errors import JaxninError

log = logging.getLogger(__name__)

DATASETS = ("mnist", "fashion_mnist")

__all__ = ["DATASETS", "ImageDataset", "load_dataset"]  # ImageDataset: re-exported, see dataset.py


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """`name`'s splits, in the IDX files' order: from the cache if it verifies, else built.

    `data_dir` (default: env JAXNIN_DATA_DIR) holds `<name>/` with the four gz files and is
    always checked when given; `cache_dir` defaults to env JAXNIN_CACHE_DIR, else
    ~/.cache/jaxnin. Raises JaxninError with a one-line message for anything the user can fix.
    """
    if name not in DATASETS:
        raise JaxninError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    cache_dir = resolve_cache_dir(cache_dir)
    for folder in (cache_dir, cache_dir / "downloads"):  # what a killed load left half written
        files.remove_stale(folder)
    named = _resolve_data_dir(data_dir)
    folder = named / name if named else None
    if folder:
        _verify_files(name, folder)
    cache_path = cache_dir / f"{name}.npz"
    cached = _read_cache(name, cache_path)
    if cached is not None:
        return cached
    source = "idx" if folder else "download"
    dataset = _parse_files(name, folder or _downloaded_files(name, cache_dir), source)
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
IMAGE_SHAPE = (28, 28, 1)  # (H, W, C) of every image of DATASETS

# Copied from tensorflow_datasets/url_checksums/{mnist,fashion_mnist}.txt so that the files
# can be verified where tfds is not installed; a test keeps them equal to tfds' registry.
_GZ_SHA256 = {
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

# sha256 of each file's decompressed bytes (the IDX file itself), computed once with
# `hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()` from upstream's files,
# whose gz sha256s equal _GZ_SHA256 and whose decompressed MD5s equal the published ones; a
# test recomputes them from those files. They verify
# files gzipped again (other header, same content) and the cache's arrays, without tfds.
_IDX_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# The tfds class names, so that no tfds is needed; a test keeps them equal.
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

_PROBE_TIMEOUT_S = 3.0
_CACHE_FORMAT = 2  # bump when the .npz layout changes, so old caches get rebuilt
_ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")


def _array_files() -> dict[str, str]:
    """Each array field -> the file it is parsed from."""
    return {f"{split}_{kind}": file_name for split, pair in _FILES.items()
            for kind, file_name in zip(("images", "labels"), pair)}


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    return {f"{split}_{kind}": (size, *IMAGE_SHAPE) if kind == "images" else (size,)
            for split, size in _SPLIT_SIZES.items() for kind in ("images", "labels")}


# ---------------------------------------------------------------------------
# Settings and messages.


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir or os.environ.get("JAXNIN_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


_REPLACE_IT = "replace it with the original upstream file"


def _how_to_supply_files(name: str) -> str:
    return (
        f"put the four files ({', '.join(_FILE_NAMES)}) into DIR/{name}/ "
        "and pass `data_dir` DIR (or set JAXNIN_DATA_DIR=DIR)"
    )


# ---------------------------------------------------------------------------
# Checking files.


def _verify_files(name: str, folder: Path) -> None:
    """Raises a one-line JaxninError unless `folder` holds `name`'s four upstream files."""
    problem = _files_problem(name, folder)
    if problem:
        raise JaxninError(f"{name}: {problem}")


def _files_problem(name: str, folder: Path) -> str | None:
    """What keeps `folder` from being `name`'s files, with what to do; None when it is."""
    if not folder.is_dir():
        return f"data folder {folder} does not exist; {_how_to_supply_files(name)}"
    missing = [f for f in _FILE_NAMES if not (folder / f).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)}; {_how_to_supply_files(name)}"
    for file_name in _FILE_NAMES:
        problem = _file_problem(name, folder / file_name)
        if problem:
            return f"{folder / file_name} {problem}; {_REPLACE_IT}"
    return None


def _file_problem(name: str, path: Path) -> str | None:
    """Which check `path` fails (gz sha256, gzip stream, decompressed sha256), or None."""
    try:
        content = path.read_bytes()
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    gz_sha = hashlib.sha256(content).hexdigest()
    if gz_sha == _GZ_SHA256[name][path.name]:
        return None
    if not content:
        return "is empty"
    try:
        raw = gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as err:
        return f"is truncated or not valid gzip ({err})"
    idx_sha = hashlib.sha256(raw).hexdigest()
    if idx_sha == _IDX_SHA256[name][path.name]:
        log.info("%s is upstream's content gzipped again (other gzip header); accepted", path)
        return None
    return (f"differs from upstream in content: its gz sha256 {gz_sha} is not the registered "
            f"{_GZ_SHA256[name][path.name]}, and its decompressed sha256 {idx_sha} is not "
            f"upstream's {_IDX_SHA256[name][path.name]}")


# ---------------------------------------------------------------------------
# Parsing the IDX files.


def _parse_files(name: str, folder: Path, source: str) -> ImageDataset:
    arrays = {}
    for field, file_name in _array_files().items():
        shape = _expected_shapes()[field]
        parsed = _read_idx(name, folder / file_name, shape[:3])
        arrays[field] = (parsed.reshape(shape) if field.endswith("images")
                         else parsed.astype(np.int32))
    log.info("parsed %s from the IDX files in %s", name, folder)
    return ImageDataset(name=name, **arrays, class_names=CLASS_NAMES[name], source=source)


def _read_idx(name: str, path: Path, expected_dims: tuple[int, ...]) -> np.ndarray:
    """Parses a gzipped IDX file of unsigned bytes with the expected dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:  # changed or unreadable since verified
        why = getattr(err, "strerror", None) or err
        raise JaxninError(f"{name}: {path} cannot be read ({why}); {_REPLACE_IT}") from None
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


def _idx_sha256(array: np.ndarray) -> str:
    """sha256 of `array` written as the IDX file it is parsed from (uint8, NHWC's C dropped).

    Labels are int32 here and uint8 in the file; callers check their range first, so the
    cast is exact.
    """
    dims = array.shape[:3] if array.ndim == 4 else array.shape
    digest = hashlib.sha256(bytes((0, 0, 0x08, len(dims))))
    digest.update(b"".join(int(d).to_bytes(4, "big") for d in dims))
    digest.update(np.ascontiguousarray(array, dtype=np.uint8).data)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# The cache.


def _read_cache(name: str, path: Path) -> ImageDataset | None:
    """The cached dataset if it verifies against upstream; None (with a warning) if not."""
    if not path.is_file():
        return None
    keys = (*_ARRAY_FIELDS, "class_names", "cache_format", "dataset", "content_sha256")
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {key: npz[key] for key in keys if key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning("ignoring unreadable cache %s (%s); rebuilding it", path, err)
        return None
    problem = _cache_problem(name, fields)
    if problem:
        log.warning("ignoring cache %s: %s; rebuilding it", path, problem)
        return None
    log.info("loaded %s from cache %s (verified against upstream's sha256)", name, path)
    return ImageDataset(name=name, **{key: fields[key] for key in _ARRAY_FIELDS},
                        class_names=tuple(str(c) for c in fields["class_names"]),
                        source="cache")


def _cache_problem(name: str, fields: dict[str, np.ndarray]) -> str | None:
    """Says why a cache's fields do not stand for upstream `name`, or None when they do."""
    if "cache_format" not in fields or fields["cache_format"].shape != () or int(
            fields["cache_format"]) != _CACHE_FORMAT:
        return f"it is not in cache format {_CACHE_FORMAT}"
    missing = [key for key in (*_ARRAY_FIELDS, "dataset", "content_sha256", "class_names")
               if key not in fields]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if str(fields["dataset"]) != name:
        return f"it holds {fields['dataset']}, not {name}"
    if tuple(str(c) for c in fields["class_names"]) != CLASS_NAMES[name]:
        return f"its class names are not {name}'s"
    for field, shape in _expected_shapes().items():
        array = fields[field]
        dtype = np.uint8 if field.endswith("images") else np.int32
        if array.shape != shape or array.dtype != dtype:
            return f"{field} is {array.dtype}{array.shape}, not {np.dtype(dtype)}{shape}"
    return _content_problem(name, fields)


def _content_problem(name: str, fields: dict[str, np.ndarray]) -> str | None:
    stored = dict(zip(_ARRAY_FIELDS, (str(d) for d in fields["content_sha256"])))
    for field, file_name in _array_files().items():
        array = fields[field]
        if field.endswith("labels") and (array.min() < 0 or array.max() > 255):
            return f"{field} holds values outside 0..255"
        actual = _idx_sha256(array)
        if actual != stored.get(field):
            return f"{field} changed since the cache was written (sha256 {actual})"
        if actual != _IDX_SHA256[name][file_name]:
            return (f"{field} is not upstream {name}'s {file_name} (sha256 {actual}, "
                    f"expected {_IDX_SHA256[name][file_name]})")
    return None


def _write_cache(dataset: ImageDataset, path: Path) -> None:
    """A failed write only costs a rebuild next time, so it is logged, not raised."""
    arrays = {key: getattr(dataset, key) for key in _ARRAY_FIELDS}
    sources = [_IDX_SHA256[dataset.name][_array_files()[key]] for key in _ARRAY_FIELDS]
    try:
        _save_npz_atomically(
            path,
            **arrays,
            class_names=np.array(dataset.class_names),
            cache_format=np.int32(_CACHE_FORMAT),
            dataset=np.array(dataset.name),
            # Files were verified before parsing, so they are upstream's: these sha256s.
            source_sha256=np.array(sources),
            shapes=np.array(json.dumps({k: list(a.shape) for k, a in arrays.items()})),
            content_sha256=np.array([_idx_sha256(a) for a in arrays.values()]),
        )
    except OSError as err:
        log.warning("could not write cache %s (%s); the next load rebuilds it", path, err)
        return
    log.info("wrote cache %s", path)


def _save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    # Readers, perhaps in another process, never see a half-written file, and an interrupted
    # write (Ctrl-C, a SIGTERM turned into an exception) leaves no hidden .tmp behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(path) as tmp, open(tmp, "xb") as out:
        np.savez(out, **arrays)


# ---------------------------------------------------------------------------
# Downloading with tensorflow-datasets.


def _downloaded_files(name: str, cache_dir: Path) -> Path:
    """`<cache_dir>/downloads/<name>/` with the four verified files, downloaded if need be."""
    folder = cache_dir / "downloads" / name
    if folder.is_dir():
        problem = _files_problem(name, folder)
        if problem is None:
            return folder
        log.warning("ignoring the downloaded files (%s); downloading them again", problem)
    tfds = _import_tfds()
    if tfds is None:
        raise JaxninError(
            f"{name}: no usable cache in {cache_dir}, no data dir given, and "
            f"tensorflow-datasets (which downloads it) cannot be imported; "
            f"{_how_to_supply_files(name)}, or pip install tensorflow-datasets"
        )
    _download(tfds, name, folder)
    return folder


def _import_tfds() -> Any | None:
    """tensorflow_datasets, or None where it cannot be imported (it then downloads nothing)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        log.info("tensorflow_datasets cannot be imported (%s)", err)
        return None
    tfds.disable_progress_bar()  # a redrawn bar per file floods logs and CI output
    return tfds


def _download(tfds: Any, name: str, folder: Path) -> None:
    """Has tfds download `name`'s four files, checked against its registry, into `folder`."""
    registered = tfds.builder_cls(name).url_infos  # url -> UrlInfo(size, checksum, filename)
    urls = {info.filename: url for url, info in (registered or {}).items()}
    if sorted(urls) != sorted(_FILE_NAMES):
        raise JaxninError(f"{name}: this tensorflow-datasets registers {sorted(urls)}, not the "
                          f"four IDX files; {_how_to_supply_files(name)}")
    probe = urls[_FILE_NAMES[0]]
    if not _can_reach(probe):  # tfds itself would retry a dead connection for minutes
        raise JaxninError(
            f"{name}: not downloaded yet and {probe} cannot be reached (offline?); "
            f"{_how_to_supply_files(name)}"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written inside a hidden folder beside the target, removed on any exit.
    with scratch_beside(folder, "set JAXNIN_CACHE_DIR to a writable folder") as scratch:
        manager = tfds.download.DownloadManager(
            download_dir=scratch, url_infos=registered, force_checksums_validation=True)
        try:
            paths = manager.download(urls)
        except Exception as err:  # noqa: BLE001  (tfds raises many types; the cause is chained)
            first_line = (str(err).splitlines() or [type(err).__name__])[0]
            raise JaxninError(
                f"{name}: tensorflow-datasets could not download it into {folder} "
                f"({type(err).__name__}: {first_line}); {_how_to_supply_files(name)}"
            ) from err
        staging = Path(scratch) / name
        staging.mkdir()
        for file_name, path in paths.items():
            files.move(path, staging / file_name)
        _verify_files(name, staging)  # tfds checked the gz sha256s; this costs a second
        shutil.rmtree(folder, ignore_errors=True)  # damaged files, refused above
        files.move(staging, folder)
    log.info("downloaded %s into %s", name, folder)


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
