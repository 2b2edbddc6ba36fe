"""The checkpoint store: one Orbax manager keeps the latest and the best steps, each epoch
written once; run folders of the older per-kind layout still load and go on."""
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxnin.errors import JaxninError
from jaxnin.run import finished_epochs
from jaxnin.train.checkpoint import CheckpointStore, newest_saved_epoch
from per_kind import write_per_kind

BOTH = ("best_loss", "best_acc")


def state_of(epoch):
    return {"w": np.full(3, epoch, np.float32)}


def rec(epoch, loss, acc, **more):
    return {"epoch": epoch, "test_loss": loss, "test_acc": acc, **more}


def save_all(store, records):
    return [store.save(r["epoch"], state_of(r["epoch"]), r) for r in records]


def step_folders(directory):
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def kept(store):
    return [store.latest_epoch(kind) for kind in store.kinds]


def test_an_epoch_both_latest_and_best_is_written_once(tmp_path, monkeypatch):
    saves, real = [], ocp.CheckpointManager.save
    monkeypatch.setattr(ocp.CheckpointManager, "save",
                        lambda self, step, **kw: saves.append(step) or real(self, step, **kw))
    store = CheckpointStore(tmp_path, BOTH)
    written = save_all(store, [rec(1, 1.0, 0.5), rec(2, 0.8, 0.6)])
    store.close()
    assert written == [["latest", "best_loss", "best_acc"]] * 2
    assert saves == [1, 2] and step_folders(tmp_path) == [2]


def test_the_best_steps_outlive_later_epochs_and_the_rest_is_pruned(tmp_path):
    store = CheckpointStore(tmp_path, BOTH)
    written = save_all(store, [rec(1, 1.0, 0.5), rec(2, 0.8, 0.6), rec(3, 0.9, 0.7),
                               rec(4, 0.95, 0.65), rec(5, 0.99, 0.7)])
    assert written[2:] == [["latest", "best_acc"], ["latest"], ["latest"]]
    # latest, best loss, best acc: epoch 3, not 5, whose accuracy only ties it
    assert kept(store) == [5, 2, 3] and step_folders(tmp_path) == [2, 3, 5]
    for kind, epoch in zip(store.kinds, (5, 2, 3)):
        state, record = store.restore(kind, state_of(0))
        assert record["epoch"] == epoch and store.best_record(kind) == record
        np.testing.assert_array_equal(state["w"], epoch)
    store.close()


def test_each_step_keeps_its_metrics_so_a_reopened_store_ranks_alike(tmp_path):
    store = CheckpointStore(tmp_path, BOTH)
    save_all(store, [rec(1, 1.0, 0.5), rec(2, 0.8, 0.6), rec(3, 0.9, 0.7)])
    store.close()
    reader = ocp.CheckpointManager(tmp_path, options=ocp.CheckpointManagerOptions(read_only=True))
    assert reader.metrics(3) == {"epoch": 3, "test_loss": 0.9, "test_acc": 0.7}
    reader.close()
    store = CheckpointStore(tmp_path, BOTH)
    save_all(store, [rec(4, 0.95, 0.65), rec(5, 0.99, 0.6)])
    assert kept(store) == [5, 2, 3] and step_folders(tmp_path) == [2, 3, 5]
    store.close()


def test_a_diverged_epoch_is_never_best_and_goes_once_it_is_not_latest(tmp_path):
    store = CheckpointStore(tmp_path, BOTH)
    diverged = lambda epoch: rec(epoch, 0.1, 0.9, diverged_seeds=[1])
    assert save_all(store, [diverged(1)]) == [["latest"]]
    assert kept(store) == [1, None, None] and store.restore("best_loss", state_of(0)) is None
    assert save_all(store, [rec(2, 1.0, 0.5), diverged(3), rec(4, 2.0, 0.1)]) == [
        ["latest", "best_loss", "best_acc"], ["latest"], ["latest"]]
    assert kept(store) == [4, 2, 2] and step_folders(tmp_path) == [2, 4]
    store.close()


