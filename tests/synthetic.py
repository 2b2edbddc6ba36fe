"""Random image datasets for tests that need a run's shapes, not real data."""
import numpy as np

from jaxnin.data.dataset import ImageDataset


def random_dataset(train: int, test: int, seed: int = 0) -> ImageDataset:
    """`train` and `test` random 28x28x1 uint8 images with random labels over 10 classes."""
    rng = np.random.default_rng(seed)
    images = lambda n: rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    labels = lambda n: rng.integers(0, 10, n).astype(np.int32)
    return ImageDataset("fashion_mnist", images(train), labels(train), images(test), labels(test),
                        tuple("0123456789"), "synthetic")
