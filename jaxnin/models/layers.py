"""Shared building blocks: the seeds' initialisation and pools that show up as named layers."""
import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxnin.errors import JaxninError

# The seeds apply nn.init.xavier_uniform_ to every Conv2d and Linear weight; seed 003 reports
# that NiN does not train without it. PyTorch's fan for a conv weight is in*kh*kw / out*kh*kw,
# which is exactly flax's variance_scaling "fan_avg" over an HWIO kernel.
Conv = functools.partial(nn.Conv, kernel_init=nn.initializers.xavier_uniform(),
                         bias_init=nn.initializers.zeros)
Dense = functools.partial(nn.Dense, kernel_init=nn.initializers.xavier_uniform(),
                          bias_init=nn.initializers.zeros)


class MaxPool(nn.Module):
    """Max pooling as a module, so that it appears as a row in the model summary."""
    window: int
    stride: int

    @nn.compact
    def __call__(self, x):
        # Keywords, not positionals: jax2onnx swaps in its own nn.max_pool that only takes these.
        return nn.max_pool(x, window_shape=(self.window, self.window),
                           strides=(self.stride, self.stride))


class AvgPool(nn.Module):
    """Average pooling as a module (LeNet-5's subsampling layers)."""
    window: int
    stride: int

    @nn.compact
    def __call__(self, x):
        return nn.avg_pool(x, window_shape=(self.window, self.window),
                           strides=(self.stride, self.stride))


class GlobalAvgPool(nn.Module):
    """Mean over whatever spatial extent remains (PyTorch's AdaptiveAvgPool2d((1, 1)) + Flatten)."""

    @nn.compact
    def __call__(self, x):
        return jnp.mean(x, axis=(1, 2))


def flatten(x):
    """Flatten all but the batch axis."""
    return x.reshape((x.shape[0], -1))


def require_input_size(x, minimum: int, model: str) -> None:
    """Fail in one line, naming the minimum, before a too-small input pools away to nothing."""
    height, width = x.shape[1:3]
    if min(height, width) < minimum:
        raise JaxninError(f"{model} needs inputs of at least {minimum}x{minimum}, got "
                          f"{height}x{width}: feed at least that (`resize` {minimum})")
