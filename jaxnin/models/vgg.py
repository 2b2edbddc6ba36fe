"""VGG (Simonyan & Zisserman 2014) from seed 004's cfgs, with torchvision's classifier."""
import flax.linen as nn
import jax.numpy as jnp

from jaxnin.models.layers import Conv, Dense, MaxPool, flatten, require_input_size
from jaxnin.options import COUNT, Range, option
from jaxnin.vgg_cfgs import CONFIGS  # seed 004's cfgs, shared with the bench's PyTorch VGG


class VGG(nn.Module):
    """VGG-11/13/16/19 for configs A/B/D/E.

    Attributes:
      config: a key of CONFIGS.
      num_classes: outputs of the last Dense.
      dropout: after each hidden ReLU as torchvision does; 0 restores seed 004's head.
      width_divisor: divides every conv's channels (d2l's slim VGG, for CPU-sized runs).
      hidden: width of the two hidden Dense layers.
      dtype: compute dtype; params stay float32 and the logits are returned in float32.
    The first Dense takes whatever the features flatten to, so 224, 96 or 32 inputs all work.
    """
    config: str = option("A", "A=VGG-11, B=13, D=16, E=19", choices=tuple(sorted(CONFIGS)))
    num_classes: int = 10
    dropout: float = option(0.5, "after each hidden Dense (the seed's is 0)",
                            within=Range(0, 1, high_open=True))
    width_divisor: int = option(1, "divide conv channels (d2l's slim VGG, for CPU runs)",
                                within=Range(1, 64))
    hidden: int = option(4096, "width of the two hidden Dense layers", flag=False, within=COUNT)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        require_input_size(x, 2 ** self._layers().count("M"), f"VGG config {self.config}")
        x = x.astype(self.dtype)
        for item in self._layers():
            if item == "M":
                x = MaxPool(2, 2)(x)
            else:
                x = nn.relu(Conv(item // self.width_divisor, (3, 3), padding=1,
                                 dtype=self.dtype)(x))
        x = flatten(x)
        for _ in range(2):
            x = nn.relu(Dense(self.hidden, dtype=self.dtype)(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)

    def _layers(self):
        if self.config not in CONFIGS:
            raise ValueError(f"VGG config must be one of {sorted(CONFIGS)}, got {self.config!r}")
        return CONFIGS[self.config]
