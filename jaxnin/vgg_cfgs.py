"""Seed 004's VGG cfgs, for the Flax VGG and the bench's PyTorch VGG alike.

A module of its own, importing nothing: the PyTorch side of the bench reads these without
loading JAX or flax (`jaxnin.models` imports flax).
"""

# 'M' is MaxPool 2/2; a number is Conv3x3 pad 1 -> ReLU with that many channels.
CONFIGS = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}
