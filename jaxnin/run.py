"""`fit`: one training run assembled, from a config and a dataset to a finished workdir.

This layer sits above the engine (jaxnin.train.loop) and the writers (jaxnin.report): it owns
the workdir (a lock, run.json with one segment per invocation), places the data and the state
on the devices, picks the writers, and turns the engine's exceptions into one-line errors.
"""
import fcntl
import json
import os
import platform
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxnin import files, guard
from jaxnin.data import ImageDataset, check_dataset, load_data
from jaxnin.errors import Interrupted, JaxninError
from jaxnin.report.costs import step_memory
from jaxnin.report.logging import HistoryFile, write_json
from jaxnin.runs import Run
from jaxnin.train.checkpoint import CheckpointStore, newest_saved_epoch
from jaxnin.train.run_dir import Restored, read_history, run_config
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import initial_state, model_for, model_input_shape
from jaxnin.train.loop import AllClassesDead, Diverged, OutOfMemory, train_epochs
from jaxnin.train.optim import check_resume_epochs
from jaxnin.train.replicas import seed_results
from jaxnin.train.sharding import (check_batch_size, data_mesh, is_primary, mesh_record,
                                   place_state, shard_split, sync)
from jaxnin.train.steps import eval_batch
from jaxnin.versions import git_commit, installed, usable_cores

LOCK_FILE = ".lock"


def fit(config: TrainConfig, data: ImageDataset | None = None,
        workdir: str | Path | None = None, *, resume: bool = False,
        callbacks: Sequence = (), progress=None) -> Run:
    """Train `config`'s model and return the Run: its config, history, states and workdir.

    Args:
      config: what to train (`jaxnin.recipe(name)`, changed with `.replace`, or a TrainConfig).
      data: the dataset; default: loaded as the config names it. Your own arrays go in as
        `ImageDataset.from_arrays(name, ...)` with `config.dataset == name`. The data is
        checked against the config (name, image shape, classes, labels) before anything runs.
      workdir: where the run is kept (default: runs/<model>_<dataset>): run.json,
        history.json and Orbax checkpoints (latest, and best as `config.best` says).
      resume: continue the run in `workdir` from its latest checkpoint; it ends exactly where
        an uninterrupted run would. The config must be the run's (only `epochs` may grow).
      callbacks: each finished epoch's record (a dict: epoch, train_loss, train_acc,
        test_loss, test_acc, lr, times, ...) goes to every callback: a function of the record,
        or an object with `epoch(record, state)` and `close()` (jaxnin.report.logging's
        Console, TensorBoard and Curves are such objects).
      progress: told of compiles and steps (an object with compiling(), epoch_started(epoch,
        steps), steps_done(done), such as Console); default: nothing.

    Nothing is written to the terminal unless a callback or `progress` writes it. Runs on
    every visible device: the splits are sharded along their examples, the state is
    replicated, each batch is split evenly over the devices. With several processes only
    process 0 writes run.json and history.json; all save the checkpoints together. Raises
    JaxninError in one line for anything the caller can fix, naming the config field.
    """
    data = load_data(config.dataset, config.data_dir, config.data_options) if data is None \
        else data
    check_runnable(config, data)
    workdir = Path(workdir if workdir is not None else default_workdir(config)).absolute()
    created = _first_missing(workdir)
    try:
        with workdir_lock(workdir), guard.tidying(
                None if resume or not is_primary() else partial(abandon, workdir, created)):
            try:
                history, state = _fit_locked(config, data, workdir, resume,
                                             [_as_writer(c) for c in callbacks],
                                             progress or _Quiet())
            except BaseException:
                if not resume and is_primary():  # however a fresh run ends, nothing
                    clear_unsaved(workdir)       # of one that saved no epoch is left
                raise
    except BaseException:
        if is_primary():
            remove_empty(workdir, created)
        raise
    run = Run(config, workdir, history, tuple(data.class_names), data=data)
    run._restored["latest"] = Restored(state, "latest", history[-1]["epoch"], history[-1])
    return run


