import sys

from jaxnin import guard

guard.starting()  # before the heavy imports below: a Ctrl-C while they load is one line

from experiments.acceptance.cli import main  # noqa: E402
from jaxnin.cli import run_main  # noqa: E402

sys.exit(run_main(main))
