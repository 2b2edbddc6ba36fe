"""A model's training step under each TrainConfig.cpu_convolutions choice, interleaved.

    python -m experiments.bench.cpu_convolutions --model vgg11 --resize 64 --batch-size 16 \
        --steps 4 --rounds 3

Each (round, choice) is a fresh process that compiles the step the engine dispatches on the CPU
(`steps._indexed_step`, with the choice's compiler options and, for "eigen", 1x1 convs as
dots), runs one step to warm up, then times `--steps` steps. Synthetic uint8 images; prints one
JSON line per process and the median ms a step of each choice. For what the bench's CPU table
(`--cpu-compare`) does not time: VGG, and a model at sizes of one's own.
"""
import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

from experiments.bench.worker import child_stdout
from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.models import MODELS
from jaxnin.options import COUNT, option
from jaxnin.train.kernels import CPU_CONVOLUTIONS


def initial_state(model_name: str, choice: str, resize: int | None):
    """The model's fresh train state at the step's input size (its own check of that size
    first: a size below the model's minimum is a JaxninError naming it)."""
    import jax
    import optax

    from jaxnin.models import create_model
    from jaxnin.train.kernels import wants_pointwise_dots
    from jaxnin.train.steps import create_train_state

    options = {"dropout": 0.0} if model_name.startswith("vgg") else {}
    model = create_model(model_name, 10, pointwise_as_dot=wants_pointwise_dots(choice), **options)
    size = resize or 28
    return create_train_state(model, optax.sgd(0.01, 0.9), jax.random.key(0), (size, size, 1))


def check_input_size(model_name: str, resize: int | None) -> None:
    """The model's own input-size check, as each child's init would make it, traced only
    (nothing compiles): said once here, before any child starts."""
    import jax

    for choice in CPU_CONVOLUTIONS:
        jax.eval_shape(lambda: initial_state(model_name, choice, resize))


def time_step(model_name: str, choice: str, resize: int | None, batch_size: int,
              steps: int) -> float:
    """ms a step of `model_name` compiled under `choice` (in this process)."""
    import jax
    import numpy as np

    from jaxnin.data.pipeline import to_device
    from jaxnin.train.steps import _epoch_plan, _indexed_step

    state = initial_state(model_name, choice, resize)
    count = batch_size * (steps + 1)
    images = np.random.RandomState(0).randint(0, 256, (count, 28, 28, 1)).astype(np.uint8)
    split = to_device(images, np.arange(count) % 10)
    order, dropout_key = _epoch_plan(jax.random.key(1), count, batch_size)
    step = _indexed_step.for_convolutions(choice)
    state, sums = step(state, split, order[0], dropout_key, 0, resize, False)
    jax.block_until_ready(sums)
    start = time.perf_counter()
    for index in range(1, steps + 1):
        state, sums = step(state, split, order[index], dropout_key, index, resize, False)
    jax.block_until_ready(sums)
    return (time.perf_counter() - start) / steps * 1000


@dataclasses.dataclass(frozen=True)
class ConvolutionsOptions:
    """The command line, each number with its range."""
    model: str = option("vgg11", "the model whose step is timed", choices=tuple(MODELS))
    resize: int | None = option(None, "resize the 28x28 images to this square size on the "
                                "device [28: as stored]", within=COUNT)
    batch_size: int = option(16, "examples a step", within=COUNT)
    steps: int = option(4, "timed steps of each process, after one warm-up step", within=COUNT)
    rounds: int = option(3, "processes of each choice, the choices interleaved", within=COUNT)
    # --one CHOICE: a child's one process (hidden), given the parent's flags as they are.
    one: str | None = option(None, "time this choice in this process", flag=False,
                             choices=CPU_CONVOLUTIONS)


def parser() -> argparse.ArgumentParser:
    p = command_parser("python -m experiments.bench.cpu_convolutions", __doc__,
                       ConvolutionsOptions())
    p.add_argument("--one", choices=CPU_CONVOLUTIONS, help=argparse.SUPPRESS)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    options = options_from(ConvolutionsOptions, args, one=args.one)
    run(options, argv)
    return 0


def run(options: ConvolutionsOptions, argv: list[str]) -> None:
    """The measurement (main calls it once every option is checked); a child of each (round,
    choice) gets this command's own `argv`."""
    if options.one:  # a child: one process, one choice
        ms = time_step(options.model, options.one, options.resize, options.batch_size,
                       options.steps)
        print(json.dumps({"model": options.model, "cpu_convolutions": options.one,
                          "ms_per_step": ms}))
        return
    check_input_size(options.model, options.resize)  # `--resize 5`: one line, no child run
    times = {choice: [] for choice in CPU_CONVOLUTIONS}
    for _ in range(options.rounds):
        for choice in CPU_CONVOLUTIONS:
            child = [sys.executable, "-m", "experiments.bench.cpu_convolutions", "--one", choice,
                     *argv]
            line = child_stdout(child)  # a failing child: its own line, and this one ends
            record = json.loads(line.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
            times[choice].append(record["ms_per_step"])
    print(json.dumps({"model": options.model, "median_ms_per_step": {
        choice: statistics.median(values) for choice, values in times.items()}}))


if __name__ == "__main__":
    # As before run_main: each child compiles its step, never reading jaxnin's persistent
    # compilation cache (which run_main turns on where JAX is already loaded, as it is here).
    os.environ["JAXNIN_COMPILE_CACHE"] = "0"
    sys.exit(run_main(main))
