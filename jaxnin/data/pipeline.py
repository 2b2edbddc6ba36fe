"""Device-resident data: whole splits live on the device; batches are cut from index arrays.

Images stay uint8 on the device (47 MB for all of Fashion-MNIST); each batch is gathered,
scaled to [0, 1] and resized inside the jitted step, so an epoch never goes back to the host.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.tree_util.register_dataclass, data_fields=["images", "labels"],
                   meta_fields=["count"])
@dataclasses.dataclass(frozen=True)
class DeviceSplit:
    """One split on the device: uint8 images (N, H, W, C) and int32 labels (N,).

    `count` is how many of the N are real examples (all of them unless given): a split sharded
    over devices is padded to a multiple of their number, and orders only ever index the first
    `count`, so the padding is never trained on nor counted. It is static, part of the program.
    """
    images: jax.Array
    labels: jax.Array
    count: int | None = None

    def __post_init__(self):
        if self.count is None:
            object.__setattr__(self, "count", int(self.labels.shape[0]))


def to_device(images: np.ndarray, labels: np.ndarray, limit: int | None = None) -> DeviceSplit:
    """Place a split (or its first `limit` examples) on the default device, once."""
    images, labels = images[:limit], labels[:limit]
    return DeviceSplit(jax.device_put(np.asarray(images, np.uint8)),
                       jax.device_put(np.asarray(labels, np.int32)))


def preprocess(images: jax.Array, resize: int | None) -> jax.Array:
    """uint8 (B, H, W, C) -> float32 in [0, 1], bilinearly resized to (B, resize, resize, C).

    A bilinear resize is linear and separable, so it is two small matmuls (R X R^T) rather
    than jax.image.resize's gather, which costs far more at 28 -> 224.
    """
    x = images.astype(jnp.float32) / 255.0
    if resize is None or (resize == x.shape[1] and resize == x.shape[2]):
        return x
    rows = jnp.asarray(resize_matrix(x.shape[1], resize))
    cols = jnp.asarray(resize_matrix(x.shape[2], resize))
    x = jnp.einsum("oh,bhwc->bowc", rows, x)
    return jnp.einsum("pw,bowc->bopc", cols, x)


@functools.lru_cache(maxsize=None)
def resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) weights of jax.image.resize's bilinear (half-pixel, antialiased)."""
    # Resizing the identity along one axis yields the interpolation matrix; computed eagerly
    # even when called while a step is being traced, so it becomes a constant of the program.
    with jax.ensure_compile_time_eval():
        eye = jnp.eye(in_size, dtype=jnp.float32)
        return np.asarray(jax.image.resize(eye, (out_size, in_size), "bilinear"))


def train_order(key: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """(steps, batch_size) indices: shuffle first, then cut; the remainder is dropped so every
    step has the same shape and nothing recompiles."""
    steps = num_examples // batch_size
    return jax.random.permutation(key, num_examples)[: steps * batch_size].reshape(
        steps, batch_size)


def eval_order(num_examples: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """(steps, batch_size) indices and a validity mask: the last batch is padded and masked,
    so every example counts exactly once."""
    steps = -(-num_examples // batch_size)
    positions = jnp.arange(steps * batch_size)
    mask = positions < num_examples
    indices = jnp.minimum(positions, num_examples - 1)
    return indices.reshape(steps, batch_size), mask.reshape(steps, batch_size)