def default_workdir(config: TrainConfig) -> Path:
    """runs/<model>_<dataset>[_seeds<K>]."""
    return Path("runs") / (f"{config.model}_{config.dataset}"
                           + (f"_seeds{config.seeds}" if config.seeds > 1 else ""))


def _fit_locked(config: TrainConfig, data: ImageDataset, workdir: Path, resume: bool,
                callbacks: list, progress):
    prepare_workdir(workdir, resume, config)
    sync("workdir checked")  # before any process creates the checkpoint folders in it
    mesh = data_mesh()
    train = shard_split(data.train_images[:config.limit_train],
                        data.train_labels[:config.limit_train], mesh)
    test = shard_split(data.test_images[:config.limit_test], data.test_labels[:config.limit_test],
                       mesh)
    store = CheckpointStore(workdir / "checkpoints", config.best)
    guard.saving_into(store.directory)
    writers = []
    with jax.set_mesh(mesh):
        try:
            state, schedule = initial_state(config, data, train)
            state = place_state(state, mesh, config.shard_params)
            state, history = resume_run(store, state, workdir, config) if resume else (state, [])
            recorded = recorded_results(workdir) if history else None
            if is_primary():
                write_json(workdir / "run.json", run_record(config, data, mesh, workdir, history))
            # The history first (see train_epochs); process 0 alone hands records on.
            history_file = HistoryFile(workdir, history, write=is_primary())
            writers = [history_file, *(callbacks if is_primary() else [])]
            state = train_epochs(state, train, test, config, schedule, [*writers, store],
                                 progress if is_primary() else _Quiet(),
                                 first_epoch=len(history) + 1)
        except KeyboardInterrupt:  # fit clears a fresh run that saved nothing
            raise interrupted(store, cleared=not resume and is_primary()) from None
        except Diverged as err:
            raise diverged(err, config, store) from None
        except AllClassesDead as err:
            raise all_dead(err.record, config, store) from None
        except OutOfMemory as err:
            raise out_of_memory(err.phase, config, test.count) from err
        finally:  # a writer that fails to close must not hide why the run ended
            unclosed = close_all([*writers, store])
    # A resume with no epoch left to run keeps the results (and wall time) it found.
    finish(workdir, config, history_file.history,
           recorded if len(history_file.history) == len(history) else None)
    if unclosed is not None:  # after the results: the run itself is complete
        raise unclosed
    return history_file.history, state


def close_all(writers: list) -> Exception | None:
    """Close every writer, even after one fails (curves drawn onto the disk that just filled
    up); return the first failure."""
    failure = None
    for writer in writers:
        try:
            writer.close()
        except Exception as err:  # noqa: BLE001 - each writer gets its close
            failure = failure or err
    return failure


class _Callback:
    """A callback as a writer of fit: `epoch(record, state)`, and `close()` at the end."""

    def __init__(self, epoch, close=None):
        self.epoch, self._close = epoch, close

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _as_writer(callback) -> _Callback:
    if hasattr(callback, "epoch"):
        return _Callback(callback.epoch, getattr(callback, "close", None))
    if callable(callback):
        return _Callback(lambda record, state: callback(record))
    raise JaxninError(f"callback {callback!r} is neither a function of the record nor an "
                      "object with epoch(record, state)")


class _Quiet:
    """Progress that says nothing: the default, and processes other than 0."""

    def compiling(self):
        pass

    def epoch_started(self, epoch, steps):
        pass

    def steps_done(self, done):
        pass


# --- the workdir ------------------------------------------------------------------------------

