"""Lines on a terminal that may be showing a progress bar: each on a row of its own.

Loads nothing: every command's logging goes through here (jaxnin.cli), before its heavy
imports.
"""
import contextlib
import logging
import sys


def print_line(text: str) -> None:
    """`text` and its newline in one write to stdout, on a line of its own while a bar shows.

    print() writes them apart, and a Ctrl-C landing between the two (unbuffered output, as
    under PYTHONUNBUFFERED) left the line open, so the error line was glued to it (seen in
    tests/test_terminal.py).
    """
    with bars_cleared():
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def bars_cleared():
    """A context in which tqdm's bars are wiped from the screen, redrawn after it. A line
    written onto a bar's line kept the bar's text before it, a stale 0 % bar.
    tqdm is only asked where it is loaded: without it no bar can be showing."""
    tqdm = sys.modules.get("tqdm")
    return tqdm.tqdm.external_write_mode(file=sys.stdout) if tqdm else contextlib.nullcontext()


class LineHandler(logging.StreamHandler):
    """A logging handler whose records, libraries' notes included, never land on a bar's row."""

    def emit(self, record: logging.LogRecord) -> None:
        with bars_cleared():
            super().emit(record)
