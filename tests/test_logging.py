"""Run logging: TensorBoard via tensorboardX without paying for a PyTorch import."""
import os
import subprocess
import sys


def test_tensorboardx_loads_without_importing_an_installed_torch(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("IMPORTED = True\n")  # stands in for an installed torch
    code = ("import sys, jaxnin.report.logging as log; writer = log._import_summary_writer(); "
            "print('torch' in sys.modules); import torch; print(torch.IMPORTED, writer.__name__)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "True", "SummaryWriter"]  # not imported, yet still importable later


def test_a_command_does_not_print_jax_backend_probes():
    # JAX logs "Unable to initialize backend 'tpu'" at INFO on every host without a TPU.
    code = ("import jax; from jaxnin.cli import run_main; "
            "run_main(lambda argv: print(jax.devices()[0].platform), [])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] in ("cpu", "gpu", "cuda")
    assert "Unable to initialize backend" not in done.stdout + done.stderr


def test_importing_the_engine_leaves_matplotlib_and_tensorboardx_alone():
    """A notebook's inline plots survive `import jaxnin`; the engine loads no writer's library."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    child = lambda code: subprocess.run([sys.executable, "-c", code], capture_output=True,
                                        text=True, env=env, timeout=120, check=True).stdout.split()
    loaded = child("import sys, jaxnin, jaxnin.train, jaxnin.train.loop, jaxnin.run; "
                   "print(*(m in sys.modules for m in ('matplotlib', 'tensorboardX', 'tqdm')))")
    assert loaded == ["False", "False", "False"]
    backend = "import matplotlib; print(matplotlib.get_backend())"
    assert child("import jaxnin.run; " + backend) == child(backend)


def test_a_history_that_does_not_write_keeps_it_in_memory_only(tmp_path):
    """Processes other than 0 of a multi-process run keep the history without writing it."""
    from jaxnin.report.logging import HistoryFile

    quiet = HistoryFile(tmp_path, [], write=False)
    quiet.epoch({"epoch": 1, "train_loss": 0.5})
    assert quiet.history == [{"epoch": 1, "train_loss": 0.5}] and not list(tmp_path.iterdir())


STRAY = """
import sys, threading
from jaxnin.cli import run_main

class Callback:  # a library object whose finaliser fails, as tensorstore's do after a full disk
    def __del__(self):
        raise RuntimeError("Event loop is closed")

def main(argv):
    Callback()  # reported through sys.unraisablehook
    worker = threading.Thread(target=lambda: 1 / 0)  # through threading.excepthook
    worker.start(); worker.join()
    print("done")

sys.exit(run_main(main, sys.argv[1:]))
"""


def test_library_threads_failing_after_the_error_stay_off_stderr_unless_debug():
    """Without the hooks, each prints a bare traceback under the run's one error line."""
    child = lambda *argv: subprocess.run([sys.executable, "-c", STRAY, *argv],
                                         capture_output=True, text=True, timeout=120)
    quiet, debug = child(), child("--debug")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "done"
    assert quiet.stderr == "", quiet.stderr
    assert "Event loop is closed" in debug.stderr and "ZeroDivisionError" in debug.stderr


class _InterruptedAfterFirstWrite:
    """Unbuffered stdout (PYTHONUNBUFFERED) that a Ctrl-C hits right after its first write."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text
        if len(self.text) == len(text):
            raise KeyboardInterrupt

    def flush(self):
        pass


def test_a_console_line_ends_even_when_ctrl_c_lands_right_after_it(monkeypatch):
    """print() writes a line and its newline apart; an interrupt between them glued the error
    line to 'compiling ...' (tests/test_terminal.py under load)."""
    from jaxnin.report.logging import Console

    for say in (lambda c: c.compiling(),
                lambda c: c.epoch({"epoch": 1, "train_loss": 1.0, "train_acc": 0.5,
                                   "test_loss": 1.0, "test_acc": 0.5, "lr": 0.1,
                                   "epoch_time_s": 1.0, "examples_per_s": 10.0})):
        stream = _InterruptedAfterFirstWrite()
        monkeypatch.setattr(sys, "stdout", stream)
        try:
            say(Console(epochs=2, stream=stream))
        except KeyboardInterrupt:
            pass
        assert stream.text.endswith("\n") and stream.text.count("\n") == 1, stream.text
