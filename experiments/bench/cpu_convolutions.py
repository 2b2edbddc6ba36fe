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
import json
import statistics
import subprocess
import sys
import time

from jaxnin.train.kernels import CPU_CONVOLUTIONS


def time_step(model_name: str, choice: str, resize: int | None, batch_size: int,
              steps: int) -> float:
    """ms a step of `model_name` compiled under `choice` (in this process)."""
    import jax
    import numpy as np
    import optax

    from jaxnin.data.pipeline import to_device
    from jaxnin.models import create_model
    from jaxnin.train.kernels import wants_pointwise_dots
    from jaxnin.train.steps import _epoch_plan, _indexed_step, create_train_state

    options = {"dropout": 0.0} if model_name.startswith("vgg") else {}
    model = create_model(model_name, 10, pointwise_as_dot=wants_pointwise_dots(choice), **options)
    size = resize or 28
    state = create_train_state(model, optax.sgd(0.01, 0.9), jax.random.key(0), (size, size, 1))
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg11")
    parser.add_argument("--resize", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", choices=CPU_CONVOLUTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child: one process, one choice
        ms = time_step(args.model, args.one, args.resize, args.batch_size, args.steps)
        print(json.dumps({"model": args.model, "cpu_convolutions": args.one, "ms_per_step": ms}))
        return 0
    times = {choice: [] for choice in CPU_CONVOLUTIONS}
    for _ in range(args.rounds):
        for choice in CPU_CONVOLUTIONS:
            child = [sys.executable, "-m", "experiments.bench.cpu_convolutions", "--one", choice,
                     *(argv if argv is not None else sys.argv[1:])]
            line = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            record = json.loads(line.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
            times[choice].append(record["ms_per_step"])
    print(json.dumps({"model": args.model, "median_ms_per_step": {
        choice: statistics.median(values) for choice, values in times.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
