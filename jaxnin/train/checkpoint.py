"""Orbax checkpoints: the latest (to resume) and the best by each tracked test metric.

One CheckpointManager keeps them all under `directory/<epoch>`: its preservation policy keeps
the newest step and, for each tracked metric, the best step, ranked by the metrics saved with
each step; Orbax deletes the other steps once a new one is committed. An epoch that is both
latest and best is written once.

Run folders written before this layout (one manager per kind under `directory/<kind>/<epoch>`,
from when Orbax's best_fn evicted a latest that was not the best: orbax #526, fixed by the
preservation policies of Orbax 0.11.17) keep that layout: they load and resume as they did.
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
from orbax.checkpoint.checkpoint_managers import AnyPreservationPolicy, BestN, LatestN

from jaxnin.errors import JaxninError
from jaxnin.files import finite

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
    Opening a store creates `directory`; which epochs it holds, ask it (or, without Orbax,
    newest_saved_epoch), not its folders.
    """

    def __init__(self, directory: str | Path, best: tuple[str, ...] = ("best_loss",)):
        self.directory = Path(directory).absolute()
        unknown = set(best) - set(BEST_BY)
        if unknown:
            raise JaxninError(f"unknown best-checkpoint kind {sorted(unknown)}: use {list(BEST_BY)}")
        self.kinds = ("latest", *best)
        # A run folder saved per kind goes on in that layout (see above): nothing is moved.
        self._per_kind = any((self.directory / kind).is_dir() for kind in ("latest", *BEST_BY))
        if self._per_kind:
            self._managers = {kind: _kind_manager(self.directory / kind) for kind in self.kinds}
        else:
            self._managers = dict.fromkeys(self.kinds, _manager(self.directory, best))

    def save(self, epoch: int, state, record: dict) -> list[str]:
        """Save `state` after `epoch`; returns the kinds it is now: latest, and each best_* it
        improves on (a tie keeps the earlier epoch).

        The step is complete on disk when this returns; only then are the steps no kind keeps
        any more deleted. A record with a diverged seed (--seeds K) is never best: its state
        holds a NaN replica. Call only with finite metrics.
        """
        with interrupts_deferred():
            if self._per_kind:
                return self._save_per_kind(epoch, state, record)
            self._save_one("checkpoint", self._managers["latest"], epoch, state, record,
                           _metrics(epoch, record, self.kinds[1:]))
        return [kind for kind in self.kinds if self.latest_epoch(kind) == epoch]

    def epoch(self, record: dict, state) -> None:
        """As a writer of fit: save after each finished epoch."""
        self.save(record["epoch"], state, record)

    def _save_one(self, what, manager, epoch, state, record, metrics=None) -> None:
        try:
            manager.save(epoch, args=_save_args(state, epoch, record), metrics=metrics,
                         force=True)
            manager.wait_until_finished()
        except Exception as err:  # Orbax wraps I/O errors in several types
            raise _save_error(err, what, epoch, manager.directory) or err

    def latest_epoch(self, kind: str = "latest") -> int | None:
        """The epoch of the `kind` checkpoint (the newest for latest), or None if there is none."""
        manager = self._managers[kind]
        if self._per_kind or kind == "latest":
            return manager.latest_step()
        rank = _rank(kind)
        scored = [(rank(metrics), step) for step in manager.all_steps()
                  if (metrics := manager.metrics(step)) is not None]
        return max(scored)[1] if scored else None

    def folder(self, kind: str) -> Path | None:
        """The folder of the `kind` checkpoint (one folder may be several kinds), or None."""
        epoch = self.latest_epoch(kind)
        return None if epoch is None else Path(self._managers[kind].directory) / str(epoch)

    def restore(self, kind: str, target) -> tuple[object, dict] | None:
        """(state, record) of the `kind` checkpoint, or None if there is none.

        `target` is a state of the same structure (e.g. freshly initialised) to restore into.
        """
        manager, epoch = self._managers[kind], self.latest_epoch(kind)
        if epoch is None:
            return None
        where = f"{manager.directory}/{epoch}"
        try:
            restored = manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), record=ocp.args.JsonRestore()))
        except Exception as err:  # Orbax raises many types for a damaged or mismatched dir
            raise restore_error(err, where, kind, self.directory) from err
        if target is not None:
            _check_shapes(restored.state, target, where, kind)
        return restored.state, dict(restored.record)

    def best_record(self, kind: str) -> dict | None:
        """The history record stored with the `kind` checkpoint."""
        manager, epoch = self._managers[kind], self.latest_epoch(kind)
        if epoch is None:
            return None
        return dict(manager.restore(epoch, args=ocp.args.Composite(
            record=ocp.args.JsonRestore())).record)

    def close(self) -> None:
        for manager in set(self._managers.values()):
            manager.close()

    # --- the per-kind layout of older runs: best first, then latest ----------------------------

    def _save_per_kind(self, epoch: int, state, record: dict) -> list[str]:
        # Best first: a kill between the writes leaves the epoch to be redone, and so weighed
        # for best again, by --resume.
        written = []
        eligible = not record.get("diverged_seeds")
        for kind in reversed(self.kinds):
            if kind == "latest" or (eligible and self._improves(kind, record)):
                self._save_one(f"{kind} checkpoint", self._managers[kind], epoch, state, record)
                written.append(kind)
        return written

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
    reason = _reason(err)
    about_devices = any(word in reason.lower() for word in ("shard", "device", "mesh"))
    hint = ("it was written for other devices than this host has" if about_devices else
            "it looks damaged or incomplete")
    return JaxninError(f"cannot read the {kind} checkpoint {where} ({type(err).__name__}: "
                       f"{reason}): {hint}; the other checkpoints in {directory} are untouched "
                       "(`debug` shows the details)")


