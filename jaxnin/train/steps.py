"""Pure, jitted training and evaluation: one step, and a whole epoch fused on the device.

Metrics are sums (loss_sum, correct, count), so that epochs and padded batches aggregate
exactly; divide at the end with `mean_metrics`.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from jaxnin.data.pipeline import DeviceSplit, eval_order, preprocess, train_order
from jaxnin.errors import JaxninError
from jaxnin.train.kernels import program
from jaxnin.train.sharding import batch_over_devices, devices_in_context, state_over_devices

TrainState = train_state.TrainState


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, key: jax.Array,
                       input_shape: tuple[int, int, int]) -> TrainState:
    """Fresh params for one example of `input_shape` (H, W, C) and the optimizer state.

    Given a (K,) array of keys, it makes K replicas stacked along a new leading axis, each
    exactly the state that its own key alone would give.
    """
    def create(key):
        params = model.init(key, jnp.zeros((1, *input_shape)))["params"]
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    program = jax.vmap(create) if key.ndim else create
    # Under eval_shape (restores, costs) nothing compiles, and an inner jit takes no options.
    return (jax.jit if isinstance(key, jax.core.Tracer) else one_off_jit)(program)(key)


def one_off_jit(fn):
    """`jax.jit(fn)` for a program that runs once, such as an init.

    XLA's CPU backend spends seconds optimising the init's random number generation for a
    program that runs once; left unoptimised it compiles several times faster and gives the
    same bits (tests/test_steps.py). Other
    backends keep their defaults: their bits are not checked here. Only a top-level jit takes
    compiler options, so call the result outside any other transformation.
    """
    cpu = jax.default_backend() == "cpu"
    return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0} if cpu else None)


def replica_count(state: TrainState) -> int | None:
    """K for a state of K stacked replicas, None for a single one (its step is a scalar)."""
    return None if state.step.ndim == 0 else int(state.step.shape[0])


def _over_replicas(fn, replicated: bool, in_axes):
    """`fn` over the replica axis where there is one (every argument's leading axis, or those
    `in_axes` names 0); `fn` itself otherwise.

    vmapped, except on the CPU: there XLA makes a vmapped convolution one grouped convolution,
    several times slower than K separate ones (the README's "Many seeds at once" has the
    measurement; a lax.map was slower still), so the K replicas are K copies of `fn` side by
    side in the one program.
    """
    if not replicated:
        return fn
    if jax.default_backend() != "cpu":
        return jax.vmap(fn, in_axes=in_axes)
    return _side_by_side(fn, in_axes)


def _side_by_side(fn, in_axes):
    """What jax.vmap(fn, in_axes) computes, as one copy of `fn` per index of the axis."""
    def mapped(*args):
        axes = (in_axes,) * len(args) if isinstance(in_axes, int) else in_axes
        count = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, axes) if ax == 0)
        pick = lambda i: [jax.tree.map(lambda x: x[i], a) if ax == 0 else a
                          for a, ax in zip(args, axes)]
        outs = [fn(*pick(i)) for i in range(count)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    return mapped


@functools.partial(jax.jit, static_argnames="resize", donate_argnames="state")
def train_step(state: TrainState, batch: dict, key: jax.Array, resize: int | None = None):
    """One optimizer step (the state's own `tx`: SGD, momentum, Adam, ...) on `batch`.

    Args:
      state: a TrainState (create_train_state). It is DONATED: its arrays are reused for the
        result and must not be used after the call; keep the returned state instead.
      batch: {"image": uint8 (B, H, W, C) as stored, "label": int (B,)}; images are scaled to
        [0, 1] (and resized to `resize` x `resize`) inside the step. Other dtypes are refused.
      key: drives dropout.
    Returns:
      (new state, metric sums {"loss_sum", "correct", "count"}); mean_metrics divides them.
    """
    _require_uint8(batch["image"], "train_step")
    images = preprocess(batch["image"], resize)

    def loss_fn(params):
        logits = state.apply_fn({"params": params}, images, train=True, rngs={"dropout": key})
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
        return losses.mean(), (logits, losses)

    grads, (logits, losses) = jax.grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), _sums(logits, losses, batch["label"])


@functools.partial(jax.jit, static_argnames="resize")
def eval_step(state: TrainState, batch: dict, resize: int | None = None) -> dict:
    """Metric sums over the examples of `batch` whose "mask" is True (all if no mask).

    `batch` is as train_step's (uint8 images); nothing is donated. Returns {"loss_sum",
    "correct", "count", "class_peak"} (the largest |logit| per class); mean_metrics divides.
    """
    _require_uint8(batch["image"], "eval_step")
    logits = state.apply_fn({"params": state.params}, preprocess(batch["image"], resize))
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    sums = _sums(logits, losses, batch["label"], batch.get("mask"))
    # Per class, the largest |logit| over the batch: 0 means the class's output is dead (NiN's
    # last ReLU gives it nothing for any example, and no gradient brings it back).
    weight = 1.0 if batch.get("mask") is None else batch["mask"][:, None]
    return {**sums, "class_peak": jnp.max(jnp.abs(logits) * weight, axis=0)}


def train_epoch(state: TrainState, split: DeviceSplit, key: jax.Array, batch_size: int,
                resize: int | None = None, fused: bool | None = None,
                shard_params: bool = False, on_step=None, cpu_convolutions: str = "ynnpack"):
    """One epoch: shuffle on the device, then train_step over every full batch.

    Returns the new state and the epoch's metric sums, which stay on the device. For K stacked
    replicas (see create_train_state) `key` is a (K,) array of keys: each replica gets its own
    shuffle and dropout, all K train in one program, and the sums come back with shape (K,).

    Args:
      fused: run the whole epoch as one device program (lax.scan), so nothing returns to the
        host per step. The default fuses everywhere except on the CPU, where XLA runs the
        weight-gradient convolutions inside a loop body about 40x slower than outside one
        (jax-ml/jax#12868); there each step is dispatched asynchronously instead, still with
        the data, the order and the metrics on the device and no host sync until the end.
      shard_params: under a mesh, the state is laid out FSDP-style (sharding.place_state with
        shard_params) and stays so; otherwise it is replicated.
      on_step: where steps are dispatched from Python (not fused), called with the number of
        steps finished. Then at most two steps are in flight: a step costs far more than its
        dispatch, so nothing is lost, and progress and Ctrl-C are seen within a step.
      cpu_convolutions: the library XLA:CPU runs the convolutions with (jaxnin.train.kernels;
        "ynnpack" is XLA's default); other backends ignore it.
    """
    if fused is None:
        fused = fuses_epochs()
    if fused:
        return _fused_epoch.for_convolutions(cpu_convolutions)(state, split, key, batch_size,
                                                               resize, shard_params)
    plan = functools.partial(_epoch_plan, num_examples=split.count,
                             batch_size=batch_size)
    order, dropout_key = _over_replicas(plan, key.ndim > 0, 0)(key)
    sums, step = [], _indexed_step.for_convolutions(cpu_convolutions)
    for index in range(order.shape[-2]):
        state, step_sums = step(state, split, order[..., index, :], dropout_key, index,
                                         resize, shard_params)
        sums.append(step_sums)
        if on_step is not None and index >= 1:
            jax.block_until_ready(sums[index - 1])
            on_step(index)
    return state, jax.tree.map(lambda *steps: jnp.sum(jnp.stack(steps), axis=0), *sums)


def compiled_epoch_text(state: TrainState, split: DeviceSplit, key: jax.Array, batch_size: int,
                        resize: int | None = None,
                        cpu_convolutions: str = "ynnpack") -> tuple[str, ...]:
    """The compiled HLO of the programs train_epoch runs a step or an epoch with (not the
    shuffle): what a profile's kernel names stand for."""
    if fuses_epochs():
        epoch = _fused_epoch.for_convolutions(cpu_convolutions)
        return (epoch.lower(state, split, key, batch_size, resize).compile().as_text(),)
    order, dropout_key = _epoch_plan(key, split.count, batch_size)
    step = _indexed_step.for_convolutions(cpu_convolutions).lower(state, split, order[..., 0, :], dropout_key, 0, resize, False)
    return (step.compile().as_text(),)


def fuses_epochs() -> bool:
    """Whether train_epoch runs an epoch as one device program by default (all but the CPU)."""
    return jax.default_backend() != "cpu"


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: the remainder batch is dropped."""
    return num_examples // batch_size


@program(static_argnames=("batch_size", "resize", "shard_params"), donate_argnames="state")
def _fused_epoch(state, split, key, batch_size, resize, shard_params=False):
    def epoch(state, key):
        order, dropout_key = _epoch_plan(key, split.count, batch_size)

        def one_step(state, step):
            index, batch_indices = step
            return _indexed_step(state, split, batch_indices, dropout_key, index, resize)

        state, sums = jax.lax.scan(one_step, state, (jnp.arange(order.shape[0]), order))
        return state, jax.tree.map(jnp.sum, sums)

    state, sums = _over_replicas(epoch, key.ndim > 0, 0)(state, key)
    return state_over_devices(state, shard_params), sums


@functools.partial(jax.jit, static_argnames=("num_examples", "batch_size"))
def _epoch_plan(key, num_examples, batch_size):
    """The epoch's batch order and the key its dropout masks are folded from."""
    shuffle_key, dropout_key = jax.random.split(key)
    return train_order(shuffle_key, num_examples, batch_size), dropout_key


@program(static_argnames=("resize", "shard_params"), donate_argnames="state")
def _indexed_step(state, split, batch_indices, dropout_key, index, resize, shard_params=None):
    """train_step on the examples at `batch_indices`, gathered on the device.

    `shard_params` (True/False) pins the new state's layout; None (inside the fused epoch,
    which pins its own result) leaves the layout to XLA."""
    def step(state, batch_indices, dropout_key):
        batch = batch_over_devices({"image": split.images[batch_indices],
                                    "label": split.labels[batch_indices]})
        return train_step(state, batch, jax.random.fold_in(dropout_key, index), resize)

    state, sums = _over_replicas(step, dropout_key.ndim > 0, 0)(state, batch_indices, dropout_key)
    if shard_params is not None:
        state = state_over_devices(state, shard_params)
    return state, sums


def evaluate_split(state: TrainState, split: DeviceSplit, batch_size: int,
                   resize: int | None = None, cpu_convolutions: str = "ynnpack") -> dict:
    """Metric sums over the whole split; every example counts exactly once (per replica).

    The batch is capped at the split's size (a larger one would only add masked padding, and
    an `eval_batch_size` far above the split would not fit the device for nothing). Over N
    devices the batch grows to the next multiple of N, so that it splits evenly; the extra
    slots are masked like the last batch's, and the sums do not change. `cpu_convolutions`
    is as train_epoch's.
    """
    return _evaluate_split.for_convolutions(cpu_convolutions)(state, split, batch_size, resize)


@program(static_argnames=("batch_size", "resize"))
def _evaluate_split(state, split, batch_size, resize):
    devices = devices_in_context()
    batch_size = eval_batch(batch_size, split.count)
    order, mask = eval_order(split.count, -(-batch_size // devices) * devices)

    def evaluate_one(state):
        def one_batch(_, step):
            batch_indices, batch_mask = step
            batch = batch_over_devices({"image": split.images[batch_indices],
                                        "label": split.labels[batch_indices], "mask": batch_mask})
            return None, eval_step(state, batch, resize)

        _, sums = jax.lax.scan(one_batch, None, (order, mask))
        return {k: (jnp.max if k == "class_peak" else jnp.sum)(v, axis=0) for k, v in sums.items()}

    return _over_replicas(evaluate_one, state.step.ndim > 0, 0)(state)


def eval_batch(batch_size: int, examples: int) -> int:
    """The evaluation batch actually used: `batch_size`, capped at the split's `examples`."""
    return max(1, min(batch_size, examples))


def _require_uint8(images, where: str) -> None:
    """At trace time: the steps scale by 255 themselves, so floats would be scaled twice."""
    if images.dtype != jnp.uint8:
        raise JaxninError(f"{where} takes uint8 images as stored (0-255; it scales them "
                          f"itself), got {images.dtype}: pass the dataset's arrays unscaled")


def mean_metrics(sums: dict) -> dict:
    """{"loss", "acc", "count"} from metric sums (host side, once per epoch), and from an
    evaluation's sums also "dead_classes": how many classes' outputs were 0 for every example."""
    count = float(sums["count"])
    metrics = {"loss": float(sums["loss_sum"]) / count, "acc": float(sums["correct"]) / count,
               "count": int(count)}
    if "class_peak" in sums:
        peaks = np.asarray(sums["class_peak"])
        metrics["dead_classes"], metrics["classes"] = int((peaks == 0).sum()), peaks.size
    return metrics


def _sums(logits, losses, labels, mask=None) -> dict:
    weight = jnp.ones_like(losses) if mask is None else mask.astype(jnp.float32)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return {"loss_sum": jnp.sum(losses * weight), "correct": jnp.sum(correct * weight),
            "count": jnp.sum(weight)}
