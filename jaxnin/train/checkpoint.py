"""Orbax checkpoints: the latest (to resume) and the best by a test metric, kept apart.

Orbax's own best_fn would evict the latest checkpoint when it is not the best (orbax #526), so
each kind lives in its own CheckpointManager under `directory/<kind>/<epoch>`.
"""
import contextlib
import errno
import math
import signal
import threading
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxnin.errors import JaxninError

# kind -> (history key, "min" or "max"): seed 000 keeps the lowest test loss, seed 002 the
# highest test accuracy.
BEST_BY = {"best_loss": ("test_loss", "min"), "best_acc": ("test_acc", "max")}


def newest_saved_epoch(checkpoints) -> int | None:
    """The epoch `--resume` would continue from in `checkpoints`, or None if nothing is saved.

    Reads folder names only, so it needs neither Orbax nor jax: guard's crash watcher runs this
    function's source under `python -S`, so it must stay self-contained (`os` alone).
    """
    import os
    # Orbax writes a step into `<epoch>.orbax-checkpoint-tmp...` and renames it when complete,
    # so a name of digits alone is a finished epoch. The newest is the latest: a best step is
    # never newer. A per-kind folder keeps the latest in latest/<epoch> (its best may be newer
    # there, for a kill between the two writes).
    folder = os.path.join(checkpoints, "latest")
    if not os.path.isdir(folder):
        folder = checkpoints
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return max((int(name) for name in names if name.isdigit()), default=None)


class CheckpointStore:
    """The `latest` checkpoint plus one `best_*` checkpoint per tracked metric.

    A checkpoint holds the train state and a JSON record: the epoch and its history entry.
    """

    def __init__(self, directory: str | Path, best: tuple[str, ...] = ("best_loss",)):
        self.directory = Path(directory).absolute()
        unknown = set(best) - set(BEST_BY)
        if unknown:
            raise JaxninError(f"unknown best-checkpoint kind {sorted(unknown)}: use {list(BEST_BY)}")
        self._managers = {kind: _manager(self.directory / kind) for kind in ("latest", *best)}

    def save(self, epoch: int, state, record: dict) -> list[str]:
        """Save `state` after `epoch` as best wherever `record` improves on it, then as latest.

        Best first: a kill between the two leaves the epoch to be redone, and so considered
        for best again, by --resume. A record with a diverged seed (--seeds K) is never best:
        its state holds a NaN replica. Returns the kinds written. Call only with finite metrics.
        """
        written = []
        eligible = not record.get("diverged_seeds")
        with interrupts_deferred():
            for kind, manager in reversed(self._managers.items()):
                if kind == "latest" or (eligible and self._improves(kind, record)):
                    self._save_one(kind, manager, epoch, state, record)
                    written.append(kind)
        return written

    def epoch(self, record: dict, state) -> None:
        """As a writer of fit: save after each finished epoch."""
        self.save(record["epoch"], state, record)

    def _save_one(self, kind, manager, epoch, state, record) -> None:
        try:
            manager.save(epoch, args=_save_args(state, epoch, record), force=True)
            manager.wait_until_finished()
        except Exception as err:  # Orbax wraps I/O errors in several types
            raise _save_error(err, kind, epoch, manager.directory) or err

    def latest_epoch(self, kind: str = "latest") -> int | None:
        """The epoch of the newest complete `kind` checkpoint, or None."""
        return self._managers[kind].latest_step()

    def restore(self, kind: str, target) -> tuple[object, dict] | None:
        """(state, record) of the newest `kind` checkpoint, or None if there is none.

        `target` is a state of the same structure (e.g. freshly initialised) to restore into.
        """
        manager = self._managers[kind]
        epoch = manager.latest_step()
        if epoch is None:
            return None
        try:
            restored = manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), record=ocp.args.JsonRestore()))
        except Exception as err:  # Orbax raises many types for a damaged or mismatched dir
            raise restore_error(err, f"{manager.directory}/{epoch}", kind,
                                self.directory) from err
        if target is not None:
            _check_shapes(restored.state, target, f"{manager.directory}/{epoch}", kind)
        return restored.state, dict(restored.record)

    def best_record(self, kind: str) -> dict | None:
        """The history record stored with the current best checkpoint of `kind`."""
        manager = self._managers[kind]
        epoch = manager.latest_step()
        if epoch is None:
            return None
        return dict(manager.restore(epoch, args=ocp.args.Composite(
            record=ocp.args.JsonRestore())).record)

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()

    def _improves(self, kind: str, record: dict) -> bool:
        key, mode = BEST_BY[kind]
        best = self.best_record(kind)
        if best is None:
            return True
        value, incumbent = record[key], best[key]
        return value < incumbent if mode == "min" else value > incumbent


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the files being written are complete.

    An interrupt inside Orbax's save leaves no new checkpoint and background threads failing;
    a save takes well under a second, so the interrupt is honoured right after it. Nests.
    """
    nested = getattr(signal.getsignal(signal.SIGINT), "defers_interrupts", False)
    if nested or threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def record(signum, frame):
        received.append(signum)

    record.defers_interrupts = True
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, record)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


def restore_error(err: Exception, where: str, kind: str, directory: Path) -> JaxninError:
    """What really failed when a checkpoint would not restore, in one line."""
    reason = (str(err).strip().splitlines() or [""])[0][:200]
    about_devices = any(word in reason.lower() for word in ("shard", "device", "mesh"))
    hint = ("it was written for other devices than this host has" if about_devices else
            "it looks damaged or incomplete")
    return JaxninError(f"cannot read the {kind} checkpoint {where} ({type(err).__name__}: "
                       f"{reason}): {hint}; the other checkpoints in {directory} are untouched "
                       "(--debug shows the details)")


def _check_shapes(restored, target, where: str, kind: str) -> None:
    """Orbax restores the saved shapes even into a target of other shapes; refuse that."""
    got = jax.tree_util.tree_flatten_with_path(restored)[0]
    want = jax.tree_util.tree_flatten_with_path(target)[0]
    for (path, have), (_, need) in zip(got, want):
        if np.shape(have) != np.shape(need):
            raise JaxninError(
                f"cannot read the {kind} checkpoint {where}: "
                f"{jax.tree_util.keystr(path)} has shape {np.shape(have)} there but "
                f"{np.shape(need)} in this model (other input channels or classes?): "
                "resume with the original flags, or start a fresh --workdir")
    if len(got) != len(want):
        raise JaxninError(f"cannot read the {kind} checkpoint {where}: it holds {len(got)} "
                          f"arrays, this model {len(want)}: start a fresh --workdir")


def _save_error(err: Exception, kind: str, epoch: int, directory) -> JaxninError | None:
    """A one-line error when saving failed for lack of space; None for anything else."""
    chain, cause = [], err
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if not any(getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e)
               or "RESOURCE_EXHAUSTED" in str(e) for e in chain):
        return None
    return JaxninError(f"no space left on the device while saving the {kind} checkpoint of "
                       f"epoch {epoch} in {directory}: the previous checkpoints there are intact; "
                       "free some space and rerun with --resume")


def _manager(directory: Path) -> ocp.CheckpointManager:
    # Synchronous saves: a checkpoint is complete on disk before the next epoch starts, so a
    # kill -9 can cost at most the epoch in progress. max_to_keep=1: Orbax deletes the older
    # one only after the new one is committed.
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "record"))


def _save_args(state, epoch: int, record: dict):
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items()}
    return ocp.args.Composite(state=ocp.args.StandardSave(state),
                              record=ocp.args.JsonSave({**clean, "epoch": epoch}))