def _reason(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


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
                "resume with the original config, or start a fresh `workdir`")
    if len(got) != len(want):
        raise JaxninError(f"cannot read the {kind} checkpoint {where}: it holds {len(got)} "
                          f"arrays, this model {len(want)}: start a fresh `workdir`")


def _save_error(err: Exception, what: str, epoch: int, directory) -> JaxninError | None:
    """A one-line error when saving failed for lack of space; None for anything else."""
    chain, cause = [], err
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if not any(getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e)
               or "RESOURCE_EXHAUSTED" in str(e) for e in chain):
        return None
    saved = newest_saved_epoch(str(directory))
    kept = ("no epoch was saved: free some space and start again" if saved is None else
            f"the checkpoints up to epoch {saved} there are intact: free some space and resume "
            "(`resume`)")
    return JaxninError(f"no space left on the device while saving the {what} of epoch {epoch} "
                       f"in {directory}; {kept}")


def _options(**keeping) -> ocp.CheckpointManagerOptions:
    # Synchronous saves: a checkpoint is complete on disk before the next epoch starts, so a
    # kill -9 can cost at most the epoch in progress; Orbax deletes the steps it no longer
    # keeps only after the new one is committed.
    return ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False, **keeping)


def _manager(directory: Path, best: tuple[str, ...]) -> ocp.CheckpointManager:
    """The one manager of every kind: it keeps the newest step and the best step per kind."""
    policies = [LatestN(n=1), *(BestN(get_metric_fn=_rank(kind), n=1,
                                      keep_checkpoints_without_metrics=False) for kind in best)]
    # best_fn only makes Orbax write each step's metrics (the policy decides what is kept).
    options = _options(preservation_policy=AnyPreservationPolicy(policies),
                       best_fn=_rank(best[0]) if best else None, best_mode="max")
    try:
        return ocp.CheckpointManager(directory, options=options, item_names=("state", "record"))
    except Exception as err:  # it reads every step's metrics file as it opens
        raise JaxninError(f"cannot read the checkpoints in {directory} ({type(err).__name__}: "
                          f"{_reason(err)}): a step's metrics file looks damaged; move that "
                          "step's folder away to resume from the others (`debug` shows the "
                          "details)") from err


def _kind_manager(directory: Path) -> ocp.CheckpointManager:
    """One kind's manager in the per-kind layout: its newest step only."""
    return ocp.CheckpointManager(directory, options=_options(max_to_keep=1),
                                 item_names=("state", "record"))


def _metrics(epoch: int, record: dict, best: tuple[str, ...]) -> dict | None:
    """What a step is ranked by; None, so never best, for a diverged seed or a non-finite
    metric (BestN drops steps without metrics: keep_checkpoints_without_metrics=False)."""
    values = {BEST_BY[kind][0]: record[BEST_BY[kind][0]] for kind in best}
    if record.get("diverged_seeds") or not all(math.isfinite(v) for v in values.values()):
        return None
    return {"epoch": epoch, **values}


def _rank(kind: str):
    """The sort key of a step's metrics for `kind`: the best step's is the largest (a tuple:
    Orbax only sorts by it). A tie goes to the earlier epoch, as in the per-kind layout, where
    only a strict improvement saved."""
    key, mode = BEST_BY[kind]
    sign = -1.0 if mode == "min" else 1.0
    return lambda metrics: (sign * metrics[key], -metrics["epoch"])


def _save_args(state, epoch: int, record: dict):
    clean = finite(record)  # strict JSON, as history.json: a diverged seed's NaN is null
    return ocp.args.Composite(state=ocp.args.StandardSave(state),
                              record=ocp.args.JsonSave({**clean, "epoch": epoch}))
