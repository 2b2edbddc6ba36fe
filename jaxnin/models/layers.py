"""Shared building blocks: the seeds' initialisation and pools that show up as named layers."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnin.errors import JaxninError

# The seeds apply nn.init.xavier_uniform_ to every Conv2d and Linear weight; seed 003 reports
# that NiN does not train without it. PyTorch's fan for a conv weight is in*kh*kw / out*kh*kw,
# which is exactly flax's variance_scaling "fan_avg" over an HWIO kernel.
class Conv(nn.Conv):
    """nn.Conv with the seeds' initialisation (xavier-uniform weights, zero biases) that, when
    `as_dot` is set, computes a 1x1 stride-1 convolution as a matrix product over the channels:
    the same parameters ("kernel" (1, 1, in, out), "bias"; the class keeps nn.Conv's name, so
    the parameter tree is unchanged), the same function. XLA:CPU runs that product far faster
    than its convolution path (jaxnin.train.kernels)."""
    kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros
    as_dot: bool = False

    @nn.compact
    def __call__(self, inputs):
        if not (self.as_dot and self._is_pointwise()):
            return super().__call__(inputs)
        kernel = self.param("kernel", self.kernel_init,
                            (1, 1, inputs.shape[-1], self.features), self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = jax.lax.dot_general(inputs, kernel[0, 0], (((inputs.ndim - 1,), (0,)), ((), ())),
                                precision=self.precision)
        return y if bias is None else y + bias

    def _is_pointwise(self) -> bool:
        ones = (None, 1, (1, 1))
        strides = self.strides if isinstance(self.strides, (tuple, list)) else (self.strides,) * 2
        return (tuple(self.kernel_size) == (1, 1) and tuple(strides or (1, 1)) == (1, 1)
                and self.padding in ("SAME", "VALID", 0, ((0, 0), (0, 0)))
                and self.feature_group_count == 1
                and self.kernel_dilation in ones and self.input_dilation in ones)


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
