"""jaxnin's side of the bench: the project's own jitted epoch, timed on random data.

Each measurement builds the recipe's model and optimizer, puts random uint8 images of the real
shape (28x28x1) on the device, compiles and runs one warm-up epoch, then times whole epochs
(`train_epoch`, resize on the device included) with `jax.block_until_ready`.
"""
import functools
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.peaks import bf16_peak, mfu
from experiments.bench.policy import speed_env
from experiments.bench.profile import profile_epoch
from jaxnin.data.pipeline import to_device
from jaxnin.report.summary import summarize
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import model_for, model_input_shape, optimizer_for
from jaxnin.train.steps import compiled_epoch_text, create_train_state, train_epoch, train_step
from jaxnin.train.timing import timed
from jaxnin.versions import installed

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
IMAGE_SHAPE = (28, 28, 1)  # MNIST and Fashion-MNIST, as the recipes load them
NUM_CLASSES = 10
VERSIONED = ("jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "flax", "optax")
TRAIN_FLOPS_NOTE = ("training FLOPs per example = 3 x forward FLOPs of "
                    "jaxnin.report.summary.summarize (conv and dense layers, multiply-add = 2; "
                    "the on-device resize is not counted)")


def device_info(peak_tflops: float | None = None) -> dict:
    """The device that jax computes on, its bf16 peak and the versions in use."""
    device = jax.devices()[0]
    peak, source = bf16_peak(device.device_kind)
    if peak_tflops:
        peak, source = peak_tflops * 1e12, "given with --peak-tflops"
    versions = {"python": platform.python_version(), "jax": jax.__version__}
    versions |= {name: installed(name) for name in VERSIONED if installed(name)}
    return {"kind": device.device_kind, "platform": device.platform,
            "count": jax.device_count(), "bf16_peak_flops": peak, "bf16_peak_source": source,
            "versions": versions, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "default_matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision",
                                                    None))}


def matmul_peak(size: int, iterations: int) -> dict:
    """Measured bf16 matmul FLOP/s (size x size x size, repeated): what the device really gives."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.bfloat16)
    matmul = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(matmul(a, b))
    start = time.perf_counter()
    outs = [matmul(a, b) for _ in range(iterations)]
    jax.block_until_ready(outs)
    seconds = time.perf_counter() - start
    return {"size": size, "iterations": iterations,
            "flops_per_s": 2 * size ** 3 * iterations / seconds}


def measure_throughput(job: dict) -> dict:
    """Training examples/sec of jaxnin's `train_epoch` for one (model, batch, dtype) job.

    job keys: config (a TrainConfig's to_json(): model, its options, batch size, resize, dtype,
    optimizer, schedule, ... all of it), policy (experiments.bench.policy.row_policy: its
    jax_default_matmul_precision is set for the whole measurement), steps (an epoch's steps,
    as the schedule sees them), repeats; optionally peak_tflops, and profile_dir to trace one
    more epoch after the timed ones.
    """
    # A context, not a global update: --in-process runs several jobs in one process.
    with jax.default_matmul_precision(job["policy"]["jax_default_matmul_precision"]):
        result = _measure(job)
        return {**result, "settings": settings()}


def settings() -> dict:
    """What decides this process's speed, read back from JAX itself."""
    versions = {"jax": jax.__version__}
    versions |= {name: installed(name) for name in VERSIONED if installed(name)}
    return {"versions": versions, "backend": jax.default_backend(),
            "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "jit": "jax.jit (XLA)",
            "epoch_program": "one lax.scan per epoch" if jax.default_backend() != "cpu"
            else "one jitted train_step per step, dispatched from Python", **speed_env()}


