"""What every command-line entry point shares: one-line errors and --debug."""
import logging
import sys
from typing import Callable, Sequence

from jaxnin.errors import JaxninError


def run_main(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`; a JaxninError becomes one line on stderr and exit code 2.

    With --debug in argv the traceback is shown instead, for bug reports.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if "--debug" in argv:
        return main([a for a in argv if a != "--debug"]) or 0
    try:
        return main(argv) or 0
    except JaxninError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
