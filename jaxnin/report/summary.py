"""Per-layer model summary: output shape, params and forward FLOPs (seed 003's exercise).

FLOPs count a multiply-add as 2 and cover convolutions and dense layers, with padded taps
counted as PyTorch-style counters do; activations, pools and bias adds are not counted.
"""
import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

FLOPS_CONVENTION = "FLOPs: forward, per example, multiply-add = 2, conv and dense layers only"


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One module call of the forward pass."""
    path: str
    kind: str
    depth: int
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """All layers of a model for one input shape (H, W, C), with exact totals."""
    input_shape: tuple[int, ...]
    rows: tuple[LayerRow, ...]
    total_params: int
    total_flops: int

    def table(self) -> str:
        """The summary as a fixed-width text table ending in the totals."""
        lines = [f"{'layer':<34} {'kind':<16} {'output':>14} {'params':>13} {'FLOPs':>15}"]
        lines.append("-" * len(lines[0]))
        lines.append(f"{'input':<34} {'':<16} {_shape(self.input_shape):>14}")
        for row in self.rows:
            name = "  " * (row.depth - 1) + row.path.rsplit("/", 1)[-1]
            lines.append(f"{name:<34} {row.kind:<16} {_shape(row.output_shape):>14} "
                         f"{row.params:>13,} {row.flops:>15,}")
        lines.append("-" * len(lines[0]))
        lines.append(f"total params: {self.total_params:,} ({self.total_params})")
        lines.append(f"total FLOPs:  {self.total_flops:,} ({self.total_flops / 1e9:.3f} G)")
        lines.append(FLOPS_CONVENTION)
        return "\n".join(lines)


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> ModelSummary:
    """Trace `model` on one example of `input_shape` (H, W, C) without computing anything."""
    calls = []

    def record(next_fun, args, kwargs, context):
        if context.method_name != "__call__" or not context.module.path:
            return next_fun(*args, **kwargs)
        call = {"module": context.module, "inputs": args[0]}
        calls.append(call)  # appended on entry, so parents precede their children
        call["output"] = next_fun(*args, **kwargs)
        return call["output"]

    def init():
        with nn.intercept_methods(record):
            return model.init(jax.random.key(0), jnp.zeros((1, *input_shape)))

    params = jax.eval_shape(init)["params"]
    rows = _with_subtree_flops([_row(call, params) for call in calls])
    total_params = sum(leaf.size for leaf in jax.tree.leaves(params))
    total_flops = sum(row.flops for row in rows if row.depth == 1)
    return ModelSummary(tuple(input_shape), rows, total_params, total_flops)


def _row(call, params) -> LayerRow:
    module, inputs, output = call["module"], call["inputs"], call["output"]
    return LayerRow(path="/".join(module.path), kind=_kind(module), depth=len(module.path),
                    output_shape=tuple(output.shape[1:]),
                    params=_param_count(params, module.path),
                    flops=layer_flops(module, inputs.shape, output.shape))


def _with_subtree_flops(rows: list[LayerRow]) -> tuple[LayerRow, ...]:
    """A block's FLOPs are those of the layers inside it, as its params are."""
    totals = {row.path: row.flops for row in rows}
    for row in sorted(rows, key=lambda r: -r.depth):  # deepest first, so sums propagate upwards
        parent = row.path.rpartition("/")[0]
        if parent in totals:
            totals[parent] += totals[row.path]
    return tuple(dataclasses.replace(row, flops=totals[row.path]) for row in rows)


def layer_flops(module: nn.Module, input_shape, output_shape) -> int:
    """Forward FLOPs of one conv or dense call for a batch of one; 0 for any other module."""
    per_output = 0
    if isinstance(module, nn.Conv):
        per_output = math.prod(module.kernel_size) * input_shape[-1] // module.feature_group_count
    elif isinstance(module, nn.Dense):
        per_output = input_shape[-1]
    return 2 * per_output * math.prod(output_shape[1:])


def _param_count(params, path) -> int:
    subtree = params
    for name in path:
        if name not in subtree:
            return 0
        subtree = subtree[name]
    return sum(leaf.size for leaf in jax.tree.leaves(subtree))


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv):
        kernel = "x".join(map(str, module.kernel_size))
        stride = module.strides if isinstance(module.strides, int) else (module.strides or (1,))[0]
        return f"Conv {kernel}/{stride}"
    window = getattr(module, "window", None)
    if window is not None:
        return f"{type(module).__name__} {window}/{module.stride}"
    return type(module).__name__


def _shape(shape) -> str:
    return "x".join(map(str, shape))