def _measure(job: dict) -> dict:
    # The run's config, whole: the model, the optimizer (schedule, warm-up, clipping) and the
    # state come from the library's own factories, as `fit` makes them.
    config = TrainConfig.from_json(job["config"])
    if config.seeds != 1 or config.shard_params:
        raise ValueError(f"the bench times one replica on one device: seeds {config.seeds}, "
                         f"shard_params {config.shard_params} are not measured (--set seeds=1 "
                         "--set shard_params=false)")
    resize, batch_size = config.resize, config.batch_size
    input_shape = model_input_shape(config, IMAGE_SHAPE)
    model = model_for(config, NUM_CLASSES)
    forward_flops = summarize(model, input_shape).total_flops
    tx, _ = optimizer_for(config, job["steps"])
    state = create_train_state(model, tx, jax.random.key(config.seed), input_shape)
    split = to_device(*random_data(job["steps"] * batch_size))
    keys = iter(jax.random.split(jax.random.key(1), 1 + job["repeats"]))

    epoch = functools.partial(train_epoch, batch_size=batch_size, resize=resize,
                              cpu_convolutions=config.cpu_convolutions)
    (state, sums), warmup_s, compile_s = timed(epoch, state, split, next(keys))
    epoch_times = []
    for _ in range(job["repeats"]):
        (state, sums), seconds, _ = timed(epoch, state, split, next(keys))
        epoch_times.append(seconds)
    if job.get("profile_dir"):
        def one_epoch():
            nonlocal state, sums
            state, sums = jax.block_until_ready(
                epoch(state, split, jax.random.key(2)))
        texts = compiled_epoch_text(state, split, jax.random.key(2), batch_size, resize,
                                    config.cpu_convolutions)
        profile = profile_epoch(one_epoch, Path(job["profile_dir"]), hlo_texts=texts)
    sums = jax.device_get(sums)
    examples = job["steps"] * batch_size
    examples_per_s = examples / statistics.median(epoch_times)
    info = device_info(job.get("peak_tflops"))
    return {
        "status": "ok", "examples_per_s": examples_per_s,
        "epoch_times_s": epoch_times, "examples_per_epoch": examples,
        "counted_examples": int(float(sums["count"])),
        "warmup_s": warmup_s, "compile_s": compile_s,
        "fused_epoch": jax.default_backend() != "cpu",
        "final_train_loss": float(sums["loss_sum"]) / float(sums["count"]),
        "forward_flops_per_example": forward_flops,
        "train_flops_per_example": 3 * forward_flops,
        "mfu": mfu(examples_per_s, 3 * forward_flops, info["bf16_peak_flops"]),
        **peak_memory(state, split, resize, batch_size),
        "device_kind": info["kind"],
        **({"profile": profile} if job.get("profile_dir") else {}),
    }


def random_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` uint8 images of the real shape and labels in 0..9: the data's cost, not its content."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *IMAGE_SHAPE), dtype=np.uint8)
    return images, rng.integers(0, NUM_CLASSES, count, dtype=np.int32)


def peak_memory(state, split, resize, batch_size) -> dict:
    """The device allocator's peak where it reports one, else XLA's plan for one train_step."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"peak_memory_bytes": int(stats["peak_bytes_in_use"]),
                "peak_memory_source": "device.memory_stats()['peak_bytes_in_use'] (this "
                                      "process: data, params, optimizer state, activations)"}
    batch = {"image": split.images[:batch_size], "label": split.labels[:batch_size]}
    analysis = train_step.lower(state, batch, jax.random.key(0), resize=resize).compile(
        ).memory_analysis()
    if analysis is None:
        return {"peak_memory_bytes": None, "peak_memory_source": "not reported by this backend"}
    planned = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
               - analysis.alias_size_in_bytes + analysis.temp_size_in_bytes)
    return {"peak_memory_bytes": int(planned),
            "peak_memory_source": "compiled train_step memory_analysis(): arguments + outputs "
                                  "- donated + temporaries, one step (the device reports no "
                                  "allocator peak)"}


def probe(job: dict) -> dict:
    """The device, its vendor bf16 peak and a measured bf16 matmul rate, before any model runs."""
    size = 8192 if jax.default_backend() != "cpu" else 512  # 8192: a second's work on a CPU
    return {"status": "ok", "device": device_info(job.get("peak_tflops")),
            "matmul_bf16": matmul_peak(size, job["matmul_iterations"])}
