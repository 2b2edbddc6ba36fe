"""A finished run's workdir, opened again: its record, its config, its data and a checkpoint.

Shared by jaxnin.runs (load_run, evaluate, predict) and the ONNX export, so that they all
read run.json and pick checkpoints the same way.
"""
import json
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnin.data import load_data
from jaxnin.data.pipeline import DeviceSplit
from jaxnin.data.dataset import ImageDataset
from jaxnin.errors import JaxninError
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import initial_state
from jaxnin.train.steps import TrainState


class Restored(NamedTuple):
    """A checkpoint read back: the state, its kind ("best_loss", ...), epoch and history record."""
    state: TrainState
    kind: str
    epoch: int
    record: dict


def read_run_record(run_dir: Path) -> dict:
    """The run's run.json (config, dataset with class names, versions, results)."""
    path = Path(run_dir) / "run.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise JaxninError(f"{path} not found: RUN_DIR must be a jaxnin run's workdir") from None
    except (OSError, ValueError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise JaxninError(f"{path} is not a jaxnin run record ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise JaxninError(f"{path} is not a jaxnin run record (it has no config)")
    if not record["config"].get("model"):
        raise JaxninError(f"{path} has an empty or partial config (no model): it was not "
                          "written by a jaxnin run, or was edited; the checkpoints were not read")
    return record


def run_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig the run was trained with."""
    try:
        return TrainConfig.from_json(read_run_record(run_dir)["config"])
    except TypeError as err:
        raise JaxninError(f"{Path(run_dir) / 'run.json'} is not a jaxnin run record "
                          f"({err})") from None


def read_history(run_dir: Path) -> list[dict] | None:
    """The run's history.json: one record per epoch; None where there is none yet. A file
    that cannot be read or is not a list of epoch records is refused in one line."""
    path = Path(run_dir) / "history.json"
    try:
        history = json.loads(path.read_text())
        if not (isinstance(history, list) and all(isinstance(r, dict)
                                                  and isinstance(r.get("epoch"), int)
                                                  for r in history)):
            raise ValueError("not a list of per-epoch records")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise JaxninError(f"{path} cannot be read ({err.strerror or err})") from None
    except ValueError as err:  # json.JSONDecodeError too
        raise JaxninError(f"{path} is damaged ({err})") from None
    return history


def run_data(config: TrainConfig, data_dir: str | None = None) -> ImageDataset:
    """The run's dataset, from `data_dir` if given (the data moved), else where it was."""
    return load_data(config.dataset, data_dir or config.data_dir, config.data_options)


def restore_checkpoint(run_dir: Path, config: TrainConfig, data: ImageDataset,
                       kinds: tuple[str, ...], seed: int | None = None,
                       all_seeds: bool = False) -> Restored:
    """The first of `kinds` (in order of preference) that the run has a checkpoint of.

    Kinds the run never tracked are skipped; the error names the ones it has. From a run of
    several seeds at once (`seeds` K) it returns the replica of `seed` (default: the first),
    or all K stacked with `all_seeds`; its checkpoints were chosen by the mean over seeds.
    """
    replica = _replica_index(config, seed, run_dir)
    run_dir = Path(run_dir)
    tracked = ("latest", *config.best)
    wanted = [kind for kind in kinds if kind in tracked]
    if not wanted:
        raise JaxninError(f"{run_dir} keeps only {', '.join(tracked)} checkpoints, not "
                          f"{' or '.join(kinds)}: choose one of those")
    if not (run_dir / "checkpoints").is_dir():  # opening a store would create the folders
        raise JaxninError(f"{run_dir} has no checkpoint yet: let its run finish an epoch first")
    target = abstract_state(config, data)
    store = CheckpointStore(run_dir / "checkpoints", config.best)
    try:
        for kind in wanted:
            restored = store.restore(kind, target)
            if restored is not None:
                state, record = restored
                if config.seeds > 1 and not all_seeds:
                    state = jax.tree.map(lambda leaf: leaf[replica], state)
                return Restored(state, kind, record["epoch"], record)
    finally:
        store.close()
    raise JaxninError(f"{run_dir} has no {' or '.join(wanted)} checkpoint yet: let its run "
                      "finish an epoch first")


def _replica_index(config: TrainConfig, seed: int | None, run_dir: Path) -> int:
    if seed is None:
        return 0
    if seed not in config.seed_values:
        raise JaxninError(f"{run_dir} trained seed(s) {', '.join(map(str, config.seed_values))}, "
                          f"not `seed` {seed}: choose one of those")
    return config.seed_values.index(seed)


def abstract_state(config: TrainConfig, data: ImageDataset) -> TrainState:
    """The run's TrainState as shapes and dtypes only: the target Orbax restores into.

    Shapes are all a restore needs; a real initial state would compile the model's init
    (7 s for a small NiN on 2 CPU cores) and put the training split on the device.
    """
    count = len(data.train_labels[:config.limit_train])
    train = DeviceSplit(jax.ShapeDtypeStruct((count, *data.train_images.shape[1:]), jnp.uint8),
                        jax.ShapeDtypeStruct((count,), jnp.int32))
    shapes = jax.eval_shape(lambda: initial_state(config, data, train)[0])
    # Restored whole onto this host's first device, however many devices trained the run
    # (Orbax would otherwise try to lay it out as it was saved, e.g. over 8 devices).
    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=here), shapes)
