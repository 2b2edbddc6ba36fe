"""Ctrl-C and SIGTERM at any moment: one true line about what is on disk, and a quick end."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxnin import guard, run as run_module
from jaxnin.errors import JaxninError
from jaxnin.run import LOCK_FILE, fit, workdir_lock
from jaxnin.train.checkpoint import newest_saved_epoch
from jaxnin.train.config import TrainConfig

from procs import alive, gone_within
from test_failing_well import lenet, one_error_line


def config(**fields):
    return TrainConfig(model="lenet", dataset="mnist", resize=None, batch_size=32,
                       limit_train=256, limit_test=100, eval_batch_size=100, **fields)


class InterruptAt:
    """Progress that raises KeyboardInterrupt (as a Ctrl-C) when epoch `epoch` starts."""

    def __init__(self, epoch):
        self.at = epoch

    def compiling(self):
        pass

    def epoch_started(self, epoch, steps):
        if epoch == self.at:
            raise KeyboardInterrupt

    def steps_done(self, done):
        pass


# --- what is on disk --------------------------------------------------------------------------

def test_ctrl_c_in_the_first_epoch_leaves_nothing_behind(mnist, tmp_path):
    workdir = tmp_path / "new" / "run"  # both folders made by the run
    with pytest.raises(JaxninError, match=r"nothing was saved \(the run's files are removed\)"):
        fit(config(epochs=2), mnist, workdir, progress=InterruptAt(1))
    assert not (tmp_path / "new").exists(), list(tmp_path.rglob("*"))


def test_any_end_of_a_run_that_saved_nothing_leaves_nothing_behind(mnist, tmp_path):
    """`... | head`: the console's epoch line cannot be written, before epoch 1 is saved."""
    def reader_gone(record):
        raise BrokenPipeError
    with pytest.raises(BrokenPipeError):
        fit(config(epochs=2), mnist, tmp_path / "new" / "run", callbacks=[reader_gone])
    assert not (tmp_path / "new").exists(), list(tmp_path.rglob("*"))


