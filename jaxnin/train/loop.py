"""`fit`: epochs, history, best/latest checkpoints, timing, and resume."""
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxnin.data.pipeline import DeviceSplit
from jaxnin.data.vision import ImageDataset
from jaxnin.errors import JaxninError
from jaxnin.models import create_model
from jaxnin.report.logging import RunLog, final_lines, write_json
from jaxnin.report.plots import plot_curves
from jaxnin.train.checkpoint import CheckpointStore, interrupts_deferred
from jaxnin.train.config import TrainConfig
from jaxnin.train.optim import learning_rate_schedule, make_optimizer
from jaxnin.train.replicas import epoch_metrics, fold_in, per_seed_metrics, run_keys, seed_results
from jaxnin.train.sharding import (check_batch_size, data_mesh, is_primary, mesh_record,
                                   place_state, shard_split, sync)
from jaxnin.train.steps import TrainState, create_train_state, evaluate, train_epoch
from jaxnin.train.timing import timed


def fit(config: TrainConfig, data: ImageDataset, workdir: str | Path,
        resume: bool = False) -> list[dict]:
    """Train `config`'s model on `data`, one device-resident epoch at a time.

    Runs on every visible device (of every process, after jax.distributed.initialize): the
    splits are sharded along their examples, the state is replicated, and each batch of
    `config.batch_size` examples is split evenly over the devices (see sharding.py).

    Writes into `workdir`: run.json, history.json, loss.png, acc.png, TensorBoard scalars and
    Orbax checkpoints (latest, plus best by test loss and whatever `config.best` names); with
    several processes only process 0 writes all but the checkpoints, which all save together.
    Returns the history: one record per epoch.
    """
    workdir = prepare_workdir(workdir, resume)
    sync("workdir checked")  # before any process creates the checkpoint folders in it
    mesh = data_mesh()
    train = shard_split(data.train_images[:config.limit_train],
                        data.train_labels[:config.limit_train], mesh)
    test = shard_split(data.test_images[:config.limit_test], data.test_labels[:config.limit_test],
                       mesh)
    config.validate(train.count)
    check_batch_size(config.batch_size, mesh.size)
    with jax.set_mesh(mesh):
        state, schedule = initial_state(config, data, train)
        state = place_state(state, mesh, config.shard_params)
        store = CheckpointStore(workdir / "checkpoints", config.best)
        state, history = resume_run(store, state, workdir, config) if resume else (state, [])
        if is_primary():
            write_json(workdir / "run.json", run_record(config, data, mesh))
        log = RunLog(workdir, config.epochs, history) if is_primary() else HistoryOnly(history)
        try:
            state = train_epochs(state, train, test, config, schedule, store, log)
        except KeyboardInterrupt:
            raise interrupted(store) from None
        finally:
            log.close()
            store.close()
    return finish(workdir, config, log.history)


class HistoryOnly:
    """RunLog's stand-in on processes other than 0: it keeps the history and writes nothing."""

    def __init__(self, history: list[dict]):
        self.history = list(history)

    def epoch(self, record: dict) -> None:
        self.history.append(record)

    def close(self) -> None:
        pass


def train_epochs(state, train: DeviceSplit, test: DeviceSplit, config: TrainConfig, schedule,
                 store: CheckpointStore, log: RunLog):
    """Run the remaining epochs; checkpoint after each one whose metrics are finite."""
    epoch_key = run_keys(config, 1)
    for epoch in range(len(log.history) + 1, config.epochs + 1):
        lr = float(schedule(state.step.reshape(-1)[0]))  # replicas step in lockstep
        try:
            state, record = run_epoch(state, train, test, fold_in(epoch_key, epoch), config)
        except jax.errors.JaxRuntimeError as err:
            raise out_of_memory(err, config) or err
        record = {"epoch": epoch, "lr": lr, **record}
        stop_if_diverged(record, store)
        # History first: a kill -9 between the two leaves a record that resume drops, never a
        # checkpoint whose epoch the history lacks. Ctrl-C and SIGTERM wait for both.
        with interrupts_deferred():
            log.epoch(record)
            store.save(epoch, state, record)
    return state


