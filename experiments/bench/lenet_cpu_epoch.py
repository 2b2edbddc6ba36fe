"""LeNet b16 on the CPU: where a step's wall time goes, and levers against PyTorch's loop.

    python -m experiments.bench.lenet_cpu_epoch --variants base,torch --rounds 3 --steps 1000

Each variant runs in a fresh process (`--one VARIANT`), the variants alternate A B A B over
the rounds, and each process prints one JSON line: ms per step of `--repeats` timed epochs of
`--steps` steps after one warm-up epoch (same synthetic data, seed 002's recipe: LeNet-5,
momentum SGD, batch 16), and a digest of the trained params (the same digest means the same
bits). Absolute milliseconds on a shared, nice'd machine are not figures; ratios within one
run are.
"""
import argparse
import dataclasses
import functools
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.errors import JaxninError
from jaxnin.options import COUNT, option

VARIANTS = ("base", "cli", "torch", "gather", "gather_cli", "sync_rare", "no_async",
            "no_concurrency_sched", "legacy_runtime", "components")
ENV = {"no_concurrency_sched": "--xla_cpu_enable_concurrency_optimized_scheduler=false",
       "legacy_runtime": "--xla_cpu_use_thunk_runtime=false"}


@dataclasses.dataclass(frozen=True)
class EpochOptions:
    """The command line, each number with its range."""
    variants: str = option("base,torch", f"comma-separated, of: {', '.join(VARIANTS)}")
    rounds: int = option(3, "processes of each variant, the variants alternating",
                         within=COUNT)
    steps: int = option(1000, "steps a timed epoch", within=COUNT)
    repeats: int = option(2, "timed epochs of each process, after one warm-up epoch",
                          within=COUNT)
    one: str | None = option(None, "run VARIANT in this process and print its JSON line",
                             choices=VARIANTS)


def parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.bench.lenet_cpu_epoch", __doc__, EpochOptions())


def main(argv) -> int:
    options = options_from(EpochOptions, parser().parse_args(argv))
    unknown = [v for v in options.variants.split(",") if v not in VARIANTS]
    if unknown:
        raise JaxninError(f"--variants {options.variants!r}: {', '.join(unknown)} is no "
                          f"variant; choose from {', '.join(VARIANTS)} (comma-separated)")
    run(options)
    return 0


