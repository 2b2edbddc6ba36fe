"""A dying NiN is caught and named: dead output classes are counted, shown, and an all-dead
net stops early with one line (issue 16)."""
import dataclasses
import json

import jax.numpy as jnp
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict

from jaxnin import run as run_module
from jaxnin.errors import JaxninError
from jaxnin.run import fit
from jaxnin.train.config import TrainConfig
from jaxnin.train.loop import all_classes_dead
from jaxnin.train.replicas import epoch_metrics
from jaxnin.report.logging import Console
from synthetic import random_dataset

TINY_NIN = TrainConfig(model="nin", resize=67, epochs=2, batch_size=16, lr=1e-3,
                       limit_train=64, limit_test=40, eval_batch_size=20,
                       model_options={"num_1x1": 1})


def kill_classes(classes, monkeypatch):
    """Give the classes' last conv a bias so negative that its ReLU outputs 0 everywhere: the
    death seen in real runs (a dead ReLU gets no gradient, so it stays dead). The other
    classes get a positive bias, so that none of them dies by chance on the tiny data."""
    real = run_module.initial_state

    def initial_state(config, data, train):
        state, schedule = real(config, data, train)
        flat = flatten_dict(state.params)
        last = max(k for k in flat if k[0] == "NiNBlock_3" and k[-1] == "bias")
        alive = jnp.full(flat[last].shape, 5.0)
        flat[last] = alive.at[..., jnp.asarray(classes)].set(-1e4)
        return state.replace(params=unflatten_dict(flat)), schedule

    monkeypatch.setattr(run_module, "initial_state", initial_state)


def test_dead_classes_are_counted_and_shown(tmp_path, monkeypatch, capsys):
    kill_classes([0, 3, 7], monkeypatch)
    history = fit(TINY_NIN, random_dataset(64, 40), tmp_path, callbacks=[Console(2)]).history
    assert [r["dead_classes"] for r in history] == [3, 3]  # exactly those: the live 7 are not
    assert all(r["classes"] == 10 for r in history)
    assert json.loads((tmp_path / "history.json").read_text())[0]["dead_classes"] == 3
    assert capsys.readouterr().out.count("DEAD CLASSES 3/10") == 2


def test_an_all_dead_net_stops_early_with_one_line(tmp_path, monkeypatch):
    kill_classes(list(range(10)), monkeypatch)
    config = dataclasses.replace(TINY_NIN, epochs=5)
    with pytest.raises(JaxninError, match="stopped after epoch 1: all 10 output classes are "
                                          "dead.*lower `lr`"):
        fit(config, random_dataset(64, 40), tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1] and history[0]["dead_classes"] == 10


def test_with_seeds_each_seed_counts_its_own_and_only_all_dead_seeds_stop():
    """Per seed from the evaluation's sums: the record keeps each count and the worst; the run
    stops only when every seed's every class is dead (pure: no K-seed NiN to compile)."""
    def test(dead):
        return {"loss": 2.3, "acc": 0.1, "count": 40, "dead_classes": dead, "classes": 10}
    record = epoch_metrics([test(0), test(0)], [test(1), test(10)], seeds=[0, 1])
    assert record["per_seed"]["dead_classes"] == [1, 10] and record["dead_classes"] == 10
    assert not all_classes_dead({**record, "epoch": 1})
    both = epoch_metrics([test(0), test(0)], [test(10), test(10)], seeds=[0, 1])
    assert all_classes_dead({**both, "epoch": 1})
