"""Shared building blocks: the seeds' initialisation and pools that show up as named layers."""
import functools

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from jaxnin.errors import JaxninError

# The seeds apply nn.init.xavier_uniform_ to every Conv2d and Linear weight; seed 003 reports
# that NiN does not train without it. PyTorch's fan for a conv weight is in*kh*kw / out*kh*kw,
# which is exactly flax's variance_scaling "fan_avg" over an HWIO kernel.
Conv = functools.partial(nn.Conv, kernel_init=nn.initializers.xavier_uniform(),
                         bias_init=nn.initializers.zeros)


def pointwise_as_dot(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                     dimension_numbers=None, feature_group_count=1, precision=None):
    """lax.conv_general_dilated, for `nn.Conv(conv_general_dilated=pointwise_as_dot)`, that
    computes a 1x1 stride-1 unpadded NHWC convolution as a matrix product over the channels:
    the same parameters and function, and XLA:CPU runs the product far faster than its
    convolution path (jaxnin.train.kernels). Any other convolution is lax's own."""
    ones = (None, (1, 1), [1, 1])
    pointwise = (tuple(rhs.shape[:2]) == (1, 1) and tuple(window_strides) == (1, 1)
                 and (padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding))
                 and lhs_dilation in ones and rhs_dilation in ones and feature_group_count == 1
                 and dimension_numbers == lax.conv_dimension_numbers(
                     lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC")))
    if not pointwise:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision)
    return lax.dot_general(lhs, rhs[0, 0], (((lhs.ndim - 1,), (0,)), ((), ())),
                           precision=precision)


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
