"""What every loader returns, and the folder where loaders keep what they built.

`ImageDataset` is the one type the training engine, `predict` and the ONNX export read; the
loaders (jaxnin.data.vision for MNIST / Fashion-MNIST, jaxnin.data.video for clips) build it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from jaxnin import files
from jaxnin.errors import JaxninError

DEFAULT_CACHE_DIR = "~/.cache/jaxnin"


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class ImageDataset:
    """One dataset's train and test splits; images are NHWC uint8, labels int32.

    `source` says where the arrays came from this time: "cache", "idx" (parsed from the
    files of a data dir), "download", "decoded" (video clips).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str = "arrays"

    @classmethod
    def from_arrays(cls, name: str, train: tuple, test: tuple,
                    class_names: tuple[str, ...] | None = None) -> ImageDataset:
        """Your own data: `train` and `test` are (images, labels), images uint8 (N, H, W, C)
        (or (N, H, W), taken as one channel) and labels integers from 0. `class_names`
        defaults to "0", "1", ... for the labels seen. Train on it with a config whose
        `dataset` is `name` (fit checks that, and the shapes and labels)."""
        (train_images, train_labels), (test_images, test_labels) = train, test
        arrays = [np.asarray(a) for a in (train_images, train_labels, test_images, test_labels)]
        arrays[0], arrays[2] = (a[..., None] if a.ndim == 3 else a for a in (arrays[0], arrays[2]))
        if class_names is None:
            top = max((int(a.max()) for a in (arrays[1], arrays[3]) if a.size), default=0)
            class_names = tuple(str(i) for i in range(top + 1))
        return cls(name, *arrays, class_names=tuple(class_names))


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else $JAXNIN_CACHE_DIR, else ~/.cache/jaxnin; refused if it cannot be a folder.

    A path under a regular file can never be created; saying so here keeps that mistake from
    surfacing later as a download or decoding failure.
    """
    chosen = Path(cache_dir or os.environ.get("JAXNIN_CACHE_DIR") or DEFAULT_CACHE_DIR)
    path = chosen.expanduser()
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return path
        if os.path.lexists(candidate):  # a file, or a link that leads nowhere
            what = "a file" if candidate.is_file() else "not a folder"
            raise JaxninError(
                f"cache folder {path} cannot be created: {candidate} is {what}; set "
                "JAXNIN_CACHE_DIR to a folder (one that exists or can be made)")
    return path


@contextlib.contextmanager
def scratch_beside(target: Path, hint: str) -> Iterator[Path]:
    """A new hidden folder beside `target` (same file system, so it can be renamed into place),
    removed on every exit unless it was renamed away. `hint` says what to do if it cannot be
    made.

    The name is chosen before the folder is made, inside the `try`: with tempfile.mkdtemp an
    interrupt between its mkdir and the `try` left the folder behind (seen in CI).
    """
    scratch = files.temp_beside(target)  # named for its maker: see files.remove_stale
    try:
        try:
            scratch.mkdir(parents=True)
        except OSError as err:
            raise JaxninError(f"cannot write in {target.parent} ({err.strerror}): {hint}") from None
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
