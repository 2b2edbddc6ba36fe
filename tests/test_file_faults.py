"""File faults: every file or folder jaxnin reads or writes, damaged, missing, read-only or
unreadable, gives one line; a temporary file left by a kill is removed at the next start.

Tests run as root (here and in CI), which chmod cannot stop, so a read-only or unreadable file
is made by having the call that touches it fail as the file system would.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxnin import cli, files
from jaxnin.data.vision import load_dataset
from jaxnin.errors import JaxninError
from jaxnin.experiments import mnist_lenet, predict
from jaxnin.run import fit, prepare_workdir
from faults import one_error_line

TINY = ["--epochs", "1", "--batch-size", "32", "--limit-train", "256", "--limit-test", "128",
        "--eval-batch-size", "128"]


def lenet(shared_data, workdir, *extra):
    return ["--data-dir", str(shared_data), "--workdir", str(workdir), *TINY, *extra]


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    """One epoch of LeNet on a slice of MNIST, copied by each test that changes it."""
    workdir = tmp_path_factory.mktemp("run") / "lenet"
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXNIN_CACHE_DIR", str(cache))
        assert mnist_lenet.RECIPE.main(lenet(shared_data, workdir)) == 0
    return workdir, cache


def copy_of(trained, tmp_path, monkeypatch):
    workdir, cache = trained
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(cache))
    shutil.copytree(workdir, tmp_path / "lenet")
    return tmp_path / "lenet"


# --- resume from a damaged run ---------------------------------------------------------------

def damage_run_json(workdir, damage):
    record = workdir / "run.json"
    text = record.read_bytes()
    record.write_bytes({"empty": b"", "truncated": text[:len(text) // 2], "no config": b"{}",
                        "not UTF-8": b"\x00\xff\xfe"}[damage])
    return record


@pytest.mark.parametrize("damage", ["empty", "truncated", "no config", "not UTF-8"])
def test_resume_over_a_damaged_run_json_is_one_line(damage, trained, shared_data, tmp_path,
                                                     monkeypatch, capsys):
    workdir = copy_of(trained, tmp_path, monkeypatch)
    record = damage_run_json(workdir, damage)
    code = mnist_lenet.RECIPE.main(lenet(shared_data, workdir, "--resume"))
    one_error_line(code, capsys.readouterr().err, "--resume", str(record), "--workdir")


@pytest.mark.parametrize("damage", ["truncated", "not UTF-8"])
def test_a_fresh_start_over_a_damaged_run_json_does_not_advise_resume(damage, trained,
                                                                      shared_data, tmp_path,
                                                                      monkeypatch, capsys):
    """A resume could not read it either: the line says so, instead of `add --resume`."""
    workdir = copy_of(trained, tmp_path, monkeypatch)
    record = damage_run_json(workdir, damage)
    code = mnist_lenet.RECIPE.main(lenet(shared_data, workdir))
    line = one_error_line(code, capsys.readouterr().err, "1 finished epoch", str(record),
                          "restore its run.json from a copy", "--workdir")
    assert "add --resume" not in line


@pytest.mark.parametrize("damage", ["missing", "truncated", "not records"])
def test_resume_over_a_damaged_history_is_one_line(damage, trained, shared_data, tmp_path,
                                                   monkeypatch, capsys):
    workdir = copy_of(trained, tmp_path, monkeypatch)
    history = workdir / "history.json"
    if damage == "missing":
        history.unlink()
    else:
        history.write_text({"truncated": history.read_text()[:40],
                            "not records": "[1, 2]"}[damage])
    code = mnist_lenet.RECIPE.main(lenet(shared_data, workdir, "--resume", "--epochs", "2"))
    one_error_line(code, capsys.readouterr().err, "--resume", str(history), "epoch 1")


# --- an unreadable data file -----------------------------------------------------------------

def test_an_unreadable_data_file_is_named(shared_data, tmp_path, monkeypatch):
    unreadable = "t10k-labels-idx1-ubyte.gz"
    read_bytes = Path.read_bytes

    def refusing(path):
        if path.name == unreadable:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refusing)
    with pytest.raises(JaxninError, match=f"{unreadable} cannot be read \\(Permission denied"):
        load_dataset("mnist", shared_data, cache_dir=tmp_path)


# --- predict and export into a read-only run folder ------------------------------------------

def test_predict_into_a_read_only_run_folder_is_one_line(trained, tmp_path, monkeypatch,
                                                        capsys):
    workdir = copy_of(trained, tmp_path, monkeypatch)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        False if Path(path) == workdir else access(path, mode)))
    code = cli.run_main(predict.main, [str(workdir)])
    one_error_line(code, capsys.readouterr().err, str(workdir / "predictions.png"),
                   "not writable", "--out")


def test_predict_whose_write_fails_is_one_line(trained, tmp_path, monkeypatch, capsys):
    """os.access can say yes where the write then fails (NFS, ACLs, a full disk)."""
    workdir = copy_of(trained, tmp_path, monkeypatch)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(workdir / "predictions.png"))

    monkeypatch.setattr(predict, "prediction_grid", read_only)
    code = cli.run_main(predict.main, [str(workdir)])
    one_error_line(code, capsys.readouterr().err, "Read-only file system", "--out")


@pytest.mark.parametrize("name, magic, said", [
    ("grid", b"\x89PNG", " (as PNG: the name has no suffix)"),  # not grid.png beside it
    ("grid.PDF", b"%PDF", ""),
])
def test_predict_writes_the_out_it_names_in_its_suffix_format(name, magic, said, trained,
                                                              tmp_path, monkeypatch, capsys):
    workdir = copy_of(trained, tmp_path, monkeypatch)
    out = tmp_path / "grids" / name
    out.parent.mkdir()
    assert cli.run_main(predict.main, [str(workdir), "--count", "2", "--out", str(out)]) == 0
    assert [p.name for p in out.parent.iterdir()] == [name]
    assert out.read_bytes()[:len(magic)] == magic
    assert capsys.readouterr().out.rstrip().endswith(f"grid written to {out}{said}")


def test_a_write_that_fails_keeps_its_own_error_not_the_cleanups(tmp_path, monkeypatch):
    """On a read-only folder the temporary file is never made and cannot be unlinked either:
    the error that reaches the caller (export's one line) is the write's."""
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(OSError) as raised:
        files.write_bytes(tmp_path / "model.onnx", b"onnx")
    assert raised.value.errno == errno.EROFS and raised.value.filename.endswith(".tmp")
    assert raised.value.__context__ is None  # not a cleanup error masking another


# --- temporary files left by a kill ----------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from jaxnin import files
writing = files.replacing(Path(sys.argv[1]))
tmp = writing.__enter__()
tmp.write_bytes(b"x" * 100_000)
print(tmp, flush=True)
time.sleep(120)
"""


def writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A process writing `target` through jaxnin.files, stopped half way: (it, its temp)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file() and tmp.parent == target.parent
    return proc, tmp


def test_a_cache_file_left_by_kill_9_is_removed_at_the_next_start(shared_data,
                                                                  tmp_path):
    killed, left = writer(tmp_path / "mnist.npz")
    killed.kill()
    killed.wait()
    live, writing = writer(tmp_path / "fashion_mnist.npz")  # another process, still at it
    old = tmp_path / ".mnist.npz-0123abcd.tmp"  # an older jaxnin's name, a day old
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    try:
        load_dataset("mnist", shared_data, cache_dir=tmp_path)
        assert not left.exists() and not old.exists()
        assert writing.exists()
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mnist.npz", writing.name])


def test_a_run_file_left_by_kill_9_is_removed_at_the_next_start(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    killed, left = writer(workdir / "history.json")
    killed.kill()
    killed.wait()
    prepare_workdir(workdir, resume=False)
    assert not left.exists()


def test_a_scratch_folder_left_by_a_kill_is_removed_at_the_next_start(tmp_path):
    from jaxnin.data.dataset import scratch_beside
    scratch_name = files.temp_beside(tmp_path / "entry").name
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = tmp_path / scratch_name.replace(f"-{os.getpid()}.tmp", f"-{dead}.tmp")
    (left / "video").mkdir(parents=True)
    with scratch_beside(tmp_path / "entry", "unused") as live:
        assert files.remove_stale(tmp_path) == [left]
        assert live.is_dir()


# --- the compilation cache -------------------------------------------------------------------

def test_an_unusable_compile_cache_folder_is_one_warning(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    monkeypatch.setenv("JAXNIN_COMPILE_CACHE", str(a_file / "xla"))
    before = jax.config.jax_compilation_cache_dir
    cli.enable_compile_cache()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), lines
    assert str(a_file / "xla") in lines[0] and "JAXNIN_COMPILE_CACHE" in lines[0], lines[0]
    assert jax.config.jax_compilation_cache_dir == before


# --- the curves, drawn as a run closes -------------------------------------------------------

class ClosingOnAFullDisk:
    """A writer whose close fails as drawing the curves onto a full disk does."""

    def epoch(self, record, state):
        pass

    def close(self):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_writer_failing_to_close_does_not_hide_why_the_run_ended(mnist, tmp_path):
    from test_interrupts import InterruptAt, config

    with pytest.raises(JaxninError, match="interrupted"):
        fit(config(epochs=2), mnist, tmp_path / "run", callbacks=[ClosingOnAFullDisk()],
            progress=InterruptAt(2))


def test_curves_that_cannot_be_drawn_are_one_line(mnist, tmp_path, monkeypatch):
    from jaxnin.report import plots
    from jaxnin.report.logging import Curves
    from test_interrupts import config

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(plots, "plot_curves", full)
    with pytest.raises(JaxninError, match=r"cannot draw the curves into .*\(No space left on "
                                          r"device\); the run's checkpoints and history.json "
                                          r"are kept"):
        fit(config(epochs=1), mnist, tmp_path, callbacks=[Curves(tmp_path, "lenet")])
    assert json.loads((tmp_path / "run.json").read_text())["results"]["epochs"] == 1