class workdir_lock:
    """One run owns a workdir: an exclusive lock on `workdir/.lock` held while it trains.

    The lock is the operating system's (flock), so it is released however the process ends;
    the file only says who holds it, and is removed when the run ends through Python. It is
    removed while still locked, and a run that locks the file checks that its path still names
    it (else it locked a removed file, and takes the new one), so that two runs never both
    think they own the workdir. With several processes, process 0 holds it for all.
    """

    def __init__(self, workdir: Path):
        self.workdir, self._file = workdir, None

    def __enter__(self):
        if not is_primary():
            return self
        while True:
            _make_writable(self.workdir)
            try:
                self._file = open(self.workdir / LOCK_FILE, "a+")
            except FileNotFoundError:  # the workdir was removed meanwhile
                continue
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.seek(0)
                holder = self._file.read().strip() or "another process"
                self._file.close()
                raise JaxninError(f"{self.workdir} is in use by another jaxnin run ({holder}): "
                                  "wait for it to end, or choose another `workdir`") from None
            if _same_file(self._file, self.workdir / LOCK_FILE):
                break
            self._file.close()  # its holder removed it before we locked it: lock the new one
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {platform.node()}, since "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._file.flush()
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            if _same_file(self._file, self.workdir / LOCK_FILE):
                (self.workdir / LOCK_FILE).unlink(missing_ok=True)  # still locked: see above
            self._file.close()  # closing releases the lock


