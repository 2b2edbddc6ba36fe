"""The model zoo: Flax linen modules and a registry so recipes and CLIs can name a model."""
import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxnin.errors import JaxninError
from jaxnin.models.lenet import LeNet5
from jaxnin.models.nin import NiN, NiNBlock
from jaxnin.models.vgg import CONFIGS as VGG_CONFIGS
from jaxnin.models.vgg import VGG
from jaxnin.options import check_options

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


def model_class(name: str) -> type[nn.Module]:
    """The Flax module class behind registered model `name` (its options are its fields
    declared with jaxnin.options.option)."""
    if name not in MODELS:
        raise JaxninError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    model = MODELS[name]
    return model.func if isinstance(model, functools.partial) else model


def check_model_options(name: str, options: dict) -> None:
    """Refuse, in one line, an option `name` does not declare or a value outside its range."""
    check_options(model_class(name), options, f"model {name!r}")


def create_model(name: str, num_classes: int = 10, dtype=jnp.float32,
                 pointwise_as_dot: bool = False, **options) -> nn.Module:
    """The registered model `name` with `num_classes` outputs, computing in `dtype`.

    `options` set the model's declared options (e.g. NiN's `num_1x1`, LeNet-5's `activation`;
    `help(jaxnin.models.NiN)` lists them); an unknown one or a value out of range is refused
    with a JaxninError naming it. `pointwise_as_dot` computes a model's 1x1 convolutions as
    matrix products (same params and function; models without them ignore it).
    """
    check_model_options(name, options)
    if "pointwise_as_dot" in model_class(name).__dataclass_fields__:
        options = {**options, "pointwise_as_dot": pointwise_as_dot}
    return MODELS[name](num_classes=num_classes, dtype=dtype, **options)


__all__ = ["DEFAULT_INPUT_SHAPES", "MODELS", "VGG_CONFIGS", "LeNet5", "NiN", "NiNBlock", "VGG",
           "check_model_options", "create_model", "model_class"]
