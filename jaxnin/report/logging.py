"""Writers of a run's records: history.json, the console with its progress, TensorBoard, curves.

`fit` hands each finished epoch's record to the writers it was given (flax's
clu.metric_writers is the pattern); the training engine knows none of them. Each writer loads
what it needs (tqdm, tensorboardX, matplotlib) when it is made, never on import.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from jaxnin.errors import JaxninError
from jaxnin.files import write_json  # also imported from here by the recipes' code
from jaxnin.report.estimate import (Workload, clock_text, cost_from_record, cost_from_step,
                                    duration_text, expected_line, seconds_left, step_seconds)
from jaxnin.terminal import print_line


class HistoryFile:
    """history.json, rewritten atomically after every epoch; `history` is what it holds.

    With `write=False` (processes other than 0 of a multi-process run) it only keeps the
    history in memory.
    """

    def __init__(self, workdir: Path, history: list[dict], write: bool = True):
        self.path = Path(workdir) / "history.json"
        self.history = list(history)
        self._write = write

    def epoch(self, record: dict, state=None) -> None:
        self.history.append(record)
        if self._write:
            write_json(self.path, self.history)

    def close(self) -> None:
        pass


class Console:
    """Epoch lines on stdout and, on a terminal, a bar on stderr that moves within an epoch.

    Given a `work` (jaxnin.report.estimate.Workload), it also says what the whole run will
    take, in one `expected: ...` line as soon as the step time is known (a few steps after the
    compile; where an epoch is one device program, after the first epoch), and shows the time
    left in the whole run on the bar and after each epoch's line. Every time is read from
    `clock` (tests pass a fake one). Where output is not a terminal (a log file, CI) there is
    no bar, only plain lines. The bar is cleared when an epoch ends and by `close()`, which fit
    calls however the run ends.
    """

    def __init__(self, epochs: int, stream=None, *, work: Workload | None = None,
                 clock=time.perf_counter):
        self.epochs = epochs
        self._stream = stream or sys.stderr
        self._work, self._clock = work, clock
        self._bar = None
        self._compile_started = None
        self._run_started = None  # the run's time counts from its compile
        self._first_epoch = self._epoch = self._steps = None
        self._first_report = None  # (clock, steps done) at this epoch's first report
        self._cost = None  # an EpochCost: from the steps, then from each finished epoch
        self._said = False  # the expected line is printed once

    def compiling(self) -> None:
        """Called before the first epoch of a process, whose first step compiles."""
        self._compile_started = self._run_started = self._clock()
        print_line("compiling the training step and the evaluation (first epoch of this "
                   "process) ...")

    def epoch_started(self, epoch: int, steps: int | None) -> None:
        if self._run_started is None:
            self._run_started = self._clock()
        self._first_epoch = self._first_epoch or epoch
        self._epoch, self._steps, self._first_report = epoch, steps, None
        if steps and _is_terminal(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.epochs}", unit="step",
                             leave=False, dynamic_ncols=True, file=self._stream)

    def steps_done(self, done: int) -> None:
        now = self._clock()
        if self._compile_started is not None:  # the first step is back: compiling is over
            print_line(f"first step done {now - self._compile_started:.1f} s "
                       "after compiling started")
            self._compile_started = None
        if self._work is not None and self._steps:
            self._measure(now, done)
        if self._bar is not None:
            if self._cost is not None:
                left = seconds_left(self._cost, self._epochs_after(), done / self._steps)
                self._bar.set_postfix_str(f"run {clock_text(left)} left", refresh=False)
            self._bar.update(done - self._bar.n)

    def epoch(self, record: dict, state=None) -> None:
        self._close_bar()
        line, left = epoch_line(record), None
        if self._work is not None:
            self._cost = cost_from_record(record)
            left = seconds_left(self._cost, self._epochs_after())
            line += f"  run: about {duration_text(left)} left" if left else ""
        print_line(line)
        if left and not self._said:  # no step was timed within the epoch (fused, or short)
            self._say_expected(left)

    def close(self) -> None:
        self._close_bar()

    def _measure(self, now: float, done: int) -> None:
        """The epoch's step time, once enough steps are in; the first time, the line."""
        if self._first_report is None:  # the step before it waited for the compile
            self._first_report = (now, done)
            return
        if self._cost is not None and self._cost.measured:
            return  # a finished epoch's times beat a few steps'
        step_s = step_seconds(self._first_report, (now, done))
        if step_s is not None:
            self._cost = cost_from_step(step_s, self._steps, self._work)
            if not self._said:
                self._say_expected(seconds_left(self._cost, self._epochs_after(),
                                                done / self._steps))

    def _say_expected(self, left: float) -> None:
        total = self._clock() - self._run_started + left
        print_line(expected_line(total, self._first_epoch, self._work, self._cost))
        self._said = True

    def _epochs_after(self) -> int:
        return self._work.epochs - self._epoch

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TensorBoard:
    """TensorBoard scalars in `workdir/tensorboard`, grouped as seed 002 groups them.

    Without tensorboardX (a bare GPU host) the scalars are skipped, with one line saying so.
    """
    SCALARS = {"Loss/train": "train_loss", "Loss/test": "test_loss", "Acc/train": "train_acc",
               "Acc/test": "test_acc", "lr": "lr", "examples_per_s": "examples_per_s"}

    def __init__(self, workdir: Path):
        # The event file is made at the first epoch: a run refused before it leaves no folder.
        self._folder, self._writer, self._missing = Path(workdir) / "tensorboard", None, False

    def epoch(self, record: dict, state=None) -> None:
        if self._writer is None and not self._missing:
            writer_class = _import_summary_writer()
            self._missing = writer_class is None
            if self._missing:
                print_line("note: tensorboardX is not installed, so no TensorBoard scalars are "
                           "written (history.json holds the same numbers)")
                return
            self._writer = writer_class(str(self._folder))
        if self._writer is None:
            return
        for tag, key in self.SCALARS.items():
            self._writer.add_scalar(tag, record[key], record["epoch"])
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class Curves:
    """loss.png and acc.png, drawn when the run closes (also after an interrupt or divergence,
    from the epochs that finished)."""

    def __init__(self, workdir: Path, title: str):
        self.workdir, self.title = Path(workdir), title

    def epoch(self, record: dict, state=None) -> None:
        pass

    def close(self) -> None:
        # The whole history, a resumed run's earlier epochs too, as fit wrote it.
        path = self.workdir / "history.json"
        history = json.loads(path.read_text()) if path.exists() else []
        if history:
            from jaxnin.report.plots import plot_curves

            try:
                plot_curves(history, self.workdir, title=self.title)
            except OSError as err:
                raise JaxninError(f"cannot draw the curves into {self.workdir} "
                                  f"({err.strerror or err}); the run's checkpoints and "
                                  "history.json are kept") from None


