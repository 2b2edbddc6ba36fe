"""Two CPU levers, each measured against what it replaced, in one process.

    python -m experiments.bench.cpu_levers [--repeats 5] > experiments/bench/cpu-levers.md

1. The one-off init (model.init + optimizer state) compiled with XLA's default optimisation
   against `xla_backend_optimization_level=0` (what jaxnin.train.steps.create_train_state does on
   the CPU), and whether the two give the same bits.
2. One train step of K=2 replicas (`--seeds 2`), vmapped against K copies side by side in one
   program (what jaxnin.train.steps does on the CPU), and a single run's step for scale.
Synthetic inputs; only the shapes matter for the time.
"""
import argparse
import dataclasses
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.models import create_model
from jaxnin.options import COUNT, option
from jaxnin.train import steps

MODELS = [("lenet", {}, (28, 28, 1)), ("nin", {}, (67, 67, 1)),
          ("vgg11", {"width_divisor": 16, "hidden": 64, "dropout": 0.5}, (32, 32, 1))]


def init_compile(name, options, shape):
    model = create_model(name, num_classes=10, **options)
    init = lambda key: model.init(key, jnp.zeros((1, *shape)))["params"]
    lowered = jax.jit(init).lower(jax.random.key(0))
    row = {}
    for label, compiler_options in (("default", None),
                                    ("level 0", {"xla_backend_optimization_level": 0})):
        start = time.perf_counter()
        compiled = lowered.compile(compiler_options)
        row[label] = time.perf_counter() - start
        row[label + " params"] = compiled(jax.random.key(3))
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(row["default params"]),
                                                     jax.tree.leaves(row["level 0 params"])))
    return row["default"], row["level 0"], same


def step_times(name, options, shape, replicas, batch_size, repeats):
    model = create_model(name, num_classes=10, **options)
    tx = optax.sgd(0.01)
    keys = jnp.stack([jax.random.key(i) for i in range(replicas)])
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.integers(0, 256, (batch_size, *shape)), jnp.uint8),
             "label": jnp.asarray(rng.integers(0, 10, batch_size), jnp.int32)}
    one = lambda state, key: steps.train_step(state, batch, key)
    programs = {"vmapped": jax.jit(jax.vmap(one)),
                "side by side": jax.jit(steps._side_by_side(one, 0)),
                "single run": jax.jit(one)}
    times = {}
    for label, program in programs.items():
        stacked = steps.create_train_state(model, tx, keys, shape)
        args = (stacked, keys) if label != "single run" else (
            jax.tree.map(lambda x: x[0], stacked), keys[0])
        jax.block_until_ready(program(*args))  # compile and warm up
        start = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(program(*args))
        times[label] = (time.perf_counter() - start) / repeats
    return times


@dataclasses.dataclass(frozen=True)
class LeversOptions:
    """The command line, each number with its range."""
    repeats: int = option(5, "timed calls of each train step, after one warm-up call",
                          within=COUNT)


def parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.bench.cpu_levers", __doc__, LeversOptions())


def main(argv) -> int:
    options = options_from(LeversOptions, parser().parse_args(argv))
    run(options)
    return 0


def run(options: LeversOptions) -> None:
    """The measurement (main calls it once every option is checked)."""
    print(f"jax {jax.__version__} on {platform.processor() or platform.machine()}, "
          f"{jax.devices()[0].platform}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| init of | default compile | level-0 compile | same bits |\n|---|---:|---:|---|")
    for name, model_options, shape in MODELS:
        default, level0, same = init_compile(name, model_options, shape)
        print(f"| {name} {shape[0]}x{shape[1]} | {default:.2f} s | {level0:.2f} s | {same} |",
              flush=True)
    print("\n| train step, 2 replicas of batch 64 | vmapped | side by side | single run (1 "
          "replica) |\n|---|---:|---:|---:|")
    for name, model_options, shape in MODELS[:2]:
        t = step_times(name, model_options, shape, 2, 64, options.repeats)
        print(f"| {name} {shape[0]}x{shape[1]} | {t['vmapped'] * 1e3:.0f} ms | "
              f"{t['side by side'] * 1e3:.0f} ms | {t['single run'] * 1e3:.0f} ms |", flush=True)


if __name__ == "__main__":
    # Compile times are what this measures: never read from jaxnin's persistent compilation
    # cache, which run_main turns on where JAX is already loaded (as it is here).
    os.environ["JAXNIN_COMPILE_CACHE"] = "0"
    sys.exit(run_main(main))
