"""A run as a value: what `fit` returns and what `load_run` opens from a finished workdir.

    run = jaxnin.load_run("runs/lenet")            # its config, model, history, checkpoints
    jaxnin.evaluate(run, "test")                   # best checkpoint: {"loss", "acc", "count", ...}
    jaxnin.evaluate(run, "test", checkpoint="latest")
    jaxnin.predict(run, images)                    # class indices of uint8 (N, H, W, C) images

States are read from the workdir's checkpoints when first asked for, so opening a run is cheap.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np

from jaxnin.data import ImageDataset, check_dataset, load_data
from jaxnin.data.pipeline import preprocess, to_device
from jaxnin.errors import JaxninError
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import model_for
from jaxnin.train.replicas import per_seed_metrics
from jaxnin.train.run_dir import (Restored, read_history, read_run_record, restore_checkpoint,
                                  run_config)
from jaxnin.train.steps import TrainState, evaluate_split

SPLITS = ("train", "test")


@dataclasses.dataclass(eq=False)
class Run:
    """A trained run: its config, model, per-epoch history and checkpoints in `workdir`.

    `state` is the last epoch's TrainState and `best_state` the one with the best value of
    the run's first `config.best` metric (the lowest test loss unless told otherwise); both
    are read from the checkpoints on first use. `checkpoint_epochs` gives each kept
    checkpoint's epoch. A run of several seeds (`seeds` > 1) opened by `fit` holds every
    replica stacked along a leading axis; `load_run` picks one seed (`seed`).
    """
    config: TrainConfig
    workdir: Path
    history: list[dict]
    class_names: tuple[str, ...]
    seed: int | None = None  # the replica chosen by load_run; None: all (fit's run)
    data: ImageDataset | None = None  # the data, where it is already in memory
    data_dir: str | None = None  # where to load the data from instead of the config's
    _restored: dict = dataclasses.field(default_factory=dict, repr=False)

    @functools.cached_property
    def model(self) -> nn.Module:
        """The Flax module the run trained (apply it with `state.params`)."""
        return model_for(self.config, len(self.class_names))

    @property
    def state(self) -> TrainState:
        return self.checkpoint("latest")

    @property
    def best_state(self) -> TrainState:
        return self.checkpoint(self.config.best[0])

    @property
    def checkpoint_epochs(self) -> dict[str, int]:
        """{kind: epoch} of every checkpoint the run keeps ("latest", "best_loss", ...), read
        from the checkpoint store without restoring any state."""
        if not (self.workdir / "checkpoints").is_dir():  # opening a store would create it
            return {}
        store = CheckpointStore(self.workdir / "checkpoints", self.config.best)
        try:
            epochs = {kind: store.latest_epoch(kind) for kind in store.kinds}
        finally:
            store.close()
        return {kind: epoch for kind, epoch in epochs.items() if epoch is not None}

    def checkpoint(self, kind: str) -> TrainState:
        """The TrainState of checkpoint `kind`: "latest" or one of `config.best`."""
        return self.restored(kind).state

    def restored(self, kind: str) -> Restored:
        """Checkpoint `kind` with its epoch and that epoch's history record."""
        if kind not in self._restored:
            self._restored[kind] = restore_checkpoint(
                self.workdir, self.config, self.dataset(), (kind,), self.seed,
                all_seeds=self.seed is None)
        return self._restored[kind]

    def dataset(self) -> ImageDataset:
        """The run's data: in memory where fit was given it, else loaded as the config says."""
        if self.data is None:
            self.data = load_data(self.config.dataset, self.data_dir or self.config.data_dir,
                                  self.config.data_options)
            check_dataset(self.data, self.config.dataset, self.config.data_options)
        return self.data


def load_run(workdir: str | Path, seed: int | None = None,
             data_dir: str | None = None) -> Run:
    """Open a run that `fit` (or a recipe's command) wrote into `workdir`.

    `seed` picks one replica of a run of several seeds (default: the first). `data_dir` says
    where the dataset is now, if it moved. Raises JaxninError in one line for a folder that is
    not a run, or a damaged one.
    """
    workdir = Path(workdir)
    record = read_run_record(workdir)
    config = run_config(workdir)
    if seed is not None and seed not in config.seed_values:
        raise JaxninError(f"{workdir} trained seed(s) "
                          f"{', '.join(map(str, config.seed_values))}, not `seed` {seed}")
    history = read_history(workdir) or []
    return Run(config, workdir, history, tuple(record["dataset"]["class_names"]),
               seed=config.seed if seed is None else seed, data_dir=data_dir)


def evaluate(run: Run, split: str = "test", checkpoint: str | None = None,
             data: ImageDataset | None = None) -> dict | list[dict]:
    """Score a run's checkpoint on `split` ("test" or "train"), every example counted once.

    `checkpoint` is "latest" or one of `run.config.best` (default: the first, e.g.
    "best_loss"). The split is limited as the run was (`limit_test`, `limit_train`), so the
    result equals the run's recorded numbers for that checkpoint's epoch. `data` scores other
    data of the same kind (checked against the config). Returns {"loss", "acc", "count",
    "dead_classes", "classes"}; for a state of stacked replicas, a list with one per seed.
    """
    if not isinstance(run, Run):  # the split-level sums had this name before
        return _deprecated_evaluate(run, split, checkpoint, data)
    if split not in SPLITS:
        raise JaxninError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if data is not None:
        check_dataset(data, run.config.dataset, run.config.data_options)
    data = data if data is not None else run.dataset()
    state = run.checkpoint(checkpoint or run.config.best[0])
    limit = run.config.limit_test if split == "test" else run.config.limit_train
    device_split = to_device(getattr(data, f"{split}_images"), getattr(data, f"{split}_labels"),
                             limit)
    sums = evaluate_split(state, device_split, run.config.eval_batch_size, run.config.resize,
                          run.config.cpu_convolutions)
    metrics = per_seed_metrics(sums)
    return metrics[0] if state.step.ndim == 0 else metrics


def _deprecated_evaluate(state, split, batch_size, resize):
    import warnings

    warnings.warn("jaxnin.evaluate(state, split, batch_size, resize) is now "
                  "jaxnin.evaluate_split; jaxnin.evaluate(run, split) scores a run",
                  DeprecationWarning, stacklevel=3)
    return evaluate_split(state, split, batch_size, resize)


def predict(run_or_state, images: np.ndarray, resize: int | None = None,
            batch_size: int | None = None) -> np.ndarray:
    """The predicted class of each uint8 image (N, H, W, C), a batch at a time.

    Given a Run, its best checkpoint predicts, at the run's resize and eval batch size;
    given a TrainState, `resize` and `batch_size` (default 500) say how.
    """
    if isinstance(run_or_state, Run):
        run = run_or_state
        state = run.best_state
        resize, batch_size = run.config.resize, batch_size or run.config.eval_batch_size
    else:
        state = run_or_state
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise JaxninError(f"images must be uint8 (N, H, W, C), got {images.dtype} "
                          f"{tuple(images.shape)}")
    batch_size = batch_size or 500
    classes = [np.asarray(jax.device_get(_logits(state, images[i:i + batch_size], resize)))
               .argmax(-1) for i in range(0, len(images), batch_size)]
    return np.concatenate(classes) if classes else np.zeros((0,), np.int64)


def _logits(state: TrainState, images: np.ndarray, resize: int | None):
    return state.apply_fn({"params": state.params}, preprocess(images, resize))


__all__: Sequence[str] = ("Run", "evaluate", "load_run", "predict")
