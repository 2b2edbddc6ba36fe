import sys

from experiments.acceptance.cli import main
from jaxnin.cli import run_main

sys.exit(run_main(main))
