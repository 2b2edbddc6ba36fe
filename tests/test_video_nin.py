"""Seed 000's recipe, python -m jaxnin.experiments.video_nin, run as a user runs it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faults import diverging_in
from jaxnin.experiments import video_nin
from jaxnin.train.checkpoint import CheckpointStore

CLASSES = ("hello", "no", "thanks")
# The smallest NiN input (67) and four frames keep one epoch to a few seconds on a CPU.
TINY = ["--frames", "4", "--size", "67", "--resize", "0", "--batch-size", "4",
        "--eval-batch-size", "8"]


def parse(argv):
    return video_nin.RECIPE.config(video_nin.RECIPE.parser().parse_args(argv))


def saved_epoch(workdir, kind):
    store = CheckpointStore(workdir / "checkpoints", ("best_loss",))
    try:
        return store.latest_epoch(kind)
    finally:
        store.close()


def run(args, cache, cwd):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache)}
    env.pop("JAXNIN_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "jaxnin.experiments.video_nin", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture
def clips_dir(tmp_path) -> Path:
    """Three classes of four .npy clips each: a bright bar at a class-specific column."""
    rng = np.random.default_rng(0)
    for label_index, label in enumerate(CLASSES):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(4):
            clip = rng.integers(0, 40, (6, 24, 24), dtype=np.uint8)
            clip[:, :, 6 * label_index:6 * label_index + 6] = 220
            np.save(tmp_path / "clips" / label / f"{i}.npy", clip)
    return tmp_path / "clips"


def test_defaults_are_seed_000():
    config = parse([])
    assert (config.model, config.dataset, config.optimizer, config.lr, config.epochs) == (
        "nin", "video", "sgd", 0.001, 300)
    assert config.best == ("best_loss",) and config.resize == 224
    assert config.data_dir is None  # the sample clips
    assert config.data_options == {"frames": 16, "size": 112, "test_ratio": 0.2, "split_seed": 0}
    given = parse(["--clips-dir", "/x", "--frames", "8", "--size", "72", "--test-ratio", "0.3",
                   "--split-seed", "5", "--resize", "0"])
    assert given.data_dir == "/x" and given.resize is None
    assert given.data_options == {"frames": 8, "size": 72, "test_ratio": 0.3, "split_seed": 5}


def test_workdir_is_named_as_the_seed_names_it():
    assert video_nin.run_name(parse([]), 16, 25) == (
        "NiN_input_channels16_output_channels25_lr0.001_epochs300")
    assert video_nin.run_name(parse(["--lr", "0.01", "--epochs", "5"]), 8, 3) == (
        "NiN_input_channels8_output_channels3_lr0.01_epochs5")


def test_end_to_end_on_tiny_clips(clips_dir, tmp_path):
    cache = tmp_path / "cache"
    result = run(["--clips-dir", str(clips_dir), "--epochs", "1", *TINY], cache, tmp_path)
    assert result.returncode == 0, result.stderr
    name = "NiN_input_channels4_output_channels3_lr0.001_epochs1_batch-size-4_resize-none_size-67"
    assert "(decoded, " in result.stdout and f"-> runs/{name}" in result.stdout
    workdir = tmp_path / "runs" / name
    record = json.loads((workdir / "run.json").read_text())
    assert record["dataset"]["class_names"] == list(CLASSES)  # the label list, with the run
    assert record["config"]["data_options"] == {"frames": 4, "size": 67, "test_ratio": 0.2,
                                                "split_seed": 0}
    history = json.loads((workdir / "history.json").read_text())
    assert history[0]["train_examples"] == 8 and history[0]["test_examples"] == 3
    for name in ("loss.png", "acc.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    assert saved_epoch(workdir, "best_loss") == 1
    # the prediction demo reloads the clips from run.json and draws each stack's frames
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache)}
    shown = subprocess.run([sys.executable, "-m", "jaxnin.experiments.predict", str(workdir),
                            "--count", "3"], capture_output=True, text=True, env=env, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("predicted: ") == 3
    assert (workdir / "predictions.png").read_bytes()[:4] == b"\x89PNG"


def test_divergence_stops_in_one_line_keeping_the_best(clips_dir, tmp_path, monkeypatch,
                                                       capsys):
    """Epoch 1 trains, epoch 2's loss is NaN, as seed 000's lr 0.01 blow-up."""
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "cache"))
    diverging_in(2, monkeypatch)
    workdir = tmp_path / "run"
    code = video_nin.RECIPE.main(["--clips-dir", str(clips_dir), "--workdir", str(workdir),
                                  "--epochs", "4", "--lr", "0.01", *TINY])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert "diverged in epoch 2" in lines[0] and "lower --lr" in lines[0]
    assert saved_epoch(workdir, "best_loss") == saved_epoch(workdir, "latest") == 1


def test_prediction_grid_draws_frame_stacks(tmp_path):
    from jaxnin.report.plots import prediction_grid

    stacks = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 8), dtype=np.uint8)
    out = prediction_grid(stacks, [0, 1, 2], [0, 2, 2], CLASSES, tmp_path / "grid.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