def run(options: EpochOptions) -> None:
    """The measurement (main calls it once every option is checked)."""
    if options.one:
        print(json.dumps(run_one(options.one, options.steps, options.repeats)), flush=True)
        return
    variants = options.variants.split(",")
    results = {v: [] for v in variants}
    for round_ in range(options.rounds):
        for variant in variants:
            env = dict(os.environ)
            if variant in ENV:
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + ENV[variant]).strip()
            out = subprocess.run([sys.executable, "-m", "experiments.bench.lenet_cpu_epoch",
                                  "--one", variant, "--steps", str(options.steps),
                                  "--repeats", str(options.repeats)],
                                 env=env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode or not lines:
                print(f"{variant}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            record = json.loads(lines[-1])
            results[variant].append(record)
            print(f"round {round_} {variant}: {json.dumps(record)}", flush=True)
    print("\nvariant | median ms/step | runs | ratio to first | digests")
    first = None
    for variant, records in results.items():
        if not records or "ms_per_step" not in records[0]:
            continue
        ms = statistics.median(r["ms_per_step"] for r in records)
        first = first or ms
        print(f"{variant} | {ms:.3f} | {[round(r['ms_per_step'], 3) for r in records]} | "
              f"{first / ms:.3f} | {sorted({r.get('digest') for r in records})}")


def run_one(variant, steps, repeats):
    if variant == "torch":
        return run_torch(steps, repeats)
    import jax
    if variant == "no_async":
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    from experiments.bench.jaxnin_side import random_data
    from jaxnin.data.pipeline import to_device
    from jaxnin.recipes import recipe
    from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
    from jaxnin.train import steps as steps_mod

    config = recipe("mnist_lenet")
    model = model_for(config, 10)
    tx, _ = optimizer_for(config, steps)
    state = steps_mod.create_train_state(model, tx, jax.random.key(config.seed),
                                         model_input_shape(config, (28, 28, 1)))
    split = to_device(*random_data(steps * 16))
    keys = iter(jax.random.split(jax.random.key(1), 2 + repeats))
    if variant == "components":
        return components(state, split, next(keys), steps)
    epoch = {"base": functools.partial(steps_mod.train_epoch, batch_size=16),
             "no_async": functools.partial(steps_mod.train_epoch, batch_size=16),
             "no_concurrency_sched": functools.partial(steps_mod.train_epoch, batch_size=16),
             "legacy_runtime": functools.partial(steps_mod.train_epoch, batch_size=16),
             "cli": functools.partial(steps_mod.train_epoch, batch_size=16,
                                      on_step=lambda i: None),
             "gather": functools.partial(gather_epoch, batch_size=16),
             "gather_cli": functools.partial(gather_epoch, batch_size=16, on_step=lambda i: None),
             "sync_rare": functools.partial(sync_rare_epoch, batch_size=16)}[variant]
    state, sums = jax.block_until_ready(epoch(state, split, next(keys)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, sums = jax.block_until_ready(epoch(state, split, next(keys)))
        times.append(time.perf_counter() - start)
    digest = hashlib.sha256(b"".join(
        jax.device_get(x).tobytes() for x in jax.tree.leaves(state.params))).hexdigest()[:12]
    return {"variant": variant, "ms_per_step": 1e3 * statistics.median(times) / steps,
            "epoch_s": times, "digest": digest, "loss_sum": float(sums["loss_sum"])}


# Lever a: the whole order and a device step counter go in; the gather happens in the program.
def _gather_step_fn():
    import jax
    from jaxnin.train.steps import train_step

    @functools.partial(jax.jit, donate_argnames=("state", "index"))
    def step(state, split, order, dropout_key, index):
        batch_indices = jax.lax.dynamic_index_in_dim(order, index, keepdims=False)
        batch = {"image": split.images[batch_indices], "label": split.labels[batch_indices]}
        state, sums = train_step(state, batch, jax.random.fold_in(dropout_key, index), None)
        return state, sums, index + 1
    return step


_GATHER = []


def gather_epoch(state, split, key, batch_size, on_step=None):
    import jax
    import jax.numpy as jnp
    from jaxnin.train.steps import _epoch_plan
    if not _GATHER:
        _GATHER.append(_gather_step_fn())
    step = _GATHER[0]
    order, dropout_key = _epoch_plan(key, split.count, batch_size)
    index = jnp.zeros((), jnp.int32)
    sums = []
    for i in range(order.shape[0]):
        state, step_sums, index = step(state, split, order, dropout_key, index)
        sums.append(step_sums)
        if on_step is not None and i >= 1:
            jax.block_until_ready(sums[i - 1])
            on_step(i)
    return state, jax.tree.map(lambda *s: jnp.sum(jnp.stack(s), axis=0), *sums)


# Lever b: the CLI's progress, but synced only every 0.1 s (steps in flight are then bounded by
# what 0.1 s of dispatch can queue, and by the cap below).
def sync_rare_epoch(state, split, key, batch_size, max_in_flight=64):
    import jax
    import jax.numpy as jnp
    from jaxnin.train.steps import _epoch_plan, _indexed_step
    order, dropout_key = _epoch_plan(key, split.count, batch_size)
    sums, last = [], time.perf_counter()
    synced = 0
    for index in range(order.shape[-2]):
        state, step_sums = _indexed_step(state, split, order[..., index, :], dropout_key, index,
                                         None, False)
        sums.append(step_sums)
        now = time.perf_counter()
        if index - synced >= max_in_flight or now - last >= 0.1:
            jax.block_until_ready(sums[index - 1])
            synced, last = index, now
    return state, jax.tree.map(lambda *s: jnp.sum(jnp.stack(s), axis=0), *sums)


def components(state, split, key, steps):
    """Per-step costs of the pieces of train_epoch's CPU loop, each timed over `steps` calls."""
    import jax
    import jax.numpy as jnp
    from jaxnin.train.steps import _epoch_plan, _indexed_step
    order, dropout_key = _epoch_plan(key, split.count, 16)
    jax.block_until_ready(order)
    out = {"variant": "components"}
    # warm
    state, s = _indexed_step(state, split, order[0], dropout_key, 0, None, False)
    jax.block_until_ready((state, s))

    def per_step(fn, n=steps):
        start = time.perf_counter()
        fn(n)
        return 1e3 * (time.perf_counter() - start) / n

    # the slice alone, dispatched (async) and made ready
    def slices(n):
        xs = [order[i % order.shape[0]] for i in range(n)]
        jax.block_until_ready(xs)
    out["slice_ms"] = per_step(slices)
    out["int_to_device_ms"] = per_step(lambda n: jax.block_until_ready(
        [jax.device_put(i) for i in range(n)]))
    # blocked step: dispatch + execute + sync, one at a time (batch pre-sliced)
    batches = [order[i] for i in range(steps)]
    jax.block_until_ready(batches)
    dispatch, blocked = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        state, s = _indexed_step(state, split, batches[i], dropout_key, i, None, False)
        t1 = time.perf_counter()
        jax.block_until_ready((state, s))
        t2 = time.perf_counter()
        dispatch.append(t1 - t0)
        blocked.append(t2 - t0)
    out["dispatch_returns_ms"] = 1e3 * statistics.median(dispatch)
    out["blocked_step_ms"] = 1e3 * statistics.median(blocked)
    # pipelined steps, pre-sliced batches, python int index (what the loop does minus the slice)
    def pipelined(n):
        nonlocal state
        outs = []
        for i in range(n):
            state, s = _indexed_step(state, split, batches[i], dropout_key, i, None, False)
            outs.append(s)
        jax.block_until_ready((state, outs))
    out["pipelined_presliced_ms"] = per_step(pipelined)
    # the compiled executable called directly with device-resident args (no int conversion)
    idx = [jnp.asarray(i) for i in range(steps)]
    jax.block_until_ready(idx)
    def pipelined_dev_index(n):
        nonlocal state
        outs = []
        for i in range(n):
            state, s = _indexed_step(state, split, batches[i], dropout_key, idx[i], None, False)
            outs.append(s)
        jax.block_until_ready((state, outs))
    out["pipelined_presliced_devindex_ms"] = per_step(pipelined_dev_index)
    # execution alone: the executable's own time, from a profiler trace of blocked steps
    return out


def run_torch(steps, repeats):
    from experiments.bench import torch_reference
    from jaxnin.recipes import recipe
    config = recipe("mnist_lenet").to_json()
    config.pop("cpu_convolutions", None)  # jaxnin-only: which XLA:CPU library runs convolutions
    job = {"config": config, "variant": "cpu", "steps": steps, "repeats": repeats,
           "warmup_steps": steps, "compile": False, "num_workers": 0,
           "policy": {"matmul_allow_tf32": False, "cudnn_allow_tf32": False}}
    result = torch_reference.measure_throughput(job)
    return {"variant": "torch", "ms_per_step": 1e3 * statistics.median(result["epoch_times_s"])
            / steps, "epoch_s": result["epoch_times_s"],
            "threads": result["settings"]["num_threads"]}


def trace_steps(steps=300, out_dir="/tmp/lenet_trace"):
    """Trace `steps` pipelined steps as train_epoch dispatches them; print per-thread spans."""
    import collections
    import gzip
    import pathlib
    import jax
    from experiments.bench.jaxnin_side import random_data
    from jaxnin.data.pipeline import to_device
    from jaxnin.recipes import recipe
    from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
    from jaxnin.train import steps as steps_mod
    config = recipe("mnist_lenet")
    tx, _ = optimizer_for(config, steps)
    state = steps_mod.create_train_state(model_for(config, 10), tx, jax.random.key(0),
                                         model_input_shape(config, (28, 28, 1)))
    split = to_device(*random_data(steps * 16))
    state, _ = jax.block_until_ready(steps_mod.train_epoch(state, split, jax.random.key(1), 16))
    with jax.profiler.trace(out_dir, create_perfetto_trace=True):
        start = time.perf_counter()
        state, _ = jax.block_until_ready(steps_mod.train_epoch(state, split, jax.random.key(2), 16))
        wall = time.perf_counter() - start
    path = sorted(pathlib.Path(out_dir).rglob("perfetto_trace.json.gz"),
                  key=lambda p: p.stat().st_mtime)[-1]
    events = json.loads(gzip.decompress(path.read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    by = collections.defaultdict(lambda: [0.0, 0])
    for e in spans:
        key = (threads.get((e["pid"], e.get("tid")), "?")[:24], e["name"][:60])
        by[key][0] += e["dur"] / 1e3
        by[key][1] += 1
    print(f"wall {wall * 1e3:.1f} ms for {steps} steps ({wall * 1e3 / steps:.3f} ms/step)")
    for (thread, name), (ms, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:45]:
        print(f"{thread:24s} {name:60s} {ms:9.1f} ms {n:6d} x {ms / max(n, 1):.4f}")
    print(json.dumps(kernel_table(path, steps, wall), indent=1))
    return path


def paired(variants=("base", "gather", "cli", "gather_cli"), steps=250, rounds=8):
    """All `variants` in one process, epochs of `steps` alternating A B C D A B C D ...: on a
    loaded machine, neighbouring epochs see nearly the same load, so per-round ratios to the
    first variant are far steadier than whole processes minutes apart."""
    import jax
    from experiments.bench.jaxnin_side import random_data
    from jaxnin.data.pipeline import to_device
    from jaxnin.recipes import recipe
    from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
    from jaxnin.train import steps as steps_mod
    config = recipe("mnist_lenet")
    tx, _ = optimizer_for(config, steps)
    fns = {"base": functools.partial(steps_mod.train_epoch, batch_size=16),
           "cli": functools.partial(steps_mod.train_epoch, batch_size=16, on_step=lambda i: None),
           "gather": functools.partial(gather_epoch, batch_size=16),
           "gather_cli": functools.partial(gather_epoch, batch_size=16, on_step=lambda i: None),
           "sync_rare": functools.partial(sync_rare_epoch, batch_size=16),
           "fused2": functools.partial(fused2_epoch, batch_size=16)}
    split = to_device(*random_data(steps * 16))
    states = {}
    for v in variants:
        state = steps_mod.create_train_state(model_for(config, 10), tx, jax.random.key(0),
                                             model_input_shape(config, (28, 28, 1)))
        states[v], _ = jax.block_until_ready(fns[v](state, split, jax.random.key(1)))
    times = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            start = time.perf_counter()
            states[v], _ = jax.block_until_ready(fns[v](states[v], split, jax.random.key(2 + r)))
            times[v].append(1e3 * (time.perf_counter() - start) / steps)
    first = variants[0]
    out = {"steps": steps, "rounds": rounds}
    for v in variants:
        ratios = [a / b for a, b in zip(times[first], times[v])]
        out[v] = {"median_ms": statistics.median(times[v]), "min_ms": min(times[v]),
                  f"median_speedup_vs_{first}": statistics.median(ratios),
                  "ms": [round(t, 3) for t in times[v]]}
    digests = {v: hashlib.sha256(b"".join(jax.device_get(x).tobytes() for x in
                                          jax.tree.leaves(states[v].params))).hexdigest()[:12]
               for v in variants}
    out["digests"] = digests
    return out


def slice_blocks(n=200):
    """Does the host wait in `order[index]` while a step runs? Per step, in ms (medians): the
    step's dispatch returning, then the slice (and separately a Python-int index's
    transfer) dispatched while that step is in flight, then the step's remaining wait."""
    import jax
    from experiments.bench.jaxnin_side import random_data
    from jaxnin.data.pipeline import to_device
    from jaxnin.recipes import recipe
    from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
    from jaxnin.train import steps as steps_mod
    from jaxnin.train.steps import _epoch_plan, _indexed_step
    config = recipe("mnist_lenet")
    tx, _ = optimizer_for(config, n)
    state = steps_mod.create_train_state(model_for(config, 10), tx, jax.random.key(0),
                                         model_input_shape(config, (28, 28, 1)))
    split = to_device(*random_data(n * 16))
    order, dkey = jax.block_until_ready(_epoch_plan(jax.random.key(1), split.count, 16))
    batches = jax.block_until_ready([order[i] for i in range(n)])
    state, s = jax.block_until_ready(_indexed_step(state, split, batches[0], dkey, 0, None, False))
    rows = {"step_dispatch": [], "slice_while_step_runs": [], "rest_of_step": [],
            "slice_idle": [], "device_put_int_while_step_runs": []}
    for i in range(n):
        t0 = time.perf_counter()
        state, s = _indexed_step(state, split, batches[i], dkey, i, None, False)
        t1 = time.perf_counter()
        if i % 2:
            sliced = order[i]
        else:
            sliced = jax.device_put(i)
        t2 = time.perf_counter()
        jax.block_until_ready((state, s, sliced))
        t3 = time.perf_counter()
        rows["step_dispatch"].append(t1 - t0)
        rows["slice_while_step_runs" if i % 2 else "device_put_int_while_step_runs"].append(t2 - t1)
        rows["rest_of_step"].append(t3 - t2)
        t4 = time.perf_counter()
        jax.block_until_ready(order[i])
        rows["slice_idle"].append(time.perf_counter() - t4)
    return {k: round(1e3 * statistics.median(v), 4) for k, v in rows.items()}


def kernel_table(path, steps, wall_s):
    """Per kernel of the step: median launch-to-end ms, and the share of the covered time."""
    import collections
    import gzip
    import pathlib
    from experiments.bench import profile
    events = json.loads(gzip.decompress(pathlib.Path(path).read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    executor = [e for e in events if e.get("ph") == "X" and "dur" in e
                and threads.get((e["pid"], e.get("tid")), "").startswith("tf_XLA")]
    launches = [e for e in executor if not e["name"].startswith(
        ("end:", "ThunkExecutor", "ThreadpoolListener"))]
    kernels = profile._until_done(launches, [e for e in executor if e["name"].startswith("end: ")])
    per = collections.defaultdict(list)
    for k in kernels:
        per[k["name"]].append(k["dur"] / 1e3)
    covered = profile._covered(kernels)
    launch_s = sum(e["dur"] for e in launches) / 1e6
    rows = sorted(((sum(v) / steps, statistics.median(v), len(v), k) for k, v in per.items()),
                  reverse=True)
    return {"wall_ms_per_step": 1e3 * wall_s / steps,
            "covered_ms_per_step": 1e3 * covered / steps,
            "no_kernel_in_progress_ms_per_step": 1e3 * (wall_s - covered) / steps,
            "launch_spans_ms_per_step (the old 'busy')": 1e3 * launch_s / steps,
            "kernels": [(k, round(ms, 3), round(med, 3), n) for ms, med, n, k in rows[:14]]}


_FUSED2 = []


def fused2_epoch(state, split, key, batch_size):
    """Lever c: two steps per dispatch (one program holding two train steps, no loop)."""
    import jax
    import jax.numpy as jnp
    from jaxnin.train.steps import _epoch_plan, _indexed_step
    if not _FUSED2:
        @functools.partial(jax.jit, donate_argnames="state")
        def two(state, split, order, dropout_key, index):
            state, a = _indexed_step(state, split, order[index], dropout_key, index, None, False)
            state, b = _indexed_step(state, split, order[index + 1], dropout_key, index + 1,
                                     None, False)
            return state, jax.tree.map(jnp.add, a, b)
        _FUSED2.append(two)
    order, dropout_key = _epoch_plan(key, split.count, batch_size)
    sums = []
    for index in range(0, order.shape[0] - 1, 2):
        state, s = _FUSED2[0](state, split, order, dropout_key, index)
        sums.append(s)
    return state, jax.tree.map(lambda *s: jnp.sum(jnp.stack(s), axis=0), *sums)


if __name__ == "__main__":
    sys.exit(run_main(main))
