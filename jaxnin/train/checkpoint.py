"""Orbax checkpoints: the latest (to resume) and the best by a test metric, kept apart.

Orbax's own best_fn would evict the latest checkpoint when it is not the best (orbax #526), so
each kind lives in its own CheckpointManager under `directory/<kind>/<epoch>`.
"""
import math
from pathlib import Path

import orbax.checkpoint as ocp

from jaxnin.errors import JaxninError

# kind -> (history key, "min" or "max"): seed 000 keeps the lowest test loss, seed 002 the
# highest test accuracy.
BEST_BY = {"best_loss": ("test_loss", "min"), "best_acc": ("test_acc", "max")}


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
        """Save `state` after `epoch` as latest, and as best wherever `record` improves on it.

        Returns the kinds written. Call only with finite metrics.
        """
        written = []
        for kind, manager in self._managers.items():
            if kind == "latest" or self._improves(kind, record):
                manager.save(epoch, args=_save_args(state, epoch, record), force=True)
                manager.wait_until_finished()
                written.append(kind)
        return written

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
            raise JaxninError(f"cannot read the {kind} checkpoint {manager.directory}/{epoch} "
                              f"({type(err).__name__}): delete that folder to fall back to an "
                              "older one, or start a fresh --workdir") from err
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
