"""--seeds K: K replicas in one program, each equal to the single run with its seed."""
import dataclasses
import json
import math

import chex
import jax
import numpy as np
import optax
import pytest

from jaxnin.data.pipeline import to_device
from jaxnin.models import create_model
from jaxnin.errors import JaxninError
from jaxnin.train.config import TrainConfig
from jaxnin.run import fit
from jaxnin.train.run_dir import restore_checkpoint
from jaxnin.train.replicas import epoch_metrics, run_keys, seed_results
from jaxnin.train.steps import create_train_state, evaluate_split, replica_count, train_epoch
from jaxnin.train.optim import make_optimizer
from alike import assert_trained_alike, fresh_state, latest_params
from synthetic import random_dataset

# A VGG small enough for the CPU, with dropout, so that init, shuffles and dropout masks must
# all match per seed.
TINY_VGG = TrainConfig(model="vgg11", model_options={"width_divisor": 16, "hidden": 64,
                                                     "dropout": 0.5},
                       resize=32, epochs=2, batch_size=16, optimizer="sgd", lr=0.05, eval_batch_size=32,
                       seed=5, seeds=2)


def test_replica_i_equals_the_single_run_with_seed_i(tmp_path):
    data = random_dataset(96, 40)
    together = fit(TINY_VGG, data, tmp_path / "together").history
    stacked = latest_params(tmp_path / "together", TINY_VGG, data)
    for i, seed in enumerate(TINY_VGG.seed_values):
        alone_config = dataclasses.replace(TINY_VGG, seed=seed, seeds=1)
        alone = fit(alone_config, data, tmp_path / f"seed{seed}").history
        for epoch_together, epoch_alone in zip(together, alone):
            for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
                assert epoch_together["per_seed"][key][i] == pytest.approx(
                    epoch_alone[key], abs=1e-5), (seed, key)
        replica = jax.tree.map(lambda x: x[i], stacked)
        alone_params = latest_params(tmp_path / f"seed{seed}", alone_config, data)
        if jax.default_backend() == "cpu":  # K copies of the single run's program: its bits
            chex.assert_trees_all_equal(replica, alone_params)
        else:  # vmapped convolutions are grouped ones: the same sums in another order
            assert_trained_alike(replica, alone_params, fresh_state(alone_config, data).params)
        # predict and the ONNX export pick a seed's model out of the run: this replica's
        picked = restore_checkpoint(tmp_path / "together", TINY_VGG, data, ("latest",), seed)
        chex.assert_trees_all_equal(jax.device_get(picked.state.params), replica)
    with pytest.raises(JaxninError, match="trained seed.s. 5, 6, not `seed` 7"):
        restore_checkpoint(tmp_path / "together", TINY_VGG, data, ("latest",), 7)


def test_stacked_states_and_fused_epochs_per_replica():
    model = create_model("lenet")
    tx = make_optimizer("adam", optax.constant_schedule(1e-3))
    keys = jax.numpy.stack([jax.random.key(3), jax.random.key(4)])
    stacked = create_train_state(model, tx, keys, (28, 28, 1))
    assert replica_count(stacked) == 2
    single = create_train_state(model, tx, jax.random.key(4), (28, 28, 1))
    assert replica_count(single) is None
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], stacked.params), single.params)
    data = random_dataset(64, 40)
    split = to_device(data.train_images, data.train_labels)
    epoch_keys = jax.numpy.stack([jax.random.key(7), jax.random.key(8)])
    fused, fused_sums = train_epoch(stacked, split, epoch_keys, 16, fused=True)
    stacked = create_train_state(model, tx, keys, (28, 28, 1))  # the fused epoch donated it
    stepped, stepped_sums = train_epoch(stacked, split, epoch_keys, 16, fused=False)
    chex.assert_shape(list(fused_sums.values()), (2,))
    chex.assert_trees_all_close(fused_sums, stepped_sums, atol=1e-4)
    chex.assert_trees_all_close(fused.params, stepped.params, atol=1e-5)
    test_sums = evaluate_split(fused, to_device(data.test_images, data.test_labels), 16)
    np.testing.assert_array_equal(test_sums["count"], [40, 40])


def test_run_keys_give_each_replica_its_single_run_key():
    keys = run_keys(TrainConfig(model="lenet", seed=5, seeds=3), 1)
    for i in range(3):
        single = run_keys(TrainConfig(model="lenet", seed=5 + i), 1)
        np.testing.assert_array_equal(jax.random.key_data(keys[i]), jax.random.key_data(single))


def test_a_diverged_seed_is_named_and_left_out_of_the_mean_loss():
    metrics = lambda loss, acc: {"loss": loss, "acc": acc, "count": 10}
    record = epoch_metrics([metrics(1.0, 0.5), metrics(math.nan, 0.1), metrics(3.0, 0.9)],
                           [metrics(2.0, 0.4), metrics(math.nan, 0.1), metrics(4.0, 0.7)],
                           [0, 1, 2])
    assert record["train_loss"] == 2.0 and record["test_loss"] == 3.0
    assert record["train_acc"] == pytest.approx(0.5) and record["test_acc"] == pytest.approx(0.4)
    assert record["diverged_seeds"] == [1]
    assert record["per_seed"]["test_acc"] == [0.4, 0.1, 0.7]
    every = epoch_metrics([metrics(math.nan, 0.1)] * 2, [metrics(math.nan, 0.1)] * 2, [0, 1])
    assert math.isnan(every["train_loss"])  # so fit stops as for a single run
    assert "per_seed" not in epoch_metrics([metrics(1.0, 0.5)], [metrics(1.0, 0.5)], [0])