def run_epoch(state, train: DeviceSplit, test: DeviceSplit, key, config: TrainConfig):
    """One training epoch and one full evaluation; only their metric sums reach the host."""
    (state, train_sums), train_wall, train_compile = timed(
        train_epoch, state, train, key, config.batch_size, config.resize,
        shard_params=config.shard_params)
    test_sums, test_wall, test_compile = timed(evaluate, state, test, config.eval_batch_size,
                                               config.resize)
    train_m, test_m = per_seed_metrics(train_sums), per_seed_metrics(test_sums)
    train_time = train_wall - train_compile
    eval_time = test_wall - test_compile
    return state, {
        **epoch_metrics(train_m, test_m, config.seed_values),
        "epoch_time_s": train_time + eval_time,
        # Every replica's examples: the work done per second by the whole program.
        "examples_per_s": config.seeds * train_m[0]["count"] / train_time,
        "train_time_s": train_time, "eval_time_s": eval_time,
        "compile_time_s": train_compile + test_compile,
        "train_examples": train_m[0]["count"], "test_examples": test_m[0]["count"],
    }


def initial_state(config: TrainConfig, data: ImageDataset, train: DeviceSplit):
    """Model, optimizer and freshly initialised TrainState; also the lr schedule."""
    steps_per_epoch = train.count // config.batch_size
    tx, schedule = optimizer_for(config, steps_per_epoch)
    model = model_for(config, len(data.class_names))
    input_shape = model_input_shape(config, train.images.shape[1:])
    return create_train_state(model, tx, run_keys(config, 0), input_shape), schedule


def model_for(config: TrainConfig, num_classes: int):
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.dtype]
    return create_model(config.model, num_classes=num_classes, dtype=dtype, **config.model_options)


def optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """The optax transformation and its lr schedule (per step)."""
    schedule = learning_rate_schedule(config.schedule, config.lr, steps_per_epoch, config.epochs,
                                      config.step_size, config.gamma)
    return make_optimizer(config.optimizer, schedule, config.momentum), schedule


def model_input_shape(config: TrainConfig, image_shape) -> tuple[int, int, int]:
    """(H, W, C) the model sees: the stored images' shape after --resize."""
    height, width, channels = image_shape
    return (config.resize or height, config.resize or width, channels)


def interrupted(store: CheckpointStore) -> JaxninError:
    """The one line for Ctrl-C or SIGTERM: what was kept, and how to go on."""
    epoch = store.latest_epoch()
    if epoch is None:
        return JaxninError("interrupted (Ctrl-C or SIGTERM) before the first epoch finished; "
                           "nothing was saved: rerun the command to start again")
    return JaxninError(f"interrupted (Ctrl-C or SIGTERM); epochs up to {epoch} are saved in "
                       f"{store.directory}: rerun the same command with --resume to continue")


