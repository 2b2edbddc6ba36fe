"""Datasets as NumPy arrays (ImageDataset, jaxnin.data.dataset); TensorFlow is never imported.

`load_data` loads what a TrainConfig names; `check_dataset` holds a dataset against what that
name promises (the one registry of image shapes and classes), so that a run never trains or
scores one dataset as another.
"""
import dataclasses
import os
from typing import Any, Mapping

import numpy as np

from jaxnin.data.dataset import ImageDataset
from jaxnin.data.vision import CLASS_NAMES, DATASETS, IMAGE_SHAPE, load_dataset
from jaxnin.errors import JaxninError

# Not one of DATASETS: clips the user brings (or the sample clips), read by jaxnin.data.video.
VIDEO = "video"

__all__ = ["DATASETS", "VIDEO", "DatasetFacts", "ImageDataset", "check_dataset",
           "dataset_facts", "load_data", "load_dataset"]


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What a named dataset's arrays must be: one image's (H, W, C) and the number of classes
    (None where it depends on the files, as a clips folder's classes do)."""
    image_shape: tuple[int, int, int]
    classes: int | None


def dataset_facts(dataset: str, options: Mapping[str, Any] | None = None) -> DatasetFacts | None:
    """The registry: the facts of `dataset` loaded with `options`; None for a dataset of the
    user's own, whose arrays are their own facts."""
    if dataset in DATASETS:
        return DatasetFacts(IMAGE_SHAPE, len(CLASS_NAMES[dataset]))
    if dataset == VIDEO:
        from jaxnin.data.video import ClipOptions

        clip = ClipOptions(**dict(options or {}))
        return DatasetFacts((clip.size, clip.size, clip.frames), None)
    return None


def load_data(dataset: str, data_dir: str | os.PathLike | None = None,
              options: Mapping[str, Any] | None = None) -> ImageDataset:
    """The dataset a TrainConfig names (`dataset`, `data_dir`, `data_options`)."""
    if dataset == VIDEO:
        from jaxnin.data.video import load_clips  # PyAV is imported only for video runs

        return load_clips(data_dir, **dict(options or {}))
    if dataset not in DATASETS:
        raise JaxninError(f"`dataset` {dataset!r} is not one jaxnin can load (it loads "
                          f"{', '.join((*DATASETS, VIDEO))}): pass your own arrays as an "
                          "ImageDataset with that name instead")
    return load_dataset(dataset, data_dir)


def check_dataset(data: ImageDataset, dataset: str,
                  options: Mapping[str, Any] | None = None) -> None:
    """Refuse, in one line, `data` that is not what config `dataset` (with `options`) names:
    another dataset's name, images of another shape or type, labels outside the classes."""
    if data.name != dataset:
        raise JaxninError(f"the data is {data.name!r} but the config names `dataset` "
                          f"{dataset!r}: pass the data the config names, or set `dataset` to "
                          f"{data.name!r}")
    classes = len(data.class_names)
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        _check_split(data.name, split, images, labels, classes)
    facts = dataset_facts(dataset, options)
    if facts is None:
        return
    if tuple(data.train_images.shape[1:]) != facts.image_shape:
        raise JaxninError(f"{data.name!r} images are {tuple(data.train_images.shape[1:])} "
                          f"(H, W, C) but {dataset!r} with these options has "
                          f"{facts.image_shape}: the data is not what the config names")
    if facts.classes is not None and classes != facts.classes:
        raise JaxninError(f"{data.name!r} has {classes} class names but {dataset!r} has "
                          f"{facts.classes} classes: the data is not what the config names")


def _check_split(name, split, images, labels, classes) -> None:
    where = f"{name!r} {split} split"
    if images.ndim != 4 or images.dtype != np.uint8:
        raise JaxninError(f"{where}: images must be uint8 (N, H, W, C), got {images.dtype} "
                          f"{tuple(images.shape)} (scale floats in [0, 1] by 255 and round)")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype,
                                                                          np.integer):
        raise JaxninError(f"{where}: labels must be integers, one per image, got {labels.dtype} "
                          f"{tuple(labels.shape)} for {len(images)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise JaxninError(f"{where}: labels run from {labels.min()} to {labels.max()}, but "
                          f"there are {classes} class names (labels 0..{classes - 1})")
