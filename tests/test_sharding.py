"""Sharded training: 8 devices, and 2 processes on localhost, train exactly as 1 device does.

pytest itself sees one CPU device, so the sharded runs are subprocesses (tests/sharded_fit.py)
given 8 (or 2 + 2) CPU devices by XLA_FLAGS; their runs are compared with the same run here.
"""
import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from jaxnin.errors import JaxninError
from jaxnin.train.config import TrainConfig
from jaxnin.run import fit
from jaxnin.train.run_dir import restore_checkpoint
from jax.sharding import PartitionSpec as P

from jaxnin.train.sharding import (check_batch_size, data_mesh, padded_to_multiple,
                                   shard_split, state_spec)
from alike import assert_trained_alike, fresh_state, latest_params
from synthetic import random_dataset

ROOT = Path(__file__).resolve().parents[1]
# A VGG small enough for the CPU, with dropout, so that shuffles and dropout masks must match
# too; its head is small as well (8 CPU devices each all-reducing and updating a 4096 x 4096
# head take seconds a step). 100 train and 50 test examples split over 8 devices only with
# padding; the eval batch (20) grows to 24 there.
TINY_VGG = TrainConfig(model="vgg11", resize=32, epochs=2, batch_size=32, optimizer="sgd", lr=0.05,
                       model_options={"width_divisor": 16, "hidden": 64, "dropout": 0.5},
                       eval_batch_size=20, seed=3)
# LeNet compiles in a fraction of VGG's time: two processes compile side by side on 2 cores.
TINY_LENET = dataclasses.replace(TINY_VGG, model="lenet", model_options={}, resize=None)
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def one_device_run(config, tmp_path_factory):
    """The reference: the run on this process's single device; (data, workdir, history)."""
    assert jax.device_count() == 1
    data, workdir = random_dataset(100, 50), tmp_path_factory.mktemp("one_device")
    return data, workdir, fit(config, data, workdir).history


def sharded_run(config, data, workdir, devices_per_process, processes=1):
    """Run `fit` in `processes` subprocesses of `devices_per_process` CPU devices each."""
    workdir.mkdir()
    np.savez(workdir / "data.npz", train_images=data.train_images,
             train_labels=data.train_labels, test_images=data.test_images,
             test_labels=data.test_labels)
    (workdir / "config.json").write_text(json.dumps(config.to_json()))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}"}
    command = [sys.executable, str(ROOT / "tests" / "sharded_fit.py"), str(workdir / "data.npz"),
               str(workdir / "config.json"), str(workdir / "run")]
    if processes > 1:
        command += ["--coordinator", f"localhost:{free_port()}", "--num-processes", str(processes)]
    workers = [subprocess.Popen(command + (["--process-id", str(i)] if processes > 1 else []),
                                env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(processes)]
    try:
        outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
    run = workdir / "run"
    return (json.loads((run / "history.json").read_text()),
            json.loads((run / "run.json").read_text()), run)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def assert_same_training(history, reference, replica=None):
    assert len(history) == len(reference) == 2
    for got, want in zip(history, reference):
        assert got["train_examples"] == want["train_examples"] == 96  # 3 batches of 32
        assert got["test_examples"] == want["test_examples"] == 50  # padding never counted
        for key in METRICS:
            value = got[key] if replica is None else got["per_seed"][key][replica]
            # all-reduced gradients sum in another order than one device's
            assert value == pytest.approx(want[key], abs=1e-4), (got["epoch"], key)


def test_eight_devices_train_as_one_and_compile_only_in_the_first_epoch(tmp_path_factory,
                                                                        tmp_path):
    config = TINY_VGG
    data, reference_dir, reference = one_device_run(config, tmp_path_factory)
    history, run, workdir = sharded_run(config, data, tmp_path / "eight", 8)
    assert_same_training(history, reference)
    for run_history in (history, reference):  # epoch 2 and both evaluations reuse epoch 1's
        assert run_history[0]["compiles"] + run_history[0]["compile_cache_hits"] > 0
        assert [r["compiles"] + r["compile_cache_hits"] for r in run_history[1:]] == [0]
    assert run["device_count"] == 8 and run["process_count"] == 1
    assert run["mesh"] == {"axes": ["data"], "shape": [8]}
    assert_trained_alike(latest_params(workdir, config, data),
                         latest_params(reference_dir, config, data),
                         fresh_state(config, data).params)
    # predict and export_onnx reopen it here, on one device, from shapes alone
    restored = restore_checkpoint(workdir, config, data, ("best_loss",))
    assert restored.kind == "best_loss" and restored.epoch in (1, 2)
    chex.assert_trees_all_equal_shapes(restored.state.params, latest_params(workdir, config, data))
    assert jax.tree.leaves(restored.state.params)[0].sharding.device_set == {jax.devices()[0]}


def test_two_processes_on_localhost_train_as_one_with_two_seeds(tmp_path_factory, tmp_path):
    """jax.distributed over 2 processes x 2 devices; --seeds 2 composes with the data axis,
    and its first replica (seed 3) is the one-device run with --seed 3."""
    data, reference_dir, reference = one_device_run(TINY_LENET, tmp_path_factory)
    config = dataclasses.replace(TINY_LENET, seeds=2)
    history, run, workdir = sharded_run(config, data, tmp_path / "two", 2, processes=2)
    assert_same_training(history, reference, replica=0)
    assert run["device_count"] == 4 and run["process_count"] == 2
    assert run["mesh"] == {"axes": ["data"], "shape": [4]}
    assert run["results"]["seeds"] == [3, 4]  # process 0 finished the run record
    stacked = latest_params(workdir, config, data)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], stacked),
                                latest_params(reference_dir, TINY_LENET, data), atol=1e-5)