def test_a_damaged_metrics_file_is_one_line(tmp_path):
    store = CheckpointStore(tmp_path, BOTH)
    save_all(store, [rec(1, 1.0, 0.5)])
    store.close()
    (tmp_path / "1" / "metrics" / "metrics").write_bytes(b"\0" * 10)
    with pytest.raises(JaxninError, match=f"cannot read the checkpoints in {tmp_path} "
                                          r"\(JSONDecodeError: .*metrics file looks damaged"):
        CheckpointStore(tmp_path, BOTH)


def per_kind_run(directory):
    """A per-kind folder: latest at epoch 4, best loss 2, best acc 3."""
    write_per_kind(directory, {"latest": (state_of(4), rec(4, 0.95, 0.65)),
                               "best_loss": (state_of(2), rec(2, 0.8, 0.6)),
                               "best_acc": (state_of(3), rec(3, 0.9, 0.7))})


def test_a_per_kind_folder_loads_every_kind_and_goes_on_in_its_layout(tmp_path):
    per_kind_run(tmp_path)
    store = CheckpointStore(tmp_path, BOTH)
    assert kept(store) == [4, 2, 3] and newest_saved_epoch(tmp_path) == 4
    for kind, epoch in zip(store.kinds, (4, 2, 3)):
        state, record = store.restore(kind, state_of(0))
        assert record["epoch"] == epoch
        np.testing.assert_array_equal(state["w"], epoch)
    assert store.save(5, state_of(5), rec(5, 0.5, 0.6)) == ["best_loss", "latest"]
    assert kept(store) == [5, 5, 3]
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_acc", "best_loss", "latest"]
    assert [step_folders(tmp_path / kind) for kind in ("latest", "best_loss", "best_acc")] == [
        [5], [5], [3]]


def test_a_per_kind_folder_saves_best_before_latest(tmp_path, monkeypatch):
    """A kill between the two then leaves the epoch to redo, and so to weigh for best again;
    the epoch saved is latest's even where a best is newer."""
    per_kind_run(tmp_path)
    store = CheckpointStore(tmp_path, BOTH)
    order, real = [], store._save_one
    monkeypatch.setattr(store, "_save_one", lambda what, *args: (order.append(what),
                                                                  real(what, *args)))
    store.save(5, state_of(5), rec(5, 0.5, 0.9))
    store.close()
    assert order == ["best_acc checkpoint", "best_loss checkpoint", "latest checkpoint"]
    (tmp_path / "best_loss" / "6").mkdir()  # as a kill before latest/6 leaves it
    assert newest_saved_epoch(tmp_path) == 5


def test_finished_epochs_and_the_crash_watcher_ask_the_store(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    assert finished_epochs(tmp_path) == 0 and newest_saved_epoch(checkpoints) is None
    store = CheckpointStore(checkpoints, BOTH)
    save_all(store, [rec(1, 0.8, 0.6), rec(2, 0.9, 0.7), rec(3, 0.95, 0.5)])
    store.close()
    (checkpoints / "4.orbax-checkpoint-tmp-1").mkdir()  # a save cut short
    assert step_folders(checkpoints) == [1, 2, 3] and finished_epochs(tmp_path) == 3
    # A run that dies without a word: the watcher (python -S, no Orbax) says what is saved.
    dies = ("import os, sys; from pathlib import Path; from jaxnin import guard; "
            "guard._start_watcher(Path(sys.argv[1])); os._exit(9)")
    died = subprocess.run([sys.executable, "-c", dies, str(checkpoints)], capture_output=True,
                          text=True, timeout=120)
    assert died.returncode == 9
    assert died.stderr.endswith(f"epochs up to 3 are saved in {checkpoints}: rerun the same "
                                "command with --resume to continue\n"), died.stderr
