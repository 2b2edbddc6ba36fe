"""The console on a terminal: status lines never land on the bar's line, no stale
bar is left on screen, and the bar shows the whole run's time left. The terminal is a fake
stream whose isatty() is True, shared by stdout and the bar as a real screen is; the clock is
fake too."""
import io
import logging
import re
import sys

from jaxnin.cli import run_main
from jaxnin.report import estimate
from jaxnin.report.estimate import Workload
from jaxnin.report.logging import Console, epoch_line
from jaxnin.terminal import LineHandler, print_line

STEPS = 50
MEASURE_STEPS = estimate.MEASURE_STEPS


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def screen(text: str) -> list[str]:
    """The rows a terminal shows after `text`: a '\\r' returns to the row's start, where the
    characters after it overwrite those before."""
    assert "\x1b" not in text  # one bar at position 0 needs no cursor movement
    rows = []
    for raw in text.split("\n"):
        row, column = [], 0
        for part in re.split("(\r)", raw):
            if part == "\r":
                column = 0
                continue
            row[column:column + len(part)] = part
            column += len(part)
        rows.append("".join(row).rstrip())
    return rows


RECORD = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5,
          "lr": 0.1, "epoch_time_s": 60.0, "examples_per_s": 100.0, "train_time_s": 50.0,
          "eval_time_s": 10.0}


def interrupted_run(monkeypatch) -> str:
    """What the terminal receives in epoch 1, with a warning half-way, and epoch 2,
    interrupted (fit closes its writers however the run ends)."""
    term, clock = FakeTerminal(), FakeClock()
    monkeypatch.setattr(sys, "stdout", term)
    console = Console(2, stream=term, work=Workload(2, 128, 1000, "cpu", "cpu"), clock=clock)
    console.compiling()
    console.epoch_started(1, STEPS)
    clock.now += 30.0
    for done in range(1, MEASURE_STEPS + 5):  # enough for the step time to be known
        console.steps_done(done)
        clock.now += 1.0
    print_line("warning: a library's note in the middle of an epoch")
    library_log("a library logs in the middle of an epoch", term)
    console.epoch(RECORD)
    console.epoch_started(2, STEPS)
    for done in range(1, 4):
        console.steps_done(done)
    console.close()
    return term.getvalue()


def library_log(text: str, term) -> None:
    """`text` logged at WARNING by a library's logger through the handler that jaxnin's
    commands give logging (jaxnin.cli)."""
    logger = logging.getLogger("a.library")
    logger.addHandler(LineHandler(term))
    logger.propagate = False
    try:
        logger.warning(text)
    finally:
        logger.handlers.clear()
        logger.propagate = True


def test_every_status_line_starts_on_a_row_of_its_own(monkeypatch):
    text = interrupted_run(monkeypatch)
    rows = screen(text)
    for said in ("compiling the training step", "first step done 30.0 s", "expected: about",
                 "warning: a library's note", "a library logs", epoch_line(RECORD)):
        assert any(row.startswith(said) for row in rows), (said, rows)
    # A row with a bar's text before a line's: the line was written onto the bar.
    assert not [row for row in rows if f"/{STEPS} [" in row], rows


def test_no_bar_is_left_on_screen_after_an_epoch_or_an_interrupt(monkeypatch):
    text = interrupted_run(monkeypatch)
    assert text.count(f"/{STEPS} [") > 0  # bars were drawn
    assert screen(text)[-1] == ""  # and the last one wiped by close()


def test_the_bar_shows_the_whole_run_s_time_left(monkeypatch):
    text = interrupted_run(monkeypatch)
    # The bar is redrawn after the warning, its time left known from the steps timed before.
    assert re.search(rf"epoch 1/2: .*/{STEPS} \[.*run 0:\d\d:\d\d left", text), text


def test_a_command_s_logging_goes_through_the_line_handler():
    """What libraries log during a command (JAX's warnings, say) is kept off the bar's row."""
    run_main(lambda argv: 0, [])
    assert [type(h) for h in logging.getLogger().handlers] == [LineHandler]
