"""Network in Network (Lin et al. 2013) exactly as d2l builds it (seed 001)."""
import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxnin.models.layers import (Conv, GlobalAvgPool, MaxPool, pointwise_as_dot,
                                  require_input_size)
from jaxnin.options import Range, option

# (features, kernel, stride, padding) of the three feature blocks; each is followed by MaxPool 3/2.
FEATURE_BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
HEADS = ("direct", "graded")


def _min_input_size() -> int:
    """Smallest H (= W) that leaves the last block a 1x1 map, walking the net backwards."""
    size = 1
    for features, kernel, stride, padding in reversed(FEATURE_BLOCKS):
        size = (size - 1) * 2 + 3  # MaxPool 3/2 after the block
        size = (size - 1) * stride + kernel - 2 * padding
    return size


MIN_INPUT_SIZE = _min_input_size()  # 67


class NiNBlock(nn.Module):
    """Conv(k, stride, pad) -> ReLU, then `num_1x1` x (Conv 1x1 -> ReLU).

    `widths` gives each conv's output channels when they are not all `features` (a graded head);
    `bias` is every conv's initial bias (0 as the seeds); `last_relu=False` leaves out the final
    ReLU; `pointwise_as_dot` computes the 1x1 convs as matrix products (layers.pointwise_as_dot:
    the same params and function, faster on XLA:CPU).
    """
    features: int
    kernel: int
    stride: int
    padding: int
    num_1x1: int = 2
    widths: Sequence[int] | None = None
    bias: float = 0.0
    last_relu: bool = True
    pointwise_as_dot: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        widths = self.widths or (self.features,) * (1 + self.num_1x1)
        conv = functools.partial(
            Conv, bias_init=nn.initializers.constant(self.bias), dtype=self.dtype,
            conv_general_dilated=pointwise_as_dot if self.pointwise_as_dot else None)
        x = conv(widths[0], (self.kernel, self.kernel), strides=self.stride,
                 padding=self.padding)(x)
        for width in widths[1:]:
            x = conv(width, (1, 1))(nn.relu(x))
        return nn.relu(x) if self.last_relu else x


class NiN(nn.Module):
    """The seed-001 NiN; input channels come from the data (1 for Fashion-MNIST, F for frame stacks).

    Attributes:
      num_classes: width of the last block, whose global average is the logits (no softmax).
      num_1x1: 1x1 convs per block (2 in d2l; seed 003 compares 1).
      dropout: rate of the Dropout before the classifier block.
      head: "direct" cuts 384 channels to num_classes in one 3x3 conv, as the seed does;
        "graded" narrows geometrically over the last block's convs (seed 003's question).
      head_bias: initial bias of the last block's convs. 0 is the seed's; a positive one starts
        every class channel above the ReLU's kink, where it gets a gradient.
      linear_logits: leave out the last block's final ReLU, so that a logit can fall below 0
        and a class's channel cannot die at the kink (not the seed's net, so never a default).
      pointwise_as_dot: compute the 1x1 convs as matrix products (the same params and
        function; what TrainConfig.cpu_convolutions "eigen" sets on a CPU), not an option of
        the net.
      dtype: compute dtype; params stay float32 and the logits are returned in float32.
    """
    num_classes: int = 10
    num_1x1: int = option(2, "1x1 convs per NiN block", within=Range(0, 16))
    dropout: float = option(0.5, "rate of the dropout before the last block",
                            within=Range(0, 1, high_open=True))
    head: str = option("direct", "last block: direct 384->classes as the seed, or graded",
                       choices=HEADS)
    head_bias: float = option(0.0, "initial bias of the last block's convs (0 as the seed; "
                              "> 0 starts every class channel alive)")
    linear_logits: bool = option(False, "leave out the last block's final ReLU, so that no "
                                 "class channel can die (not the seed's net)")
    pointwise_as_dot: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        require_input_size(x, MIN_INPUT_SIZE, "NiN")
        x = x.astype(self.dtype)
        for features, kernel, stride, padding in FEATURE_BLOCKS:
            x = NiNBlock(features, kernel, stride, padding, self.num_1x1,
                         pointwise_as_dot=self.pointwise_as_dot, dtype=self.dtype)(x)
            x = MaxPool(3, 2)(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = NiNBlock(self.num_classes, 3, 1, 1, self.num_1x1, widths=self._head_widths(),
                     bias=self.head_bias, last_relu=not self.linear_logits,
                     pointwise_as_dot=self.pointwise_as_dot, dtype=self.dtype)(x)
        return GlobalAvgPool()(x).astype(jnp.float32)

    def _head_widths(self):
        if self.head not in HEADS:
            raise ValueError(f"NiN head must be one of {HEADS}, got {self.head!r}")
        if self.head == "direct":
            return None
        return graded_widths(FEATURE_BLOCKS[-1][0], self.num_classes, 1 + self.num_1x1)


def graded_widths(start: int, end: int, steps: int) -> tuple[int, ...]:
    """Channel widths falling geometrically from `start` to `end` in `steps` convs (ends at `end`)."""
    ratio = (end / start) ** (1 / steps)
    return tuple(round(start * ratio ** i) for i in range(1, steps)) + (end,)
