"""What a person at a terminal sees: a moving bar, crashes that explain themselves, signals
obeyed at any point (issue 18). Every run here is a real command in a pseudo-terminal or
with pipes, as a user starts it."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from jaxnin.train.checkpoint import newest_saved_epoch

LENET = ["--epochs", "50", "--batch-size", "16", "--limit-train", "4096", "--limit-test", "500",
         "--eval-batch-size", "500"]


def command(module, *args):
    return [sys.executable, "-m", f"jaxnin.experiments.{module}", *args]


def env_with(cache, **more):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(cache), **more}
    env.pop("JAXNIN_DATA_DIR", None)
    return env


class Terminal:
    """A command whose stdin, stdout and stderr are one pseudo-terminal, read as it runs."""

    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        # 24 rows of 100 columns, as a terminal window has (a new pty has 0 columns, where
        # tqdm draws an empty bar)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     close_fds=True)
        os.close(slave)
        self.screen = ""

    def read_until(self, pattern, timeout=240):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.screen):
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.screen[-3000:]}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.screen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the command ended and closed the terminal
                    assert re.search(pattern, self.screen), self.screen[-3000:]
        return self.screen

    def finish(self, timeout=60):
        self.proc.wait(timeout=timeout)
        try:
            while select.select([self.master], [], [], 0.5)[0]:
                self.screen += os.read(self.master, 65536).decode(errors="replace")
        except OSError:
            pass
        os.close(self.master)
        return self.proc.returncode


def test_the_bar_moves_within_an_epoch_on_a_terminal(shared_data, mnist, data_cache, tmp_path):
    term = Terminal(command("mnist_lenet", "--data-dir", str(shared_data), "--workdir",
                            str(tmp_path), *LENET[2:], "--epochs", "1"), env_with(data_cache))
    term.read_until(r"epoch\s+1\s+train loss")
    assert term.finish() == 0
    counts = {int(n) for n in re.findall(r"(\d+)/256 \[", term.screen)}  # 4096 / 16 steps
    assert len({n for n in counts if 0 < n < 256}) >= 2, term.screen[-2000:]
    assert "compiling the training step" in term.screen
    # Status lines start a row: none follows a bar's text on its row.
    assert "expected: about" in term.screen
    assert not re.search(r"[^\r\n](first step done|expected: |epoch +1 +train)", term.screen), \
        term.screen[-2000:]


def test_plain_lines_and_no_bar_when_not_a_terminal(shared_data, mnist, data_cache, tmp_path):
    done = subprocess.run(command("mnist_lenet", "--data-dir", str(shared_data), "--workdir",
                                  str(tmp_path), *LENET[2:], "--epochs", "1"),
                          env=env_with(data_cache), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "/256 [" not in done.stdout + done.stderr and done.stderr == ""
    assert re.search(r"epoch\s+1\s+train loss", done.stdout)


def wait_for_epoch(workdir: Path, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while not newest_saved_epoch(workdir / "checkpoints"):
        assert proc.poll() is None and time.monotonic() < deadline, "no epoch 1"
        time.sleep(0.1)
    time.sleep(0.5)  # well into epoch 2


@pytest.mark.parametrize("signum, named", [(signal.SIGSEGV, "Segmentation fault"),
                                           (signal.SIGABRT, "Aborted")])
def test_a_native_crash_names_itself_and_the_saved_epoch(signum, named, shared_data, mnist,
                                                        data_cache, tmp_path):
    proc = subprocess.Popen(command("mnist_lenet", "--data-dir", str(shared_data), "--workdir",
                                    str(tmp_path), *LENET), env=env_with(data_cache),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_epoch(tmp_path, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signum
    assert f"Fatal Python error: {named}" in err  # faulthandler: the signal and where
    saved = newest_saved_epoch(tmp_path / "checkpoints")
    assert f"epochs up to {saved} are saved in {tmp_path / 'checkpoints'}" in err
    assert "--resume" in err.splitlines()[-1]


def test_ctrl_c_while_compiling_is_one_line(shared_data, mnist, data_cache, tmp_path):
    term = Terminal(command("mnist_lenet", "--data-dir", str(shared_data), "--workdir",
                            str(tmp_path), *LENET), env_with(data_cache))
    term.read_until("compiling the training step")
    os.kill(term.proc.pid, signal.SIGINT)
    assert term.finish() == 2, term.screen[-3000:]
    errors = [line for line in term.screen.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "nothing was saved" in errors[0] \
        and "rerun the same command" in errors[0], \
        term.screen[-3000:]
    assert "Traceback" not in term.screen


def test_ctrl_c_while_the_data_builds_is_one_line_and_leaves_no_temporary_files(tmp_path):
    """Decoding the sample clips takes long enough to be interrupted half-way (MNIST parses in
    about 2 s; its own interrupt cleanup is tested in test_data_vision.py)."""
    cache, temp = tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    term = Terminal(command("video_nin", "--workdir", str(tmp_path / "run"), "--frames", "4",
                            "--size", "67", "--resize", "0"), env_with(cache, TMPDIR=str(temp)))
    term.read_until(r"decoding \d+ clips")
    os.kill(term.proc.pid, signal.SIGINT)
    assert term.finish() == 2
    errors = [line for line in term.screen.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "interrupted" in errors[0], term.screen[-2000:]
    assert "nothing was saved" in errors[0] and "Traceback" not in term.screen
    assert not list(temp.iterdir()), list(temp.iterdir())
    assert not [p for p in (cache / "video").rglob("*") if p.suffix == ".tmp"
                or p.name.startswith(".")], list((cache / "video").rglob("*"))
    assert not (tmp_path / "run").exists()


def test_sigterm_ends_a_cpu_run_at_224_within_10_s(shared_data, fashion, data_cache, tmp_path):
    """The worst case: the signal comes while XLA compiles NiN at 224, where Python cannot act
    on it (an epoch's steps each return to Python, see test_failing_well's signal tests)."""
    proc = subprocess.Popen(command("fashion_nin", "--data-dir", str(shared_data), "--workdir",
                                    str(tmp_path), "--limit-train", "512", "--limit-test", "100",
                                    "--batch-size", "32"),
                            env=env_with(data_cache, JAXNIN_COMPILE_CACHE="0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("compiling the training step"):
            break
    time.sleep(1)  # inside the compile
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent <= 10
    assert proc.returncode in (2, 128 + signal.SIGTERM), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nothing was saved" in last, err
