"""python -m experiments.bench [flags]: see experiments.bench.cli."""
import sys

from experiments.bench.cli import main
from jaxnin.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
