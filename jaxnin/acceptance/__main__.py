import sys

from jaxnin.acceptance.cli import main
from jaxnin.cli import run_main

sys.exit(run_main(main))