def epoch_line(record: dict) -> str:
    """One console line per epoch, like seed 004's summary."""
    seeds = record.get("per_seed", {}).get("test_acc", [])
    spread = f" ± {np.std(seeds):.4f} ({len(seeds)} seeds)" if seeds else ""
    compile_s = record.get("compile_time_s", 0)
    dead = record.get("dead_classes", 0)
    return (f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f}  "
            f"train acc {record['train_acc']:.4f}  test loss {record['test_loss']:.4f}  "
            f"test acc {record['test_acc']:.4f}{spread}  "
            + (f"DEAD CLASSES {dead}/{record['classes']}  " if dead else "")
            + f"lr {record['lr']:.3g}  "
            f"{record['epoch_time_s']:.1f} s  {record['examples_per_s']:,.0f} ex/s"
            + (f"  (+{compile_s:.1f} s compile)" if compile_s >= 0.05 else ""))


def final_lines(history: list[dict], device: str) -> str:
    """d2l's closing two lines: last epoch's metrics, then training throughput."""
    last = history[-1]
    examples = sum(r["examples_per_s"] * r["train_time_s"] for r in history)  # all replicas
    seconds = sum(r["train_time_s"] for r in history)
    return (f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
            f"test acc {last['test_acc']:.3f}\n{examples / seconds:.1f} examples/sec on {device}")


def seed_lines(results: dict) -> str:
    """The mean and spread over seeds (with --seeds K > 1), then the total elapsed time."""
    lines = []
    if len(results["seeds"]) > 1:
        lines.append(f"test acc over {len(results['seeds'])} seeds: final "
                     f"{results['final_test_acc_mean']:.4f} ± {results['final_test_acc_std']:.4f}"
                     f", best {results['best_test_acc_mean']:.4f} ± "
                     f"{results['best_test_acc_std']:.4f}")
    if results.get("diverged_seeds"):
        seeds = results["diverged_seeds"]
        lines.append(f"warning: {len(seeds)} of {len(results['seeds'])} seeds diverged (loss not "
                     f"finite): seed{'s' if len(seeds) > 1 else ''} "
                     f"{', '.join(map(str, seeds))}; their accuracy still counts in the means")
    if results["process_wall_s"] is not None:
        lines.append(f"total elapsed {results['process_wall_s']:.1f} s (process start to now)")
    return "\n".join(lines)


def device_text() -> str:
    """The devices this process trains on, for the closing line: "cpu (cpu:0)", "8 x H100"."""
    import jax

    device = jax.devices()[0]
    if jax.device_count() == 1:
        return f"{device.device_kind} ({device.platform}:{device.id})"
    return f"{jax.device_count()} x {device.device_kind} ({device.platform})"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _import_summary_writer():
    """tensorboardX's SummaryWriter imported without PyTorch, or None where it is missing.

    tensorboardX imports torch, if installed, only to accept torch tensors; jaxnin logs Python
    floats. On a host with torch (every GPU box with the bench extra) that import cost about
    2 s of every run's cold start, so torch is hidden while tensorboardX loads.
    """
    hide_torch = "torch" not in sys.modules
    if hide_torch:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    finally:
        if hide_torch:
            del sys.modules["torch"]
    return SummaryWriter