def out_of_memory(err: Exception, config: TrainConfig) -> JaxninError | None:
    """A one-line error for a device out-of-memory failure; None for any other error."""
    if "RESOURCE_EXHAUSTED" not in str(err):
        return None
    smaller = max(1, config.batch_size // 2)
    return JaxninError(f"the device ran out of memory at --batch-size {config.batch_size} "
                       f"(eval batch {config.eval_batch_size}, resize {config.resize}): "
                       f"try --batch-size {smaller}, or --dtype bfloat16")


def stop_if_diverged(record: dict, store: CheckpointStore) -> None:
    bad = [k for k in ("train_loss", "test_loss") if not math.isfinite(record[k])]
    if bad:
        raise JaxninError(f"training diverged in epoch {record['epoch']} ({bad[0]} is "
                          f"{record[bad[0]]}); the last good checkpoints are kept in "
                          f"{store.directory}: lower --lr (it was {record['lr']:g}) and retry")


def resume_run(store: CheckpointStore, fresh: TrainState, workdir: Path, config: TrainConfig):
    """Restore the latest checkpoint and the history up to it; refuse a changed config."""
    previous = TrainConfig.from_json(json.loads((workdir / "run.json").read_text())["config"])
    changed = previous.changed_keys(config)
    if changed:
        raise JaxninError(f"--resume with a different config in {workdir}: "
                          + ", ".join(f"{k} was {getattr(previous, k)!r}, now "
                                      f"{getattr(config, k)!r}" for k in changed)
                          + "; rerun with the original flags or use a new --workdir")
    restored = store.restore("latest", fresh)
    if restored is None:
        return fresh, []
    state, record = restored
    history = json.loads((workdir / "history.json").read_text())
    return state, [r for r in history if r["epoch"] <= record["epoch"]]


def prepare_workdir(workdir: str | Path, resume: bool) -> Path:
    """Create `workdir` and prove it writable now, not after an hour of training."""
    workdir = Path(workdir).absolute()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_test{jax.process_index()}"  # processes may share it
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise JaxninError(f"cannot write to workdir {workdir} ({err.strerror}): "
                          "choose another --workdir") from None
    if resume and not (workdir / "run.json").exists():
        raise JaxninError(f"--resume: {workdir} holds no run (no run.json); "
                          "drop --resume to start one there")
    if not resume and (workdir / "checkpoints").exists():
        raise JaxninError(f"{workdir} already holds a run: add --resume to continue it, "
                          "or choose another --workdir")
    return workdir


def run_record(config: TrainConfig, data: ImageDataset, mesh=None) -> dict:
    """run.json: enough to reproduce the run (config, versions, devices and mesh, commit,
    command)."""
    device = jax.devices()[0]
    return {
        "config": config.to_json(),
        "dataset": {"name": data.name, "class_names": list(data.class_names)},
        "command": command_line(),
        "jax_version": jax.__version__, "python": platform.python_version(),
        "device_kind": device.device_kind, "platform": device.platform,
        "device_count": jax.device_count(), "process_count": jax.process_count(),
        "mesh": None if mesh is None else mesh_record(mesh), "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def finish(workdir: Path, config: TrainConfig, history: list[dict]) -> list[dict]:
    """Curves, the closing lines and the run's totals in run.json (process 0's job)."""
    if not is_primary():
        return history
    plot_curves(history, workdir, title=f"{config.model} on {config.dataset}")
    device = jax.devices()[0]
    where = (f"{device.device_kind} ({device.platform}:{device.id})" if jax.device_count() == 1
             else f"{jax.device_count()} x {device.device_kind} ({device.platform})")
    print(final_lines(history, where))
    record = json.loads((workdir / "run.json").read_text())
    record["results"] = {
        "epochs": len(history), "final_test_acc": history[-1]["test_acc"],
        "best_test_acc": max(r["test_acc"] for r in history),
        "best_test_loss": min(r["test_loss"] for r in history),
        "train_time_s": sum(r["train_time_s"] for r in history),
        "compile_time_s": sum(r["compile_time_s"] for r in history),
        # Cold start to here: imports, data load, compiles, every epoch and the curves.
        "process_wall_s": seconds_since_process_start(),
        **seed_results(history, config.seed_values),
    }
    write_json(workdir / "run.json", record)
    print(seed_lines(record["results"]))
    return history


def seed_lines(results: dict) -> str:
    """The mean and spread over seeds (with --seeds K > 1), then the total elapsed time."""
    lines = []
    if len(results["seeds"]) > 1:
        lines.append(f"test acc over {len(results['seeds'])} seeds: final "
                     f"{results['final_test_acc_mean']:.4f} ± {results['final_test_acc_std']:.4f}"
                     f", best {results['best_test_acc_mean']:.4f} ± "
                     f"{results['best_test_acc_std']:.4f}")
    if results["process_wall_s"] is not None:
        lines.append(f"total elapsed {results['process_wall_s']:.1f} s (process start to now)")
    return "\n".join(lines)


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started (Linux /proc); None where that is unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
        return float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


def command_line() -> str:
    """How this process was started, as the user typed it (`python -m module ...`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec else ["python", sys.argv[0]]
    return " ".join([*head, *sys.argv[1:]])


def git_commit() -> str | None:
    """The commit of the jaxnin checkout in use, if it is one."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None
