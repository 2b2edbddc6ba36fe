"""Datasets as NumPy arrays (ImageDataset, jaxnin.data.dataset); TensorFlow is never imported."""
import os
from typing import Any, Mapping

from jaxnin.data.dataset import ImageDataset
from jaxnin.data.vision import DATASETS, load_dataset

# Not one of DATASETS: clips the user brings (or the sample clips), read by jaxnin.data.video.
VIDEO = "video"

__all__ = ["DATASETS", "VIDEO", "ImageDataset", "load_dataset", "load_data"]


def load_data(dataset: str, data_dir: str | os.PathLike | None = None,
              options: Mapping[str, Any] | None = None) -> ImageDataset:
    """The dataset a TrainConfig names (`dataset`, `data_dir`, `data_options`)."""
    if dataset == VIDEO:
        from jaxnin.data.video import load_clips  # PyAV is imported only for video runs

        return load_clips(data_dir, **dict(options or {}))
    return load_dataset(dataset, data_dir)