def _same_file(opened, path: Path) -> bool:
    try:
        mine, named = os.fstat(opened.fileno()), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def _make_writable(workdir: Path) -> None:
    """Create `workdir` and prove it writable now, not after an hour of training."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_test{jax.process_index()}"  # processes may share it
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        # mkdir over a file says "File exists", which reads as if the folder were fine
        why = "it is a file, not a folder" if isinstance(err, FileExistsError) else err.strerror
        raise JaxninError(f"cannot write to workdir {workdir} ({why}): "
                          "choose another `workdir`") from None


def prepare_workdir(workdir: Path, resume: bool, config: TrainConfig | None = None) -> Path:
    """Check `workdir` for this kind of start; a run that never finished an epoch is cleared.

    A fresh start over a run with finished epochs is refused (nothing is ever overwritten):
    where that run's config differs from `config`, naming each difference and asking for
    another workdir (a resume could not work either); else advising `resume`. One over a run
    that saved nothing (Ctrl-C in epoch 1, a crash) starts again in its place.
    """
    _make_writable(workdir)
    if is_primary():
        files.remove_stale(workdir)  # run.json or history.json half written by a killed run
    finished = finished_epochs(workdir)
    if resume and not (workdir / "run.json").exists():
        raise JaxninError(f"`resume`: {workdir} holds no run (no run.json); "
                          "start one there without `resume`")
    if not resume and finished:
        changed = _changes_from(workdir, config, finished)
        if changed:
            raise JaxninError(f"{workdir} already holds a different run, with {finished} "
                              f"finished epoch(s) ({changed}): choose another `workdir`")
        raise JaxninError(f"{workdir} already holds a run with {finished} finished epoch(s) "
                          "of this config: add `resume` to continue it, or choose another "
                          "`workdir`")
    if not resume and is_primary():
        clear_unfinished(workdir)
    return workdir


def _changes_from(workdir: Path, config: TrainConfig | None, finished: int) -> str:
    """How `config` differs from the run's in `workdir` ("lr was 0.1, now 0.2; ..."); empty
    where it does not. A run whose config cannot be read is refused here: neither a fresh
    start nor a resume could go on with it."""
    if config is None:
        return ""
    try:
        previous = run_config(workdir)
    except JaxninError as err:
        raise JaxninError(f"{workdir} already holds a run with {finished} finished epoch(s), "
                          f"but {err}: restore its run.json from a copy, or choose another "
                          "`workdir`") from None
    return changes_text(previous, config)


def changes_text(previous: TrainConfig, config: TrainConfig) -> str:
    """Each key where the configs differ (changed_keys), as "lr was 0.1, now 0.2", joined."""
    return ", ".join(f"{k} was {getattr(previous, k)!r}, now {getattr(config, k)!r}"
                     for k in previous.changed_keys(config))


def clear_unsaved(workdir: Path) -> None:
    """clear_unfinished, where the run in `workdir` has saved no epoch."""
    if not finished_epochs(workdir):
        clear_unfinished(workdir)


def abandon(workdir: Path, created: Path | None) -> None:
    """A fresh run whose process ends at once (guard's deadline, a second Ctrl-C), on guard's
    thread while the lock is still held: what fit's own ending would remove goes now."""
    clear_unsaved(workdir)
    (workdir / LOCK_FILE).unlink(missing_ok=True)
    remove_empty(workdir, created)


def _first_missing(workdir: Path) -> Path | None:
    """The topmost folder of `workdir`'s path that does not exist yet (None: it exists)."""
    missing = None
    for folder in (workdir, *workdir.parents):
        if os.path.exists(folder):
            return missing
        missing = folder
    return missing


def remove_empty(workdir: Path, created: Path | None) -> None:
    """Remove `workdir` and its parents up to `created` (the topmost one this run made), while
    each is empty: a run that kept nothing leaves no empty folder behind."""
    if created is None:
        return
    for folder in (workdir, *workdir.parents):
        try:
            folder.rmdir()
        except OSError:  # not empty (it holds a run, or the user's files), or gone
            return
        if folder == created:
            return


def clear_unfinished(workdir: Path) -> None:
    """Remove what a run that finished no epoch wrote (it is worth nothing to a rerun)."""
    for leftover in ("checkpoints", "tensorboard", "run.json", "history.json", "loss.png",
                     "acc.png"):
        path = workdir / leftover
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def finished_epochs(workdir: Path) -> int:
    """Epochs a run in `workdir` has saved: its latest checkpoint's (0 if none)."""
    return newest_saved_epoch(workdir / "checkpoints") or 0


def resume_run(store: CheckpointStore, fresh, workdir: Path, config: TrainConfig):
    """Restore the latest checkpoint and the history up to it; refuse a changed config."""
    try:  # a run.json that is empty, cut short or edited
        previous = run_config(workdir)
    except JaxninError as err:
        raise JaxninError(f"`resume`: {err}; restore it from a copy, or start a fresh "
                          "`workdir`") from None
    changed = changes_text(previous, config)
    if changed:
        raise JaxninError(f"`resume` with a different config in {workdir}: {changed}; resume "
                          "with the original config or use a new `workdir`")
    check_resume_epochs(config.schedule, previous.epochs, config.epochs)
    restored = store.restore("latest", fresh)
    if restored is None:
        return fresh, []
    state, record = restored
    if config.epochs < record["epoch"]:
        raise JaxninError(f"`resume` with `epochs` {config.epochs}: {workdir} has already trained "
                          f"{record['epoch']} epochs; set `epochs` to {record['epoch']} or more")
    history = resumed_history(workdir, record["epoch"])
    return state, [r for r in history if r["epoch"] <= record["epoch"]]


def resumed_history(workdir: Path, epoch: int) -> list[dict]:
    """The history a run resumed at `epoch` goes on from; refused in one line when it is
    missing or damaged (going on without it would lose epochs 1 to `epoch` from it)."""
    try:
        history = read_history(workdir)
    except JaxninError as err:
        problem = str(err)
    else:
        if history is not None:
            return history
        problem = f"{workdir / 'history.json'} is missing"
    raise JaxninError(f"`resume`: {problem}, though checkpoints up to epoch {epoch} "
                      f"exist; restore it from a copy, or start a fresh `workdir`")


# --- what fit reports ------------------------------------------------------------------------

def interrupted(store: CheckpointStore, cleared: bool = False) -> Interrupted:
    """The one line for Ctrl-C or SIGTERM: what was kept, and how to go on. `cleared`: the
    run's files are removed (no epoch finished), which the line says."""
    epoch = store.latest_epoch()
    if epoch is None:
        return Interrupted("interrupted (Ctrl-C or SIGTERM) before the first epoch finished; "
                           "nothing was saved" + (" (the run's files are removed)" if cleared
                                                  else "")
                           + ": rerun the same command to start again")
    return Interrupted(f"interrupted (Ctrl-C or SIGTERM); epochs up to {epoch} are saved in "
                       f"{store.directory}: resume the run (`resume`) to continue")


def diverged(err: Diverged, config: TrainConfig, store: CheckpointStore) -> JaxninError:
    record, epoch = err.record, store.latest_epoch()
    kept = (f"the checkpoints up to epoch {epoch} are kept in {store.directory}"
            if epoch is not None else "nothing was saved")
    how = f"{config.optimizer} at lr {record['lr']:g}" + (
        f", momentum {config.momentum:g}" if config.optimizer == "momentum" else "")
    return JaxninError(f"training diverged in epoch {record['epoch']} ({err.key} is "
                       f"{record[err.key]}, {how}); {kept}: lower `lr` and retry")


def all_dead(record: dict, config: TrainConfig, store: CheckpointStore) -> JaxninError:
    return JaxninError(
        f"stopped after epoch {record['epoch']}: all {record['classes']} output classes are dead "
        f"(the net's last ReLU gives 0 for every test example, so the loss is stuck at "
        f"{record['test_loss']:.4f} and no gradient can revive them); epochs up to "
        f"{store.latest_epoch()} are saved in {store.directory}: start a fresh `workdir` with a "
        f"lower `lr` (it was {config.lr:g}) or `optimizer` adam")


def out_of_memory(phase: str, config: TrainConfig, test_examples: int) -> JaxninError:
    if phase == "evaluation":  # the batch the engine used: capped at the test split
        used = eval_batch(config.eval_batch_size, test_examples)
        return JaxninError(f"the device ran out of memory during evaluation at `eval_batch_size` "
                           f"{used} (resize {config.resize}): try "
                           f"`eval_batch_size` {max(1, used // 2)}")
    return JaxninError(f"the device ran out of memory during training at `batch_size` "
                       f"{config.batch_size} (resize {config.resize}): try `batch_size` "
                       f"{max(1, config.batch_size // 2)}, or `dtype` bfloat16")


def check_runnable(config: TrainConfig, data: ImageDataset) -> None:
    """Refuse, before anything is written, an input the model cannot take (too small for its
    pools) or that cannot fit the device, and data that is not what the config names. Traces
    the model's init only: nothing compiles."""
    check_dataset(data, config.dataset, config.data_options)
    config.validate(len(data.train_labels[:config.limit_train]))
    check_batch_size(config.batch_size, jax.device_count())  # the data axis spans them all
    input_shape = model_input_shape(config, data.train_images.shape[1:])
    check_fits_device(config, input_shape, len(data.test_labels[:config.limit_test]))
    model = model_for(config, len(data.class_names))
    jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, *input_shape),
                                                                       jnp.float32))
    if config.seeds > 1:
        check_replicas_fit(config, model, data.train_images.shape[1:], input_shape)


