"""fit(): checkpoints, resume, divergence, and the files a run leaves behind."""
import dataclasses
import json

import chex
import jax
import numpy as np
import pytest

from faults import diverging_in
from per_kind import rewrite_per_kind
from jaxnin.data.pipeline import to_device
from jaxnin.errors import JaxninError
from jaxnin.report.logging import Curves, TensorBoard
from jaxnin.run import fit
from jaxnin.train import loop
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.config import TrainConfig
from jaxnin.train.factories import initial_state

TINY = TrainConfig(model="lenet", dataset="fashion_mnist", epochs=3, batch_size=32,
                   optimizer="momentum", lr=0.05, resize=None, limit_train=512, limit_test=300,
                   eval_batch_size=128, best=("best_loss", "best_acc"))
TIMING = ("epoch_time_s", "examples_per_s", "train_time_s", "eval_time_s", "compile_time_s",
          "compiles", "compile_cache_hits")


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def latest_params(workdir, config, data):
    fresh, _ = initial_state(config, data, to_device(data.train_images, data.train_labels, 8))
    store = CheckpointStore(workdir / "checkpoints", config.best)
    state, record = store.restore("latest", fresh)
    store.close()
    return jax.device_get(state.params), record


@pytest.fixture(scope="module")
def straight(fashion, tmp_path_factory):
    """TINY trained without a stop, once for the tests here, with the writers a command line
    gives fit: (history, workdir)."""
    workdir = tmp_path_factory.mktemp("straight")
    writers = [TensorBoard(workdir), Curves(workdir, "lenet on fashion_mnist")]
    return fit(TINY, fashion, workdir, callbacks=writers).history, workdir


def assert_resumed_like(resumed, split, straight, data):
    history, workdir = straight
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert without_timing(resumed) == without_timing(history)
    params_a, record_a = latest_params(workdir, TINY, data)
    params_b, record_b = latest_params(split, TINY, data)
    chex.assert_trees_all_equal(params_a, params_b)
    assert record_a["epoch"] == record_b["epoch"] == 3


def test_resume_equals_an_uninterrupted_run(fashion, straight, tmp_path):
    fit(dataclasses.replace(TINY, epochs=2), fashion, tmp_path / "split")
    resumed = fit(TINY, fashion, tmp_path / "split", resume=True).history
    assert_resumed_like(resumed, tmp_path / "split", straight, fashion)


def test_a_run_saved_per_kind_resumes_in_its_layout_like_an_uninterrupted_run(fashion, straight,
                                                                              tmp_path):
    """Run folders from before one manager kept every kind go on as they were saved."""
    fit(dataclasses.replace(TINY, epochs=2), fashion, tmp_path)
    checkpoints = tmp_path / "checkpoints"
    fresh, _ = initial_state(TINY, fashion, to_device(fashion.train_images,
                                                      fashion.train_labels, 8))
    rewrite_per_kind(checkpoints, TINY.best, fresh)
    resumed = fit(TINY, fashion, tmp_path, resume=True).history
    assert_resumed_like(resumed, tmp_path, straight, fashion)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best_acc", "best_loss", "latest"]
    store = CheckpointStore(checkpoints, TINY.best)
    assert store.latest_epoch() == 3 and all(store.restore(kind, fresh) for kind in store.kinds)
    store.close()


def test_warmup_and_clipping_resume_like_an_uninterrupted_run(fashion, tmp_path):
    """A 20-step warm-up spans epochs 1 and 2 (16 steps each); the clipped optimizer's state
    is what the checkpoint restores."""
    config = dataclasses.replace(TINY, epochs=2, warmup_steps=20, clip_norm=0.5)
    straight = fit(config, fashion, tmp_path / "straight").history
    fit(dataclasses.replace(config, epochs=1), fashion, tmp_path / "split")
    resumed = fit(config, fashion, tmp_path / "split", resume=True).history
    assert without_timing(resumed) == without_timing(straight)
    assert [r["lr"] for r in straight] == pytest.approx([0.05 / 20, 0.05 * 17 / 20])
    plain = fit(dataclasses.replace(TINY, epochs=1), fashion, tmp_path / "plain").history
    assert without_timing(straight)[:1] != without_timing(plain)


