"""More CPU levers: XLA CPU flags and steps fused per dispatch, one process each.

    python -m experiments.bench.cpu_flags [--repeats 2] [--lenet-steps 640] [--nin-steps 8]

Each variant runs in a fresh interpreter (XLA reads XLA_FLAGS once, at start), interleaved with
the others `--repeats` times. A run times `jaxnin.train.steps.train_epoch` (the CPU path: one
dispatch per step) after a warm-up epoch, on synthetic uint8 images of the recipes' shapes:
seed 002's LeNet-5 (batch 16, SGD momentum) and NiN at 67x67 (batch 128, SGD). The chunk rows
fuse K steps into one program (unrolled, no loop: jax-ml/jax#12868 is about loop bodies), to
see what per-step dispatch costs. `same bits` compares the epoch's params with the default's.
"""
import argparse
import dataclasses
import functools
import json
import os
import platform
import subprocess
import sys
import time

from experiments.bench.worker import checkout_env
from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.errors import JaxninError
from jaxnin.options import COUNT, option

VARIANTS = {  # name: (XLA_FLAGS added, steps per dispatch)
    "default": ("", 1),
    "ynnpack convolutions": ("--xla_cpu_experimental_ynn_fusion_type=+INDIVIDUAL_CONVOLUTION", 1),
    "xnnpack graph fusion": ("--xla_cpu_experimental_xnn_graph_fusion_mode="
                             "XNN_GRAPH_FUSION_MODE_GREEDY", 1),
    "onednn": ("--xla_cpu_use_onednn=true", 1),
    "one eigen thread": ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1", 1),
    "chunks of 4 steps": ("", 4),
    "chunks of 16 steps": ("", 16),
}
RECIPES = {"lenet": dict(shape=(28, 28, 1), batch=16, optimizer="momentum", lr=1e-3),
           "nin": dict(shape=(67, 67, 1), batch=128, optimizer="sgd", lr=0.1)}


def measure(model_name: str, steps: int, chunk: int) -> dict:
    """Seconds per training step over one timed epoch, and a digest of the trained params."""
    import jax
    import numpy as np
    import optax

    from jaxnin.data.pipeline import to_device
    from jaxnin.models import create_model
    from jaxnin.train import steps as jsteps
    from jaxnin.train.optim import make_optimizer

    recipe = RECIPES[model_name]
    rng = np.random.default_rng(0)
    count = steps * recipe["batch"]
    split = to_device(rng.integers(0, 256, (count, *recipe["shape"]), dtype=np.uint8),
                      rng.integers(0, 10, count).astype(np.int32))
    model = create_model(model_name, num_classes=10)
    tx = make_optimizer(recipe["optimizer"], optax.constant_schedule(recipe["lr"]))
    state = jsteps.create_train_state(model, tx, jax.random.key(0), recipe["shape"])
    epoch = functools.partial(jsteps.train_epoch, batch_size=recipe["batch"], fused=False)
    if chunk > 1:
        epoch = functools.partial(chunked_epoch, batch_size=recipe["batch"], chunk=chunk)
    times = []
    for index in range(2):  # a warm-up epoch (compiles), then the timed one
        start = time.perf_counter()
        state, sums = epoch(state, split, jax.random.key(index))
        jax.block_until_ready((state, sums))
        times.append(time.perf_counter() - start)
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(state.params)]
    return {"step_s": times[1] / steps, "warmup_s": times[0],
            "digest": float(sum(np.abs(x).sum() for x in leaves)),
            "loss": float(sums["loss_sum"] / sums["count"])}


def chunked_epoch(state, split, key, batch_size, chunk):
    """train_epoch's math, `chunk` steps per dispatch (one program of `chunk` unrolled steps)."""
    import jax

    from jaxnin.train import steps as jsteps

    @functools.partial(jax.jit, donate_argnames="state")
    def steps_at(state, orders, dropout_key, first):
        sums = []
        for j in range(chunk):
            state, step_sums = jsteps._indexed_step(state, split, orders[j], dropout_key,
                                                    first + j, None)
            sums.append(step_sums)
        return state, jax.tree.map(lambda *s: sum(s), *sums)

    order, dropout_key = jsteps._epoch_plan(key, split.count, batch_size)
    totals = []
    for first in range(0, order.shape[0] - chunk + 1, chunk):
        state, sums = steps_at(state, order[first:first + chunk], dropout_key, first)
        totals.append(sums)
    return state, jax.tree.map(lambda *s: sum(s), *totals)


