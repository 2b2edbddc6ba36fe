"""What one configuration costs, without training it: params, FLOPs and XLA's step memory."""
import jax
import jax.numpy as jnp

from jaxnin.report.summary import summarize
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
from jaxnin.train.steps import create_train_state, train_step


def run_costs(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    """Params and forward FLOPs per example, and the memory of one compiled training step.

    The memory is XLA's buffer assignment for one step of one replica at config's batch size on
    the default device (arguments + outputs - donated aliases + temporaries), read from
    `compiled.memory_analysis()`: it is measured by compiling, nothing runs.
    """
    model = model_for(config, num_classes)
    input_shape = model_input_shape(config, image_shape)
    summary = summarize(model, input_shape)
    return {"params": summary.total_params, "forward_flops": summary.total_flops,
            **step_memory(config, model, image_shape, input_shape)}


def step_memory(config: TrainConfig, model, image_shape, input_shape) -> dict:
    tx, _ = optimizer_for(config, steps_per_epoch=1)
    state = jax.eval_shape(lambda key: create_train_state(model, tx, key, input_shape),
                           jax.random.key(0))
    batch = {"image": jax.ShapeDtypeStruct((config.batch_size, *image_shape), jnp.uint8),
             "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}
    compiled = train_step.lower(state, batch, jax.random.key(0), resize=config.resize).compile()
    stats = compiled.memory_analysis()
    if stats is None:  # a backend that does not report it
        return {"step_memory_bytes": None, "step_temp_bytes": None}
    total = (stats.argument_size_in_bytes + stats.output_size_in_bytes
             - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    return {"step_memory_bytes": int(total), "step_temp_bytes": int(stats.temp_size_in_bytes)}
