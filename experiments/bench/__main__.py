"""python -m experiments.bench [flags]: see experiments.bench.cli."""
import sys

if __name__ == "__main__":
    from jaxnin import guard

    guard.starting()  # before the heavy imports below: a Ctrl-C while they load is one line

    from experiments.bench.cli import main
    from jaxnin.cli import run_main

    sys.exit(run_main(main))
