"""Run folders as jaxnin saved them before one Orbax manager kept every kind: one manager per
kind (latest, best_loss, best_acc), each keeping its newest step, under checkpoints/<kind>/<epoch>.
Written here with Orbax itself and the options jaxnin used, not with jaxnin's store."""
import shutil

import orbax.checkpoint as ocp

from jaxnin.train.checkpoint import CheckpointStore


def write_per_kind(checkpoints, saved: dict) -> None:
    """`saved`: kind -> (state, record), the record holding its epoch."""
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           enable_async_checkpointing=False)
    for kind, (state, record) in saved.items():
        manager = ocp.CheckpointManager(checkpoints / kind, options=options,
                                        item_names=("state", "record"))
        manager.save(record["epoch"], args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)))
        manager.close()


def rewrite_per_kind(checkpoints, best: tuple[str, ...], target) -> None:
    """Turn a run's checkpoints (one manager) into the per-kind layout, state for state."""
    store = CheckpointStore(checkpoints, best)
    saved = {kind: store.restore(kind, target) for kind in store.kinds}
    store.close()
    shutil.rmtree(checkpoints)
    write_per_kind(checkpoints, saved)