def test_seed_results_take_best_per_seed_then_mean_and_std():
    history = [{"test_acc": 0.5, "per_seed": {"test_acc": [0.4, 0.6]}},
               {"test_acc": 0.6, "per_seed": {"test_acc": [0.7, 0.5]}}]
    results = seed_results(history, [0, 1])
    assert results["final_test_acc_per_seed"] == [0.7, 0.5]
    assert results["best_test_acc_per_seed"] == [0.7, 0.6]
    assert results["best_test_acc_mean"] == pytest.approx(0.65)
    assert results["best_test_acc_std"] == pytest.approx(0.05)
    assert seed_results([{"test_acc": 0.8}], [3])["final_test_acc_std"] == 0.0


def test_seeds_flag_on_a_recipe_reports_each_seed_and_the_spread(mnist, data_cache, tmp_path,
                                                                 monkeypatch, capsys):
    from jaxnin.experiments import mnist_lenet

    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    code = mnist_lenet.RECIPE.main(["--seeds", "3", "--epochs", "2", "--limit-train", "512",
                                    "--limit-test", "200", "--workdir", str(tmp_path)])
    assert code == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert [len(r["per_seed"]["test_acc"]) for r in history] == [3, 3]
    results = json.loads((tmp_path / "run.json").read_text())["results"]
    accs = results["final_test_acc_per_seed"]
    assert results["seeds"] == [0, 1, 2] and len(set(accs)) > 1  # seeds differ
    assert results["final_test_acc_mean"] == pytest.approx(np.mean(accs))
    assert results["final_test_acc_std"] == pytest.approx(np.std(accs))
    out = capsys.readouterr().out
    assert "(3 seeds)" in out and "test acc over 3 seeds: final" in out


def test_seeds_that_cannot_fit_are_refused_in_one_line_before_compiling(mnist, data_cache,
                                                                        tmp_path, capsys,
                                                                        monkeypatch):
    """--seeds 1000 against a 256 MiB device: one replica's step memory (compiled on abstract
    shapes, whatever K is) times 1000 is refused at once, before the K-replica compile."""
    import time
    from jaxnin import run as run_module
    from jaxnin.experiments import mnist_lenet
    monkeypatch.setattr(run_module, "device_memory_bytes", lambda: 256 * 2**20)
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    began = time.monotonic()
    code = mnist_lenet.RECIPE.main(["--seeds", "1000", "--epochs", "1", "--limit-train", "512",
                                    "--limit-test", "128", "--workdir", str(tmp_path / "run")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: --seeds 1000 cannot fit: one replica's training step "
                               "needs "), lines[0]
    assert "the device has 0.2 GiB; lower --seeds to " in lines[0]
    assert time.monotonic() - began < 60
    assert not (tmp_path / "run").exists()
    # A few seeds fit the same device.
    run_module.check_runnable(TrainConfig(model="lenet", dataset="mnist", seeds=4,
                                          limit_train=512, limit_test=128), mnist)


def test_a_diverged_seed_is_said_at_the_end_and_kept_out_of_the_checkpoint_json(
        mnist, data_cache, tmp_path, monkeypatch, capsys):
    """Seed 1 of 3 diverges from epoch 1 on: the run goes on (the others are fine), but the
    checkpoint's record is strict JSON (null, not NaN), run.json's results name the seed and
    the command's last lines say so."""
    from jaxnin.experiments import mnist_lenet
    from jaxnin.train import loop
    real = loop.run_epoch

    def run_epoch(*args, **kwargs):  # seed 1's losses are NaN, as epoch_metrics records them
        state, record = real(*args, **kwargs)
        per_seed = {k: list(v) for k, v in record["per_seed"].items()}
        per_seed["train_loss"][1] = per_seed["test_loss"][1] = math.nan
        return state, {**record, "per_seed": per_seed, "diverged_seeds": [1]}

    monkeypatch.setattr(loop, "run_epoch", run_epoch)
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    code = mnist_lenet.RECIPE.main(["--seeds", "3", "--epochs", "2", "--limit-train", "256",
                                    "--limit-test", "100", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: 1 of 3 seeds diverged (loss not finite): seed 1;" in out.splitlines()[-2]
    results = json.loads((tmp_path / "run.json").read_text())["results"]
    assert results["diverged_seeds"] == [1]

    def no_nan(constant):
        raise AssertionError(f"{constant} in a checkpoint's record")

    records = [path for path in (tmp_path / "checkpoints").rglob("*")
               if path.name == "metadata" and path.parent.name == "record"]
    assert records
    for path in records:
        record = json.loads(path.read_text(), parse_constant=no_nan)
        assert record["per_seed"]["train_loss"][1] is None