@pytest.mark.slow
def test_eight_devices_with_sharded_params_train_as_one(tmp_path_factory, tmp_path):
    """--shard-params: the 512 x 512 head and its momentum split over 8 devices (FSDP-style)."""
    config = dataclasses.replace(TINY_VGG, optimizer="momentum", shard_params=True,
                                 model_options={**TINY_VGG.model_options, "hidden": 512})
    data, reference_dir, reference = one_device_run(config, tmp_path_factory)
    history, run, workdir = sharded_run(config, data, tmp_path / "fsdp", 8)
    assert_same_training(history, reference)
    chex.assert_trees_all_close(latest_params(workdir, config, data),
                                latest_params(reference_dir, config, data), atol=1e-5)


def test_only_large_state_arrays_are_split_and_along_an_axis_the_devices_divide():
    assert state_spec((512, 512), 8, shard_params=True) == P("data")
    assert state_spec((3, 3, 96, 1024), 8, shard_params=True) == P(None, None, None, "data")
    assert state_spec((1024, 3001), 8, shard_params=True) == P("data")  # 8 does not divide 3001
    assert state_spec((1001, 1003), 8, shard_params=True) == P()  # nor either axis here
    assert state_spec((512, 511), 8, shard_params=True) == P()  # under SHARD_MIN_SIZE
    assert state_spec((512, 512), 8, shard_params=False) == P()
    assert state_spec((512, 512), 1, shard_params=True) == P()


def test_a_batch_that_does_not_split_over_the_devices_is_refused():
    with pytest.raises(JaxninError, match="`batch_size` 30 does not split over the 8 devices.*"
                                          "multiple of 8, e.g. 24 or 32"):
        check_batch_size(30, 8)
    check_batch_size(32, 8)
    check_batch_size(30, 1)


def test_a_split_is_padded_past_its_count_with_zeros():
    examples = np.arange(1, 5 * 4 + 1, dtype=np.uint8).reshape(5, 2, 2, 1)
    padded = padded_to_multiple(examples, 8)
    assert padded.shape == (8, 2, 2, 1)
    np.testing.assert_array_equal(padded[:5], examples)
    assert not padded[5:].any()
    assert padded_to_multiple(examples, 5).shape == (5, 2, 2, 1)  # nothing to pad
    split = shard_split(examples, np.arange(5), data_mesh())  # on this process's devices
    assert split.count == 5 and split.labels.shape[0] % jax.device_count() == 0
    np.testing.assert_array_equal(np.asarray(split.labels)[:5], np.arange(5))
