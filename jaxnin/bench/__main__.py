"""python -m jaxnin.bench [flags]: see jaxnin.bench.cli."""
import sys

from jaxnin.bench.cli import main
from jaxnin.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