def check_fits_device(config: TrainConfig, input_shape: tuple[int, int, int],
                      test_examples: int) -> None:
    """Refuse a batch whose input alone outgrows the device, naming the batch that does.

    The float32 input of one batch is a lower bound of its step's memory (the activations are
    larger still), so a batch that fails this cannot run at all. The evaluation batch is the
    one the engine uses: `eval_batch_size` capped at the (limited) test split.
    """
    height, width, channels = input_shape
    per_example = 4 * height * width * channels
    evaluated = eval_batch(config.eval_batch_size, test_examples)
    have = device_memory_bytes()
    need = per_example * max(config.batch_size, evaluated)
    if have is None or need <= have:
        return
    size = f"{need / 2**30:,.1f} GiB, the device has {have / 2**30:,.1f} GiB"
    at = f"{height}x{width}" + (f" (`resize` {config.resize})" if config.resize else "")
    if evaluated > config.batch_size:
        raise JaxninError(f"`eval_batch_size` {config.eval_batch_size} cannot fit: one "
                          f"evaluation batch of {evaluated} images at {at} is {size}; lower "
                          "`eval_batch_size`" + (" or `resize`" if config.resize else ""))
    if config.resize:
        raise JaxninError(f"`resize` {config.resize} cannot fit: one training batch of "
                          f"{config.batch_size} images at {height}x{width} is {size}; lower "
                          "`resize` or `batch_size`")
    raise JaxninError(f"`batch_size` {config.batch_size} cannot fit: one training batch of "
                      f"{config.batch_size} images at {at} is {size}; lower `batch_size`")


