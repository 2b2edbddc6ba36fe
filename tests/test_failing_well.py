"""Failing well: every bad input or interruption ends in one line, exit code 2, nothing lost.

Each case here is a row of the README's "When things go wrong" table.
"""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxnin.errors import JaxninError
from jaxnin.run import fit
from jaxnin.train import loop
from faults import diverging_in, one_error_line
from jaxnin.train.checkpoint import CheckpointStore

TINY = ["--epochs", "2", "--batch-size", "32", "--limit-train", "512", "--limit-test", "300",
        "--eval-batch-size", "128"]


def start(module, args, cache, **popen):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache)}
    env.pop("JAXNIN_DATA_DIR", None)
    return subprocess.Popen([sys.executable, "-m", f"jaxnin.experiments.{module}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            **popen)


def run(module, args, cache, timeout=300):
    proc = start(module, args, cache)
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def lenet(shared_data, workdir, *extra):
    """The seed-002 recipe on a slice of MNIST: a few seconds an epoch on a CPU."""
    return ["--data-dir", str(shared_data), "--workdir", str(workdir), "--momentum", "0.9",
            *TINY, *extra]


# --- data ------------------------------------------------------------------------------------

def test_empty_data_dir_names_the_missing_files(tmp_path):
    (tmp_path / "data" / "fashion_mnist").mkdir(parents=True)
    code, _, err = run("fashion_nin", ["--data-dir", str(tmp_path / "data")], tmp_path / "c")
    one_error_line(code, err, "fashion_mnist", "train-images-idx3-ubyte.gz")


def test_truncated_gz_is_named(shared_data, tmp_path):
    folder = tmp_path / "data" / "fashion_mnist"
    shutil.copytree(shared_data / "fashion_mnist", folder)
    damaged = folder / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    code, _, err = run("fashion_nin", ["--data-dir", str(tmp_path / "data")], tmp_path / "c")
    one_error_line(code, err, "t10k-labels-idx1-ubyte.gz")


def test_checksum_mismatch_is_named(shared_data, tmp_path):
    folder = tmp_path / "data" / "mnist"
    shutil.copytree(shared_data / "mnist", folder)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = bytearray(f.read())
    labels[-1] = (labels[-1] + 1) % 10  # a valid gzip with one wrong label
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes(labels))
    code, _, err = run("mnist_lenet", ["--data-dir", str(tmp_path / "data")], tmp_path / "c")
    one_error_line(code, err, "t10k-labels-idx1-ubyte.gz", "sha256")


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("flags, needle", [
    (["--lr", "0"], "--lr must be above 0, got 0.0"),
    (["--lr", "-0.1"], "--lr must be above 0"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "-inf"], "--lr must be a finite number"),  # a value, not an unknown flag
    (["--workdir", ""], "argument --workdir: an empty path names no file or folder"),
    (["--data-dir", ""], "argument --data-dir: an empty path names no file or folder"),
    (["--momentum", "5"], "--momentum must be in [0, 1)"),
    (["--momentum", "-0.5"], "--momentum must be in [0, 1)"),
    (["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),  # a constant lr: no advice
    (["--gamma", "0", "--schedule", "step", "--step-size", "3"],
     "--gamma must be in (0, 1], got 0.0: 0 would stop learning after epoch 3; set --epochs 3 "
     "instead"),
    (["--gamma", "-1"], "--gamma must be in (0, 1]"),
    (["--gamma", "1e6"], "--gamma must be in (0, 1]"),
    (["--batch-size", "0"], "--batch-size must be in [1, 2147483647], got 0"),
    (["--eval-batch-size", "0"], "--eval-batch-size must be in [1, "),
    (["--epochs", "0"], "--epochs must be in [1, "),
    (["--limit-train", "0"], "--limit-train must be in [1, "),
    (["--limit-train", "-5"], "--limit-train must be in [1, "),
    (["--limit-test", "0"], "--limit-test must be in [1, "),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--resize", "40"], "at least 67x67"),
    (["--resize", "100000"], "--resize 100000 cannot fit"),
    (["--batch-size", "600", "--limit-train", "512"], "larger than the 512 training examples"),
])
def test_bad_flags_are_one_line_before_anything_is_written(flags, needle, shared_data, fashion,
                                                           data_cache, tmp_path, capsys):
    from jaxnin.experiments import fashion_nin
    args = ["--data-dir", str(shared_data), "--workdir", str(tmp_path / "run"), "--limit-test",
            "100", *flags]
    code = fashion_nin.RECIPE.main(args)
    one_error_line(code, capsys.readouterr().err, needle)
    assert not (tmp_path / "run").exists()


def test_unknown_model_is_one_line(capsys):
    from jaxnin import summary
    from jaxnin.cli import run_main
    one_error_line(run_main(summary.main, ["resnet50"]), capsys.readouterr().err,
                   "invalid choice: 'resnet50'")


@pytest.mark.parametrize("out, needles", [
    ("grid.txt", ["matplotlib cannot write .txt files", ".png", ".pdf", ".svg"]),
    ("folder", ["is a folder", "predictions.png"]),
])
def test_predict_refuses_an_out_it_cannot_write_before_any_work(out, needles, tmp_path, capsys):
    """Before the run is even opened (this one does not exist): not after the predictions, and
    not by writing somewhere else (matplotlib adds .png to a folder's name)."""
    from jaxnin.cli import run_main
    from jaxnin.experiments import predict
    (tmp_path / "folder").mkdir()
    code = run_main(predict.main, [str(tmp_path / "no-run"), "--out", str(tmp_path / out)])
    one_error_line(code, capsys.readouterr().err, f"--out {tmp_path / out}", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_vgg_names_its_minimum_input(shared_data, fashion, data_cache, tmp_path, capsys):
    from jaxnin.experiments import fashion_vgg
    code = fashion_vgg.RECIPE.main(["--data-dir", str(shared_data), "--workdir", str(tmp_path),
                                    "--resize", "16", "--width-divisor", "8", *TINY])
    one_error_line(code, capsys.readouterr().err, "at least 32x32")


def test_resume_with_a_changed_config_names_the_keys(shared_data, fashion, data_cache, tmp_path):
    code, _, err = run("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "1"), data_cache)
    assert code == 0, err
    code, _, err = run("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "1", "--resume",
                                            "--lr", "0.5", "--momentum", "0.5"), data_cache)
    one_error_line(code, err, "lr was 0.001, now 0.5", "momentum was 0.9, now 0.5")


def test_checkpoint_of_other_shapes_is_refused(tmp_path):
    """E.g. a checkpoint for 16 input channels restored into a 1-channel net."""
    store = CheckpointStore(tmp_path)
    store.save(1, {"kernel": np.zeros((5, 5, 16, 6), np.float32)}, {"test_loss": 1.0})
    with pytest.raises(JaxninError, match="cannot read the latest checkpoint"):
        store.restore("latest", {"kernel": np.zeros((5, 5, 1, 6), np.float32)})
    store.close()


# --- training --------------------------------------------------------------------------------

def test_divergence_stops_with_a_hint_and_keeps_the_best(shared_data, mnist, data_cache,
                                                         tmp_path, monkeypatch, capsys):
    """Epoch 1 trains, epoch 2's loss is NaN (as seed 000's lr 0.01 blow-up): one line, and
    predict still loads the best checkpoint."""
    from jaxnin.experiments import mnist_lenet
    diverging_in(2, monkeypatch)
    code = mnist_lenet.RECIPE.main(lenet(shared_data, tmp_path, "--epochs", "3"))
    one_error_line(code, capsys.readouterr().err, "diverged in epoch 2", "momentum 0.9",
                   "checkpoints up to epoch 1 are kept", "lower --lr")
    code, out, err = run("predict", [str(tmp_path), "--count", "5"], data_cache)
    assert code == 0, err
    assert "best_acc checkpoint from epoch 1" in out


@pytest.mark.parametrize("phase, hint", [
    ("train_epoch", "during training at `batch_size` 512 .*try `batch_size` 256"),
    ("evaluate_split", "during evaluation at `eval_batch_size` 100 .*try `eval_batch_size` 50")])
def test_out_of_memory_names_the_batch_that_ran_out(phase, hint, fashion, tmp_path,
                                                    monkeypatch):
    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                         "allocate 81.92GiB")
    monkeypatch.setattr(loop, phase, exhausted)
    from jaxnin.train.config import TrainConfig
    config = TrainConfig(model="lenet", dataset="fashion_mnist", resize=None, batch_size=512, limit_train=1024,
                         limit_test=100, eval_batch_size=100)
    with pytest.raises(JaxninError, match="out of memory " + hint):
        fit(config, fashion, tmp_path)


# --- interruption ----------------------------------------------------------------------------

def wait_for_epochs(workdir: Path, count: int, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = workdir / "history.json"
        if history.exists() and len(json.loads(history.read_text())) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {count} epochs in {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_keeps_latest_and_says_how_to_resume(signum, shared_data, mnist, data_cache,
                                                   tmp_path):
    """Any recipe (the engine handles signals); LeNet's compiles are the cheapest. NiN's SIGTERM
    mid-epoch at 224 is tests/test_terminal.py's."""
    proc = start("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "50"), data_cache)
    wait_for_epochs(tmp_path, 1, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    line = one_error_line(proc.returncode, err, "interrupted", "--resume")
    store = CheckpointStore(tmp_path / "checkpoints")
    saved = store.latest_epoch()
    store.close()
    assert saved >= 1 and f"epochs up to {saved} are saved" in line
    code, _, err = run("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", str(saved + 1),
                                            "--resume"), data_cache)
    assert code == 0, err
    assert len(json.loads((tmp_path / "history.json").read_text())) == saved + 1


def test_a_closed_output_pipe_stops_the_run_saying_what_is_saved(shared_data, mnist, data_cache,
                                                                 tmp_path):
    """`... | head`: the reader ends, the next line cannot be written; one line on stderr."""
    proc = start("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "50"), data_cache)
    while not proc.stdout.readline().startswith("epoch   1"):
        assert proc.poll() is None, proc.communicate()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    line = one_error_line(proc.returncode, err, "standard output was closed", "--resume")
    saved = CheckpointStore(tmp_path / "checkpoints")
    assert f"epochs up to {saved.latest_epoch()} are saved" in line
    saved.close()


def test_kill_9_loses_at_most_the_current_epoch(shared_data, mnist, data_cache, tmp_path):
    """SIGKILL mid-run, then --resume: the finished run equals one never interrupted."""
    args = lambda workdir, *more: lenet(shared_data, workdir, "--epochs", "6", "--batch-size",
                                        "16", "--limit-train", "4096", *more)
    proc = start("mnist_lenet", args(tmp_path / "killed"), data_cache)
    wait_for_epochs(tmp_path / "killed", 2, proc)
    proc.kill()
    proc.communicate()
    done = len(json.loads((tmp_path / "killed" / "history.json").read_text()))
    code, _, err = run("mnist_lenet", args(tmp_path / "killed", "--resume"), data_cache)
    assert code == 0, err
    code, _, err = run("mnist_lenet", args(tmp_path / "straight"), data_cache)
    assert code == 0, err
    timing = ("epoch_time_s", "examples_per_s", "train_time_s", "eval_time_s", "compile_time_s",
              "compiles", "compile_cache_hits")
    histories = [[{k: v for k, v in r.items() if k not in timing}
                  for r in json.loads((tmp_path / w / "history.json").read_text())]
                 for w in ("killed", "straight")]
    assert done >= 2 and [r["epoch"] for r in histories[0]] == list(range(1, 7))
    assert histories[0] == histories[1]


# --- storage ---------------------------------------------------------------------------------

def test_unwritable_workdir_is_reported_before_training(shared_data, fashion, data_cache,
                                                        tmp_path, capsys):
    from jaxnin.experiments import fashion_nin
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = fashion_nin.RECIPE.main(["--data-dir", str(shared_data), "--resize", "67", *TINY,
                                    "--workdir", str(blocker / "run")])
    one_error_line(code, capsys.readouterr().err, "cannot write to workdir", "a_file",
                   "(Not a directory)")
    code = fashion_nin.RECIPE.main(["--data-dir", str(shared_data), "--resize", "67", *TINY,
                                    "--workdir", str(blocker)])
    one_error_line(code, capsys.readouterr().err, "cannot write to workdir", "a_file",
                   "(it is a file, not a folder)")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs: room for one LeNet checkpoint (about 0.55 MB) but not two, as the second
    epoch's save needs while the first's is still kept."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_keeps_the_previous_checkpoints(shared_data, mnist, data_cache, small_disk):
    code, _, err = run("mnist_lenet", lenet(shared_data, small_disk / "run", "--epochs", "5"),
                       data_cache)
    line = one_error_line(code, err, "no space left", "--resume")
    assert "the checkpoints up to epoch 1 there are intact" in line, line
    store = CheckpointStore(small_disk / "run" / "checkpoints", ("best_loss", "best_acc"))
    try:
        for kind in ("latest", "best_loss", "best_acc"):
            assert store.latest_epoch(kind) >= 1
            assert store.restore(kind, None) is not None  # loads, arrays and all
    finally:
        store.close()


def test_a_full_disk_at_the_first_checkpoint_says_no_epoch_was_saved(shared_data, mnist,
                                                                      data_cache, tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        code, _, err = run("mnist_lenet", lenet(shared_data, mount / "run", "--epochs", "2"),
                           data_cache)
        line = one_error_line(code, err, "no space left", "epoch 1", "no epoch was saved",
                              "start again")
        assert "intact" not in line and "--resume" not in line, line
        assert not (mount / "run").exists(), list(mount.rglob("*"))  # nothing half-written
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_corrupt_checkpoint_is_one_line(shared_data, mnist, data_cache, tmp_path):
    code, _, err = run("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "1"), data_cache)
    assert code == 0, err
    store = CheckpointStore(tmp_path / "checkpoints", ("best_loss", "best_acc"))
    latest = store.folder("latest")
    store.close()
    for path in latest.rglob("*"):
        if path.is_file() and "record" not in str(path) and "metrics" not in str(path):
            path.write_bytes(b"\0" * 10)
    code, _, err = run("mnist_lenet", lenet(shared_data, tmp_path, "--epochs", "2", "--resume"),
                       data_cache)
    one_error_line(code, err, "cannot read the latest checkpoint", "damaged or incomplete")


def test_debug_shows_the_traceback(tmp_path):
    code, _, err = run("fashion_nin", ["--data-dir", str(tmp_path / "nowhere"), "--debug"],
                       tmp_path / "c")
    assert code != 0 and "Traceback" in err and "JaxninError" in err


def test_an_unexpected_error_is_one_line_pointing_to_debug(capsys):
    from jaxnin.cli import run_main

    def buggy(argv):
        raise ValueError("shapes (3,) and (4,) not aligned\nsecond line")

    assert run_main(buggy, []) == 1
    one_line = capsys.readouterr().err.strip()
    assert "\n" not in one_line and "internal error (ValueError: shapes" in one_line
    assert "--debug" in one_line


def test_an_eval_batch_that_cannot_fit_is_blamed_not_resize(fashion, monkeypatch):
    """The input check names the batch that outgrows the device; an `eval_batch_size` above
    the test split is capped at it first, as the engine caps it."""
    from jaxnin import run as run_module
    from jaxnin.run import check_runnable
    from jaxnin.train.config import TrainConfig
    monkeypatch.setattr(run_module, "device_memory_bytes", lambda: 64 * 2**20)  # 64 MiB
    config = TrainConfig(model="nin", dataset="fashion_mnist", resize=224, batch_size=16,
                         eval_batch_size=10**6, limit_train=64)
    with pytest.raises(JaxninError, match=r"^`eval_batch_size` 1000000 cannot fit: one "
                                          r"evaluation batch of 10000 images at 224x224 "
                                          r"\(`resize` 224\).*lower `eval_batch_size` or `resize`"):
        check_runnable(config, fashion)
    # Capped at a 100-example test split, 100 x 224 x 224 floats (19 MiB) fit.
    check_runnable(config.replace(limit_test=100), fashion)
    with pytest.raises(JaxninError, match=r"^`resize` 224 cannot fit: one training batch of "
                                          r"512 images"):
        check_runnable(config.replace(limit_test=100, batch_size=512, limit_train=1024), fashion)