def test_a_run_leaves_history_run_record_curves_and_checkpoints(straight):
    history, workdir = straight
    saved = json.loads((workdir / "history.json").read_text())
    assert saved == history and len(saved) == 3
    assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time_s",
            "examples_per_s", "compile_time_s"} <= set(saved[0])
    assert all(r["test_examples"] == 300 and r["train_examples"] == 512 for r in saved)
    # Fixed shapes: epochs 2 and 3 and every evaluation reuse the first epoch's programs.
    assert saved[0]["compiles"] > 0 and [r["compiles"] for r in saved[1:]] == [0, 0]
    run = json.loads((workdir / "run.json").read_text())
    assert run["config"] == TINY.to_json() and run["device_count"] >= 1
    assert {"jax_version", "device_kind", "git_commit", "command", "results"} <= set(run)
    assert run["versions"]["flax"] and run["versions"]["numpy"] == np.__version__
    assert run["host"]["cores"] >= 1 and run["host"]["cpu"]
    assert run["results"]["process_wall_s"] > run["results"]["train_time_s"] > 0
    for name in ("loss.png", "acc.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    store = CheckpointStore(workdir / "checkpoints", TINY.best)
    for kind, key, pick in [("best_loss", "test_loss", min), ("best_acc", "test_acc", max)]:
        assert store.latest_epoch(kind) == pick(saved, key=lambda r: r[key])["epoch"]
    assert store.latest_epoch() == 3
    store.close()


def test_best_and_latest_are_kept_apart(tmp_path):
    """The best-loss checkpoint survives later, worse epochs; latest always moves on."""
    store = CheckpointStore(tmp_path, ("best_loss", "best_acc"))
    state = {"w": np.zeros(3, np.float32)}
    for epoch, loss, acc in [(1, 1.0, 0.5), (2, 0.8, 0.6), (3, 0.9, 0.7), (4, 0.95, 0.65)]:
        state = {"w": np.full(3, epoch, np.float32)}
        store.save(epoch, state, {"test_loss": loss, "test_acc": acc})
    assert store.best_record("best_loss")["epoch"] == 2
    assert store.best_record("best_acc")["epoch"] == 3
    latest, record = store.restore("latest", state)
    best, _ = store.restore("best_loss", state)
    store.close()
    assert record["epoch"] == 4
    np.testing.assert_array_equal(latest["w"], 4)
    np.testing.assert_array_equal(best["w"], 2)


def test_divergence_stops_cleanly_and_keeps_the_last_good_checkpoint(fashion, tmp_path,
                                                                     monkeypatch):
    diverging_in(2, monkeypatch)
    with pytest.raises(JaxninError, match="diverged in epoch 2 .*checkpoints up to epoch 1 are "
                                          "kept.*lower `lr`"):
        fit(TINY, fashion, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1]  # the NaN epoch reached no writer
    params, record = latest_params(tmp_path, TINY, fashion)
    assert record["epoch"] == 1
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params))
    store = CheckpointStore(tmp_path / "checkpoints", TINY.best)
    assert [store.latest_epoch(kind) for kind in ("best_loss", "best_acc")] == [1, 1]
    store.close()


def test_divergence_in_the_first_epoch_says_nothing_was_saved_and_leaves_nothing(fashion,
                                                                                  tmp_path):
    config = dataclasses.replace(TINY, optimizer="sgd", lr=1e4, epochs=2)
    with pytest.raises(JaxninError, match="diverged in epoch 1 .*nothing was saved"):
        fit(config, fashion, tmp_path / "run")
    assert not (tmp_path / "run").exists(), list(tmp_path.rglob("*"))


def test_no_recompile_when_a_shape_varies_is_caught(fashion, tmp_path, monkeypatch):
    """The compile count is real: an epoch whose batch shape changes shows its compiles."""
    real = loop.train_epoch
    calls = []

    def varying(state, split, key, batch_size, *args, **kwargs):
        calls.append(1)
        return real(state, split, key, batch_size + (len(calls) == 2) * 8, *args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", varying)
    history = fit(TINY, fashion, tmp_path).history
    assert history[1]["compiles"] > 0 and history[2]["compiles"] == 0


def test_resume_refuses_a_changed_config(fashion, tmp_path):
    fit(dataclasses.replace(TINY, epochs=1), fashion, tmp_path)
    with pytest.raises(JaxninError, match="lr was 0.05, now 0.1"):
        fit(dataclasses.replace(TINY, lr=0.1), fashion, tmp_path, resume=True)
    with pytest.raises(JaxninError, match="already holds a run with 1 finished epoch.*add `resume`"):
        fit(TINY, fashion, tmp_path)
    # A fresh start of another config: its differences, and another workdir (a resume could
    # not work), never `resume`.
    with pytest.raises(JaxninError, match=r"already holds a different run, with 1 finished "
                       r"epoch\(s\) \(lr was 0.05, now 0.1\): choose another `workdir`$"):
        fit(dataclasses.replace(TINY, lr=0.1), fashion, tmp_path)
