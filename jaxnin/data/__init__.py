"""Datasets as NumPy arrays; TensorFlow is imported only when a dataset must be built."""

from jaxnin.data.vision import DATASETS, ImageDataset, load_dataset

__all__ = ["DATASETS", "ImageDataset", "load_dataset"]
