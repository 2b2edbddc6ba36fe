"""LeNet-5 exactly as seed 002 writes it."""
import flax.linen as nn
import jax.numpy as jnp

from jaxnin.models.layers import AvgPool, Conv, Dense, flatten, require_input_size
from jaxnin.options import option

ACTIVATIONS = {"sigmoid": nn.sigmoid, "relu": nn.relu}


class LeNet5(nn.Module):
    """conv1 6@5x5 pad 2 -> act -> AvgPool 2/2 -> conv2 16@5x5 -> act -> AvgPool 2/2
    -> conv3 120@5x5 -> flatten -> fc1 84 -> output.

    Attributes:
      activation: "sigmoid" as the seed, or "relu".
      dense_activations: the seed has no activation after conv3 or fc1 (so they compose into
        one linear map); True adds the activation there, as LeCun's original does.
      dtype: compute dtype; params stay float32 and the logits are returned in float32.
    """
    num_classes: int = 10
    activation: str = option("sigmoid", "after conv1 and conv2",
                             choices=tuple(sorted(ACTIVATIONS)))
    dense_activations: bool = option(False, "also after conv3 and fc1, as LeCun's original")
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        act = ACTIVATIONS[self.activation]
        late_act = act if self.dense_activations else (lambda y: y)
        require_input_size(x, 28, "LeNet-5")  # conv3's 5x5 window needs the 28 -> 5x5 path
        x = x.astype(self.dtype)
        x = AvgPool(2, 2)(act(Conv(6, (5, 5), padding=2, dtype=self.dtype, name="conv1")(x)))
        x = AvgPool(2, 2)(act(Conv(16, (5, 5), padding=0, dtype=self.dtype, name="conv2")(x)))
        x = late_act(Conv(120, (5, 5), padding=0, dtype=self.dtype, name="conv3")(x))
        x = late_act(Dense(84, dtype=self.dtype, name="fc1")(flatten(x)))
        return Dense(self.num_classes, dtype=self.dtype, name="output")(x).astype(jnp.float32)
