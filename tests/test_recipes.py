"""Seed 002 and 004 recipes, and the prediction demo, run as a user runs them."""
import dataclasses
import json
import os
import subprocess
import sys

from jaxnin.cli import run_main
from jaxnin.experiments import fashion_vgg, mnist_lenet, predict
from jaxnin.train.checkpoint import CheckpointStore


def run(module, args, cache, cwd=None):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", f"jaxnin.experiments.{module}", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def test_lenet_defaults_are_seed_002():
    config = mnist_lenet.RECIPE.config(mnist_lenet.RECIPE.parser().parse_args([]))
    assert (config.model, config.dataset, config.epochs, config.batch_size) == (
        "lenet", "mnist", 50, 16)
    assert (config.optimizer, config.lr, config.momentum) == ("momentum", 1e-3, 0.9)
    assert config.schedule == "constant"  # the seed never steps its StepLR
    steplr = mnist_lenet.RECIPE.config(mnist_lenet.RECIPE.parser().parse_args(["--steplr"]))
    assert (steplr.schedule, steplr.step_size, steplr.gamma) == ("step", 10, 0.1)
    assert dataclasses.replace(steplr, schedule="constant") == config
    assert config.resize is None and "best_acc" in config.best
    tuned = mnist_lenet.RECIPE.config(mnist_lenet.RECIPE.parser().parse_args(["--tuned"]))
    assert tuned.model == "lenet" and tuned.optimizer == "adam"
    assert tuned.model_options == {"activation": "relu", "dense_activations": True}
    lowered = mnist_lenet.RECIPE.config(
        mnist_lenet.RECIPE.parser().parse_args(["--tuned", "--lr", "0.01"]))
    assert lowered.lr == 0.01 and lowered.optimizer == "adam"


def test_vgg_defaults_are_seed_004():
    parse = lambda argv: fashion_vgg.RECIPE.config(fashion_vgg.RECIPE.parser().parse_args(argv))
    config = parse([])
    assert (config.model, config.optimizer, config.lr, config.resize, config.epochs) == (
        "vgg11", "adam", 1e-3, 224, 3)
    assert config.model_options == {"dropout": 0.0}
    assert parse(["--config", "E"]).model == "vgg19"
    assert parse(["--config", "D", "--dropout", "0.5"]).model_options == {"dropout": 0.5}


def test_nin_head_levers_are_flags_of_both_nin_recipes_and_off_by_default():
    from jaxnin.experiments import fashion_nin, video_nin
    for recipe in (fashion_nin.RECIPE, video_nin.RECIPE):
        parse = lambda argv: recipe.config(recipe.parser().parse_args(argv)).model_options
        assert "head_bias" not in parse([]) and "linear_logits" not in parse([])
        assert parse(["--linear-logits", "--head-bias", "0.1"]) == {
            "head_bias": 0.1, "linear_logits": True}


def test_lenet_first_epoch_on_real_mnist_learns(shared_data, mnist, data_cache, tmp_path):
    """The seed's recipe, one full epoch (3,750 steps of 16): a broken net stays at 0.10."""
    result = run("mnist_lenet", ["--data-dir", str(shared_data), "--epochs", "1",
                                 "--workdir", str(tmp_path)], data_cache)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "history.json").read_text())[0]
    assert record["train_examples"] == 60_000 and record["test_examples"] == 10_000
    assert record["test_acc"] > 0.5, record
    store = CheckpointStore(tmp_path / "checkpoints", ("best_loss", "best_acc"))
    assert [store.latest_epoch(kind) for kind in ("latest", "best_loss", "best_acc")] == [1, 1, 1]
    store.close()


def test_predict_prints_twenty_lines_and_writes_the_grid(shared_data, mnist, data_cache,
                                                         tmp_path, capsys):
    trained = run("mnist_lenet", ["--data-dir", str(shared_data), "--tuned", "--epochs", "1",
                                  "--limit-train", "2048", "--limit-test", "500",
                                  "--workdir", str(tmp_path)], data_cache)
    assert trained.returncode == 0, trained.stderr
    result = run("predict", [str(tmp_path)], data_cache)
    assert result.returncode == 0, result.stderr
    lines = [l for l in result.stdout.splitlines() if l.startswith("predicted: ")]
    assert len(lines) == 20
    assert lines[0].endswith('actual: "7"')  # MNIST's first test digit
    assert "best_acc checkpoint from epoch 1" in result.stdout
    assert (tmp_path / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    assert run_main(predict.main, [str(tmp_path), "--count", "0"]) == 2  # in-process: no start-up
    assert capsys.readouterr().err.strip() == "error: --count must be in [1, 2147483647], got 0"
    every = run("predict", [str(tmp_path), "--count", "100000", "--out",
                            str(tmp_path / "all.png")], data_cache)
    assert every.returncode == 0, every.stderr
    assert every.stdout.count("predicted: ") == 10_000  # every test image, once
    assert "the first 100 drawn" in every.stdout
    assert (tmp_path / "all.png").stat().st_size < 2_000_000  # a picture, not 500,000 px tall


def test_predict_on_an_empty_config_says_so(tmp_path):
    (tmp_path / "run.json").write_text('{"config": {}}')
    result = run("predict", [str(tmp_path)], tmp_path)
    assert result.returncode == 2 and "empty or partial config" in result.stderr
    assert "damaged" not in result.stderr


def test_predict_on_a_folder_without_a_run_is_one_line(tmp_path):
    result = run("predict", [str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "run.json" in result.stderr


def test_vgg_smoke_run_at_small_size(shared_data, fashion, data_cache, tmp_path):
    result = run("fashion_vgg", ["--data-dir", str(shared_data), "--epochs", "1",
                                 "--resize", "32", "--width-divisor", "8",
                                 "--limit-train", "1024", "--limit-test", "500",
                                 "--batch-size", "32", "--workdir", str(tmp_path)], data_cache)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "history.json").read_text())[0]
    assert record["test_examples"] == 500 and record["train_examples"] == 1024
    run_record = json.loads((tmp_path / "run.json").read_text())
    assert run_record["config"]["model"] == "vgg11"
    assert run_record["config"]["model_options"] == {"dropout": 0.0, "width_divisor": 8}