def run_variant(name: str, model: str, steps: int) -> dict:
    flags, chunk = VARIANTS[name]
    if chunk > steps:
        return {"error": f"{steps} steps hold no chunk of {chunk}"}
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip(),
           "JAXNIN_COMPILE_CACHE": "0"}
    # The child takes this command's own flags: its numbers are checked as they are here.
    done = subprocess.run([sys.executable, "-m", "experiments.bench.cpu_flags", "--worker", model,
                           "--variants", name, f"--{model}-steps={steps}"],
                          env=checkout_env(env), capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclasses.dataclass(frozen=True)
class FlagsOptions:
    """The command line, each number with its range."""
    repeats: int = option(2, "runs of each variant, interleaved with the others",
                          within=COUNT)
    lenet_steps: int = option(640, "LeNet's steps a timed epoch", within=COUNT)
    nin_steps: int = option(8, "NiN's steps a timed epoch", within=COUNT)
    # --variants NAME ... (its own flag below: a list); --worker MODEL: a child's one run.
    variants: tuple[str, ...] = option(tuple(VARIANTS), "the variants to run", flag=False)
    worker: str | None = option(None, "measure one variant of MODEL in this process",
                                choices=tuple(RECIPES), flag=False)

    def steps(self, model: str) -> int:
        return {"lenet": self.lenet_steps, "nin": self.nin_steps}[model]


def parser() -> argparse.ArgumentParser:
    p = command_parser("python -m experiments.bench.cpu_flags", __doc__, FlagsOptions())
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                   metavar="NAME", help=f"the variants to run, of: {', '.join(VARIANTS)} "
                   "(default: all; `default` is always run, the others are compared with it)")
    p.add_argument("--worker", choices=list(RECIPES), help=argparse.SUPPRESS)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    variants = tuple(args.variants)
    if not args.worker:  # every other row's "same bits" is a comparison with the default's
        variants = ("default", *(name for name in variants if name != "default"))
    options = options_from(FlagsOptions, args, variants=variants, worker=args.worker)
    if options.worker and len(options.variants) != 1:
        raise JaxninError("--worker measures one variant: give one --variants NAME")
    run(options)
    return 0


def run(options: FlagsOptions) -> None:
    """The measurement (main calls it once every option is checked)."""
    if options.worker:
        model, (name,) = options.worker, options.variants
        print(json.dumps(measure(model, options.steps(model), VARIANTS[name][1])))
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; lenet {options.lenet_steps} "
          f"steps, nin {options.nin_steps} steps a timed epoch\n")
    rows = {(n, m): [] for n in options.variants for m in RECIPES}
    for _ in range(options.repeats):
        for name in options.variants:
            for model in ("lenet", "nin"):
                rows[name, model].append(run_variant(name, model, options.steps(model)))
    print("| variant | XLA_FLAGS | LeNet b16 ms/step | NiN@67 b128 ms/step | LeNet same bits "
          "| NiN same bits | warm-up epoch (compile) s, LeNet / NiN |\n"
          "|---|---|---:|---:|---|---|---|")
    for name in options.variants:
        cells = []
        for model in RECIPES:
            runs = rows[name, model]
            bad = [r["error"] for r in runs if "error" in r]
            cells.append(bad[0] if bad else " / ".join(f"{r['step_s'] * 1e3:.1f}" for r in runs))
        same = [("-" if any("error" in r for r in rows[name, m] + rows["default", m]) else
                 str(rows[name, m][0]["digest"] == rows["default", m][0]["digest"]))
                for m in RECIPES]
        warm = " / ".join("-" if "error" in rows[name, m][0] else
                          f"{rows[name, m][0]['warmup_s']:.1f}" for m in RECIPES)
        print(f"| {name} | `{VARIANTS[name][0] or '-'}` | {cells[0]} | {cells[1]} | {same[0]} | "
              f"{same[1]} | {warm} |", flush=True)


if __name__ == "__main__":
    sys.exit(run_main(main))
