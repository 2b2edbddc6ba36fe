"""From a TrainConfig to the objects a run trains: the model, the optimizer and its schedule,
and the first TrainState. Shared by fit, the tools that reopen a run, and the cost reports."""
import jax.numpy as jnp

from jaxnin.data.pipeline import DeviceSplit
from jaxnin.data.dataset import ImageDataset
from jaxnin.models import create_model
from jaxnin.train.config import TrainConfig
from jaxnin.train.kernels import wants_pointwise_dots
from jaxnin.train.optim import learning_rate_schedule, make_optimizer, with_warmup
from jaxnin.train.replicas import run_keys
from jaxnin.train.steps import create_train_state


def initial_state(config: TrainConfig, data: ImageDataset, train: DeviceSplit):
    """Model, optimizer and freshly initialised TrainState for `data`'s classes and `train`'s
    images; also the lr schedule."""
    steps_per_epoch = train.count // config.batch_size
    tx, schedule = optimizer_for(config, steps_per_epoch)
    model = model_for(config, len(data.class_names))
    input_shape = model_input_shape(config, train.images.shape[1:])
    return create_train_state(model, tx, run_keys(config, 0), input_shape), schedule


def model_for(config: TrainConfig, num_classes: int):
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.dtype]
    return create_model(config.model, num_classes=num_classes, dtype=dtype,
                        pointwise_as_dot=wants_pointwise_dots(config.cpu_convolutions),
                        **config.model_options)


def optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """The optax transformation and its lr schedule (per step)."""
    schedule = with_warmup(learning_rate_schedule(config.schedule, config.lr, steps_per_epoch,
                                                  config.epochs, config.step_size, config.gamma),
                           config.warmup_steps)
    return make_optimizer(config.optimizer, schedule, config.momentum, config.clip_norm), schedule


def model_input_shape(config: TrainConfig, image_shape) -> tuple[int, int, int]:
    """(H, W, C) the model sees: the stored images' shape after `resize`."""
    height, width, channels = image_shape
    return (config.resize or height, config.resize or width, channels)
