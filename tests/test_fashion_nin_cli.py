"""The main job's command line, run as a user runs it."""
import json
import os
import subprocess
import sys
import time

from jaxnin.train.checkpoint import CheckpointStore

FLAGS = ["--data-dir", "--workdir", "--epochs", "--batch-size", "--lr", "--optimizer",
         "--momentum", "--schedule", "--resize", "--num-1x1", "--dtype", "--seed", "--resume",
         "--limit-train", "--limit-test"]


def run(args, cache, cwd=None, timeout=600):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache)}
    env.pop("JAXNIN_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "jaxnin.experiments.fashion_nin", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_help_documents_every_flag(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout


def test_short_real_run_learns_and_leaves_its_files(shared_data, fashion, data_cache, tmp_path):
    """The README's CPU variant (`--cpu`: 67x67, NiN's smallest input, see the next test) on
    2,048 images for two epochs at batch 64 and a constant lr: the suite's time goes where it
    tests more."""
    workdir = tmp_path / "W"
    result = run(["--cpu", "--data-dir", str(shared_data), "--epochs", "2", "--limit-train",
                  "2048", "--limit-test", "1000", "--batch-size", "64", "--schedule", "constant",
                  "--workdir", str(workdir)], data_cache)
    assert result.returncode == 0, result.stderr
    assert "examples/sec on" in result.stdout and "test acc" in result.stdout
    history = json.loads((workdir / "history.json").read_text())
    assert len(history) == 2 and history[-1]["test_examples"] == 1000
    # A broken or dead net stays at chance (0.10); the ReLU-ended quick variant this replaced
    # reached 0.359 here (2026-12-02, 2-core CPU).
    assert max(r["test_acc"] for r in history) > 0.25, history
    for name in ("run.json", "loss.png", "acc.png"):
        assert (workdir / name).is_file()
    store = CheckpointStore(workdir / "checkpoints", ("best_loss",))
    assert store.latest_epoch("best_loss") in (1, 2)
    store.close()


def test_too_small_resize_is_one_clear_line(shared_data, fashion, data_cache, tmp_path):
    result = run(["--data-dir", str(shared_data), "--resize", "32", "--epochs", "1",
                  "--limit-train", "256", "--limit-test", "100", "--workdir", str(tmp_path)],
                 data_cache)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "at least 67x67" in lines[0], result.stderr


def test_missing_data_folder_fails_fast_in_one_line(tmp_path):
    start = time.monotonic()
    result = run(["--data-dir", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "W")],
                 tmp_path / "empty_cache")
    assert time.monotonic() - start < 10
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0], result.stderr


def test_default_workdir_is_named_as_seed_000_does(shared_data, fashion, data_cache, tmp_path):
    """Seed 000's name, then what differs from the recipe; the same command again is this run."""
    flags = ["--data-dir", str(shared_data), "--epochs", "1", "--resize", "67",
             "--limit-train", "128", "--limit-test", "100"]
    result = run(flags, data_cache, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name = "NiN_in1_out10_lr0.1_ep1_limit-test-100_limit-train-128_resize-67"
    assert (tmp_path / "runs" / name / "history.json").is_file()
    again = run(flags, data_cache, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert f"runs/{name} already holds a run with 1 finished epoch(s) of this config: add " \
           "--resume" in again.stderr
