"""The training engine: epochs of `train_epoch` and `evaluate_split`, each record handed to writers.

It knows nothing of files, consoles or plots: `jaxnin.run.fit` assembles the writers (history,
console, TensorBoard, curves, checkpoints) and turns the engine's exceptions into messages.
"""
import math
from typing import Protocol

import jax

from jaxnin.data.pipeline import DeviceSplit
from jaxnin.train.checkpoint import interrupts_deferred
from jaxnin.train.config import TrainConfig
from jaxnin.train.replicas import epoch_metrics, fold_in, per_seed_metrics, run_keys
from jaxnin.train.steps import evaluate_split, fuses_epochs, steps_per_epoch, train_epoch
from jaxnin.train.timing import clocked


class Writer(Protocol):
    """Receives every finished epoch's record (and the state after it)."""

    def epoch(self, record: dict, state) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Is told what the engine is doing between records."""

    def compiling(self) -> None: ...

    def epoch_started(self, epoch: int, steps: int | None) -> None: ...

    def steps_done(self, done: int) -> None: ...


class Diverged(Exception):
    """A non-finite loss: `record` is the epoch's, `key` the first non-finite metric."""

    def __init__(self, record: dict, key: str):
        super().__init__(f"{key} is {record[key]} in epoch {record['epoch']}")
        self.record, self.key = record, key


class AllClassesDead(Exception):
    """Every output class is dead (for every seed): no gradient can bring them back."""

    def __init__(self, record: dict):
        super().__init__(f"all {record['classes']} classes dead in epoch {record['epoch']}")
        self.record = record


class OutOfMemory(Exception):
    """The device ran out of memory in `phase` ("training" or "evaluation")."""

    def __init__(self, phase: str):
        super().__init__(f"out of device memory during {phase}")
        self.phase = phase


def train_epochs(state, train: DeviceSplit, test: DeviceSplit, config: TrainConfig, schedule,
                 writers: list[Writer], progress: Progress, first_epoch: int = 1):
    """Run epochs `first_epoch`..config.epochs; hand each finite record to every writer.

    Writers are called in order, with Ctrl-C and SIGTERM held until all are done, so that an
    epoch is recorded everywhere or nowhere (put the history before the checkpoints: a kill -9
    between them leaves a record that resume drops, never a checkpoint the history lacks).
    Raises Diverged before a non-finite record reaches any writer, AllClassesDead after such
    an epoch is recorded, and OutOfMemory.
    """
    epoch_key = run_keys(config, 1)
    steps = None if fuses_epochs() else steps_per_epoch(train.count, config.batch_size)
    for epoch in range(first_epoch, config.epochs + 1):
        if epoch == first_epoch:
            progress.compiling()
        progress.epoch_started(epoch, steps)
        lr = float(schedule(state.step.reshape(-1)[0]))  # replicas step in lockstep
        state, record = run_epoch(state, train, test, fold_in(epoch_key, epoch), config,
                                  progress.steps_done)
        record = {"epoch": epoch, "lr": lr, **record}
        bad = [k for k in ("train_loss", "test_loss") if not math.isfinite(record[k])]
        if bad:
            raise Diverged(record, bad[0])
        with interrupts_deferred():
            for writer in writers:
                writer.epoch(record, state)
        if all_classes_dead(record):
            raise AllClassesDead(record)
    return state


def all_classes_dead(record: dict) -> bool:
    """Whether every seed's every output class was 0 for every evaluated example."""
    dead = record.get("per_seed", {}).get("dead_classes", [record.get("dead_classes")])
    return "classes" in record and all(d == record["classes"] for d in dead)


def run_epoch(state, train: DeviceSplit, test: DeviceSplit, key, config: TrainConfig,
              on_step=None):
    """One training epoch and one full evaluation; only their metric sums reach the host."""
    with _memory_phase("training"):
        (state, train_sums), train_wall, train_clock = clocked(
            train_epoch, state, train, key, config.batch_size, config.resize,
            shard_params=config.shard_params, on_step=on_step,
            cpu_convolutions=config.cpu_convolutions)
    with _memory_phase("evaluation"):
        test_sums, test_wall, test_clock = clocked(evaluate_split, state, test,
                                                   config.eval_batch_size, config.resize,
                                                   config.cpu_convolutions)
    train_m, test_m = per_seed_metrics(train_sums), per_seed_metrics(test_sums)
    train_time = train_wall - train_clock.seconds
    eval_time = test_wall - test_clock.seconds
    return state, {
        **epoch_metrics(train_m, test_m, config.seed_values),
        "epoch_time_s": train_time + eval_time,
        # Every replica's examples: the work done per second by the whole program.
        "examples_per_s": config.seeds * train_m[0]["count"] / train_time,
        "train_time_s": train_time, "eval_time_s": eval_time,
        "compile_time_s": train_clock.seconds + test_clock.seconds,
        # Programs XLA compiled in this epoch (after the first epoch of a process, none), and
        # those read from JAX's persistent compilation cache instead.
        "compiles": train_clock.compiles + test_clock.compiles,
        "compile_cache_hits": train_clock.cache_hits + test_clock.cache_hits,
        "train_examples": train_m[0]["count"], "test_examples": test_m[0]["count"],
    }


class _memory_phase:
    """Turns a device out-of-memory error inside the block into OutOfMemory(phase)."""

    def __init__(self, phase: str):
        self.phase = phase

    def __enter__(self):
        return self

    def __exit__(self, kind, err, traceback):
        if isinstance(err, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(err):
            raise OutOfMemory(self.phase) from err
        return False
