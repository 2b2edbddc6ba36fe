"""What every command-line entry point shares: one-line errors and --debug."""
import argparse
import logging
import os
import sys
from typing import Callable, Sequence, TextIO

from jaxnin.errors import JaxninError


def run_main(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`; a JaxninError becomes one line on stderr and exit code 2.

    Any other exception is a bug: one line too (exit code 1), naming --debug, which shows
    tracebacks and everything the libraries print instead.
    """
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _configure_logging(debug)
    if debug:
        return main([a for a in argv if a != "--debug"]) or 0
    errors = _private_stderr() if from_command_line else sys.stderr
    try:
        return main(argv) or 0
    except JaxninError as err:
        print(f"error: {err}", file=errors, flush=True)
        return 2
    except Exception as err:  # noqa: BLE001 -- the one line points to --debug for the rest
        first_line = (str(err).splitlines() or [""])[0]
        print(f"error: internal error ({type(err).__name__}: {first_line}); rerun with --debug "
              "for the traceback, and please report it", file=errors, flush=True)
        return 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (argparse prints usage plus the error)."""

    def error(self, message):
        raise JaxninError(f"{message} (see {self.prog} --help)")


def _private_stderr() -> TextIO:
    """Keep stderr for jaxnin's one line: everything else written to fd 2 is discarded.

    Orbax's writer threads, TensorFlow's C++ start-up and asyncio print tracebacks and notes
    straight to stderr, some from background threads, even for failures that jaxnin reports
    itself in one line.
    """
    try:
        private = os.fdopen(os.dup(sys.stderr.fileno()), "w")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)
        return private
    except (OSError, ValueError, AttributeError):  # no real stderr to take over
        return sys.stderr


def _configure_logging(debug: bool) -> None:
    # Progress and notes go to stdout, so that stderr holds nothing but the one error line.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    # Orbax and TensorFlow log through absl, including tracebacks of failed saves.
    logging.getLogger("absl").setLevel(logging.WARNING if debug else logging.CRITICAL)
    # JAX reports at INFO each optional backend it probed and did not find (libtpu on every
    # CPU or GPU host): noise to a user, kept for --debug.
    logging.getLogger("jax").setLevel(logging.INFO if debug else logging.WARNING)
