"""The model zoo: Flax linen modules and a registry so recipes and CLIs can name a model."""
import functools

import flax.linen as nn

from jaxnin.errors import JaxninError
from jaxnin.models.lenet import LeNet5
from jaxnin.models.nin import NiN, NiNBlock
from jaxnin.models.vgg import CONFIGS as VGG_CONFIGS
from jaxnin.models.vgg import VGG

MODELS = {
    "nin": NiN,
    "vgg11": functools.partial(VGG, config="A"),
    "vgg13": functools.partial(VGG, config="B"),
    "vgg16": functools.partial(VGG, config="D"),
    "vgg19": functools.partial(VGG, config="E"),
    "lenet": LeNet5,
}

# One example's (H, W, C) as the seeds feed each model: Fashion-MNIST resized to 224, raw MNIST.
DEFAULT_INPUT_SHAPES = {name: (224, 224, 1) for name in MODELS} | {"lenet": (28, 28, 1)}


def create_model(name: str, num_classes: int = 10, **options) -> nn.Module:
    """The registered model `name` with `num_classes` outputs; `options` override its fields."""
    if name not in MODELS:
        raise JaxninError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](num_classes=num_classes, **options)
    except TypeError as err:
        raise JaxninError(f"model {name!r} does not take these options {sorted(options)}: {err}")


__all__ = ["DEFAULT_INPUT_SHAPES", "MODELS", "VGG_CONFIGS", "LeNet5", "NiN", "NiNBlock", "VGG", "create_model"]