def test_ctrl_c_in_the_first_epoch_of_an_existing_folder_keeps_the_folder(mnist, tmp_path):
    (tmp_path / "mine.txt").write_text("the user's")
    with pytest.raises(JaxninError, match="nothing was saved"):
        fit(config(epochs=2), mnist, tmp_path, progress=InterruptAt(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_ctrl_c_after_the_last_epoch_says_the_epochs_are_saved(shared_data, mnist, tmp_path,
                                                                 monkeypatch, capsys):
    from jaxnin.experiments import mnist_lenet

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(run_module, "finish", interrupted)  # just after the last epoch
    code = mnist_lenet.RECIPE.main(lenet(shared_data, tmp_path))
    one_error_line(code, capsys.readouterr().err, "interrupted", "epochs up to 2 are saved",
                   "--resume")


def test_the_lock_file_goes_with_its_run_and_a_removed_one_is_not_trusted(tmp_path,
                                                                          monkeypatch):
    path = tmp_path / LOCK_FILE
    with workdir_lock(tmp_path):
        with pytest.raises(JaxninError, match="in use by another jaxnin run"):
            workdir_lock(tmp_path).__enter__()
    assert not path.exists()
    # A run that opened the lock file just before its holder removed it and let it go locks
    # the removed file: it must see that, and take the path's new file instead.
    holder = workdir_lock(tmp_path).__enter__()
    real_flock = run_module.fcntl.flock

    def holder_ends_first(file, how):
        if holder._file is not None:
            holder.__exit__(None, None, None)
            holder._file = None
        return real_flock(file, how)
    monkeypatch.setattr(run_module.fcntl, "flock", holder_ends_first)
    taker = workdir_lock(tmp_path).__enter__()
    monkeypatch.undo()
    assert path.exists() and os.fstat(taker._file.fileno()).st_ino == os.stat(path).st_ino
    with pytest.raises(JaxninError, match="in use"):
        workdir_lock(tmp_path).__enter__()
    taker.__exit__(None, None, None)
    assert not path.exists()


# --- signals to a command -----------------------------------------------------------------------

def start(args, **env):
    return subprocess.Popen([sys.executable, "-m", "jaxnin.experiments.mnist_lenet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (Linux: /proc/PID/status)."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("SigCgt:")), 16)
    return bool(mask & (1 << (signum - 1)))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_importing_is_one_line(signum, shared_data, tmp_path):
    proc = start(lenet(shared_data, tmp_path / "run"))
    deadline = time.monotonic() + 30
    # jaxnin/__init__ installed the handling (SIGTERM's: Python catches SIGINT from its start)
    while not catches(proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent <= 10
    one_error_line(proc.returncode, err, "interrupted", "nothing was saved")
    assert not (tmp_path / "run").exists()


def test_a_signal_while_a_tool_imports_is_one_line():
    """The bench's entry point installs the handling before it imports JAX (seconds)."""
    proc = subprocess.Popen([sys.executable, "-m", "experiments.bench", "--help"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not catches(proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    one_error_line(proc.returncode, err, "interrupted (Ctrl-C or SIGTERM) while starting")


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_a_signal_during_a_long_compile_ends_within_10_s_without_a_crash(delay, shared_data,
                                                                         data_cache, tmp_path):
    """20 seeds at once compile for several seconds; the interpreter's teardown used to wait on
    the compile and then crash (a segmentation fault)."""
    proc = start(lenet(shared_data, tmp_path / "run", "--seeds", "20", "--epochs", "1"),
                 JAXNIN_CACHE_DIR=str(data_cache), JAXNIN_COMPILE_CACHE="0")
    for line in proc.stdout:
        if line.startswith("compiling"):
            break
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent <= 10, err
    assert proc.returncode in (2, 128 + signal.SIGINT), err
    assert "Segmentation" not in err and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and "nothing was saved" in errors[0], err


# Says `ready`, then never goes back to the command's code, as inside a long compile or device
# call, where only guard's deadline thread sees a signal: the one KeyboardInterrupt of a Ctrl-C
# (guard raises no other) is swallowed, wherever after `ready` Python raises it.
BUSY = """
def busy(ready):
    import time
    while True:
        try:
            line, ready = ready, None
            if line:
                print(line, flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            pass
"""
# LeNet's recipe, busy in epoch BUSY_EPOCH; it prints "busy" there.
BUSY_IN_EPOCH = BUSY + """
import sys
from jaxnin.experiments import mnist_lenet
from jaxnin.train import loop
real, calls = loop.run_epoch, []
def run_epoch(*args, **kwargs):
    calls.append(1)
    if len(calls) == BUSY_EPOCH:
        busy("busy")
    return real(*args, **kwargs)
loop.run_epoch = run_epoch
sys.exit(mnist_lenet.RECIPE.main())
"""


def busy_in_epoch(epoch, args, data_cache):
    """LeNet's recipe with `args`, started and now busy in `epoch` (see BUSY)."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_IN_EPOCH.replace("BUSY_EPOCH", str(epoch)),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAXNIN_CACHE_DIR": str(data_cache)})
    assert "busy\n" in iter(proc.stdout.readline, ""), proc.communicate()
    return proc


def test_a_second_ctrl_c_while_busy_ends_at_once_saying_what_is_saved(shared_data, data_cache,
                                                                      tmp_path):
    """The first Ctrl-C waits for Python to see it (GRACE_S at most); a second one ends the
    command at once, in one line that names the saved epochs."""
    proc = busy_in_epoch(2, lenet(shared_data, tmp_path), data_cache)
    try:
        deadline = time.monotonic() + 60  # epoch 1's checkpoint may still be being written
        while newest_saved_epoch(tmp_path / "checkpoints") != 1:
            assert time.monotonic() < deadline, "epoch 1 was not saved"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent <= 2, err  # at once: well under guard.GRACE_S
        assert proc.returncode == 128 + signal.SIGINT, err
        assert err.strip() == (
            "error: stopped at once by a second Ctrl-C or SIGTERM; epochs up to 1 are saved in "
            f"{tmp_path / 'checkpoints'}: rerun the same command with --resume to continue"), err
    finally:
        proc.kill()


def test_a_second_ctrl_c_in_the_first_epoch_leaves_nothing_behind(shared_data, data_cache,
                                                                   tmp_path):
    """Ended at once, with no time for the run's own clean-up: the deadline thread removes the
    files of a run that saved nothing, the lock file and the folders the run made."""
    proc = busy_in_epoch(1, lenet(shared_data, tmp_path / "new" / "run"), data_cache)
    try:
        for _ in range(2):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGINT, err
        assert err.strip() == ("error: stopped at once by a second Ctrl-C or SIGTERM; nothing was "
                               "saved: rerun the same command to start again"), err
        assert not (tmp_path / "new").exists(), list(tmp_path.rglob("*"))
    finally:
        proc.kill()


# --- child process groups ---------------------------------------------------------------------

# A command busy (see BUSY) while a child that ignores SIGTERM and its own child run in the group
# it owns; it prints their pids.
STUCK_OWNER = BUSY + """
import subprocess, sys
from jaxnin import guard, processes
guard.install()
stubborn = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            " print(g.pid, flush=True); time.sleep(60)")
with processes.group([sys.executable, "-c", stubborn], stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True) as child:
    busy(f"{child.pid} {child.stdout.readline().strip()}")
"""


@pytest.mark.parametrize("signals, says, within", [
    ([signal.SIGTERM], "still busy 5 s after SIGTERM", guard.GRACE_S + 3),
    ([signal.SIGINT, signal.SIGINT], "stopped at once by a second Ctrl-C or SIGTERM", 2.5),
])
def test_a_command_that_ends_without_a_word_from_python_kills_its_child_groups(
        signals, says, within):
    """The deadline, and a second Ctrl-C, end the command's child process groups with it."""
    proc = subprocess.Popen([sys.executable, "-c", STUCK_OWNER], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in proc.stdout.readline().split()]
    try:
        assert len(pids) == 2 and all(alive(pid) for pid in pids), proc.communicate()
        for signum in signals:
            sent = time.monotonic()
            proc.send_signal(signum)
            time.sleep(0.3)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - sent <= within, err
        assert proc.returncode == 128 + signals[0], err
        line = err.strip()
        assert "\n" not in line and says in line and "nothing was saved" in line, err
        assert gone_within(pids, 2), [pid for pid in pids if alive(pid)]
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# A command whose Ctrl-C comes just as processes.group's Popen returns, before the group is
# owned: it prints the child's pid, then what the `with` saw.
SIGNAL_AS_THE_CHILD_STARTS = """
import os, signal, subprocess, sys
from jaxnin import guard, processes
guard.install()
popen = subprocess.Popen
def popen_then_ctrl_c(*args, **kwargs):
    child = popen(*args, **kwargs)
    print(child.pid, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    return child
subprocess.Popen = popen_then_ctrl_c
try:
    with processes.group([sys.executable, "-c", "import time; time.sleep(60)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        print("entered", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_a_signal_as_a_child_starts_still_ends_the_child():
    done = subprocess.run([sys.executable, "-c", SIGNAL_AS_THE_CHILD_STARTS],
                          capture_output=True, text=True, timeout=60)
    pid, *said = done.stdout.split()
    try:
        assert said == ["interrupted"], done
        assert gone_within([int(pid)], 2), "the child outlived the Ctrl-C"
    finally:
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)