def check_replicas_fit(config: TrainConfig, model, image_shape, input_shape) -> None:
    """Refuse `seeds` K replicas that cannot fit the device, before the K-replica compile.

    One replica's training step is compiled on abstract shapes (seconds, whatever K is) and
    XLA's memory for it (`jaxnin.report.costs.step_memory`) times K is the estimate: the K
    replicas' params, optimizer states, batches and activations are all separate.
    """
    have = device_memory_bytes()
    if have is None:
        return
    one = step_memory(config, model, image_shape, input_shape)["step_memory_bytes"]
    if one is None or one * config.seeds <= have:
        return
    fits = have // one
    raise JaxninError(
        f"`seeds` {config.seeds} cannot fit: one replica's training step needs "
        f"{one / 2**20:,.1f} MiB (XLA's estimate at `batch_size` {config.batch_size}), "
        f"{config.seeds} need {one * config.seeds / 2**30:,.1f} GiB, the device has "
        f"{have / 2**30:,.1f} GiB; "
        + (f"lower `seeds` to {fits} or less, or `batch_size`" if fits > 1 else
           "lower `batch_size`" + (" or `resize`" if config.resize else "")))


def device_memory_bytes() -> int | None:
    """Memory of the first device: the accelerator's limit, or the host's RAM on the CPU."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def run_record(config: TrainConfig, data: ImageDataset, mesh, workdir: Path,
               history: list[dict]) -> dict:
    """run.json: the config, versions, devices and mesh, and one segment per invocation
    (command, commit, start, epochs), so a resume never rewrites how the run began."""
    device = jax.devices()[0]
    path = workdir / "run.json"
    segments = json.loads(path.read_text()).get("segments", []) if history and path.exists() \
        else []
    segment = {"command": command_line(), "git_commit": git_commit(Path(__file__).parent),
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "first_epoch": len(history) + 1, "epochs": config.epochs}
    return {
        "config": config.to_json(),
        "dataset": {"name": data.name, "class_names": list(data.class_names),
                    "image_shape": list(data.train_images.shape[1:]),
                    "train_examples": len(data.train_labels[:config.limit_train])},
        "command": segments[0]["command"] if segments else segment["command"],
        "jax_version": jax.__version__, "python": platform.python_version(),
        "versions": library_versions(), "host": host_record(),
        "device_kind": device.device_kind, "platform": device.platform,
        "device_count": jax.device_count(), "process_count": jax.process_count(),
        "mesh": None if mesh is None else mesh_record(mesh),
        "git_commit": segments[0]["git_commit"] if segments else segment["git_commit"],
        "started": segments[0]["started"] if segments else segment["started"],
        "segments": [*segments, segment],
    }


# What a run's numbers can depend on besides the code: a recorded CPU run was not reproduced
# bit for bit in another session with the same code and jax, and its run.json could not say why.
RECORDED_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "av",
                      "tensorflow-datasets")


def library_versions() -> dict:
    """The installed version of each library in RECORDED_LIBRARIES (None where absent)."""
    return {name: installed(name) for name in RECORDED_LIBRARIES}


def host_record() -> dict:
    """The CPU model, the cores this process may use, and the XLA flags it was given."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux
        pass
    return {"cpu": model or platform.processor() or platform.machine(), "cores": usable_cores(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def recorded_results(workdir: Path) -> dict | None:
    """The results in `workdir`'s run.json (None where there are none, or it is unreadable)."""
    try:
        results = json.loads((workdir / "run.json").read_text()).get("results")
    except (OSError, ValueError, AttributeError):
        return None
    return results if isinstance(results, dict) else None


def finish(workdir: Path, config: TrainConfig, history: list[dict],
           kept: dict | None = None) -> None:
    """The run's totals in run.json (process 0's job); `kept` results, where given, are
    written back as they were (a resume that ran no epoch measured nothing new)."""
    if not is_primary():
        return
    record = json.loads((workdir / "run.json").read_text())
    if kept is not None:
        record["results"] = kept
        write_json(workdir / "run.json", record)
        return
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
